"""Retrieve-then-answer with numbered, verified citations (the straight path under the agent)."""

from __future__ import annotations

from agents.cite import best_quote, citations_for, verify
from agents.prompts import ANSWER_SYSTEM, ANSWER_USER
from core.llm import LLM
from core.types import Answer, Citation, Hit
from retrieval.retriever import Retriever


def format_sources(hits: list[Hit], max_chars: int = 900) -> str:
    parts = []
    for i, h in enumerate(hits, start=1):
        c = h.chunk
        where = f"{c.doc_title}, p. {c.page}" if c.page else c.doc_title
        parts.append(f"[{i}] ({where}) {c.text[:max_chars]}")
    return "\n\n".join(parts)


async def answer_question(retriever: Retriever, llm: LLM, workspace: str, question: str, k: int = 4) -> Answer:
    hits = await retriever.search(workspace, question, k=k)
    if not hits:
        return Answer(question, "No documents in this workspace match the question; ingest some first.")
    msgs = [
        {"role": "system", "content": ANSWER_SYSTEM},
        {"role": "user", "content": ANSWER_USER.format(sources=format_sources(hits), question=question)},
    ]
    text = (await llm.chat(msgs)).strip()
    cites = citations_for(text, hits)
    if not cites:  # the model forgot its markers: cite the best-matching top source
        c = hits[0].chunk
        quote = best_quote(text or question, c.text)
        cites = [Citation(1, c.id, c.doc_title or c.source, c.page, quote, verify(quote, c.text), c.doc_id, c.bbox)]
        text = f"{text} [1]"
    return Answer(question, text, tuple(cites))
