"""The answer contract: one answer call over numbered sources gives a short answer and an explanation whose
sentences cite their sources; the claim check (``agents.cite``) keeps, re-cites or drops each sentence.

``rag_answer`` is the one-search + one-call path (the ``rag`` system of ``ragent eval answers`` and the single-
fact route of the agent); the agent's answerer uses ``answer_messages`` + ``finalize`` the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from agents.cite import (
    MARK_RE,
    citations_for,
    content_words,
    faithfulness,
    sentences,
    verify_answer,
    with_mark,
    word_set,
)
from agents.excerpt import SLACK, excerpt, rarity
from agents.prompts import (
    ANSWER_EXAMPLE_REPLY,
    ANSWER_EXAMPLE_USER,
    ANSWER_FACTS,
    ANSWER_HISTORY,
    ANSWER_SYSTEM,
    ANSWER_USER,
)
from core.llm import LLM, Message, stream_chat
from core.types import Answer, Chunk, Hit
from retrieval.searcher import Searcher

NOT_FOUND = "not found"
REFUSALS = ("not found", "could not find", "cannot find", "can't find", "not contain", "no information", "unknown",
            "not mentioned", "does not say", "do not say", "not specified", "not provided", "not stated", "n/a")
YES_NO = ("yes", "no")
# said instead of an explanation when the short answer is in no source (the model's own knowledge, or a name from
# the prompt's worked example): the answer stays, marked, so a reader knows it has no citation behind it
UNVERIFIED = 'No source passage states "{short}": treat this answer as unverified.'
MAX_SHORT_WORDS = 30  # a bound on a run-on reply; phrase answers (definitions, purposes) run to 25 words
SECTION_CHARS = 120  # of the section heading shown with a source
# how sources are shown and short answers bounded (a key of the answers eval's cache)
ANSWER_VERSION = "excerpt-4 short-30 section records"


def section(c: Chunk) -> str:
    """The heading a chunk sits under (its deepest one, other than the document's title), bounded: what the
    chunk is about when its text does not say ("Limitations"; the author line over "IBM Research, USA")."""
    head = next((h for h in reversed(c.heading_path) if h.strip() and h.strip() != c.doc_title.strip()), "")
    head = " ".join(head.split())
    return head if len(head) <= SECTION_CHARS else head[:SECTION_CHARS].rsplit(" ", 1)[0] + " \u2026"


def format_sources(hits: Sequence[Hit], max_chars: int = 600, question: str = "") -> str:
    """Numbered sources, each headed by its document, page and section; of a chunk over ``max_chars``, the
    excerpt that best covers ``question``."""
    texts = [h.chunk.text for h in hits]
    weight = rarity(texts) if any(len(t) > max_chars * SLACK for t in texts) else None  # only an excerpt reads it
    parts = []
    for i, h in enumerate(hits, start=1):
        c = h.chunk
        sec = section(c)
        where = ", ".join(p for p in (c.doc_title, f"p. {c.page}" if c.page else "",
                                      f'section "{sec}"' if sec else "") if p)
        parts.append(f"[{i}] ({where}) {excerpt(c.text, question, max_chars, weight)}")
    return "\n\n".join(parts)


def answer_messages(question: str, hits: Sequence[Hit], *, max_chars: int = 600,
                    facts: Sequence[tuple[str, str]] = (), history: Sequence[tuple[str, str]] = ()) -> list[Message]:
    """System prompt + worked example (a stable prefix), then the sources, known facts, earlier turns (as many
    as the caller passes) and the question."""
    context = ""
    if history:
        context += ANSWER_HISTORY.format(turns="\n".join(f"Q: {q}\nA: {a}" for q, a in history))
    if facts:
        context += ANSWER_FACTS.format(facts="\n".join(f"- {q} {a}" for q, a in facts))
    return [{"role": "system", "content": ANSWER_SYSTEM},
            {"role": "user", "content": ANSWER_EXAMPLE_USER},
            {"role": "assistant", "content": ANSWER_EXAMPLE_REPLY},
            {"role": "user", "content": ANSWER_USER.format(sources=format_sources(hits, max_chars, question),
                                                           context=context, question=question)}]


_ANSWER_LINE = re.compile(r"(?im)^[\s*#>_-]*(?:short\s+|final\s+)?answer[\s*_]*:[\s*_]*(.*)$")
_EXPLAIN = re.compile(r"(?is)^[\s*#>_-]*explanation[\s*_]*:[\s*_]*(.*)$", re.M)


def clean_short(text: str) -> str:
    """The short answer as a user reads it: no markers, quotes, lead-ins or trailing full stop; a few words."""
    s = MARK_RE.sub("", text).strip().strip("\"'\u201c\u201d*_ ")
    s = re.sub(r"(?i)^(the answer is|answer is|it is|it was)\s+", "", s).strip()
    s = re.sub(r"\s+", " ", s).rstrip(" .;,")
    if any(r in s.lower() for r in REFUSALS) and len(s.split()) <= 8:
        return NOT_FOUND
    if s.lower().rstrip("!.") in YES_NO:
        return s.lower().rstrip("!.")
    words = s.split()
    return " ".join(words[:MAX_SHORT_WORDS]) if words else NOT_FOUND


def parse_reply(raw: str) -> tuple[str, str]:
    """``Answer: X`` / ``Explanation: ...`` -> (short answer, explanation). A reply without the format gives
    its first sentence as the short answer and the whole reply as the explanation."""
    text = raw.strip()
    m = _ANSWER_LINE.search(text)
    e = _EXPLAIN.search(text)
    if m:
        expl = e.group(1).strip() if e else (text[:m.start()] + text[m.end():]).strip()
        if expl and not MARK_RE.sub("", m.group(1)).strip(" *_.,;"):  # "Answer: [2]": the answer is explained
            return clean_short((sentences(expl) or [expl])[0]), expl
        return clean_short(m.group(1)), expl
    if e and text[:e.start()].strip():  # "Lake Oesa\nExplanation: ...": the label left off the answer line
        return clean_short(text[:e.start()]), e.group(1).strip()
    first = (sentences(text) or [text])[0]
    return clean_short(first), text


def short_supported(short: str, hits: Sequence[Hit]) -> bool:
    """Whether the short answer's words occur in the evidence (yes/no and "not found" need no support)."""
    if short.lower() in (*YES_NO, NOT_FOUND):
        return True
    words = word_set(short) - {"the", "a", "an", "of", "and", "in"}
    if not words:
        return False
    have = word_set(" ".join(f"{h.chunk.doc_title} {h.chunk.text}" for h in hits))
    return len(words & have) / len(words) >= 0.5 and all(w in have for w in words if w.isdigit())


def evidence_sentence(short: str, question: str, hits: Sequence[Hit]) -> tuple[int, str] | None:
    """The source sentence that holds the short answer and shares most words with the question."""
    sw = word_set(short)
    qw = content_words(question)
    best: tuple[float, int, str] | None = None
    for n, h in enumerate(hits, start=1):
        for s in sentences(h.chunk.text) or [h.chunk.text]:
            words = word_set(s)
            if sw and not sw <= words:
                continue
            score = len(qw & content_words(s)) + 0.01 / n
            if best is None or score > best[0]:
                best = (score, n, s[:400])
    return (best[1], best[2]) if best else None


def finalize(question: str, raw: str, hits: Sequence[Hit]) -> Answer:
    """Parse the reply and check its claims: the explanation keeps only sentences its citations support (re-
    cited where another source supports them); a supported short answer whose explanation was all dropped is
    explained by the source sentence that holds it; one that no source holds is marked unverified (``UNVERIFIED``)
    in place of an explanation that was all dropped."""
    hits = list(hits)
    short, expl = parse_reply(raw)
    v = verify_answer(expl, hits)
    text, cites = v.text, v.citations
    if short not in (*YES_NO, NOT_FOUND) and not cites:
        if short_supported(short, hits):
            found = evidence_sentence(short, question, hits)
            if found is not None:
                text = with_mark(found[1], found[0])
                cites = citations_for(text, hits)
        elif not text:
            text = UNVERIFIED.format(short=short)
    if short == NOT_FOUND and not text:
        text = "The retrieved passages do not contain the answer."
    return Answer(question, text, tuple(cites), short_answer=short, dropped=tuple(v.dropped),
                  faithfulness=faithfulness(text, cites, hits))


async def rag_answer(retriever: Searcher, llm: LLM, workspace: str, question: str, *, k: int = 5,
                     max_chars: int = 600, max_tokens: int = 96,
                     on_token: Callable[[str], None] | None = None) -> tuple[Answer, list[Hit]]:
    """One hybrid search + one (streamed) answer call, checked: the baseline the agent must beat.
    ``on_token`` receives each piece of the draft as the LLM writes it."""
    hits = await retriever.search(workspace, question, k=k)
    if not hits:
        return Answer(question, "No documents in this workspace match the question; ingest some first.",
                      short_answer=NOT_FOUND), hits
    raw = ""
    async for piece in stream_chat(llm, answer_messages(question, hits, max_chars=max_chars), max_tokens=max_tokens):
        raw += piece
        if on_token is not None:
            on_token(piece)
    return finalize(question, raw, hits), hits
