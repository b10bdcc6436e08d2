"""The deferred graph stage (#18 item 2): vectors first (the document is ``searchable``), the graph after; search
works while the stage runs; ``docs list`` and the API job show it; a kill -9 in the stage is resumed by the next
``ragent ingest`` with nothing lost or duplicated; entity names already in the store are not embedded again."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from app.api.jobs import JobManager
from app.runtime import Runtime
from core.types import Chunk
from retrieval.graph import ChunkGraph, Entity
from retrieval.registry import Registry
from retrieval.writer import IndexWriter
from tests.fakes import HashEmbedder
from tests.test_ingest import _fake_rt

ROOT = Path(__file__).resolve().parent.parent
PEOPLE = ["Alice Morgan", "Bruno Keller", "Chen Wei", "Dana Okafor", "Elena Petrova", "Farid Haddad"]
PLACES = ["Hamburg", "Toronto", "Nairobi", "Osaka", "Lisbon", "Denver"]


def corpus(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(n):
        parts = [f"# Pump manual {f}"]
        for s in range(3):
            who, where = PEOPLE[(f + s) % len(PEOPLE)], PLACES[(f * 2 + s) % len(PLACES)]
            parts += [f"## Section {s}", " ".join(
                f"{who} inspected the Northwind pump {f}.{s}.{i} in {where} and replaced the valve seal."
                for i in range(8))]
        (folder / f"manual_{f}.md").write_text("\n\n".join(parts))
    return folder


def graph_rows(home: Path) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]], set[str]]:
    """(mentions, relations, entity keys with a vector) of the embedded graph store, read without the app."""
    with sqlite3.connect(home / "graph.db") as c:
        mentions = set(c.execute("SELECT ws, key, chunk_id, doc_id FROM mentions").fetchall())
        relations = set(c.execute("SELECT ws, src, rel, dst, chunk_id, doc_id FROM relations").fetchall())
        vecs = {r[0] for r in c.execute("SELECT key FROM entity_vecs")}
    return mentions, relations, vecs


def ingest_cli(home: Path, folder: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    from app import cli
    from app.cli import common

    monkeypatch.setattr(common, "runtime", lambda: _fake_rt(home))
    return CliRunner().invoke(cli.app, [*args, "-w", "g"] if args else ["ingest", str(folder), "-w", "g", "--json"])


# ---- pipeline: searchable first, graph after ---------------------------------------------------------------
def test_search_works_while_the_graph_stage_runs(fake_runtime: Runtime, tmp_path: Path) -> None:
    folder = corpus(tmp_path / "docs")
    ing = fake_runtime.ingestor(enrich=False)
    assert ing.graph_stage == "deferred"
    extract = ing.writer.extractor.extract
    seen: list[tuple[list[str], int, set[str]]] = []

    def extract_and_search(chunks: Sequence[Chunk]) -> list[ChunkGraph]:
        # called by the graph stage, i.e. after every file's vectors were written: search must find them now
        hits = asyncio.run(fake_runtime.retriever.search("g", "valve seal Northwind pump", k=5,
                                                         paths=("dense", "sparse")))
        stages = {r.stage for r in fake_runtime.registry.list("g")}
        seen.append(([h.chunk.doc_id for h in hits], len(fake_runtime.registry.graph_pending("g")), stages))
        return extract(chunks)

    ing.writer.extractor.extract = extract_and_search  # type: ignore[method-assign]
    results = ing.ingest(sorted(folder.iterdir()), "g")
    assert [r.status for r in results] == ["ingested"] * 3
    assert seen and all(hits for hits, _, _ in seen)  # dense + sparse answered during the stage
    assert seen[0][1] == 3 and seen[0][2] == {"searchable"}  # the first graph call: all 3 searchable, none done
    assert seen[-1][2] == {"searchable", "done"}  # the last: earlier documents already done
    recs = fake_runtime.registry.list("g")
    assert {(r.status, r.graph, r.stage) for r in recs} == {("done", "done", "done")}
    assert all(r.to_json()["status"] == "done" for r in recs)
    view = fake_runtime.retriever.graph.view("g")  # type: ignore[union-attr]
    assert {c for _, c in view.mentions} <= {c for r in recs for c in r.chunk_ids}
    assert {fake_runtime.index.get("g", [c])[0].doc_id for _, c in view.mentions} == {r.doc_id for r in recs}
    assert ing.timings["graph"] > 0


def test_file_write_is_vectors_only_and_inline_mode_writes_both(fake_runtime: Runtime, tmp_path: Path) -> None:
    folder = corpus(tmp_path / "docs", n=2)
    a, b = sorted(folder.iterdir())
    ing = fake_runtime.ingestor(enrich=False)
    graph = fake_runtime.retriever.graph
    assert graph is not None
    r = ing.ingest_file(a, "g")  # one file, no batch end: the graph stage has not run
    rec = fake_runtime.registry.get("g", r.doc_id)
    assert rec is not None and (rec.status, rec.graph, rec.stage) == ("done", "pending", "searchable")
    assert rec.to_json()["status"] == "searchable" and rec.to_json()["graph"] == "pending"
    assert graph.view("g").mentions == () and fake_runtime.index.count("g") == r.chunks
    assert fake_runtime.registry.done_doc_ids("g") == {r.doc_id}  # searchable
    assert ing.graph_stage_run("g") == 1 and ing.graph_stage_run("g") == 0
    assert fake_runtime.registry.get("g", r.doc_id).graph == "done"  # type: ignore[union-attr]
    ing.graph_stage = "inline"
    r2 = ing.ingest_file(b, "g")
    rec2 = fake_runtime.registry.get("g", r2.doc_id)
    assert rec2 is not None and (rec2.graph, rec2.stage) == ("done", "done")
    assert any(c in rec2.chunk_ids for _, c in graph.view("g").mentions)


def test_a_document_deleted_during_its_graph_stage_leaves_no_graph(fake_runtime: Runtime, tmp_path: Path) -> None:
    folder = corpus(tmp_path / "docs", n=1)
    ing = fake_runtime.ingestor(enrich=False)
    (path,) = folder.iterdir()
    r = ing.ingest_file(path, "g")
    write_graph = ing.writer.write_graph

    def write_then_delete(ws: str, chunks: Sequence[Chunk], progress: Any = None) -> None:
        write_graph(ws, chunks, progress)
        fake_runtime.registry.delete(ws, r.doc_id)  # e.g. DELETE /documents/{id} from another request

    ing.writer.write_graph = write_then_delete  # type: ignore[method-assign]
    assert ing.graph_stage_run("g") == 0
    assert fake_runtime.retriever.graph.view("g").mentions == ()  # type: ignore[union-attr]


# ---- registry: the graph column, and files written before it ---------------------------------------------
def test_registry_written_before_the_graph_column_opens_with_every_graph_done(tmp_path: Path) -> None:
    db = tmp_path / "ragent.db"
    with sqlite3.connect(db) as c:
        c.execute("CREATE TABLE documents (workspace TEXT NOT NULL, doc_id TEXT NOT NULL, source TEXT NOT NULL, "
                  "title TEXT NOT NULL DEFAULT '', content_hash TEXT NOT NULL, status TEXT NOT NULL, version INTEGER "
                  "NOT NULL DEFAULT 1, pages INTEGER NOT NULL DEFAULT 0, chunk_ids TEXT NOT NULL DEFAULT '[]', "
                  "error TEXT NOT NULL DEFAULT '', meta TEXT NOT NULL DEFAULT '{}', updated REAL NOT NULL, "
                  "PRIMARY KEY (workspace, doc_id))")
        c.execute("INSERT INTO documents VALUES ('w', 'd1', '/a.md', 'A', 'h1', 'done', 1, 2, '[\"c1\"]', '', '{}', "
                  "1.0)")
    reg = Registry(db)
    (rec,) = reg.list("w")
    assert (rec.status, rec.graph, rec.stage, rec.chunk_ids) == ("done", "done", "done", ("c1",))
    assert reg.graph_pending("w") == [] and reg.done_doc_ids("w") == {"d1"}
    from dataclasses import replace

    reg.put(replace(rec, graph="pending"))
    assert [r.doc_id for r in reg.graph_pending("w")] == ["d1"] and reg.graph_pending_workspaces() == ["w"]
    assert not reg.set_graph("w", "d1", "other-hash", "done")  # replaced meanwhile: not marked
    assert reg.set_graph("w", "d1", "h1", "done") and reg.graph_pending("w") == []
    reg.close()


# ---- entity names already in the store are not embedded again ----------------------------------------------
class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().embed_batch(texts)


class FixedExtractor:
    def extract(self, chunks: Sequence[Chunk]) -> list[ChunkGraph]:
        return [ChunkGraph(c.id, c.doc_id, (Entity("alice morgan", "Alice Morgan", "PERSON"),
                                            Entity("hamburg", "Hamburg", "GPE"), Entity("valve", "valve", "NOUN")))
                for c in chunks]


def test_entity_names_already_in_the_store_are_not_embedded(fake_runtime: Runtime) -> None:
    emb = CountingEmbedder()
    graph = fake_runtime.retriever.graph
    writer = IndexWriter(fake_runtime.index, lambda ws: emb, graph=graph, extractor=FixedExtractor())  # type: ignore[arg-type]

    def chunks(doc: str) -> list[Chunk]:
        return [Chunk(id=f"{doc}{i:030d}"[:32], doc_id=doc, workspace="e", text=f"Alice Morgan in Hamburg {i}",
                      order=i) for i in range(3)]

    first, second = chunks("a" * 16), chunks("b" * 16)
    writer.write_vectors("e", first + second)
    emb.texts.clear()
    writer.write_graph("e", first)
    assert sorted(emb.texts) == ["Alice Morgan", "Hamburg"]  # once each, not per chunk; NOUNs never
    emb.texts.clear()
    writer.write_graph("e", second)  # same names, another document
    writer.write_graph("e", first)  # the stage run again after a crash
    assert emb.texts == []


# ---- CLI: `docs list` shows the stage; `ragent ingest` finishes what a crash left ---------------------------
def test_docs_list_shows_searchable_and_ingest_finishes_the_stage(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    home, folder = tmp_path / "var", corpus(tmp_path / "docs", n=2)
    with _fake_rt(home) as rt:
        ing = rt.ingestor(enrich=False)
        for p in sorted(folder.iterdir()):
            ing.ingest_file(p, "g")  # vectors only: as if the process stopped before the graph stage
    listed = ingest_cli(home, folder, monkeypatch, "docs", "list", "--json")
    assert [d["status"] for d in json.loads(listed.stdout)["documents"]] == ["searchable"] * 2
    table = ingest_cli(home, folder, monkeypatch, "docs", "list")
    assert table.exit_code == 0 and "searchable" in table.stdout
    only = ingest_cli(home, folder, monkeypatch, "docs", "list", "--status", "searchable", "--json")
    assert len(json.loads(only.stdout)["documents"]) == 2
    r = ingest_cli(home, folder, monkeypatch)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["summary"] == {"unchanged": 2}
    listed = ingest_cli(home, folder, monkeypatch, "docs", "list", "--json")
    assert [(d["status"], d["graph"]) for d in json.loads(listed.stdout)["documents"]] == [("done", "done")] * 2


# ---- kill -9 in the graph stage, then resume ----------------------------------------------------------------
CHILD = """
import os, signal, sys
from pathlib import Path
from app import cli
from app.cli import common
from retrieval.writer import IndexWriter
from tests.test_ingest import _fake_rt

home, folder = Path(sys.argv[1]), sys.argv[2]
common.runtime = lambda: _fake_rt(home)
write_graph, calls = IndexWriter.write_graph, []

def write_graph_then_die(self, ws, chunks, progress=None):
    calls.append(1)
    if len(calls) == 2:  # the second document: half of its graph written, then kill -9
        write_graph(self, ws, chunks[: len(chunks) // 2], progress)
        os.kill(os.getpid(), signal.SIGKILL)
    write_graph(self, ws, chunks, progress)

IndexWriter.write_graph = write_graph_then_die
cli.app(["ingest", folder, "-w", "g", "--json"])
print("finished without being killed")
"""


def test_kill_9_during_the_graph_stage_then_ingest_resumes_it(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    folder = corpus(tmp_path / "docs")
    home = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
    env["PYTHONPATH"] = str(ROOT)
    child = subprocess.run([sys.executable, "-c", CHILD, str(home), str(folder)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    reg = Registry(home / "ragent.db")
    killed = {r.doc_id: (r.status, r.graph) for r in reg.list("g")}
    reg.close()
    assert sorted(killed.values()) == [("done", "done"), ("done", "pending"), ("done", "pending")]

    r = ingest_cli(home, folder, monkeypatch)  # the next `ragent ingest`: files unchanged, the stage resumes
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["summary"] == {"unchanged": 3}
    with _fake_rt(home) as rt:
        recs = rt.registry.list("g")
        assert {(x.status, x.graph) for x in recs} == {("done", "done")} and len(recs) == 3
        assert rt.index.count("g") == sum(len(x.chunk_ids) for x in recs)  # vectors: nothing lost or doubled
    resumed = graph_rows(home)

    ref_home = tmp_path / "ref"  # the same files ingested once, never killed, graph inline
    monkeypatch.setenv("RAGENT_GRAPH_STAGE", "inline")
    with _fake_rt(ref_home) as rt:
        assert rt.settings.graph_stage == "inline"
        ing = rt.ingestor(enrich=False)
        ing.graph_stage = rt.settings.graph_stage
        ing.ingest(sorted(folder.iterdir()), "g")
    assert resumed == graph_rows(ref_home)  # mentions, relations, entity vectors: the same, nothing extra
    assert resumed[0] and resumed[2]


# ---- API job: two stages -------------------------------------------------------------------------------------
def test_ingest_job_reports_the_graph_stage(tmp_path: Path) -> None:
    seen: list[tuple[str, int, int, float]] = []

    def ingest(paths: list[Path], ws: str, progress: Any) -> list[Any]:
        job = jobs.get(job_id)
        assert job is not None
        progress("file", 1)
        seen.append((job.stage, job.stage_done, job.stage_total, job.progress))
        progress("graph_chunks", 10)
        progress("graphed", 4)
        seen.append((job.stage, job.stage_done, job.stage_total, job.progress))
        return []

    jobs = JobManager(ingest)
    job_id = ""
    gate = __import__("threading").Event()
    original = jobs._run

    def run_after_gate(job: Any, paths: list[Path]) -> None:
        gate.wait(10)
        original(job, paths)

    jobs._run = run_after_gate  # type: ignore[method-assign]
    job = jobs.submit("w", [tmp_path / "a.md"])
    job_id = job.id
    gate.set()
    done = jobs.wait(job_id)
    jobs.shutdown()
    assert seen == [("vectors", 1, 1, 0.5), ("graph", 4, 10, 0.7)]
    assert done is not None and done.to_json()["stage"] == "graph" and done.progress == 1.0


def test_api_start_up_finishes_a_graph_stage_a_killed_cli_left(tmp_path: Path, example_pdf: Path) -> None:
    """A CLI ingest killed in its graph stage leaves documents searchable with the graph pending; the next API
    start runs the stage as a job, so nothing waits for another `ragent ingest`."""
    from fastapi.testclient import TestClient

    from app.api import create_app
    from core.settings import Settings
    from tests.fakes import FakeLLM, HashEmbedder

    rt = Runtime(Settings(home=tmp_path / "var", api_auth=False),
                 overrides={"llm": FakeLLM(), "embedder": HashEmbedder()})
    try:
        (res,) = rt.ingestor().ingest([example_pdf], "gs")
        rec = rt.registry.get("gs", res.doc_id)
        assert rec is not None and rt.registry.set_graph("gs", rec.doc_id, rec.content_hash, "pending")
        rt.graph.delete_doc("gs", rec.doc_id)  # as the kill left it: no graph yet
        assert rt.registry.graph_pending_workspaces() == ["gs"]
        with TestClient(create_app(rt)):
            deadline = time.time() + 60
            while rt.registry.graph_pending_workspaces() and time.time() < deadline:
                time.sleep(0.1)
        assert rt.registry.graph_pending_workspaces() == []
        assert rt.registry.get("gs", rec.doc_id).stage == "done"  # type: ignore[union-attr]
    finally:
        rt.close()
