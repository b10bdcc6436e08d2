"""The bridge hop: documents the best reranked passage names by title move up behind it."""

from __future__ import annotations

import asyncio
from unittest.mock import MagicMock

from core.types import Chunk, Hit
from retrieval.bridge import bridge_hop, mentions, title_key


def hit(cid: str, title: str, text: str, doc: str | None = None) -> Hit:
    return Hit(Chunk(id=cid, doc_id=doc or cid, workspace="w", text=text, doc_title=title), 0.0)


BORN = hit("a", "Kerry Saxby-Junna", "Kerry Saxby-Junna (born 2 June 1961 in Young, New South Wales) is a race walker.")


def test_title_key_and_mentions() -> None:
    assert title_key("Charmed (TV series)") == "charmed"
    assert title_key("Young, New South Wales") == "young, new south wales"
    assert mentions("She starred in Charmed.", "Charmed (TV series)")
    assert not mentions("She was charmedly odd.", "Charmed")  # whole words only
    assert not mentions("It is in the text.", "It")  # too short to trust


def test_named_document_moves_behind_the_best_hit() -> None:
    hits = [BORN, hit("b", "Blennerville", "A village in Kerry."), hit("c", "Young, New South Wales", "A town.")]
    assert [h.chunk.id for h in bridge_hop(hits)] == ["a", "c", "b"]
    assert [h.chunk.id for h in bridge_hop(hits, links=0)] == ["a", "b", "c"]  # off


def test_one_chunk_per_document_and_the_link_limit() -> None:
    first = hit("a", "A", "It mentions Alpha, Bravo and Charlie.")
    hits = [first, hit("x", "Other", "z"), hit("b1", "Bravo", "b", "B"), hit("b2", "Bravo", "b", "B"),
            hit("c", "Charlie", "c"), hit("al", "Alpha", "a")]
    assert [h.chunk.id for h in bridge_hop(hits, links=2)] == ["a", "b1", "c", "x", "b2", "al"]
    same = [first, hit("a2", "A", "more", "a")]  # the first hit's own document is not a bridge
    assert [h.chunk.id for h in bridge_hop(same)] == ["a", "a2"]
    assert bridge_hop([]) == [] and [h.chunk.id for h in bridge_hop([first])] == ["a"]


class Ranked:
    """Scores the passages in the order given: first best."""

    def score(self, query: str, passages: list[str]) -> list[float]:
        return [float(-i) for i in range(len(passages))]


def test_retriever_rerank_applies_the_hop() -> None:
    from dataclasses import replace

    from retrieval.retriever import Retriever

    r = Retriever(MagicMock(), MagicMock(), MagicMock(), MagicMock(), reranker=Ranked())
    hits = [BORN, hit("b", "Blennerville", "A village."), hit("c", "Young, New South Wales", "A town."),
            hit("d", "Young", "tail")]
    assert [h.chunk.id for h in asyncio.run(r.rerank("q", hits, 3))] == ["a", "c", "b", "d"]
    r.config = replace(r.config, rerank_bridge=0)
    assert [h.chunk.id for h in asyncio.run(r.rerank("q", hits, 3))] == ["a", "b", "c", "d"]
