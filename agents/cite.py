"""Numbered citations: parse ``[n]`` markers, pick a quote from the cited chunk that supports the claim,
and verify the quote occurs in the chunk (normalised whitespace and case)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.types import Citation, Hit
from retrieval.sparse import CJK_CHAR_RE, cjk_terms

MARK_RE = re.compile(r"\[(\d{1,2})\]")
WORD_RE = re.compile(r"\w+")


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


ABBREVIATIONS = ("Mr", "Mrs", "Ms", "Dr", "St", "Jr", "Sr", "vs", "No", "Inc", "Ltd", "Co", "Fig", "e.g", "i.e")
# a full stop after an abbreviation or an initial ("Mr. Bill", "J. R. R. Tolkien") does not end a sentence
_NOT_AFTER = "".join(f"(?<!\\b{re.escape(a)}\\.)" for a in ABBREVIATIONS) + r"(?<!\b[A-Z]\.)"
SENTENCE_END = re.compile(rf"(?<=[.!?]){_NOT_AFTER}\s+|\n+")


def spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence or line of ``text``, blanks skipped."""
    out, start = [], 0
    for m in SENTENCE_END.finditer(text):
        if text[start:m.start()].strip():
            out.append((start, m.start()))
        start = m.end()
    if text[start:].strip():
        out.append((start, len(text)))
    return out


def sentences(text: str) -> list[str]:
    return [s for a, b in spans(text) if len(s := text[a:b].strip()) > 3]


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
                                verified=verify(quote, c.text), doc_id=c.doc_id, bbox=c.bbox,
                                image=bool(c.image)))
    return out


STOP = frozenset(
    "a an and are as at be been but by can did do does for from had has have he her his how i in is it its "
    "of on or she than that the their them then there these they this to was were what when where which who "
    "whom whose why will with you your also into about after before more most other such not no yes".split()
)


def word_set(text: str) -> set[str]:
    """Lower-case words; a word holding Han, kana or Hangul as its parts (``retrieval.sparse.cjk_terms``):
    "제1695호" gives "제", "1695", "호"."""
    return {t for w in WORD_RE.findall(text.lower()) for t in cjk_terms(w)}


def content_words(text: str) -> set[str]:
    """Lower-case words less stopwords and single characters; a word in Han, kana or Hangul gives its character
    bigrams (``retrieval.sparse.cjk_terms``), so "보고서는" (with a particle) meets "보고서"."""
    out: set[str] = set()
    for w in WORD_RE.findall(MARK_RE.sub(" ", text).lower()):
        if CJK_CHAR_RE.search(w):
            out.update(t for t in cjk_terms(w) if len(t) > 1)
        elif w not in STOP and len(w) > 1:
            out.add(w)
    return out


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


NUMBER_RE = re.compile(r"\d+(?:[.,]\d+)*")
NAME_RE = re.compile(r"\b[A-Z][\w'’-]*")


def stem(word: str) -> str:
    """A crude stem for overlap counting ("directed", "director" -> "direc"): paraphrase keeps its root."""
    return word[:5] if len(word) > 5 else word


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in NUMBER_RE.findall(text)}


def claim_terms(sentence: str) -> tuple[set[str], set[str], set[str]]:
    """The checkable parts of a claim: numbers, names (capitalised words after the first) and key terms
    (stemmed content words)."""
    body = MARK_RE.sub(" ", sentence).strip()
    numbers = _numbers(body)
    caps = [m for m in NAME_RE.finditer(body) if m.start() > 0]  # the first word is capitalised anyway
    names = {w for m in caps for w in WORD_RE.findall(m.group(0).lower()) if not w.isdigit() and w not in STOP}
    terms = {stem(w) for w in content_words(body) if not w.isdigit()}
    return numbers, names, terms


@dataclass(frozen=True)
class ClaimCheck:
    """Whether a sentence's numbers, names and key terms occur in the text it cites."""

    ok: bool
    support: float  # share of key terms found (0..1)
    missing: tuple[str, ...] = ()  # numbers and names not found, then missing key terms


def check_claim(sentence: str, source_text: str, min_support: float = 0.5) -> ClaimCheck:
    """The claim-level check: every number and name of ``sentence`` must occur in ``source_text`` and at
    least ``min_support`` of its key terms (stemmed content words).

    Example: "The NW-200 delivers 5 kW [1]." against "NW-200 rated output: 5 kW" passes; against
    "NW-200 rated output: 3 kW" it fails with missing ("5",).
    """
    numbers, names, terms = claim_terms(sentence)
    if not (numbers or names or terms):
        return ClaimCheck(False, 0.0, ())
    src_numbers = _numbers(source_text)
    src_words = set(WORD_RE.findall(source_text.lower()))
    src_terms = {stem(w) for w in word_set(source_text)}  # CJK words split, as the claim's terms are
    missing = sorted(numbers - src_numbers) + sorted(names - src_words)
    found = len(terms & src_terms)
    sup = found / len(terms) if terms else 1.0
    missing += sorted(terms - src_terms)[: 6]
    ok = not (numbers - src_numbers) and not (names - src_words) and sup >= min_support
    return ClaimCheck(ok, round(sup, 3), tuple(missing))


def _source(hits: list[Hit], cited: list[int]) -> str:
    return "\n".join(hits[n - 1].chunk.doc_title + "\n" + hits[n - 1].chunk.text for n in cited)


def _needed(sent: str, cited: list[int], hits: list[Hit]) -> list[int]:
    """``cited`` (which together support ``sent``) less each source the claim still passes without, the
    weakest tried first: a source that adds nothing the claim needs is not cited."""
    out = list(cited)
    for n in sorted(cited, key=lambda n: support(sent, hits[n - 1].chunk.text)):
        rest = [m for m in out if m != n]
        if rest and check_claim(sent, _source(hits, rest)).ok:
            out = rest
    return out


def recite(sent: str, cited: list[int], hits: list[Hit]) -> list[int] | None:
    """Sources that support ``sent``: its own markers when they pass (less those it needs not), else the single
    source that does, else its markers plus the one source that fills the gap, else two sources together; None
    when nothing does."""
    if cited and check_claim(sent, _source(hits, cited)).ok:
        return _needed(sent, cited, hits)
    ranked = sorted(range(1, len(hits) + 1), key=lambda n: -support(sent, hits[n - 1].chunk.text))
    for n in ranked:
        if check_claim(sent, _source(hits, [n])).ok:
            return [n]
    for n in (n for n in ranked if n not in cited):
        if cited and check_claim(sent, _source(hits, [*cited, n])).ok:
            return _needed(sent, [*cited, n], hits)
    for i, a in enumerate(ranked[:3]):  # a sentence joining two facts from two sources
        for b in ranked[i + 1: 4]:
            if check_claim(sent, _source(hits, sorted([a, b]))).ok:
                return sorted([a, b])
    return None


@dataclass(frozen=True)
class Verified:
    """An explanation after the claim check: kept sentences (re-cited where needed), their citations, the
    dropped sentences, and the share of the draft's cited sentences that passed as written."""

    text: str
    citations: list[Citation]
    dropped: list[str]
    draft_faithfulness: float | None


def verify_answer(text: str, hits: list[Hit]) -> Verified:
    """Check each sentence's claim against the chunk(s) it cites (``check_claim``); a sentence that fails is
    re-cited to the source(s) that support it or dropped. Citation quotes are then chosen from the cited
    chunks and verified verbatim."""
    kept: list[str] = []
    dropped: list[str] = []
    passed = judged = 0
    for sent in sentences(attach_trailing_marks(text)) or ([text] if text.strip() else []):
        marks = list(dict.fromkeys(int(m) for m in MARK_RE.findall(sent) if 1 <= int(m) <= len(hits)))
        if marks:
            judged += 1
            passed += check_claim(sent, _source(hits, marks)).ok
        cited = recite(sent, marks, hits) if hits else None
        body = re.sub(r"\s+([.!?,;:])", r"\1", MARK_RE.sub("", sent)).strip()
        if cited is None:
            dropped.append(body)
            continue
        for n in cited:
            body = with_mark(body, n)
        kept.append(body)
    clean = " ".join(kept)
    return Verified(clean, citations_for(clean, hits), dropped, passed / judged if judged else None)


def faithfulness(text: str, citations: list[Citation], hits: list[Hit]) -> float | None:
    """Share of the answer's cited sentences whose claim passes ``check_claim`` against what they cite."""
    by_n = {n: h for n, h in enumerate(hits, start=1)}
    judged = ok = 0
    for sent in sentences(text):
        marks = [int(m) for m in MARK_RE.findall(sent) if int(m) in by_n]
        if not marks:
            continue
        judged += 1
        ok += check_claim(sent, _source(hits, marks)).ok
    return ok / judged if judged else None
