"""Fine-tune swap and rollback keep the index consistent (issue 19, item 9), also when killed part-way.

Consistent means: the collection searches read holds exactly the chunks of the ``done`` documents, once each,
embedded by the model queries are embedded with (``Retriever.embedder_for``); the graph's entity-name vectors
are embedded by that model too. The two models: ``HashEmbedder`` (the default) and the packaged MiniLM folder
standing in for a fine-tuned model (same 384 dimensions, very different vectors).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from core.embedder import default_onnx_cache, packaged_minilm_path, tuned_embedder
from core.settings import Settings, VectorBackend
from core.types import Chunk, content_id
from finetune.corpus import load_corpus
from finetune.swap import recover, rollback, swap_in
from retrieval.active_model import collections
from retrieval.extract import normalise
from retrieval.factory import build_index
from retrieval.graph import ChunkGraph, Entity
from retrieval.graph_sqlite import SqliteGraphStore
from retrieval.registry import DocRecord, Registry
from retrieval.retriever import Retriever
from retrieval.writer import IndexWriter
from tests.fakes import HashEmbedder
from tests.finetune_corpus import passages

ROOT = Path(__file__).resolve().parent.parent
WS = "w"
BEFORE, AFTER = 4, 2  # documents ingested before the swap, and after it


class TitleExtractor:
    """One entity per chunk, its document title (spaCy would cost seconds here and add nothing)."""

    def extract(self, chunks: Sequence[Chunk]) -> list[ChunkGraph]:
        return [ChunkGraph(c.id, c.doc_id, (Entity(normalise(c.doc_title), c.doc_title, "TITLE"),)) for c in chunks]


@pytest.fixture(scope="session")
def tuned_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged MiniLM as a 'fine-tuned model folder'; its ONNX export goes beside it (reused when cached)."""
    base = tmp_path_factory.mktemp("tuned")
    (base / "model").symlink_to(packaged_minilm_path(), target_is_directory=True)
    (base / "onnx").mkdir()
    for f in default_onnx_cache().glob("model-*.onnx") if default_onnx_cache().is_dir() else ():
        (base / "onnx" / f.name).symlink_to(f)
    return base / "model"


class Stack:
    """Index, registry, graph, retriever and writer over one RAGENT_HOME, as a process would open them."""

    def __init__(self, settings: Settings) -> None:
        self.index = build_index(settings.index)
        self.registry = Registry(settings.index.db_path)
        self.graph = SqliteGraphStore(settings.index.db_path.parent / "graph.db")
        self.retriever = Retriever(self.index, HashEmbedder(), self.registry, graph=self.graph)
        self.writer = IndexWriter(self.index, self.retriever.embedder_for, graph=self.graph,
                                  extractor=TitleExtractor())

    def ingest(self, docs: Sequence[tuple[str, str]]) -> list[str]:
        ids = []
        for title, text in docs:
            doc_id = content_id(WS, title)
            chunk = Chunk(id=content_id(doc_id, "0", text), doc_id=doc_id, workspace=WS, text=f"{title}\n{text}",
                          doc_title=title, source=f"{title}.txt")
            self.writer.write(WS, [chunk])
            self.registry.put(DocRecord(workspace=WS, doc_id=doc_id, source=chunk.source, title=title,
                                        content_hash=doc_id, status="done", chunk_ids=(chunk.id,)))
            ids.append(doc_id)
        return ids

    def delete(self, doc_id: str) -> None:
        self.writer.delete_doc(WS, doc_id)
        self.registry.delete(WS, doc_id)

    def swap(self, model_dir: Path) -> None:
        corpus = load_corpus(self.retriever, WS)
        tuned = tuned_embedder(str(model_dir), self.retriever.embedder)
        swap_in(self.retriever, WS, corpus, tuned.embed_batch(corpus.texts()), version=1, model_dir=model_dir,
                metrics={}, embedder=tuned)

    def close(self) -> None:
        self.index.close()
        self.registry.close()
        self.graph.close()


@pytest.fixture
def stack(settings: Settings) -> Iterator[Stack]:
    s = Stack(settings)
    yield s
    s.close()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def assert_chunks_consistent(s: Stack, doc_ids: set[str]) -> None:
    """Searches find every document, once, through chunk vectors of the model queries are embedded with."""
    r = s.retriever
    assert s.registry.done_doc_ids(WS) == doc_ids
    recs = s.index.scroll(WS, with_vectors=True)
    chunk_ids = [rec.payload["id"] for rec in recs]
    assert len(chunk_ids) == len(set(chunk_ids)), "duplicated chunks"
    assert {rec.payload["doc_id"] for rec in recs} == doc_ids, "documents lost (or stale ones kept)"
    model = r.embedder_for(WS)
    texts = [Chunk.from_payload(rec.payload).index_text for rec in recs]
    stored = np.asarray([rec.vector["dense"] for rec in recs], dtype=np.float32)
    assert cosines(stored, model.embed_batch(texts)).min() > 0.99, "chunk vectors of another model than queries"
    for rec, text in zip(recs, texts, strict=True):
        hits = asyncio.run(r.search(WS, text, 1, paths=["dense"], rerank=False))
        assert hits and hits[0].chunk.doc_id == rec.payload["doc_id"]


def assert_entities_consistent(s: Stack, n: int) -> None:
    """The graph's entity-name vectors (query linking compares query mentions with them) are the query model's."""
    keys, mat = s.graph.entity_vectors(WS)
    names = s.graph.view(WS).names
    assert sorted(keys) == sorted(names) and len(keys) == n
    assert cosines(mat, s.retriever.embedder_for(WS).embed_batch([names[k] for k in keys])).min() > 0.99, \
        "entity-name vectors of another model than queries"


def assert_consistent(s: Stack, doc_ids: set[str]) -> None:
    assert_chunks_consistent(s, doc_ids)
    assert_entities_consistent(s, len(doc_ids))


@pytest.mark.slow
def test_ingest_after_swap_then_rollback_keeps_every_document(stack: Stack, tuned_dir: Path) -> None:
    docs = passages(BEFORE + AFTER + 1)
    s = stack
    first = s.ingest(docs[:BEFORE])
    original = s.index.physical(WS)
    s.swap(tuned_dir)
    assert s.retriever.embedder_for(WS) is not s.retriever.embedder
    later = s.ingest(docs[BEFORE : BEFORE + AFTER])  # written with the tuned model into the new collection
    s.delete(first[0])  # ... and one document deleted after the swap
    want = set(first[1:]) | set(later)
    assert_chunks_consistent(s, want)
    assert rollback(s.retriever, WS) is None
    assert s.index.physical(WS) == original and s.retriever.embedder_for(WS) is s.retriever.embedder
    assert_chunks_consistent(s, want)
    assert collections(s.index, WS) == [original]  # the abandoned collection is dropped


@pytest.mark.slow
def test_swap_and_rollback_reembed_the_entity_names(stack: Stack, tuned_dir: Path) -> None:
    s = stack
    first = s.ingest(passages(BEFORE))
    assert_entities_consistent(s, BEFORE)
    s.swap(tuned_dir)
    assert_entities_consistent(s, BEFORE)
    late = s.ingest(passages(BEFORE + 1)[BEFORE:])  # new names are embedded by the tuned model (the writer's)
    assert_entities_consistent(s, BEFORE + 1)
    rollback(s.retriever, WS)
    assert_entities_consistent(s, BEFORE + 1)
    assert_consistent(s, set(first) | set(late))


@pytest.mark.slow
def test_swap_catches_up_with_documents_ingested_since_the_corpus_was_read(stack: Stack, tuned_dir: Path) -> None:
    s = stack
    first = s.ingest(passages(BEFORE))
    corpus = load_corpus(s.retriever, WS)  # the finetune loop reads the corpus long before it swaps
    late = s.ingest(passages(BEFORE + 1)[BEFORE:])
    tuned = tuned_embedder(str(tuned_dir), s.retriever.embedder)
    swap_in(s.retriever, WS, corpus, tuned.embed_batch(corpus.texts()), version=1, model_dir=tuned_dir,
            metrics={}, embedder=tuned)
    assert_consistent(s, set(first) | set(late))


# ---- crash tests: kill -9 part-way through a swap or a rollback, then the next start recovers -------------
CHILD = """
import os, signal, sys
from pathlib import Path
from core.settings import Settings, VectorBackend
from tests.test_finetune_consistency import Stack, rollback

home, backend, op, point, model_dir = sys.argv[1:6]
s = Stack(Settings(home=Path(home), vector_backend=backend))
die = lambda: os.kill(os.getpid(), signal.SIGKILL)
upsert, point_alias = s.index.upsert, s.index.point_alias

def upsert_then_die(*a, **k):
    upsert(*a, **k)
    if k.get("collection"):  # a write into the collection being built: kill -9 right after it
        die()

if point == "filling":
    s.index.upsert = upsert_then_die
elif point == "committed":  # the record is written, the alias has not moved yet
    s.index.point_alias = lambda *a, **k: die()
elif point == "aliased":  # the alias moved, the entity names are not re-embedded yet
    s.index.point_alias = lambda *a, **k: (point_alias(*a, **k), die())
if op == "swap":
    s.swap(Path(model_dir))
else:
    rollback(s.retriever, "w")
print("finished without being killed")
"""


def kill_9_during(settings: Settings, tuned_dir: Path, op: str, point: str) -> tuple[set[str], str | None]:
    """Ingest (and for a rollback, swap and ingest more), then run ``op`` in a child killed -9 at ``point``.
    Returns the documents that must stay searchable and the workspace's original collection."""
    docs = passages(BEFORE + AFTER)
    s = Stack(settings)
    want = set(s.ingest(docs[:BEFORE]))
    original = s.index.physical(WS)
    if op == "rollback":
        s.swap(tuned_dir)
        want |= set(s.ingest(docs[BEFORE:]))  # what the previous collection lacks
    s.close()  # Qdrant local mode and Qdrant Edge: one process at a time
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", CHILD, str(settings.home), settings.vector_backend, op, point,
                            str(tuned_dir)],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    return want, original


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["qdrant", "edge"])
@pytest.mark.parametrize(("op", "point"), [
    ("swap", "filling"), ("swap", "committed"), ("swap", "aliased"),
    ("rollback", "filling"), ("rollback", "committed"), ("rollback", "aliased"),
])
def test_kill_9_during_swap_or_rollback_then_recover(tmp_path: Path, tuned_dir: Path, backend: VectorBackend,
                                                     op: str, point: str) -> None:
    settings = Settings(home=tmp_path / "var", vector_backend=backend)
    want, original = kill_9_during(settings, tuned_dir, op, point)
    s = Stack(settings)  # the next start
    try:
        recover(s.retriever, WS)
        assert_consistent(s, want)
        committed = point != "filling"
        swapped = (op == "swap") == committed  # which model the workspace ended on
        assert (s.retriever.embedder_for(WS) is not s.retriever.embedder) == swapped
        assert len(collections(s.index, WS)) == (2 if swapped else 1)  # nothing half-built left behind
        if not swapped:
            assert s.index.physical(WS) == original
        # and the interrupted operation can simply be run again (or undone)
        if swapped:
            assert rollback(s.retriever, WS) is None
        else:
            s.swap(tuned_dir)
        assert_consistent(s, want)
    finally:
        s.close()


@pytest.mark.slow
def test_cli_recover_finishes_a_swap_killed_after_its_commit(settings: Settings, tuned_dir: Path) -> None:
    from typer.testing import CliRunner

    from app.cli import app

    want, _ = kill_9_during(settings, tuned_dir, "swap", "committed")
    res = CliRunner().invoke(app, ["finetune", "recover", "--json"])
    assert res.exit_code == 0, res.output
    s = Stack(settings)
    try:
        rec = s.retriever.active_models.record(WS)
        assert json.loads(res.stdout) == {"recovered": {WS: rec.alias}}
        assert_consistent(s, want)
    finally:
        s.close()


def test_a_record_written_before_alias_and_entity_model_existed_still_reads(tmp_path: Path) -> None:
    """Old ``active.json`` files: the alias follows the active version; the entity vectors' model is unknown, so
    ``recover`` re-embeds the names once."""
    from retrieval.active_model import ActiveModels, ModelVersion

    mv = ModelVersion(workspace=WS, version=1, model_dir="/m/v1", collection="chunks_w_v2",
                      previous_collection="chunks_w_v1")
    path = tmp_path / WS / "active.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"workspace": WS, "history": [mv.to_json()]}))
    am = ActiveModels(tmp_path)
    rec = am.record(WS)
    assert rec.history == (mv,) and rec.alias == "chunks_w_v2" and rec.entity_model is None
    am.set_entity_model(WS, "/m/v1")
    assert am.pop(WS) == mv
    assert am.record(WS).alias == "chunks_w_v1" and am.record(WS).entity_model == "/m/v1"
    assert ActiveModels(tmp_path / "none").record(WS).entity_model == ""  # never swapped: the default model's


def test_recover_all_skips_a_workspace_it_cannot_recover(stack: Stack) -> None:
    from finetune import recover_all
    from retrieval.active_model import ModelVersion

    stack.ingest(passages(1))
    am = stack.retriever.active_models
    am.set_entity_model(WS, "")  # a record with nothing to do
    am.set("gone", ModelVersion(workspace="gone", version=1, model_dir="/m", collection="chunks_gone_v2"))
    assert recover_all(stack.retriever) == [WS]  # "gone" is logged, the API still starts
