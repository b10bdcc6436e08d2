"""Answerer node: a streamed answer with numbered citations, verified; an extractive answer when it fails."""

from __future__ import annotations

import logging
from typing import Any

from agents.answer import format_sources
from agents.cite import extractive_answer, verify_answer
from agents.deps import Deps
from agents.events import emit, ranked_hits
from agents.prompts import ANSWER_SYSTEM, ANSWER_USER
from agents.state import AgentState
from core.errors import RagentError
from core.llm import stream_chat
from core.types import Answer

logger = logging.getLogger(__name__)

NOT_FOUND = ("could not find", "cannot find", "can't find", "not contain", "no information", "unknown",
             "not mentioned", "does not say", "do not say")


async def answerer(state: AgentState, deps: Deps) -> dict[str, Any]:
    cfg = deps.config
    q = state["question"]
    hits = ranked_hits(state.get("evidence", []), cfg.answer_k)
    trace: list[dict[str, Any]] = []
    if not hits:
        ans = Answer(q, "I could not find anything in this workspace that answers the question; "
                        "ingest the relevant documents first.")
        return {"answer": ans.to_json(), "answer_source": "none", "trace": trace}
    msgs = [{"role": "system", "content": ANSWER_SYSTEM},
            {"role": "user", "content": ANSWER_USER.format(sources=format_sources(hits, cfg.source_chars),
                                                           question=q)}]
    raw = ""
    try:
        async for piece in stream_chat(deps.llm, msgs, max_tokens=cfg.answer_tokens):
            raw += piece
            emit({"type": "token", "text": piece})
    except RagentError as e:
        logger.warning("answer generation failed (%s); using the extractive answer", e)
        trace.append(emit({"type": "error", "message": f"answer generation failed: {e}"}))
    text, cites, dropped = verify_answer(raw.strip(), hits)
    refused = any(p in raw.lower() for p in NOT_FOUND)
    source = "llm"
    if not cites or refused or not all(c.verified for c in cites):
        text, cites = extractive_answer(q, hits)
        source = "extractive"
    elif dropped:
        text += " (Removed as unsupported by the sources: " + " / ".join(d[:80] for d in dropped) + ")"
    citations = [c.to_json() for c in cites]
    trace.append(emit({"type": "citations", "citations": citations}))
    ans = Answer(q, text, tuple(cites))
    return {"answer": ans.to_json() | {"raw": raw.strip(), "source": source, "dropped": dropped},
            "answer_source": source, "trace": trace}
