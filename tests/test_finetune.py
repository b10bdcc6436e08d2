"""Finetune units (fast: FakeLLM, HashEmbedder, real Qdrant local mode) and the hot swap under load."""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass

import numpy as np
import pytest

from core.embedder import Embedder, packaged_minilm_path
from core.errors import ConfigError
from core.settings import Settings
from finetune.corpus import load_corpus
from finetune.evaluate import ir_metrics
from finetune.mine import fill_negatives, jaccard, mine
from finetune.swap import rollback, swap_in
from finetune.synth import LLMGenerator, dedupe, split_by_doc
from finetune.tunable import Tunable
from finetune.types import Pair
from retrieval.active_model import ActiveModels, ModelVersion, collections
from retrieval.graph import GraphStore
from retrieval.index import QdrantIndex, VectorIndex
from retrieval.registry import Registry
from retrieval.rerank import Reranker
from retrieval.retriever import Retriever
from tests.fakes import FakeLLM, HashEmbedder
from tests.finetune_corpus import build_workspace, passages


@pytest.fixture
def hash_retriever(settings: Settings):
    index, registry = QdrantIndex(settings.index), Registry(settings.index.db_path)
    r = Retriever(index, HashEmbedder(), registry)
    yield r
    index.close()
    registry.close()


def test_ir_metrics_worked_example() -> None:
    corpus = np.eye(4, dtype=np.float32)
    q = np.asarray([[0.1, 0.2, 0.9, 0.0]], dtype=np.float32)  # ranks: c2, c1, c0, c3
    m = ir_metrics(q, corpus, ["c0", "c1", "c2", "c3"], [frozenset({"c0"})])
    assert m.recall_at_10 == 1.0 and m.mrr_at_10 == pytest.approx(1 / 3)
    assert m.ndcg_at_10 == pytest.approx(0.5)  # 1 / log2(3 + 1)
    assert ir_metrics(q, corpus, ["c0", "c1", "c2", "c3"], []).n == 0


def test_active_models_record_history(tmp_path) -> None:
    am = ActiveModels(tmp_path / "ft")
    assert am.get("ws") is None and am.pop("ws") is None
    v1 = ModelVersion("ws", 1, "/m/v1", "chunks_ws_v2", "chunks_ws_v1", metrics={"x": 0.5})
    am.set("ws", v1)
    am.set("ws", ModelVersion("ws", 2, "/m/v2", "chunks_ws_v3", "chunks_ws_v2"))
    assert [v.version for v in am.history("ws")] == [1, 2]
    assert ActiveModels(tmp_path / "ft").get("ws").version == 2  # type: ignore[union-attr]  # other reader
    assert am.pop("ws").version == 2  # type: ignore[union-attr]
    got = am.get("ws")
    assert got is not None and got.metrics == {"x": 0.5} and got.created > 0
    with pytest.raises(ConfigError):
        am.get("../etc")


def test_llm_generator_schema_and_invalid_replies() -> None:
    from core.types import Chunk

    chunks = [Chunk(id=f"c{i}", doc_id=f"d{i}", workspace="w", text=t) for i, (_, t) in enumerate(passages(2))]
    llm = FakeLLM([json.dumps({"questions": ["Who designed the Veltrane bridge?", "x"]}), "not json", "still not"])
    pairs = asyncio.run(LLMGenerator(llm, concurrency=1).generate(chunks))
    assert [p.query for p in pairs] == ["Who designed the Veltrane bridge?"]  # short one dropped, bad chunk skipped
    assert pairs[0].source == "llm" and llm.calls[0]["schema"]["properties"]["questions"]


def test_dedupe_and_split_keep_documents_on_one_side() -> None:
    pairs = [Pair(f"question number {i % 30}", f"c{i}", f"d{i // 3}") for i in range(60)]
    uniq = dedupe([*pairs, Pair("a", "c0", "d0")])
    assert len(uniq) == 30
    train, val = split_by_doc(uniq, 0.3, seed=1)
    assert train and val and not {p.doc_id for p in train} & {p.doc_id for p in val}
    tr, va = split_by_doc(uniq[:2], 0.0, seed=1)
    assert len(va) == 1 and len(tr) == 1  # tiny workspaces still get a validation pair


def test_mine_keeps_findable_pairs_and_drops_false_negatives(hash_retriever: Retriever) -> None:
    chunks = build_workspace(hash_retriever, hash_retriever.registry, "w", n=20)
    corpus = load_corpus(hash_retriever, "w")
    c0 = chunks[0]
    pairs = [
        Pair(c0.text.split("\n")[1][:80], c0.id, c0.doc_id),  # words of its own chunk: findable
        Pair("zzqx unrelated gibberish words", chunks[1].id, chunks[1].doc_id),  # nothing matches: dropped
    ]
    ex = mine(pairs, corpus, hash_retriever.embedder, hash_retriever.index, "w", filter_k=5, negatives=2)
    assert [e.positive_id for e in ex] == [c0.id]
    assert ex[0].negative_ids and c0.id not in ex[0].negative_ids
    q = hash_retriever.embedder.embed_batch([pairs[0].query])[0]
    pos = corpus.position()
    for n in ex[0].negative_ids:  # positive-aware: every negative scores below 95% of the positive
        assert q @ corpus.dense[pos[n]] < 0.95 * (q @ corpus.dense[pos[c0.id]])
        assert jaccard(corpus.chunks[pos[n]].text, c0.text) <= 0.5
    # a cross-encoder that scores everything like the positive removes all negatives
    same = lambda q, ps: [1.0] * len(ps)  # noqa: E731
    ex2 = mine(pairs[:1], corpus, hash_retriever.embedder, hash_retriever.index, "w", scorer=same)
    assert ex2[0].negative_ids == ()
    filled = fill_negatives(ex2, corpus, 2, seed=3)
    assert len(filled[0].negative_ids) == 2 and c0.id not in filled[0].negative_ids
    # a bridge pair is kept although its chunk is not findable from the query: that is what it teaches
    bridge = Pair("zzqx unrelated gibberish words", chunks[1].id, chunks[1].doc_id, "bridge")
    assert [e.positive_id for e in mine([bridge], corpus, hash_retriever.embedder, hash_retriever.index, "w",
                                        filter_k=5)] == [chunks[1].id]


def test_bridge_pairs_join_the_naming_chunk_and_the_named_document() -> None:
    from core.types import Chunk
    from finetune.synth import BridgeGenerator

    def chunk(cid: str, title: str, text: str) -> Chunk:
        return Chunk(id=cid, doc_id=cid, workspace="w", text=f"{title}\n{text}", doc_title=title)

    howell = chunk("a", "Scott Howell (political consultant)",
                   "Scott Howell is a consultant who worked for Rudy Giuliani and the United States Senate.")
    giuliani = chunk("b", "Rudy Giuliani", "Rudy Giuliani served as the 107th Mayor of New York City from 1994.")
    united = chunk("c", "United", "United is a single by a German singer.")  # named only inside "United States"
    gen = BridgeGenerator()
    corpus = [howell, giuliani, united]
    assert [(a.id, b.id) for a, b in gen.links(corpus, corpus)] == [("a", "b")]
    pairs = gen.generate(corpus, corpus)
    assert [(p.chunk_id, p.source) for p in pairs] == [("b", "bridge")]
    q = pairs[0].query
    assert q.startswith("scott howell ") and "Mayor" in q and "Giuliani" not in q  # A's subject, B's content


@dataclass
class StandIn:
    """Only what ``Tunable`` names: no search, no ``Retriever``."""

    index: VectorIndex
    registry: Registry
    active_models: ActiveModels
    embedder: Embedder
    graph: GraphStore | None = None
    reranker: Reranker | None = None

    def embedder_for(self, workspace: str) -> Embedder:
        return self.embedder


def test_finetune_runs_on_any_tunable_not_only_a_retriever(hash_retriever: Retriever, tmp_path) -> None:
    r = hash_retriever
    assert isinstance(r, Tunable)  # the Retriever satisfies finetune's Protocol as it stands
    build_workspace(r, r.registry, "w", n=12)
    t = StandIn(r.index, r.registry, r.active_models, r.embedder)
    assert isinstance(t, Tunable)
    corpus = load_corpus(t, "w")
    assert len(corpus.chunks) == 12
    original = r.index.physical("w")
    new_dense = HashEmbedder().embed_batch([x[::-1] for x in corpus.texts()])  # any same-dim vectors
    mv = swap_in(t, "w", corpus, new_dense, version=1, model_dir=tmp_path, embedder=HashEmbedder(), metrics={})
    assert r.index.physical("w") == mv.collection != original and r.index.count("w") == 12
    assert rollback(t, "w") is None and r.index.physical("w") == original


@pytest.mark.slow
def test_swap_while_querying_never_fails_and_rollback_restores(hash_retriever: Retriever) -> None:
    """Queries run in a thread through three swap/rollback cycles; none fails or comes back empty."""
    r = hash_retriever
    build_workspace(r, r.registry, "w", n=40)
    corpus = load_corpus(r, "w")
    original = r.index.physical("w")
    minilm = str(packaged_minilm_path())
    new_dense = HashEmbedder().embed_batch([t[::-1] for t in corpus.texts()])  # any same-dim vectors
    errors: list[BaseException] = []
    empty, done = [0], threading.Event()
    queries = [p[1].split(".")[1] for p in passages(40)]

    def query_loop() -> None:
        n = 0
        while not done.is_set():
            try:
                hits = asyncio.run(r.search("w", queries[n % len(queries)], 5, paths=["dense"], rerank=False))
                empty[0] += not hits
            except BaseException as e:  # the assertion below reports it
                errors.append(e)
            n += 1

    t = threading.Thread(target=query_loop)
    t.start()
    try:
        for cycle in range(3):
            mv = swap_in(r, "w", corpus, new_dense, version=cycle + 1,
                         model_dir=minilm, metrics={"validation_ndcg_at_10": 0.9})  # type: ignore[arg-type]
            assert r.index.physical("w") == mv.collection != original
            assert r.embedder_for("w") is not r.embedder  # the tuned model serves the workspace now
            assert r.index.count("w") == len(corpus.chunks)
            back = rollback(r, "w")
            assert back is None and r.index.physical("w") == original and r.embedder_for("w") is r.embedder
            assert mv.collection not in collections(r.index, "w")  # the abandoned collection is dropped
    finally:
        done.set()
        t.join(timeout=60)
    assert not errors, errors[:3]
    assert empty[0] == 0
    with pytest.raises(ConfigError, match="nothing to roll back"):
        rollback(r, "w")
