"""Answerer node: the streamed answer call over the evidence (plus the facts the hops found and the thread's
earlier turns), then the claim check of ``agents.answer.finalize``."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from typing import Any

from agents.answer import NOT_FOUND, answer_messages, finalize, short_supported
from agents.deps import Deps
from agents.events import CitationsEvent, ErrorEvent, Event, TokenEvent, emit
from agents.evidence import naming, ranked_hits
from agents.state import AgentState
from core.errors import LLMUnavailableError, RagentError
from core.llm import stream_chat
from core.types import Answer, Hit

logger = logging.getLogger(__name__)
FIGURE_Q = re.compile(r"\b(figures?|fig\.|charts?|diagrams?|graphs?|plots?|images?|pictures?|photos?|screenshots?|"
                      r"maps?|drawings?|illustrations?|axis|axes|legend|shown|shows?|depicted)\b", re.I)
MAX_FIGURES = 2  # figures read by the vision model per answer


async def read_figures(question: str, hits: list[Hit], deps: Deps) -> list[Hit]:
    """For a question about a figure, chart or diagram: the top image hits get what the vision model reads in
    the figure for this question, as part of their text (so the answer can quote and cite it). Failures keep the
    hit as it was."""
    if deps.figures is None or not FIGURE_Q.search(question):
        return hits
    out, read = [], 0
    for h in hits:
        c = h.chunk
        if c.kind == "image" and c.image and read < MAX_FIGURES:
            read += 1
            try:
                seen = await asyncio.to_thread(deps.figures, c.doc_id, c.image, question)
            except RagentError as e:
                logger.warning("the vision model could not read figure %s (%s)", c.id, e)
                seen = ""
            if seen:
                h = replace(h, chunk=replace(c, text=f"{c.text}\nWhat the figure shows: {seen}"))
        out.append(h)
    return out


def _found(result: dict[str, Any] | None) -> tuple[str, str] | None:
    """(sub-question, short answer) of a hop's result when the hop found an answer."""
    fact = (result or {}).get("fact")
    return (str(fact[0]), str(fact[1])) if fact and fact[1] != NOT_FOUND else None


def facts_of(state: AgentState) -> list[tuple[str, str]]:
    """(sub-question, short answer) of every hop that found one, in plan order."""
    return [f for r in (state.get("results") or {}).values() if (f := _found(r))]


def final_hop(state: AgentState) -> tuple[str, str]:
    """(step id, filled question) of the multi-hop chain's last hop: the search that took an earlier hop's
    answer. Its answer is the answer to the whole question, and a small model answers it far more reliably than
    the whole question (it tends to repeat the first hop's answer otherwise)."""
    for s in reversed(state.get("plan") or []):
        if s.get("tool") == "search" and s.get("status") == "done" and any(
                ".a" in d or d.startswith("a") for d in s.get("depends_on", [])):
            return str(s["id"]), str((s.get("filled") or {}).get("query", ""))
    return "", ""


def bridges(state: AgentState, step_id: str) -> list[str]:
    """The short answers the chain's last hop ``step_id`` took from earlier hops (``{a1}`` -> "Uganda")."""
    results = state.get("results") or {}
    step = next((s for s in state.get("plan") or [] if s.get("id") == step_id), {})
    return [f[1] for d in step.get("depends_on", []) if (f := _found(results.get(d)))]


def answer_evidence(state: AgentState, k: int, focus: bool = False) -> list[Hit]:
    """The evidence the multi-hop path gathered, best first: every hop's hits interleaved by rank, the chain's last
    hop leading (``ragent eval retrieval --agent`` scores this ranking against the gold passages).

    ``focus`` (what the answerer reads): of those, only the passages that name the entity the last hop asked about,
    where any does. The last hop asks about the entity an earlier hop found ("Who is the opposition leader in
    Uganda?"), so its answer is in a passage about that entity; given a passage about another country's opposition
    leader beside it, the 1.5B answered from that one.
    """
    last_step = final_hop(state)[0] if facts_of(state) else ""
    hits = ranked_hits(state.get("evidence", []), 10 * k, first=last_step)
    names = bridges(state, last_step) if focus and last_step else []
    named = [h for h in hits if any(naming(h, n) for n in names)]
    return (named or hits)[:k]


async def answerer(state: AgentState, deps: Deps) -> dict[str, Any]:
    cfg = deps.config
    q = state.get("search_query") or state["question"]
    facts = facts_of(state)
    last_q = final_hop(state)[1] if facts else ""
    hits = answer_evidence(state, cfg.answer_k, focus=True)
    trace: list[Event] = []
    rnd = state.get("round")
    budget = state.get("budget_exhausted", "")
    if not hits:
        text = (f"The {budget} before any evidence was found; raise RAGENT_AGENT_TIME_BUDGET_S or ask again."
                if budget else "I could not find anything in this workspace that answers the question; "
                               "ingest the relevant documents first.")
        ans = Answer(q, text, short_answer=NOT_FOUND)
        return {"answer": ans.to_json(), "answer_source": "none", "answer_supported": False, "answered_round": rnd,
                "trace": trace}
    hits = await read_figures(state["question"], hits, deps)
    history = [(str(t["question"]), str(t["answer"])) for t in (state.get("history") or [])][-cfg.history_turns:]
    msgs = answer_messages(last_q or q, hits, max_chars=cfg.source_chars, facts=facts, history=history)
    raw = ""
    try:
        async for piece in stream_chat(deps.llm, msgs, max_tokens=cfg.answer_tokens):
            raw += piece
            emit(TokenEvent(type="token", text=piece, round=int(rnd or 0)))
    except LLMUnavailableError:
        raise
    except RagentError as e:
        logger.warning("answer generation failed (%s)", e)
        trace.append(emit(ErrorEvent(type="error", message=f"answer generation failed: {e}", error=type(e).__name__)))
    ans = finalize(q, raw, hits)
    supported = short_supported(ans.short_answer, hits)
    citations = [c.to_json() for c in ans.citations]
    trace.append(emit(CitationsEvent(type="citations", citations=citations)))
    out = ans.to_json() | {"raw": raw.strip(), "question": state["question"]}
    if budget:
        out["budget_exhausted"] = budget
    return {"answer": out, "answer_source": "llm" if raw else "none", "answer_supported": supported,
            "answered_round": rnd, "trace": trace}
