"""Numbered citations: parse ``[n]`` markers, pick a quote from the cited chunk that supports the claim,
and verify the quote occurs in the chunk (normalised whitespace and case)."""

from __future__ import annotations

import re

from core.types import Citation, Hit

MARK_RE = re.compile(r"\[(\d{1,2})\]")
WORD_RE = re.compile(r"\w+")


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "vs", "No", "Inc", "Ltd", "Co", "Fig", "e.g", "i.e")
# a full stop after an abbreviation or an initial ("Mr. Bill", "J. R. R. Tolkien") does not end a sentence
_NOT_AFTER = "".join(f"(?<!\\b{re.escape(a)}\\.)" for a in ABBREVIATIONS) + r"(?<!\b[A-Z]\.)"
SENTENCE_END = re.compile(rf"(?<=[.!?]){_NOT_AFTER}\s+|\n+")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if len(s.strip()) > 3]


def best_quote(claim: str, chunk_text: str, max_chars: int = 300) -> str:
    """The chunk sentence sharing most words with ``claim`` (a verbatim span of the chunk)."""
    words, key_words = set(WORD_RE.findall(claim.lower())), content_words(claim)
    sents = sentences(chunk_text) or [chunk_text]
    best = max(sents, key=lambda s: (len(key_words & content_words(s)), len(words & set(WORD_RE.findall(s.lower())))))
    return best[:max_chars]


def verify(quote: str, chunk_text: str) -> bool:
    return bool(quote.strip()) and normalise(quote) in normalise(chunk_text)


def citations_for(answer: str, hits: list[Hit]) -> list[Citation]:
    """One citation per distinct ``[n]`` in ``answer`` that points at a real source."""
    out: list[Citation] = []
    seen: set[int] = set()
    for claim in sentences(answer) or [answer]:
        covered: set[str] = set()  # words an earlier marker of this claim already quoted
        for m in MARK_RE.finditer(claim):
            n = int(m.group(1))
            if n in seen or not 1 <= n <= len(hits):
                continue
            seen.add(n)
            c = hits[n - 1].chunk
            words = set(WORD_RE.findall(MARK_RE.sub("", claim).lower()))
            quote = best_quote(" ".join(words - covered) or claim, c.text)
            covered |= set(WORD_RE.findall(quote.lower()))
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


TRAILING_MARKS_RE = re.compile(r"([.!?])[ \t]*((?:\[\d{1,2}\][ \t]*)+)")


def attach_trailing_marks(text: str) -> str:
    """Move markers written after the full stop onto their sentence: "It is 5 kW. [1]" -> "It is 5 kW [1]." """
    def move(m: re.Match[str]) -> str:
        marks = " ".join(f"[{n}]" for n in MARK_RE.findall(m.group(2)))
        return f" {marks}{m.group(1)} "

    return TRAILING_MARKS_RE.sub(move, text).strip()


def missing_source(sent: str, cited: list[int], hits: list[Hit], min_words: int = 2) -> int | None:
    """The uncited source that supports the claim words the cited sources lack (a sentence joining two facts
    from two pages cites both), or None."""
    have: set[str] = set()
    for n in cited:
        have |= content_words(hits[n - 1].chunk.text)
    missing = content_words(sent) - have
    if len(missing) < min_words:
        return None
    best, best_cover = None, 0
    for n in range(1, len(hits) + 1):
        if n not in cited:
            cover = len(missing & content_words(hits[n - 1].chunk.text))
            if cover > best_cover:
                best, best_cover = n, cover
    return best if best_cover >= max(min_words, (len(missing) + 1) // 2) else None


def verify_answer(text: str, hits: list[Hit], min_support: float = 0.5) -> tuple[str, list[Citation], list[str]]:
    """Keep the sentences the cited sources support; returns (clean text, citations, dropped sentences).

    A sentence with ``[n]`` markers needs ``min_support`` word overlap with its cited chunks together; one
    without markers is kept (and cited) when some source supports it. A kept sentence whose remaining words
    come from another source gets that source's marker too. Quotes are verified by ``verify``.
    """
    kept: list[str] = []
    dropped: list[str] = []
    text = attach_trailing_marks(text)
    for sent in sentences(text) or ([text] if text.strip() else []):
        marks = list(dict.fromkeys(int(m) for m in MARK_RE.findall(sent) if 1 <= int(m) <= len(hits)))
        if not marks and hits:
            marks = [max(range(1, len(hits) + 1), key=lambda n: support(sent, hits[n - 1].chunk.text))]
            sent = with_mark(MARK_RE.sub("", sent).rstrip(), marks[0])
        extra = missing_source(sent, marks, hits) if marks else None
        cited = marks + ([extra] if extra is not None else [])
        if not cited or support(sent, " ".join(hits[n - 1].chunk.text for n in cited)) < min_support:
            dropped.append(sent)
            continue
        kept.append(sent if extra is None else with_mark(sent, extra))
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
