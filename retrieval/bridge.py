"""Bridge hop: after the rerank, the documents the best passage names come next.

A multi-hop question ("the city where Kerry Saxby-Junna was born") is answered by a chain of passages: the first
names the bridge entity ("born in Young, New South Wales"), the next is the document about it. A cross-encoder
scores each passage against the question alone, so it ranks the first passage high and the bridge document low:
that passage does not mention the question's words. The best reranked passage, though, names the bridge
document's title. ``bridge_hop`` keeps the best hit first and moves up to ``links`` other documents whose title
the best hit's text mentions (whole words, case-insensitive, a trailing "(qualifier)" dropped) right behind it,
each at its best-scored chunk, in their reranked order; everything else keeps its order. It reads only the
candidate pool, so it costs no model call.

Example: reranked [A "Kerry Saxby-Junna ... born in Young, New South Wales", B "Blennerville", C "Young, New
South Wales"] -> [A, C, B].
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.types import Hit

MIN_TITLE_CHARS = 4  # shorter titles ("Up", "It") match too much prose


def title_key(title: str) -> str:
    """Lower-cased, a trailing qualifier dropped: "Charmed (TV series)" -> "charmed"."""
    return re.sub(r"\s*\([^()]*\)\s*$", "", title).strip().lower()


def mentions(text: str, title: str) -> bool:
    key = title_key(title)
    if len(key) < MIN_TITLE_CHARS:
        return False
    return re.search(r"(?<!\w)" + re.escape(key) + r"(?!\w)", text.lower()) is not None


def bridge_hop(hits: Sequence[Hit], links: int = 3) -> list[Hit]:
    """Reorder reranked ``hits`` (best first): the first, then up to ``links`` documents it names, then the rest."""
    if links <= 0 or len(hits) < 2:
        return list(hits)
    first = hits[0]
    moved: list[Hit] = []
    docs: set[str] = {first.chunk.doc_id}
    for h in hits[1:]:
        if len(moved) >= links:
            break
        c = h.chunk
        if c.doc_id not in docs and c.doc_title and mentions(first.chunk.text, c.doc_title):
            moved.append(h)
            docs.add(c.doc_id)
    if not moved:
        return list(hits)
    ids = {id(h) for h in moved}
    return [first, *moved, *(h for h in hits[1:] if id(h) not in ids)]
