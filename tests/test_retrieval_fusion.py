"""RRF fusion (the docstring's worked example), weights, dedupe, path ranks."""

from __future__ import annotations

import pytest

from core.types import Chunk, Hit
from retrieval.fusion import rrf


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
