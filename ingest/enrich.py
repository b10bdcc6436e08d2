"""Contextual enrichment (Anthropic, "Introducing Contextual Retrieval", 2024): the LLM writes a 1-2 sentence
context for each chunk given its document; the context is prepended for embedding and BM25
(``Chunk.index_text``) while the chunk's own text is what gets cited.

- The document part of the prompt comes first and is the same for every chunk of a document, so vLLM's prefix
  cache reuses it; it is cut to ``doc_chars`` (default 6,000 characters ~ 1,500 tokens, which fits a 4k
  context with the chunk and the answer). Long documents are therefore situated by their beginning.
- Results are cached in SQLite by (model, document hash, chunk text) so re-ingesting calls the LLM for new
  chunks only.
- An LLM failure gives that chunk no context (with a warning); it never fails the document.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Sequence

from core.llm import LLM
from core.sqlite import SqliteStore
from ingest.prompts import CONTEXT_CHUNK, CONTEXT_DOC, CONTEXT_SYSTEM

logger = logging.getLogger(__name__)


class ContextCache(SqliteStore):
    """SQLite key -> context text; safe across threads of one process and across runs."""

    schema = "CREATE TABLE IF NOT EXISTS contexts (key TEXT PRIMARY KEY, context TEXT NOT NULL)"

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT context FROM contexts WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, context: str) -> None:
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO contexts VALUES (?, ?)", (key, context))


def clean_context(text: str, max_chars: int = 400) -> str:
    """First two sentences of the reply, without quotes/labels, at most ``max_chars``."""
    text = re.sub(r"</?context>", " ", text.strip().strip('"'), flags=re.I)
    text = re.sub(r"^\s*context\s*:\s*", "", text, flags=re.I)
    text = re.sub(r"\s+", " ", text).strip().strip('"')
    sents = re.split(r"(?<=[.!?])\s+", text)
    return " ".join(sents[:2])[:max_chars].strip()


class Enricher:
    """Writes chunk contexts with an LLM, through a cache. ``concurrency`` requests are in flight at once
    (vLLM batches them; they share the cached document prefix)."""

    def __init__(self, llm: LLM, cache: ContextCache, *, model_key: str = "", doc_chars: int = 6000,
                 concurrency: int = 4, max_tokens: int = 96) -> None:
        self.llm = llm
        self.cache = cache
        self.model_key = model_key
        self.doc_chars = doc_chars
        self.concurrency = concurrency
        self.max_tokens = max_tokens
        self.failures = 0
        self.llm_calls = 0
        self.max_failures_in_a_row = 3  # then the LLM is taken as down: no more calls this run
        self._in_a_row = 0

    def key(self, doc_hash: str, text: str) -> str:
        return hashlib.sha256(f"{self.model_key}\x1f{doc_hash}\x1f{text}".encode()).hexdigest()

    def messages(self, title: str, document: str, chunk: str) -> list[dict[str, str]]:
        doc = document[: self.doc_chars]
        prompt = CONTEXT_DOC.format(title=title, document=doc) + "\n\n" + CONTEXT_CHUNK.format(chunk=chunk)
        return [{"role": "system", "content": CONTEXT_SYSTEM}, {"role": "user", "content": prompt}]

    async def contexts(self, title: str, document: str, doc_hash: str, texts: Sequence[str],
                       progress: Callable[[int], None] | None = None) -> list[str]:
        """One context per text ('' where the LLM failed), cached by content."""
        sem = asyncio.Semaphore(max(1, self.concurrency))

        async def one(text: str) -> str:
            k = self.key(doc_hash, text)
            hit = self.cache.get(k)
            if hit is not None:
                return hit
            async with sem:
                if self._in_a_row >= self.max_failures_in_a_row:
                    self.failures += 1
                    return ""
                try:
                    self.llm_calls += 1
                    reply = await self.llm.chat(self.messages(title, document, text), max_tokens=self.max_tokens)
                except Exception as e:  # any LLM failure: no context for this chunk, never a failed document
                    self.failures += 1
                    self._in_a_row += 1
                    logger.warning("enrichment failed for a chunk of %r (%s: %s); indexing it without context%s",
                                   title, type(e).__name__, e,
                                   "; giving up on enrichment for this run" if self._in_a_row >= 3 else "")
                    return ""
            self._in_a_row = 0
            ctx = clean_context(reply)
            self.cache.put(k, ctx)
            return ctx

        async def tracked(text: str) -> str:
            ctx = await one(text)
            if progress is not None:
                progress(1)
            return ctx

        return list(await asyncio.gather(*(tracked(t) for t in texts)))
