"""BM25 sparse vectors for Qdrant.

Documents get the BM25 term-frequency part, ``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avgdl))``;
queries get weight 1 per distinct term. Qdrant's ``Modifier.IDF`` multiplies in the collection-wide IDF at
query time, so the dot product is the BM25 score (Robertson & Zaragoza 2009). Term ids are stable hashes,
so no vocabulary has to be stored.

Tokens are Unicode words (any script), lower-cased after NFKC; Latin letters lose their accents ("Zürich" ->
"zurich", "Łukasz" -> "lukasz"). Han, kana and Hangul, written without spaces between words or with particles
glued to them, become overlapping character bigrams (Lucene's CJKAnalyzer): "보고서는" -> 보고, 고서, 서는, so the
query "보고서" matches. Pure ASCII text tokenises as it did before Unicode support (SPARSE_VERSION 1), so an
English index stays valid; a workspace with other scripts is re-indexed when its files are ingested again.

Example:
    >>> idx, val = bm25_document("the cat sat on the cat mat", avgdl=6)
    >>> len(idx) == 3  # cat, sat, mat ("the", "on" are stopwords)
    True
    >>> tokenize("Zürich 보고서는 2020년")
    ['zurich', '보고', '고서', '서는', '2020', '년']
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from collections import Counter

SPARSE_VERSION = 2  # bump when tokens change: the ingest recipe (and eval workspace keys) include it
ASCII_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")  # "o'brien" -> "o": the tail after an apostrophe is dropped
# a word: letters and digits of any script, plus the combining marks that Indic, Arabic and Hebrew words carry
_LETTER = r"(?:[^\W_]|[\u0300-\u036f\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0900-\u0dff])"
WORD_RE = re.compile(f"{_LETTER}+(?:['\u2019]{_LETTER}+)?")
# scripts written without spaces between words (or with particles glued on): Hangul, kana, Han
CJK = r"\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
CJK_RUN_RE = re.compile(f"[{CJK}]+|[^{CJK}]+")
CJK_CHAR_RE = re.compile(f"[{CJK}]")
LATIN_EXTRA = str.maketrans({"ß": "ss", "ł": "l", "ø": "o", "æ": "ae", "œ": "oe", "đ": "d", "ð": "d", "þ": "th",
                             "ı": "i"})
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


def _fold(word: str) -> str:
    """Latin letters without accents; other scripts as they are (NFKD would split Hangul into jamo)."""
    word = word.translate(LATIN_EXTRA)
    if word.isascii():
        return word
    out = []
    for ch in word:
        if "\u00c0" <= ch <= "\u024f" or "\u1e00" <= ch <= "\u1eff":
            out.append("".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)))
        else:
            out.append(ch)
    return "".join(out)


def cjk_terms(word: str) -> list[str]:
    """One word's terms: itself, or, where it holds CJK, its non-CJK parts and the bigrams of its CJK runs."""
    if not CJK_CHAR_RE.search(word):
        return [word]
    out: list[str] = []
    for run in CJK_RUN_RE.findall(word):
        if not CJK_CHAR_RE.match(run) or len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without stopwords; a light plural strip so 'models' matches 'model'."""
    if text.isascii():
        words = ASCII_WORD_RE.findall(text.lower())
    else:
        words = [_fold(w) for w in WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())]
    out = []
    for word in words:
        for tok in cjk_terms(word.split("'")[0].split("\u2019")[0]):
            if tok in STOPWORDS:
                continue
            if len(tok) > 4 and tok.endswith("s") and not tok.endswith("ss") and tok.isascii():
                tok = tok[:-1]
            out.append(tok)
    return out


def non_latin(text: str) -> bool:
    """Whether most of ``text``'s letters are outside the Latin script (Hangul, Han, Cyrillic, Arabic...).

    >>> non_latin("코로나-19 보고서는 몇 호인가?"), non_latin("Zürich COVID-19 report")
    (True, False)
    """
    letters = [c for c in text if c.isalpha()]
    other = sum(1 for c in letters if not (c < "\u0250" or "\u1e00" <= c <= "\u1eff"))
    return other * 2 > len(letters)


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
