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


STOP = frozenset(
    "a an and are as at be been but by can did do does for from had has have he her his how i in is it its "
    "of on or she than that the their them then there these they this to was were what when where which who "
    "whom whose why will with you your also into about after before more most other such not no yes".split()
)


def content_words(text: str) -> set[str]:
    return {w for w in WORD_RE.findall(MARK_RE.sub(" ", text).lower()) if w not in STOP and len(w) > 1}


def support(claim: str, chunk_text: str) -> float:
    """Share of the claim's content words that occur in the chunk (0..1)."""
    words = content_words(claim)
    if not words:  # bare markers or filler claim nothing
        return 0.0
    return len(words & content_words(chunk_text)) / len(words)


def with_mark(sentence: str, n: int) -> str:
    """``sentence`` with ``[n]`` before its final punctuation: "It is 5 kW [1]." """
    m = re.match(r"^(.*?)([.!?]*)$", sentence.rstrip(), re.S)
    body, end = (m.group(1), m.group(2)) if m else (sentence, "")
    return f"{body} [{n}]{end}"


def verify_answer(text: str, hits: list[Hit], min_support: float = 0.5) -> tuple[str, list[Citation], list[str]]:
    """Keep the sentences the cited sources support; returns (clean text, citations, dropped sentences).

    A sentence with ``[n]`` markers needs ``min_support`` word overlap with one of the cited chunks; one
    without markers is kept (and cited) when some source supports it. Quotes are verified by ``verify``.
    """
    kept: list[str] = []
    dropped: list[str] = []
    for sent in sentences(text) or ([text] if text.strip() else []):
        marks = [int(m) for m in MARK_RE.findall(sent) if 1 <= int(m) <= len(hits)]
        pool = marks or list(range(1, len(hits) + 1))
        if not pool:
            dropped.append(sent)
            continue
        best = max(pool, key=lambda n: support(sent, hits[n - 1].chunk.text))
        if support(sent, hits[best - 1].chunk.text) < min_support:
            dropped.append(sent)
            continue
        kept.append(sent if marks else with_mark(sent, best))
    clean = " ".join(kept)
    cites = [c for c in citations_for(clean, hits)]
    return clean, cites, dropped


def extractive_answer(question: str, hits: list[Hit], max_sentences: int = 2) -> tuple[str, list[Citation]]:
    """The fallback: the evidence sentences sharing most words with the question, each cited verbatim."""
    qw = content_words(question)
    scored: list[tuple[float, int, str]] = []
    for n, h in enumerate(hits, start=1):
        for i, s in enumerate(sentences(h.chunk.text) or [h.chunk.text]):
            overlap = len(qw & content_words(s))
            scored.append((overlap + 0.01 / (n + i), n, s))
    scored.sort(key=lambda t: -t[0])
    picked: list[tuple[int, str]] = []
    for _, n, s in scored:
        if len(picked) >= max_sentences:
            break
        if all(n != m for m, _ in picked) or len(hits) == 1:
            picked.append((n, s[:400]))
    if not picked:
        return "I could not find the answer in the documents.", []
    text = " ".join(with_mark(s, n) for n, s in picked)
    cites = []
    for n, s in picked:
        c = hits[n - 1].chunk
        q = s[:300]
        cites.append(Citation(n, c.id, c.doc_title or c.source, c.page, q, verify(q, c.text), c.doc_id, c.bbox))
    return text, cites
