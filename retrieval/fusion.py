"""Reciprocal rank fusion of several ranked lists into one, deduplicated by chunk id.

Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms Condorcet and individual Rank Learning
Methods", SIGIR 2009: a document's fused score is the sum over lists of ``w / (k + rank)``, k = 60.
Ranks are 1-based; a list that does not contain the document contributes nothing. Only ranks matter, so
paths with incomparable scores (cosine, BM25, PageRank mass) fuse without calibration.

Example (k = 60, all weights 1)::

    dense:  [a, b, c]        sparse: [b, d]
    a: 1/61           = 0.016393
    b: 1/62 + 1/61    = 0.032522   <- found by both paths: first
    c: 1/63           = 0.015873
    d: 1/62           = 0.016129
    fused: [b, a, d, c]; b.paths == {"dense": 2, "sparse": 1}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from core.types import Hit


def rrf(
    ranked: Mapping[str, Sequence[Hit]], *, k: int = 60, weights: Mapping[str, float] | None = None,
    limit: int | None = None,
) -> list[Hit]:
    """Fuse ``{path: hits best-first}``; each fused hit keeps ``paths = {path: 1-based rank}``."""
    scores: dict[str, float] = {}
    paths: dict[str, dict[str, int]] = {}
    first: dict[str, Hit] = {}
    for path, hits in ranked.items():
        w = 1.0 if weights is None else float(weights.get(path, 1.0))
        seen: set[str] = set()
        rank = 0
        for h in hits:
            cid = h.chunk.id
            if cid in seen:  # a path listing a chunk twice counts once, at its best rank
                continue
            seen.add(cid)
            rank += 1
            scores[cid] = scores.get(cid, 0.0) + w / (k + rank)
            paths.setdefault(cid, {})[path] = rank
            first.setdefault(cid, h)
    order = sorted(scores, key=lambda c: (-scores[c], min(paths[c].values()), c))
    if limit is not None:
        order = order[:limit]
    return [Hit(chunk=first[c].chunk, score=scores[c], paths=paths[c]) for c in order]


def blend(hits: Sequence[Hit], weight: float, *, k: int = 60) -> list[Hit]:
    """Order reranked ``hits`` (given in their fused order, each with ``rerank_score``) by RRF of the
    cross-encoder's rank (weight 1) and the fused rank (``weight``): the recall paths' agreement keeps a say
    where the cross-encoder, trained on single-passage relevance, misjudges a multi-hop bridge passage.
    ``weight`` 0 is the cross-encoder's order (ties keep the fused order)."""
    ce = {h.chunk.id: r for r, h in enumerate(sorted(hits, key=lambda h: -(h.rerank_score or 0.0)), 1)}
    score = {h.chunk.id: 1 / (k + ce[h.chunk.id]) + weight / (k + r) for r, h in enumerate(hits, 1)}
    return sorted(hits, key=lambda h: -score[h.chunk.id])


_PLACEHOLDER = re.compile(r"^image on page \d+\s*")  # the header of an image chunk that has no caption
MIN_DUPLICATE_CHARS = 40  # shorter texts are never dropped as another hit's duplicate


def _body(hit: Hit) -> str:
    return _PLACEHOLDER.sub("", " ".join(hit.chunk.text.lower().split()))


def distinct(hits: Sequence[Hit], limit: int | None = None) -> list[Hit]:
    """``hits`` without the ones whose text (whitespace and case aside) is the same as, or inside, the text of a
    hit ranked above it. An image chunk's text is its caption + OCR + the nearby paragraph (the first 400
    chars); two images beside one paragraph, or an image and the paragraph's own chunk, gave the answer model
    the same passage two or three times in its five sources, and pushed a different one out. Stops at
    ``limit`` hits kept."""
    kept: list[Hit] = []
    bodies: list[str] = []
    for h in hits:
        if limit is not None and len(kept) >= limit:
            break
        b = _body(h)
        if len(b) >= MIN_DUPLICATE_CHARS and any(b in other for other in bodies):
            continue
        kept.append(h)
        bodies.append(b)
    return kept
