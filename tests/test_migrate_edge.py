"""``ragent index migrate --to edge``: a home ingested with Qdrant local mode moves to Qdrant Edge and searches the
same; a migration killed -9 part-way loses nothing and a rerun finishes it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.runtime import Runtime
from core.errors import ConfigError, RetrievalError
from core.settings import Settings
from core.types import Chunk, content_id
from finetune.corpus import Corpus
from finetune.swap import swap_in
from retrieval.factory import build_index, resolve_backend
from retrieval.index import QdrantIndex, VectorIndex
from retrieval.index_edge import EdgeIndex
from retrieval.index_migrate import migrate_to_edge
from retrieval.registry import DocRecord
from retrieval.sparse import bm25_document
from tests.fakes import FakeLLM, HashEmbedder

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ("How much weight must the wall carry?", "Which tools are needed?", "safety checks before drilling")
SYNTHETIC_QUERIES = ("word5 item17", "item650 word12", "word3")


def local(home: Path) -> Settings:
    return Settings(home=home, vector_backend="qdrant")


def synthetic(ws: str, n: int) -> tuple[list[Chunk], np.ndarray, list[tuple[list[int], list[float]]]]:
    chunks = [Chunk(id=content_id(ws, str(i)), doc_id=f"doc{i // 50}", workspace=ws, text=f"item{i} word{i % 37}",
                    doc_title=f"Doc {i // 50}", page=i % 9 + 1, bbox=(1.0, 2.0, 3.0, 4.0), order=i) for i in range(n)]
    dense = HashEmbedder().embed_batch([c.index_text for c in chunks])
    return chunks, dense, [bm25_document(c.index_text) for c in chunks]


def searches(rt: Runtime, ws: str, hybrid: bool = True) -> list[list[tuple[str, float]]]:
    """Hybrid (dense + BM25, RRF) hits of each question, and the raw dense and sparse scores of the first."""
    out = []
    for q in QUESTIONS if hybrid else ():
        res = asyncio.run(rt.retriever.run(ws, q, 5, paths=("dense", "sparse"), rerank=False))
        out.append([(h.chunk.id, round(h.score, 5)) for h in res.hits])
    vec = rt.embedder.embed_batch([QUESTIONS[0]])[0]
    out.append([(c.id, round(s, 4)) for c, s in rt.index.query_dense(ws, vec, 10)])
    out.append([(c.id, round(s, 4)) for c, s in rt.index.query_sparse(ws, bm25_document(QUESTIONS[0]), 10)])
    return out


def payloads(rt: Runtime) -> dict[str, dict[str, object]]:
    """Every payload by chunk id; bbox floats to 9 places (Qdrant Edge may read a double back 1 ulp off:
    248.00001525878906 -> 248.00001525878903)."""
    def norm(p: dict[str, object]) -> dict[str, object]:
        return {**p, "bbox": [round(x, 9) for x in p["bbox"]] if p.get("bbox") else p.get("bbox")}  # type: ignore

    return {r.payload["id"]: norm(r.payload) for ws in ("manual", "tuned") for r in rt.index.scroll(ws)}


def assert_same(before: list[tuple[str, float]], after: list[tuple[str, float]]) -> None:
    """The same scores in the same order, and the same ids at each score (ids tied at the cut-off may differ)."""
    assert [s for _, s in after] == pytest.approx([s for _, s in before], abs=1e-3)

    def groups(hits: list[tuple[str, float]]) -> list[set[str]]:
        out: dict[float, set[str]] = {}
        for i, s in hits:
            out.setdefault(round(s, 3), set()).add(i)
        return list(out.values())[:-1]

    assert groups(after) == groups(before)


def raw_searches(index: VectorIndex, ws: str, queries: tuple[str, ...]) -> list[list[tuple[str, float]]]:
    """Dense (hashing embedder) and BM25 hits of each query with their scores."""
    out = []
    for q in queries:
        out.append([(c.id, round(s, 4)) for c, s in index.query_dense(ws, HashEmbedder().embed_batch([q])[0], 10)])
        out.append([(c.id, round(s, 4)) for c, s in index.query_sparse(ws, bm25_document(q), 10)])
    return out


@pytest.mark.slow
def test_migrate_a_real_local_mode_home_then_search_the_same(tmp_path: Path, example_pdf: Path) -> None:
    home = tmp_path / "var"  # the autouse fixture's RAGENT_HOME: the CLI migrates this one
    rt = Runtime(local(home), overrides={"llm": FakeLLM()})  # the real packaged MiniLM: no ties among scores
    try:
        (res,) = rt.ingestor().ingest([example_pdf], "manual")
        assert res.status == "ingested" and res.chunks > 0
        # a second workspace after a finetune swap: two collections, the alias on v2
        chunks, dense, sparse = synthetic("tuned", 40)
        rt.index.upsert("tuned", chunks, dense, sparse)
        rt.registry.put(DocRecord("tuned", "doc0", "Doc 0", "", "h", "done", chunk_ids=tuple(c.id for c in chunks)))
        swap_in(rt.retriever, "tuned", Corpus(tuple(chunks), dense, tuple(sparse)), dense[::-1].copy(), version=1,
                model_dir=tmp_path / "m1", metrics={}, embedder=HashEmbedder())
        assert rt.index.physical("tuned") == "chunks_tuned_v2"
        before = {ws: searches(rt, ws, ws == "manual") for ws in ("manual", "tuned")}  # no tuned model
        counts = {ws: rt.index.count(ws) for ws in ("manual", "tuned")}
        stored = payloads(rt)
    finally:
        rt.close()
    assert isinstance(build_index(Settings(home=home).index), QdrantIndex)  # auto: still local mode

    cli = CliRunner().invoke(app, ["index", "migrate", "--to", "edge", "--json"])
    assert cli.exit_code == 0, cli.output
    report = json.loads(cli.stdout)
    assert report["switched"] is True and report["source"] == str(home / "qdrant")
    assert report["collections"] == {"chunks_manual_v1": counts["manual"], "chunks_tuned_v1": 40,
                                     "chunks_tuned_v2": 40}
    assert report["aliases"] == {"chunks_manual": "chunks_manual_v1", "chunks_tuned": "chunks_tuned_v2"}
    assert (home / "qdrant" / "meta.json").exists()  # the local-mode store is left where it was

    rt = Runtime(Settings(home=home), overrides={"llm": FakeLLM()})
    try:
        assert isinstance(rt.index, EdgeIndex)
        assert {ws: rt.index.count(ws) for ws in ("manual", "tuned")} == counts
        after = {ws: searches(rt, ws, ws == "manual") for ws in ("manual", "tuned")}
        for ws in before:
            for b, a in zip(before[ws], after[ws], strict=True):
                assert_same(b, a)
        assert payloads(rt) == stored  # every payload came across whole
    finally:
        rt.close()
    again = CliRunner().invoke(app, ["index", "migrate", "--to", "edge"])
    assert again.exit_code == 0 and "nothing to migrate" in again.stdout


CHILD = """
import os, signal, sys
from pathlib import Path
from core.settings import Settings
from retrieval.index_migrate import migrate_to_edge

def die(collection, done, total):
    if collection == sys.argv[2] and done >= 256:  # the first batch of that collection is in Qdrant Edge
        os.kill(os.getpid(), signal.SIGKILL)

migrate_to_edge(Settings(home=Path(sys.argv[1])).index, progress=die)
print("finished without being killed")
"""


def test_kill_9_mid_migration_then_rerun_finishes(tmp_path: Path) -> None:
    home = tmp_path / "var"
    idx = build_index(local(home).index)
    data = {ws: synthetic(ws, n) for ws, n in (("a", 300), ("b", 700))}
    for ws, (chunks, dense, sparse) in data.items():
        idx.upsert(ws, chunks, dense, sparse)
    before = raw_searches(idx, "b", SYNTHETIC_QUERIES)
    idx.close()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(home), "chunks_b_v1"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert (home / "qdrant_edge" / "chunks_b_v1").is_dir()  # half copied ...
    auto = Settings(home=home).index
    assert resolve_backend(auto) == "qdrant"  # ... and not switched: the home still reads local mode

    report = migrate_to_edge(auto)  # the rerun
    assert report.switched and {c.name: c.points for c in report.collections} == {"chunks_a_v1": 300,
                                                                                  "chunks_b_v1": 700}
    idx = build_index(auto)
    try:
        assert isinstance(idx, EdgeIndex) and idx.count("a") == 300 and idx.count("b") == 700
        for b, a in zip(before, raw_searches(idx, "b", SYNTHETIC_QUERIES), strict=True):
            assert_same(b, a)
        assert idx.get("a", [data["a"][0][7].id]) == [data["a"][0][7]]
    finally:
        idx.close()
    assert not migrate_to_edge(auto).switched  # after the switch a rerun does nothing


def test_migrate_refuses_what_it_cannot_move(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="RAGENT_QDRANT_URL is set"):
        migrate_to_edge(Settings(home=tmp_path, qdrant_url="http://localhost:6333").index)
    with pytest.raises(RetrievalError, match="nothing to migrate"):
        migrate_to_edge(Settings(home=tmp_path).index)
    cli = CliRunner().invoke(app, ["index", "migrate"])
    assert cli.exit_code == 1 and "nothing to migrate" in cli.output


def test_migrate_while_another_process_holds_the_store_fails_clearly(tmp_path: Path) -> None:
    home = tmp_path / "var"
    idx = build_index(local(home).index)
    chunks, dense, sparse = synthetic("a", 5)
    idx.upsert("a", chunks, dense, sparse)  # open: this process holds the local-mode folder
    try:
        with pytest.raises(RetrievalError, match="in use by another process"):
            migrate_to_edge(Settings(home=home).index)
    finally:
        idx.close()
    assert resolve_backend(Settings(home=home).index) == "qdrant"
