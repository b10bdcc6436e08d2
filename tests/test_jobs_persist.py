"""Issue 19 item 5: API jobs outlive the process. Jobs are persisted (SQLite in api.db by default); on start-up
an unfinished ingest job runs again from its saved upload (no duplicates), a finetune job or an ingest job that
already stopped the API twice is failed with a message; no document stays ``processing``; ``/v1/status`` counts
only committed chunks. Fast: fake ingest functions, or HashEmbedder + FakeLLM. The kill -9 of a real API is in
``test_api_job_crash_kill_9`` below (slow)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.api.factory import api_db
from app.api.job_store import SqliteJobs, StoredJob, job_store
from app.api.jobs import MAX_ATTEMPTS, Job, JobManager
from app.runtime import Runtime
from core.errors import ConfigError
from core.settings import Settings
from core.types import content_id
from tests.api_live import free_port, wait_job
from tests.fakes import FakeLLM, HashEmbedder
from tests.pg_fixture import pg_server, pg_url  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
PDF = ROOT / "examples" / "northwind-field-manual.pdf"


@dataclasses.dataclass
class Result:  # what Ingestor.ingest returns, as far as JobManager reads it
    path: str
    status: str = "ingested"
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fake_ingest(calls: list[tuple[list[Path], str]]) -> Any:
    def ingest(paths: list[Path], workspace: str, progress: Any) -> list[Result]:
        calls.append((paths, workspace))
        for _ in paths:
            progress("file", 1)
        return [Result(str(p)) for p in paths]
    return ingest


def left_by_a_dead_api(store: SqliteJobs, job: Job) -> None:
    """Write ``job`` as a killed API leaves it: the row says queued/running, nobody runs it."""
    store.put(job.stored())


# ---- the store and the manager ---------------------------------------------------------------------------
def test_a_finished_job_is_found_after_a_restart(tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text("# A\n\nhello")
    first = JobManager(fake_ingest([]), store=SqliteJobs(tmp_path / "api.db"))
    job = first.submit("w", [f])
    assert first.wait(job.id) is not None and job.state == "done"
    first.shutdown()
    second = JobManager(fake_ingest([]), store=SqliteJobs(tmp_path / "api.db"))
    try:
        again = second.get(job.id)  # before the fix: None (jobs lived in memory only)
        assert again is not None and again.state == "done" and again.files == ["a.md"] and again.files_done == 1
        assert again.attempts == 1 and again.paths == [str(f.resolve())]
        assert second.recover() == []
    finally:
        second.shutdown()


@pytest.mark.parametrize("state,attempts", [("queued", 0), ("running", 1)])
def test_an_unfinished_ingest_job_runs_again_on_start_up(tmp_path: Path, state: str, attempts: int) -> None:
    f = tmp_path / "a.md"
    f.write_text("# A\n\nhello")
    store = SqliteJobs(tmp_path / "api.db")
    left_by_a_dead_api(store, Job(id="j1", workspace="w", files=["a.md"], state=state,  # type: ignore[arg-type]
                                  paths=[str(f)], attempts=attempts, files_done=attempts))
    calls: list[tuple[list[Path], str]] = []
    jobs = JobManager(fake_ingest(calls), store=store)
    try:
        assert [j.id for j in jobs.recover()] == ["j1"]
        job = jobs.wait("j1")
        assert job is not None and job.state == "done" and job.files_done == 1 and job.attempts == attempts + 1
        assert calls == [([f], "w")]
        assert store.get("j1").state == "done"  # type: ignore[union-attr]
        assert jobs.recover() == []  # nothing is left to resume
    finally:
        jobs.shutdown()


def test_an_ingest_job_that_stopped_the_api_twice_is_failed_and_its_documents_settled(tmp_path: Path) -> None:
    store = SqliteJobs(tmp_path / "api.db")
    left_by_a_dead_api(store, Job(id="j2", workspace="w", files=["bad.pdf"], state="running",
                                  paths=[str(tmp_path / "bad.pdf")], attempts=MAX_ATTEMPTS))
    settled: list[tuple[list[Path], str, str]] = []
    calls: list[tuple[list[Path], str]] = []
    jobs = JobManager(fake_ingest(calls), store=store, settle=lambda p, w, why: settled.append((p, w, why)))
    try:
        [job] = jobs.recover()
        assert job.state == "failed" and job.finished and calls == []
        assert "stopped 2 times" in job.errors[0]["error"] and "re-upload" in job.errors[0]["error"]
        assert settled and settled[0][0] == [tmp_path / "bad.pdf"] and settled[0][2] == job.errors[0]["error"]
        assert store.get("j2").state == "failed"  # type: ignore[union-attr]
    finally:
        jobs.shutdown()


def test_a_finetune_job_left_running_is_failed_with_what_to_do(tmp_path: Path) -> None:
    store = SqliteJobs(tmp_path / "api.db")
    left_by_a_dead_api(store, Job(id="ft", workspace="w", files=[], state="running", kind="finetune",
                                  stages=("synthesise", "train"), stage="train", attempts=1))
    jobs = JobManager(fake_ingest([]), store=store)
    try:
        [job] = jobs.recover()
        err = job.errors[0]["error"]
        assert job.state == "failed" and "stage train" in err and "POST /v1/workspaces/w/finetune" in err
        assert jobs.get("ft").stages == ("synthesise", "train")  # type: ignore[union-attr]
    finally:
        jobs.shutdown()


def test_the_job_store_url_is_checked_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RAGENT_JOBS_URL"):
        job_store("mysql://x", None, tmp_path / "api.db")
    dead = job_store("postgresql://ragent:secret@127.0.0.1:1/none", None, tmp_path / "api.db")
    with pytest.raises(ConfigError, match="cannot reach the jobs database") as e:
        dead.get("x")
    assert "secret" not in str(e.value) and "unset it" in str(e.value)
    assert isinstance(job_store(None, None, tmp_path / "api.db"), SqliteJobs)
    assert not isinstance(job_store(None, "postgresql://h/db", tmp_path / "api.db"), SqliteJobs)  # server stack


def test_an_api_whose_job_database_is_unreachable_does_not_start_and_says_why(tmp_path: Path) -> None:
    rt = Runtime(Settings(home=tmp_path / "home", api_auth=False, jobs_url="postgresql://u:pw@127.0.0.1:1/jobs"),
                 overrides={"llm": FakeLLM(["{}"]), "embedder": HashEmbedder()})
    try:
        with pytest.raises(ConfigError, match=r"cannot reach the jobs database .*RAGENT_JOBS_URL"), \
                TestClient(create_app(rt)):
            pass
    finally:
        rt.close()


# ---- through the API (HashEmbedder + FakeLLM, in process) -------------------------------------------------
@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(Settings(home=tmp_path / "home", api_auth=False, llm_base_url="http://127.0.0.1:9/v1",
                          split_mode="lexical"),
                 overrides={"llm": FakeLLM(["{}"]), "embedder": HashEmbedder()})
    yield rt
    rt.close()


def _upload(home: Path, name: str, text: str) -> Path:
    p = home / "uploads" / "w" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


MANUAL = "# Pump manual\n\n" + "\n\n".join(f"## Part {i}\n\nCheck the valve {i} and the seal {i} twice. " * 3
                                          for i in range(8))


def test_status_counts_committed_chunks_only_and_a_killed_job_resumes_on_start_up(runtime: Runtime) -> None:
    home = runtime.settings.home
    src = _upload(home, "manual.md", MANUAL)
    [clean] = runtime.ingestor().ingest([src], "w")
    assert clean.status == "ingested" and clean.chunks > 1
    doc_id = content_id("w", str(src.resolve()))
    rec = runtime.registry.get("w", doc_id)
    assert rec is not None
    # what kill -9 during the write leaves: the row `processing`, part of the points written, the job `running`
    runtime.registry.put(dataclasses.replace(rec, status="processing", chunk_ids=()))
    store = SqliteJobs(api_db(runtime))
    left_by_a_dead_api(store, Job(id="dead", workspace="w", files=["manual.md"], state="running",
                                  paths=[str(src.resolve())], attempts=1, owner=str(home.resolve())))
    store.close()
    app = create_app(runtime)
    c = TestClient(app)  # no lifespan yet: the API has not recovered anything
    st = c.get("/v1/status").json()["index"]["w"]
    assert runtime.index.count("w") == clean.chunks  # the hidden points are there ...
    assert st == {"chunks": 0, "documents": 0}  # ... and not counted (before the fix: chunks == clean.chunks)
    with TestClient(app) as c:  # start-up: the job runs again
        job = wait_job(c, "dead")
        assert job["state"] == "done", job
        assert c.get(f"/v1/workspaces/w/documents/{doc_id}").json()["status"] == "done"
        assert c.get("/v1/status").json()["index"]["w"] == {"chunks": clean.chunks, "documents": 1}
        assert runtime.index.count("w") == clean.chunks  # nothing duplicated
        hits = c.post("/v1/workspaces/w/search", json={"query": "valve seal", "k": 3}).json()["hits"]
        assert hits and hits[0]["doc_id"] == doc_id


def test_a_job_whose_upload_is_gone_fails_its_document_instead_of_leaving_it_processing(runtime: Runtime) -> None:
    home = runtime.settings.home
    src = _upload(home, "gone.md", MANUAL)
    doc_id = content_id("w", str(src.resolve()))
    [clean] = runtime.ingestor().ingest([src], "w")
    rec = runtime.registry.get("w", doc_id)
    assert rec is not None and clean.status == "ingested"
    runtime.registry.put(dataclasses.replace(rec, status="processing", chunk_ids=()))
    src.unlink()
    store = SqliteJobs(api_db(runtime))
    left_by_a_dead_api(store, Job(id="gone", workspace="w", files=["gone.md"], state="running",
                                  paths=[str(src.resolve())], attempts=1, owner=str(home.resolve())))
    store.close()
    with TestClient(create_app(runtime)) as c:
        job = wait_job(c, "gone")
        assert job["state"] == "failed" and "no such file" in job["errors"][0]["error"]
        doc = c.get(f"/v1/workspaces/w/documents/{doc_id}").json()
        assert doc["status"] == "failed" and "upload it again" in doc["error"]  # before the fix: `processing`
    assert runtime.index.count("w") == 0  # the half-written version's points are gone too


# ---- a REAL crash: kill -9 of `ragent api` during an upload job ---------------------------------------------
def _api(home: Path, port: int, log: Path, jobs_url: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
    env.update(RAGENT_HOME=str(home), RAGENT_API_AUTH="false", RAGENT_SPLIT_MODE="lexical", HF_HUB_OFFLINE="1",
               RAGENT_LLM_BASE_URL="http://127.0.0.1:9/v1", RAGENT_ENRICH="false")
    if jobs_url:
        env["RAGENT_JOBS_URL"] = jobs_url
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "app.cli", "api", "--host", "127.0.0.1", "--port", str(port),
                                 "--log-level", "warning"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def _up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> httpx.Client:
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"the API did not start: {log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return httpx.Client(base_url=url, timeout=60)
        except httpx.HTTPError:
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["sqlite", "postgres"])
def test_api_job_crash_kill_9(tmp_path: Path, jobs: str, request: pytest.FixtureRequest) -> None:
    """Upload a PDF, kill -9 the API while its job writes the document, restart: the job reaches a final state,
    the document is searchable, and its chunks equal a clean ingest's (no duplicates). Jobs in SQLite (the
    default) or in a real Postgres (RAGENT_JOBS_URL, the server stack)."""
    from retrieval.factory import build_index
    from retrieval.registry import Registry

    jobs_url = request.getfixturevalue("pg_url") if jobs == "postgres" else None
    log = tmp_path / "api.log"
    homes = {"clean": tmp_path / "clean", "crash": tmp_path / "crash"}
    counts: dict[str, tuple[int, list[str]]] = {}  # chunk count and texts of the clean and the crashed ingest
    for name, home in homes.items():
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = _api(home, port, log, jobs_url)
        try:
            c = _up(url, proc, log)
            with PDF.open("rb") as fh:
                r = c.post("/v1/workspaces/w/documents", files={"files": (PDF.name, fh, "application/pdf")})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            if name == "crash":  # kill while the document is being written (parsed, its row `processing`)
                deadline = time.time() + 300
                while True:
                    docs = c.get("/v1/workspaces/w/documents").json()["documents"]
                    if docs and docs[0]["status"] == "processing":
                        break
                    state = c.get(f"/v1/jobs/{job_id}").json()["state"]
                    assert state in ("queued", "running") and time.time() < deadline, f"not killed in time: {state}"
                    time.sleep(0.02)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                assert proc.returncode == -signal.SIGKILL
                left = job_store(jobs_url, None, home / "api.db")
                stored = left.get(job_id)
                left.close()
                assert stored is not None and stored.state == "running"  # what the killed API left
                proc = _api(home, port, log, jobs_url)
                c = _up(url, proc, log)
            job = c.get(f"/v1/jobs/{job_id}").json()
            deadline = time.time() + 600
            while job["state"] not in ("done", "failed") and time.time() < deadline:
                time.sleep(0.2)
                job = c.get(f"/v1/jobs/{job_id}").json()
            assert job["state"] == "done", job
            [doc] = c.get("/v1/workspaces/w/documents").json()["documents"]
            assert doc["status"] == "done" and doc["chunks"] > 0
            hits = c.post("/v1/workspaces/w/search", json={"query": "pump maintenance", "k": 3,
                                                             "rerank": False}).json()["hits"]
            assert hits and hits[0]["doc_id"] == doc["doc_id"]
            status = c.get("/v1/status").json()["index"]["w"]
            assert status == {"chunks": doc["chunks"], "documents": 1}
        finally:
            _stop(proc)
        s = Settings(home=home)
        index, reg = build_index(s.index), Registry(s.index.db_path)
        try:
            [rec] = reg.list("w")
            points = list(index.scroll("w"))
            ids = [p.payload["id"] for p in points]
            assert len(ids) == len(set(ids)) == len(rec.chunk_ids) == index.count("w")  # nothing duplicated
            assert sorted(ids) == sorted(rec.chunk_ids)
            counts[name] = (len(ids), sorted(str(p.payload.get("text")) for p in points))  # ids hash the home's path
        finally:
            index.close()
            reg.close()
    assert counts["crash"] == counts["clean"]


def test_stored_job_round_trip(tmp_path: Path) -> None:
    job = Job(id="x", workspace="w", files=["a.pdf"], state="done", kind="finetune", stages=("a", "b"), stage="b",
              stage_done=2, stage_total=3, result={"promoted": True}, finished=5.0, attempts=1)
    back = Job.from_stored(StoredJob(**{**job.stored().__dict__}))
    assert back.to_json() == job.to_json() and back.stages == job.stages and back.attempts == 1
