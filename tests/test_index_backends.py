"""The VectorIndex contract, run the same way against QdrantIndex (local mode) and EdgeIndex (Qdrant Edge)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from app.runtime import Runtime
from core.errors import ConfigError, RetrievalError
from core.settings import Settings, VectorBackend
from core.types import Chunk, content_id
from finetune.corpus import Corpus
from finetune.swap import rollback, swap_in
from retrieval.active_model import ActiveModels, collections, drop_collection, next_collection
from retrieval.factory import build_index, build_retriever, build_writer, resolve_backend
from retrieval.index import QdrantIndex, VectorIndex
from retrieval.index_edge import EdgeIndex
from retrieval.registry import DocRecord, Registry
from retrieval.retriever import Retriever
from retrieval.sparse import SparseVec
from tests.fakes import FakeLLM, HashEmbedder

ROOT = Path(__file__).resolve().parent.parent
DIM = 8
COMMON, RARE = 10, 20  # sparse term ids: COMMON is in every chunk but one, RARE in one chunk


def settings_for(tmp_path: Path, backend: VectorBackend) -> Settings:
    return Settings(home=tmp_path / "var", vector_backend=backend)


@pytest.fixture(params=["qdrant", "edge"])
def backend(request: pytest.FixtureRequest) -> VectorBackend:
    return request.param


@pytest.fixture
def index(tmp_path: Path, backend: VectorBackend) -> Iterator[VectorIndex]:
    idx = build_index(settings_for(tmp_path, backend).index)
    yield idx
    idx.close()


def unit(i: int) -> np.ndarray:
    v = np.full(DIM, 0.05, dtype=np.float32)
    v[i % DIM] = 1.0
    return v / np.linalg.norm(v)


def corpus(ws: str, n: int = 5) -> tuple[list[Chunk], np.ndarray, list[SparseVec]]:
    """``n`` chunks in two documents; chunk i points along axis i; the last one alone has the RARE term."""
    chunks = [Chunk(id=content_id(ws, str(i)), doc_id=f"doc{i % 2}", workspace=ws, text=f"chunk {i} of {ws}",
                    page=i + 1, doc_title=f"Doc {i % 2}", bbox=(1.0, 2.0, 3.0, 4.5), heading_path=("A", f"B{i}"),
                    order=i) for i in range(n)]
    sparse: list[SparseVec] = [([COMMON], [2.0]) for _ in range(n - 1)] + [([RARE], [1.0])]
    return chunks, np.stack([unit(i) for i in range(n)]), sparse


def test_backend_classes(index: VectorIndex, backend: VectorBackend) -> None:
    assert isinstance(index, EdgeIndex if backend == "edge" else QdrantIndex)


def test_write_query_get_scroll_count_delete(index: VectorIndex) -> None:
    assert not index.exists("w") and index.count("w") == 0 and index.query_dense("w", unit(0), 3) == []
    assert index.ensure("w", DIM) == "chunks_w" and index.physical("w") == "chunks_w_v1"
    chunks, dense, sparse = corpus("w")
    index.upsert("w", chunks, dense, sparse)
    index.upsert("w", chunks[:2], dense[:2], sparse[:2])  # same ids: upsert, no duplicates
    assert index.count("w") == 5 and index.workspaces() == ["w"]

    hits = index.query_dense("w", unit(2), 3)
    assert len(hits) == 3 and hits[0][0].id == chunks[2].id
    assert hits[0][1] == pytest.approx(1.0, abs=1e-4) and hits[0][1] > hits[1][1]
    assert hits[0][0] == chunks[2]  # the payload round-trips into an equal Chunk (bbox, heading path, page)

    # IDF: the rare term (raw weight 1.0) outranks the common one (raw weight 2.0, in 4 of 5 chunks)
    sp = index.query_sparse("w", ([COMMON, RARE], [1.0, 1.0]), 5)
    assert sp[0][0].id == chunks[4].id and len(sp) == 5 and sp[0][1] > 2 * sp[1][1]
    assert index.query_sparse("w", ([], []), 5) == []

    got = index.get("w", [chunks[3].id, "f" * 32, chunks[0].id, "not-an-id", chunks[1].id])
    assert [c.id for c in got] == [chunks[3].id, chunks[0].id, chunks[1].id]

    recs = index.scroll("w", with_vectors=True)
    assert sorted(r.payload["id"] for r in recs) == sorted(c.id for c in chunks)
    by_id = {r.payload["id"]: r for r in recs}
    np.testing.assert_allclose(by_id[chunks[1].id].vector["dense"], dense[1], atol=1e-5)
    assert list(by_id[chunks[4].id].vector["bm25"].indices) == [RARE]
    assert {r.payload["id"] for r in index.scroll("w", "doc1")} == {chunks[1].id, chunks[3].id}
    assert all(not r.vector for r in index.scroll("w"))

    index.delete_doc("w", "doc0")
    assert index.count("w") == 2
    assert {c.doc_id for c, _ in index.query_dense("w", unit(0), 5)} == {"doc1"}
    index.delete_doc("nothing-here", "doc0")  # no workspace: a no-op


def test_optimize_keeps_results(index: VectorIndex) -> None:
    index.optimize("nothing-here")  # no workspace: a no-op
    index.ensure("w", DIM)
    chunks, dense, sparse = corpus("w")
    index.upsert("w", chunks, dense, sparse)
    before = [(c.id, round(s, 5)) for c, s in index.query_dense("w", unit(1), 5)]
    index.optimize("w")
    index.optimize("w", collection=index.physical("w"))
    assert [(c.id, round(s, 5)) for c, s in index.query_dense("w", unit(1), 5)] == before
    assert index.count("w") == 5


def test_workspaces_are_isolated(index: VectorIndex) -> None:
    for ws in ("a", "b"):
        chunks, dense, sparse = corpus(ws, 3 if ws == "a" else 5)
        index.upsert(ws, chunks, dense, sparse)
    assert index.workspaces() == ["a", "b"] and index.count("a") == 3 and index.count("b") == 5
    assert {c.workspace for c, _ in index.query_dense("a", unit(0), 10)} == {"a"}
    assert {c.workspace for c, _ in index.query_sparse("b", ([COMMON, RARE], [1.0, 1.0]), 10)} == {"b"}
    b_ids = [c.id for c in corpus("b")[0]]
    assert index.get("a", b_ids) == []  # another workspace's ids are unknown here
    index.delete_doc("a", "doc0")
    assert index.count("a") == 1 and index.count("b") == 5


def test_close_and_reopen_keeps_data(tmp_path: Path, backend: VectorBackend) -> None:
    config = settings_for(tmp_path, backend).index
    idx = build_index(config)
    chunks, dense, sparse = corpus("w")
    idx.upsert("w", chunks, dense, sparse)
    idx.close()
    idx = build_index(config)
    try:
        assert idx.count("w") == 5 and idx.physical("w") == "chunks_w_v1"
        assert idx.query_dense("w", unit(3), 1)[0][0] == chunks[3]
        assert idx.query_sparse("w", ([RARE], [1.0]), 1)[0][0].id == chunks[4].id
    finally:
        idx.close()
    idx.query_dense("w", unit(0), 1)  # an index used after close reopens (and is closed again below)
    idx.close()


def test_alias_repoint_and_drop(index: VectorIndex) -> None:
    chunks, dense, sparse = corpus("w")
    index.upsert("w", chunks, dense, sparse)
    assert collections(index, "w") == ["chunks_w_v1"] and next_collection(index, "w") == "chunks_w_v2"
    index.create_collection("chunks_w_v2", DIM)
    index.create_collection("chunks_w_v2", DIM)  # exists: a no-op
    flipped = np.stack([unit(4 - i) for i in range(5)])  # chunk i now points along axis 4 - i
    index.upsert("w", chunks, flipped, sparse, collection="chunks_w_v2")
    assert index.query_dense("w", unit(0), 1)[0][0].id == chunks[0].id  # the alias still reads v1
    index.point_alias("w", "chunks_w_v2")
    assert index.physical("w") == "chunks_w_v2"
    assert index.query_dense("w", unit(0), 1)[0][0].id == chunks[4].id
    assert {"chunks_w_v1", "chunks_w_v2"} <= set(index.collection_names())
    assert collections(index, "w") == ["chunks_w_v1", "chunks_w_v2"]
    drop_collection(index, "chunks_w_v1")
    drop_collection(index, "chunks_w_v1")  # gone: a no-op
    assert collections(index, "w") == ["chunks_w_v2"] and index.count("w") == 5
    assert index.workspaces() == ["w"]


def test_finetune_swap_and_rollback(index: VectorIndex, tmp_path: Path) -> None:
    chunks, dense, sparse = corpus("w")
    index.upsert("w", chunks, dense, sparse)
    registry = Registry(tmp_path / "registry.db")
    for doc in ("doc0", "doc1"):
        ids = tuple(c.id for c in chunks if c.doc_id == doc)
        registry.put(DocRecord("w", doc, doc, doc, doc, "done", chunk_ids=ids))
    r = Retriever(index, HashEmbedder(DIM), registry, ActiveModels(tmp_path / "finetune"))
    flipped = np.stack([unit(4 - i) for i in range(5)])
    mv = swap_in(r, "w", Corpus(tuple(chunks), dense, tuple(sparse)), flipped, version=1,
                 model_dir=tmp_path / "m1", metrics={"ndcg": 0.5}, embedder=HashEmbedder(DIM))
    assert mv.collection == "chunks_w_v2" == index.physical("w") and mv.previous_collection == "chunks_w_v1"
    assert index.query_dense("w", unit(0), 1)[0][0].id == chunks[4].id
    assert index.query_sparse("w", ([RARE], [1.0]), 1)[0][0].id == chunks[4].id  # sparse vectors were copied
    # after the swap: doc1 deleted, doc2 ingested; rollback brings the v1 collection up to date (issue 19, item 9)
    index.delete_doc("w", "doc1")
    registry.delete("w", "doc1")
    new = Chunk(id=content_id("w", "new"), doc_id="doc2", workspace="w", text="a new chunk", doc_title="Doc 2")
    index.upsert("w", [new], unit(7)[None, :], [([RARE + 1], [1.0])])
    registry.put(DocRecord("w", "doc2", "doc2", "doc2", "doc2", "done", chunk_ids=(new.id,)))
    assert rollback(r, "w") is None
    assert index.physical("w") == "chunks_w_v1" and collections(index, "w") == ["chunks_w_v1"]
    assert index.query_dense("w", unit(0), 1)[0][0].id == chunks[0].id
    assert {rec.payload["doc_id"] for rec in index.scroll("w")} == {"doc0", "doc2"}
    hit = index.query_dense("w", HashEmbedder(DIM).embed_batch([new.index_text])[0], 1)[0]
    assert hit[0].id == new.id and hit[1] > 0.99  # re-embedded with the model v1 was embedded with
    registry.close()


def test_edge_store_is_locked_to_one_process(tmp_path: Path) -> None:
    s = settings_for(tmp_path, "edge")
    idx = build_index(s.index)
    idx.ensure("w", DIM)
    probe = (
        "import sys; from pathlib import Path; from core.errors import RetrievalError; "
        "from core.settings import Settings; from retrieval.factory import build_index\n"
        f"idx = build_index(Settings(home=Path({str(s.home)!r}), vector_backend='edge').index)\n"
        "try:\n    print('exists', idx.exists('w'))\nexcept RetrievalError as e:\n    print(e)\n"
        "idx.close()"
    )

    def other_process() -> str:
        return subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, check=True).stdout

    try:
        out = other_process()
        assert "in use by another process" in out and "Stop the other ragent process (e.g. `ragent api`)" in out
        assert str(s.index.edge_path) in out
    finally:
        idx.close()
    assert other_process().strip() == "exists True"  # released on close


def test_edge_with_a_qdrant_url_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unset RAGENT_QDRANT_URL"):
        _ = Settings(home=tmp_path, vector_backend="edge", qdrant_url="http://localhost:6333").index
    assert Settings(home=tmp_path).index.backend == "auto"


def test_auto_is_edge_embedded_and_the_client_for_a_server(tmp_path: Path) -> None:
    assert isinstance(build_index(Settings(home=tmp_path / "new").index), EdgeIndex)
    server = build_index(Settings(home=tmp_path / "srv", qdrant_url="http://localhost:6333").index)
    assert isinstance(server, QdrantIndex) and server.config.qdrant_url  # nothing connects before first use
    assert not (tmp_path / "srv").exists()


def test_auto_keeps_reading_a_local_mode_home_until_it_is_migrated(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    old = settings_for(tmp_path, "qdrant")
    idx = build_index(old.index)
    chunks, dense, sparse = corpus("w")
    idx.upsert("w", chunks, dense, sparse)
    idx.close()
    auto = Settings(home=old.home).index
    with caplog.at_level("WARNING", logger="retrieval.factory"):
        assert resolve_backend(auto) == "qdrant"
    assert "ragent index migrate --to edge" in caplog.text
    idx = build_index(auto)
    try:
        assert isinstance(idx, QdrantIndex) and idx.count("w") == 5  # nothing lost, nothing surprising
    finally:
        idx.close()
    with caplog.at_level("WARNING", logger="retrieval.factory"):  # edge named explicitly: a warning, not a guess
        caplog.clear()
        assert resolve_backend(settings_for(tmp_path, "edge").index) == "edge"
    assert "ragent index migrate --to edge" in caplog.text
    edge = build_index(settings_for(tmp_path, "edge").index)
    edge.ensure("w", DIM)  # Qdrant Edge now has an alias: auto reads it
    edge.close()
    assert resolve_backend(auto) == "edge"


def test_hybrid_retriever_end_to_end_on_edge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGENT_VECTOR_BACKEND", "edge")
    rt = Runtime(Settings.from_env(), overrides={"embedder": HashEmbedder(), "llm": FakeLLM()})
    try:
        assert isinstance(rt.index, EdgeIndex)
        r = build_retriever(rt.settings.retrieval, rt.index, rt.embedder, rt.registry, None, graph=rt.graph)
        r.reranker = None
        facts = [("Alpha Station", "Alpha Station is a research base in Antarctica run by the Nordic Polar Institute."),
                 ("Nordic Polar Institute", "The Nordic Polar Institute was founded in 1951 by Ingrid Halvorsen."),
                 ("Ingrid Halvorsen", "Ingrid Halvorsen was a Norwegian glaciologist born in Bergen."),
                 ("Bananas", "Bananas are a tropical fruit grown in Ecuador and the Philippines.")]
        chunks = [Chunk(id=f"{i:032x}", doc_id=f"doc{i}", workspace="h", text=f"{t}\n{x}", doc_title=t)
                  for i, (t, x) in enumerate(facts)]
        build_writer(rt.settings.retrieval, rt.index, r.embedder_for, rt.graph).write("h", chunks)
        for c in chunks:
            rt.registry.put(DocRecord("h", c.doc_id, c.doc_title, c.doc_title, c.doc_id, "done", chunk_ids=(c.id,)))
        res = asyncio.run(r.run("h", "Where was Ingrid Halvorsen born?", k=4))
        top = res.hits[0]
        assert top.chunk.doc_title == "Ingrid Halvorsen" and {"dense", "sparse", "graph"} <= set(top.paths)
        assert (tmp_path / "var" / "qdrant_edge" / "chunks_h_v1").is_dir()
        assert not (tmp_path / "var" / "qdrant").exists()  # nothing went to qdrant-client's local mode
    finally:
        rt.close()


def test_scores_agree_across_backends(tmp_path: Path) -> None:
    """Edge scores dense (cosine) and sparse (IDF) queries as qdrant-client's local mode does."""
    results = {}
    backends: tuple[VectorBackend, ...] = ("qdrant", "edge")
    for backend in backends:
        idx = build_index(settings_for(tmp_path / backend, backend).index)
        try:
            chunks, dense, sparse = corpus("w", 7)
            idx.upsert("w", chunks, dense, sparse)
            results[backend] = [[(c.id, round(s, 4)) for c, s in hits] for hits in (
                idx.query_dense("w", unit(1) + unit(2), 7), idx.query_sparse("w", ([COMMON, RARE], [1.0, 0.5]), 7))]
        finally:
            idx.close()
    for q, e in zip(results["qdrant"], results["edge"], strict=True):  # same scores, same ids (ties may swap)
        assert [s for _, s in q] == pytest.approx([s for _, s in e], abs=1e-3)
        assert {i for i, _ in q} == {i for i, _ in e}


WRITER = """
import sys
from pathlib import Path
import numpy as np
from core.settings import Settings
from retrieval.factory import build_index
from tests.test_index_backends import DIM, big_corpus

home, backend = sys.argv[1:3]
idx = build_index(Settings(home=Path(home), vector_backend=backend).index)
chunks, dense, sparse = big_corpus(64 * 400)
for i in range(0, len(chunks), 64):
    idx.upsert("w", chunks[i : i + 64], dense[i : i + 64], sparse[i : i + 64])
    print(i // 64 + 1, flush=True)
"""


def big_corpus(n: int) -> tuple[list[Chunk], np.ndarray, list[SparseVec]]:
    chunks = [Chunk(id=content_id("w", str(i)), doc_id=f"doc{i // 64}", workspace="w", text=f"chunk {i}", order=i)
              for i in range(n)]
    dense = np.stack([unit(i) for i in range(n)])
    return chunks, dense, [([COMMON, RARE + i], [1.0, 1.0]) for i in range(n)]


@pytest.mark.parametrize("backend", ["qdrant", "edge"])
def test_kill_9_mid_write_then_reopen(tmp_path: Path, backend: VectorBackend) -> None:
    """A process killed -9 while it upserts: the next one opens the store (lock released, write-ahead log replayed),
    finds every acknowledged batch intact, and writes and searches on."""
    s = settings_for(tmp_path, backend)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(s.home), backend], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    acked = 0
    for line in proc.stdout:  # kill it mid-write, a few batches in
        acked = int(line)
        if acked >= 5:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read() if proc.stderr else ""
    idx = build_index(s.index)
    try:
        n = idx.count("w")
        assert acked * 64 <= n < 64 * 400
        chunks, dense, sparse = big_corpus(64 * 400)
        assert idx.get("w", [c.id for c in chunks[: acked * 64]]) == chunks[: acked * 64]
        idx.upsert("w", chunks[n : n + 64], dense[n : n + 64], sparse[n : n + 64])
        assert idx.count("w") == n + 64
        assert idx.query_sparse("w", ([RARE + n], [1.0]), 1)[0][0] == chunks[n]
    finally:
        idx.close()


def test_a_second_edge_index_in_the_same_process_is_refused_too(tmp_path: Path) -> None:
    """The flock is per open file: two ``EdgeIndex`` objects on one home in one process cannot both write."""
    s = settings_for(tmp_path, "edge")
    first, second = build_index(s.index), build_index(s.index)
    first.ensure("w", DIM)
    try:
        with pytest.raises(RetrievalError, match="in use by another process"):
            second.exists("w")
    finally:
        first.close()
    assert second.exists("w")
    second.close()
