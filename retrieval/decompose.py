"""Query decomposition: the LLM splits a multi-hop question into standalone sub-queries (JSON schema).

Only questions that look multi-hop are sent (``looks_complex``: cheap, no model); the caller treats any LLM
failure as "path skipped", never as a failed search.
"""

from __future__ import annotations

import logging
import re

from pydantic import BaseModel, Field

from core.llm import LLM, chat_json
from retrieval.prompts import DECOMPOSE_SYSTEM, DECOMPOSE_USER

logger = logging.getLogger(__name__)

MULTI_HOP_CUES = re.compile(
    r"\b(who|whose|which|what|where|when)\b.*\b(of|by|in|for|from|with|that|whose|than|and|both)\b"
    r"|\b(both|same|also|compared?|older|younger|earlier|later|before|after|first)\b|'s\b",
    re.IGNORECASE,
)


class Decomposition(BaseModel):
    queries: list[str] = Field(default_factory=list, max_length=6)


def looks_complex(question: str, min_words: int = 8) -> bool:
    """True for questions long enough and with a cue of composition (relative clause, possessive, comparison)."""
    words = question.split()
    return len(words) >= min_words and bool(MULTI_HOP_CUES.search(question))


async def decompose(llm: LLM, question: str, max_queries: int = 4) -> list[str]:
    """Sub-queries for ``question`` (without the question itself); raises ``LLMError`` on failure."""
    msgs = [{"role": "system", "content": DECOMPOSE_SYSTEM},
            {"role": "user", "content": DECOMPOSE_USER.format(question=question)}]
    out = await chat_json(llm, msgs, Decomposition, max_tokens=160)
    seen = {question.strip().lower()}
    subs = []
    for q in out.queries:
        q = q.strip()
        if q and q.lower() not in seen:
            seen.add(q.lower())
            subs.append(q)
    return subs[:max_queries]
