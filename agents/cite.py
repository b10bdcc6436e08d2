"""Numbered citations: parse ``[n]`` markers, pick a quote from the cited chunk that supports the claim,
and verify the quote occurs in the chunk (normalised whitespace and case)."""

from __future__ import annotations

import re

from core.types import Citation, Hit

MARK_RE = re.compile(r"\[(\d{1,2})\]")
WORD_RE = re.compile(r"\w+")


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 3]


def best_quote(claim: str, chunk_text: str, max_chars: int = 300) -> str:
    """The chunk sentence sharing most words with ``claim`` (a verbatim span of the chunk)."""
    words = set(WORD_RE.findall(claim.lower()))
    sents = sentences(chunk_text) or [chunk_text]
    best = max(sents, key=lambda s: len(words & set(WORD_RE.findall(s.lower()))))
    return best[:max_chars]


def verify(quote: str, chunk_text: str) -> bool:
    return bool(quote.strip()) and normalise(quote) in normalise(chunk_text)


def citations_for(answer: str, hits: list[Hit]) -> list[Citation]:
    """One citation per distinct ``[n]`` in ``answer`` that points at a real source."""
    out: list[Citation] = []
    seen: set[int] = set()
    for claim in sentences(answer) or [answer]:
        for m in MARK_RE.finditer(claim):
            n = int(m.group(1))
            if n in seen or not 1 <= n <= len(hits):
                continue
            seen.add(n)
            c = hits[n - 1].chunk
            quote = best_quote(MARK_RE.sub("", claim), c.text)
            out.append(Citation(n=n, chunk_id=c.id, doc=c.doc_title or c.source, page=c.page, quote=quote,
                                verified=verify(quote, c.text), doc_id=c.doc_id, bbox=c.bbox))
    return out
