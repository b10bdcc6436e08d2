"""BM25 sparse vectors for Qdrant.

Documents get the BM25 term-frequency part, ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl))``;
queries get weight 1 per distinct term. Qdrant's ``Modifier.IDF`` multiplies in the collection-wide IDF at
query time, so the dot product is the BM25 score (Robertson & Zaragoza 2009). Term ids are stable hashes,
so no vocabulary has to be stored.

Example:
    >>> idx, val = bm25_document("the cat sat on the cat mat", avgdl=6)
    >>> len(idx) == 3  # cat, sat, mat ("the", "on" are stopwords)
    True
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
STOPWORDS = frozenset(
    (
        "a about above after again against all am an and any are as at be because been before being below "
        "between both but by can did do does doing down during each few for from further had has have having "
        "he her here hers herself him himself his how i if in into is it its itself just me more most my "
        "myself no nor not now of off on once only or other our ours ourselves out over own same she should "
        "so some such than that the their theirs them themselves then there these they this those through to "
        "too under until up very was we were what when where which while who whom why will with you your "
        "yours yourself yourselves s t don "
    ).split()
)

SparseVec = tuple[list[int], list[float]]


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stopwords; a light plural strip so 'models' matches 'model'."""
    out = []
    for tok in TOKEN_RE.findall(text.lower()):
        tok = tok.split("'")[0]
        if tok in STOPWORDS or not tok:
            continue
        if len(tok) > 4 and tok.endswith("s") and not tok.endswith("ss"):
            tok = tok[:-1]
        out.append(tok)
    return out


def term_id(term: str) -> int:
    return zlib.crc32(term.encode("utf-8")) & 0x7FFFFFFF


def bm25_document(text: str, *, k1: float = 1.2, b: float = 0.75, avgdl: float = 120.0) -> SparseVec:
    toks = tokenize(text)
    if not toks:
        return [], []
    tf = Counter(term_id(t) for t in toks)
    norm = k1 * (1 - b + b * len(toks) / avgdl)
    idx = sorted(tf)
    return idx, [tf[i] * (k1 + 1) / (tf[i] + norm) for i in idx]


def bm25_query(text: str) -> SparseVec:
    idx = sorted({term_id(t) for t in tokenize(text)})
    return idx, [1.0] * len(idx)
