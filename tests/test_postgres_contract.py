"""The server stack's stores against a REAL PostgreSQL (tests/pg_fixture.py: Debian's server on a temporary data
directory and port), with the same contract tests as SQLite: the experience memory (LangGraph PostgresStore vs
SqliteStore; the tests of tests/test_memory.py run here over both) and the API job store (SQLite vs Postgres).
Skipped only when the PostgreSQL binaries are absent (`make postgres-deps`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.memory import ExperienceMemory, store_from_url
from app.api.job_store import JobStore, PostgresJobs, SqliteJobs, StoredJob, job_store
from app.api.jobs import Job, JobManager
from core.errors import ConfigError
from tests.fakes import HashEmbedder
from tests.pg_fixture import pg_server, pg_url  # noqa: F401
from tests.test_jobs_persist import fake_ingest

# the experience-memory contract of tests/test_memory.py, collected again here over SQLite and Postgres
from tests.test_memory import (  # noqa: F401
    test_counters_and_decay,
    test_duplicates_merge_with_provenance,
    test_put_get_list_delete,
    test_search_ranks_by_similarity,
)

BACKENDS = ["sqlite", "postgres"]


def _memory_url(request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("pg_url") if request.param == "postgres" else None  # type: ignore[no-any-return]


@pytest.fixture(params=BACKENDS)
def mem(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ExperienceMemory]:
    store = store_from_url(_memory_url(request), tmp_path / "memory.db")
    yield ExperienceMemory(store, HashEmbedder())
    store.conn.close()


@pytest.fixture(params=BACKENDS)
def jobs_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    url = _memory_url(request)
    store = job_store(url, None, tmp_path / "api.db")
    assert isinstance(store, PostgresJobs if url else SqliteJobs)
    yield store
    store.close()


# ---- experience memory: more than tests/test_memory.py checks ---------------------------------------------
def test_memory_persists_across_connections(request: pytest.FixtureRequest, tmp_path: Path, mem: ExperienceMemory
                                            ) -> None:
    tid = mem.put("shortcuts", "w", {"name": "lookup", "description": "look it up", "steps": [
        {"tool": "search", "input": {"query": "{q}"}}], "params": ["q"]})
    url = request.getfixturevalue("pg_url") if "postgres" in request.node.callspec.id else None
    other = store_from_url(url, tmp_path / "memory.db")  # what the CLI (`ragent memory`) opens meanwhile
    try:
        item = ExperienceMemory(other).get("shortcuts", "w", tid)
        assert item is not None and item["name"] == "lookup" and item["steps"][0]["input"] == {"query": "{q}"}
    finally:
        other.conn.close()


def test_memory_from_many_threads(mem: ExperienceMemory) -> None:
    """The API serves memory routes from a thread pool: one store, concurrent writers and readers."""
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(5):
                mem.put("tips", f"ws{i % 2}", {"text": f"tip {i} {j} about valves"})
                mem.search("tips", f"ws{i % 2}", "valves", limit=3)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(mem.list("tips", "ws0")) + len(mem.list("tips", "ws1")) == 30


def test_unreachable_postgres_memory_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RAGENT_MEMORY_URL") as e:
        store_from_url("postgresql://ragent:secret@127.0.0.1:1/none", tmp_path / "m.db")
    assert "secret" not in str(e.value)


# ---- the job store ---------------------------------------------------------------------------------------
def _job(i: int, state: str = "done", **kw: Any) -> StoredJob:
    return StoredJob(id=f"j{i}", workspace="w", kind="ingest", state=state, created=float(i), **kw)


def test_job_store_put_get_update(jobs_db: JobStore) -> None:
    assert jobs_db.get("nope") is None
    jobs_db.put(_job(1, "queued", paths=("/u/a.pdf",), data={"files": ["a.pdf"], "results": [{"x": "ü"}]}))
    got = jobs_db.get("j1")
    assert got == _job(1, "queued", paths=("/u/a.pdf",), data={"files": ["a.pdf"], "results": [{"x": "ü"}]})
    jobs_db.put(_job(1, "running", attempts=1, paths=("/u/a.pdf",)))  # an upsert, not a second row
    got = jobs_db.get("j1")
    assert got is not None and got.state == "running" and got.attempts == 1 and got.data == {}
    assert [j.id for j in jobs_db.unfinished()] == ["j1"]
    jobs_db.put(_job(2, data={"result": {"model": Path("/m/v1"), "score": 0.5}}))  # a finetune result with a Path
    assert jobs_db.get("j2").data == {"result": {"model": "/m/v1", "score": 0.5}}  # type: ignore[union-attr]


def test_job_store_unfinished_oldest_first_and_prune(jobs_db: JobStore) -> None:
    for i, state in enumerate(["done", "running", "failed", "queued", "done", "done"]):
        jobs_db.put(_job(i, state))
    assert [j.id for j in jobs_db.unfinished()] == ["j1", "j3"]
    jobs_db.prune(2)  # the newest two finished jobs stay, unfinished ones always
    assert {i for i in range(6) if jobs_db.get(f"j{i}")} == {1, 3, 4, 5}


def test_job_manager_resumes_over_each_store(jobs_db: JobStore, tmp_path: Path) -> None:
    f = tmp_path / "a.md"
    f.write_text("# a")
    jobs_db.put(Job(id="left", workspace="w", files=["a.md"], state="running", paths=[str(f)], attempts=1).stored())
    calls: list[tuple[list[Path], str]] = []
    jobs = JobManager(fake_ingest(calls), store=jobs_db)
    [job] = jobs.recover()
    assert jobs.wait(job.id) is not None and job.state == "done" and calls == [([f], "w")]
    jobs._pool.shutdown(wait=True)  # the fixture closes the store
    stored = jobs_db.get("left")
    assert stored is not None and stored.state == "done" and stored.attempts == 2
    assert Job.from_stored(stored).to_json() == job.to_json()


def test_two_job_stores_share_one_postgres_database(pg_url: str) -> None:  # noqa: F811
    """The server stack: a restarted API (a new connection) sees what the old one wrote."""
    a, b = PostgresJobs(pg_url), PostgresJobs(pg_url)
    try:
        a.put(_job(7, "running"))
        assert [j.id for j in b.unfinished()] == ["j7"]
    finally:
        a.close()
        b.close()


def _drop_connections(url: str) -> int:
    """What a Postgres restart (or an idle-session timeout) does to the API's connections: they are gone. Waits
    until the terminated backends have exited (pg_terminate_backend only signals them)."""
    import time

    import psycopg

    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute(f"SELECT count(pg_terminate_backend(pid)) {others}").fetchone()
        deadline = time.time() + 60
        while (c.execute(f"SELECT count(*) {others}").fetchone() or (0,))[0]:
            assert time.time() < deadline, "terminated Postgres backends did not exit"
            time.sleep(0.05)
    return int(row[0]) if row else 0


def test_stores_survive_dropped_postgres_connections(pg_url: str, tmp_path: Path) -> None:  # noqa: F811
    mem_store = store_from_url(pg_url, tmp_path / "m.db")
    jobs = PostgresJobs(pg_url)
    try:
        mem = ExperienceMemory(mem_store)
        tid = mem.put("tips", "w", {"text": "before the restart"})
        jobs.put(_job(1, "running"))
        assert _drop_connections(pg_url) >= 2
        # before the fix: psycopg.OperationalError (the one connection was dead) on every later call
        assert mem.get("tips", "w", tid) is not None
        assert mem.put("tips", "w", {"text": "after the restart"})
        assert jobs.get("j1") is not None
        jobs.put(_job(1, "done"))
        assert jobs.unfinished() == []
    finally:
        mem_store.conn.close()
        jobs.close()


def test_only_the_owner_resumes_a_job(jobs_db: JobStore, tmp_path: Path) -> None:
    """Two APIs (two RAGENT_HOMEs) sharing one job database: each resumes its own unfinished jobs only."""
    jobs_db.put(StoredJob(id="mine", workspace="w", kind="ingest", state="running", owner="/home/a", created=1.0))
    jobs_db.put(StoredJob(id="theirs", workspace="w", kind="ingest", state="running", owner="/home/b", created=2.0))
    assert [j.id for j in jobs_db.unfinished("/home/a")] == ["mine"]
    calls: list[tuple[list[Path], str]] = []
    jobs = JobManager(fake_ingest(calls), store=jobs_db, owner="/home/b")
    [job] = jobs.recover()
    assert job.id == "theirs" and jobs.wait("theirs") is not None
    jobs._pool.shutdown(wait=True)
    assert [j.id for j in jobs_db.unfinished("/home/a")] == ["mine"] and jobs_db.unfinished("/home/b") == []
    assert jobs_db.get("theirs").owner == "/home/b"  # type: ignore[union-attr]
