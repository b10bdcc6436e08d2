"""Graph extraction (spaCy), entity linking and personalised PageRank scoring."""

from __future__ import annotations

from core.types import Chunk
from retrieval.extract import SpacyExtractor, normalise
from retrieval.graph import GraphView
from retrieval.graph_sqlite import SqliteGraphStore
from retrieval.link import EntityLinker, ngrams
from retrieval.ppr import PPRGraph
from tests.fakes import HashEmbedder


def test_normalise_and_ngrams() -> None:
    assert normalise("The Beatles' ") == "beatles"
    assert normalise("Lennon's") == "lennon"
    assert "new york city" in ngrams("born in new york city")
    assert "new" not in ngrams("born in new york")  # short unigrams and stopwords are not matched alone
    assert "in new" not in ngrams("born in new york")


def test_ppr_scores_connected_chunks_first() -> None:
    view = GraphView(
        mentions=(("paris", "c1"), ("france", "c1"), ("france", "c2"), ("tokyo", "c3"), ("japan", "c3")),
        relations=(("paris", "co_occurs", "france"), ("tokyo", "co_occurs", "japan")),
        names={},
    )
    g = PPRGraph.build(view)
    scores = g.run({"e:paris": 1.0}, damping=0.5)
    assert scores["c1"] > scores["c2"] > 0
    assert "c3" not in scores  # unreachable from the seed
    assert g.entity_df == {"paris": 1, "france": 2, "tokyo": 1, "japan": 1}
    assert g.run({}) == {} and g.run({"e:unknown": 1.0}) == {}


def test_ppr_limit_keeps_the_best_in_order() -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    mentions = tuple((f"e{int(e)}", f"c{i}") for i in range(300) for e in rng.zipf(1.5, 4) % 60)
    g = PPRGraph.build(GraphView(mentions=mentions, relations=(), names={}))
    seeds = {"e:e3": 1.0, "c:c7": 0.05}
    full = g.run(seeds)
    top = g.run(seeds, limit=10)
    # highest first, the same scores as a full sort (chunks with tied scores may swap)
    assert list(top.values()) == sorted(full.values(), reverse=True)[:10]
    assert all(full[c] == v for c, v in top.items())
    assert list(full) == sorted(full, key=lambda c: -full[c])
    assert g.run(seeds, limit=0) == {}


def test_ppr_push_approximates_power_iteration() -> None:
    import numpy as np

    rng = np.random.default_rng(1)
    mentions = tuple((f"e{int(e)}", f"c{i}") for i in range(2000) for e in rng.zipf(1.5, 6) % 400)
    relations = tuple((f"e{a}", "co_occurs", f"e{b}") for a, b in rng.integers(0, 400, (300, 2)))
    g = PPRGraph.build(GraphView(mentions=mentions, relations=relations, names={}))
    seeds = {"e:e5": 0.6, "e:e40": 0.3, "c:c11": 0.05, "c:c900": 0.05}
    exact = g.run(seeds, tol=1e-12, iters=200)
    approx = g.run(seeds, eps=1e-7)
    assert max(abs(exact[c] - approx.get(c, 0.0)) for c in exact) < 1e-5
    top = list(exact)[:20]
    assert len(set(top) & set(list(approx)[:20])) >= 19  # near-ties at the cut may swap
    assert list(g.run(seeds, eps=1e-7, limit=5)) == list(approx)[:5]
    assert g.run({"e:nothing": 1.0}, eps=1e-7) == {}
    default = g.run(seeds, eps=1e-6)  # the shipped RAGENT_PPR_EPS
    assert len(set(top[:10]) & set(list(default)[:10])) >= 9


def test_extract_and_link(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ex = SpacyExtractor()
    chunks = [
        Chunk(id="c1", doc_id="d1", workspace="w", doc_title="Marie Curie",
              text="Marie Curie was born in Warsaw. She won the Nobel Prize in Physics with Pierre Curie."),
        Chunk(id="c2", doc_id="d2", workspace="w", doc_title="Warsaw",
              text="Warsaw is the capital of Poland, on the Vistula river."),
    ]
    graphs = ex.extract(chunks)
    keys1 = {e.key for e in graphs[0].entities}
    assert {"marie curie", "warsaw", "nobel prize"} <= keys1 or {"marie curie", "warsaw"} <= keys1
    assert any(r.src == "marie curie" or r.dst == "marie curie" for r in graphs[0].relations)
    store = SqliteGraphStore(tmp_path / "g.db")
    store.upsert("w", graphs)
    emb = HashEmbedder()
    names = {e.key: e.name for g in graphs for e in g.entities}
    keys = sorted(names)
    store.add_entity_vectors("w", keys, emb.embed_batch([names[k] for k in keys]))
    ppr = PPRGraph.build(store.view("w"))
    linker = EntityLinker(store, ex, threshold=0.8)
    linked = linker.link("w", "Which river flows through the city where Marie Curie was born?", emb, ppr.entity_df)
    assert "marie curie" in linked
    assert "marie" not in linked  # contained in the longer linked name
    # "warsaw" is mentioned by two chunks, "marie curie" by one: the rarer entity weighs more
    seeds = {"e:" + k: w for k, w in linked.items()}
    scores = ppr.run(seeds)
    assert max(scores, key=lambda c: scores[c]) == "c1" and scores.get("c2", 0) > 0


class CountingExtractor(SpacyExtractor):
    def __init__(self) -> None:
        super().__init__()
        self.parsed: list[str] = []

    def mentions(self, text: str):  # type: ignore[no-untyped-def]
        self.parsed.append(text)
        return super().mentions(text)


def test_link_parses_the_query_only_when_no_name_matches_verbatim(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from retrieval.graph import ChunkGraph, Entity

    store = SqliteGraphStore(tmp_path / "g.db")
    store.upsert("w", [ChunkGraph("c1", "d1", (Entity("marie curie", "Marie Curie", "PERSON"),), ())])
    emb = HashEmbedder()
    store.add_entity_vectors("w", ["marie curie"], emb.embed_batch(["Marie Curie"]))
    df = PPRGraph.build(store.view("w")).entity_df
    ex = CountingExtractor()
    linker = EntityLinker(store, ex, threshold=0.5)
    assert set(linker.link("w", "Where was Marie Curie born?", emb, df)) == {"marie curie"}
    assert ex.parsed == []  # a name matched verbatim: no spaCy parse
    linker.link("w", "Where was Curie born?", emb, df)
    assert ex.parsed == ["Where was Curie born?"]  # nothing verbatim: spaCy mentions, linked by embedding
    always = EntityLinker(store, ex, threshold=0.5, mentions="always")
    always.link("w", "Where was Marie Curie born?", emb, df)
    assert len(ex.parsed) == 2


def test_done_doc_ids_lists_only_searchable_documents(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from retrieval.registry import DocRecord, Registry

    reg = Registry(tmp_path / "r.db")
    for i, status in enumerate(["done", "failed", "done", "processing"]):
        reg.put(DocRecord("w", f"d{i}", f"s{i}", "", f"h{i}", status, chunk_ids=("a" * 32,)))  # type: ignore[arg-type]
    reg.put(DocRecord("other", "d9", "s9", "", "h9", "done"))
    assert reg.done_doc_ids("w") == {"d0", "d2"} and reg.done_doc_ids("nobody") == set()
    reg.close()
