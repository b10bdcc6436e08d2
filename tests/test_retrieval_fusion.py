"""RRF fusion (the docstring's worked example), weights, dedupe, path ranks."""

from __future__ import annotations

import asyncio

import pytest

from core.types import Chunk, Hit
from retrieval.fusion import blend, distinct, rrf


def hit(cid: str, score: float = 0.0) -> Hit:
    return Hit(Chunk(id=cid, doc_id="d", workspace="w", text=cid), score)


def test_worked_example() -> None:
    fused = rrf({"dense": [hit("a"), hit("b"), hit("c")], "sparse": [hit("b"), hit("d")]}, k=60)
    assert [h.chunk.id for h in fused] == ["b", "a", "d", "c"]
    assert fused[0].paths == {"dense": 2, "sparse": 1}
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[1].score == pytest.approx(1 / 61)
    assert fused[3].paths == {"dense": 3}


def test_weights_and_dedupe_and_limit() -> None:
    lists = {"dense": [hit("a"), hit("a"), hit("b")], "graph": [hit("b")]}
    fused = rrf(lists, k=60, weights={"dense": 1.0, "graph": 3.0}, limit=1)
    assert [h.chunk.id for h in fused] == ["b"]
    assert fused[0].paths == {"dense": 2, "graph": 1}  # the duplicate "a" did not take rank 2
    assert rrf({}) == []


def test_distinct_drops_repeats_and_contained_texts() -> None:
    """amt-01 of the ``pdfs`` answers set: two images beside one paragraph gave the same "Image on page 1 /
    Boots self-locking nuts are made with ..." source twice in five; an image's nearby text sits inside the
    paragraph's own chunk."""
    para = "Boots self-locking nuts are made with three different spring styles and in various shapes and sizes."

    def mk(cid: str, text: str) -> Hit:
        return Hit(Chunk(id=cid, doc_id="d", workspace="w", text=text), 0.0)

    hits = [mk("text", f"Self-locking nuts. {para} The wing type is the most common."),
            mk("img1", f"Image on page 1\n{para[:60]}"), mk("img2", f"Image on page 3\n{para[:60]}"),
            mk("fig", f"Figure 7-26. Self-locking nuts.\n{para}"), mk("short", "Self-locking nuts."),
            mk("other", "The stainless steel self-locking nut may be spun on and off by hand.")]
    assert [h.chunk.id for h in distinct(hits)] == ["text", "fig", "short", "other"]
    assert [h.chunk.id for h in distinct(hits[1:])] == ["img1", "fig", "short", "other"]  # same text, kept once
    assert [h.chunk.id for h in distinct(hits, limit=2)] == ["text", "fig"]


def test_rank_blend() -> None:
    """Fused order a, b, c; the cross-encoder prefers c, then b, then a."""
    hits = [Hit(h.chunk, 0.0, {}, s) for h, s in zip([hit("a"), hit("b"), hit("c")], [0.1, 0.5, 0.9], strict=True)]
    assert [h.chunk.id for h in blend(hits, 0.0)] == ["c", "b", "a"]  # cross-encoder order only
    # equal weights: a (ranks 3 and 1) and c (1 and 3) tie at the top, b (2 and 2) just below
    assert [h.chunk.id for h in blend(hits, 1.0, k=1)][2] == "b"
    assert [h.chunk.id for h in blend(hits, 5.0)] == ["a", "b", "c"]  # the fused rank dominates
    assert blend(hits, 1.0)[0].rerank_score in (0.1, 0.9)  # scores are kept


class ReverseReranker:
    """Scores passages in reverse of the order it is given them."""

    def score(self, query: str, passages: list[str]) -> list[float]:
        return [float(i) for i in range(len(passages))]


def test_retriever_rerank_blend_setting() -> None:
    from dataclasses import replace
    from unittest.mock import MagicMock

    from retrieval.retriever import Retriever

    r = Retriever(MagicMock(), MagicMock(), MagicMock(), MagicMock(), reranker=ReverseReranker())
    hits = [hit(c) for c in "abcd"]
    assert [h.chunk.id for h in asyncio.run(r.rerank("q", hits, 3))] == ["c", "b", "a", "d"]
    r.config = replace(r.config, rerank_blend=10.0)  # the fused rank dominates: the order stays
    assert [h.chunk.id for h in asyncio.run(r.rerank("q", hits, 3))] == ["a", "b", "c", "d"]
