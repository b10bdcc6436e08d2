"""Multi-turn: the first and last nodes of the graph.

``rewrite`` turns a follow-up ("and its warranty?", "what about the second one?") into a standalone question
before retrieval: a question with no reference to earlier turns is used as is (no LLM call); one with a
pronoun or an elliptical opening is rewritten by the LLM from the thread's last turns, or, when that fails,
searched together with the previous question. ``finish`` picks the final answer and appends the turn to the
thread's history (kept by the checkpointer across the questions of a thread).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from agents.answer import NOT_FOUND
from agents.deps import Deps
from agents.events import RewriteEvent, emit
from agents.prompts import REWRITE_SYSTEM, REWRITE_USER
from agents.state import RESET, AgentState
from core.errors import LLMUnavailableError, RagentError

logger = logging.getLogger(__name__)

_REFERS = re.compile(r"\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|him|his|she|her|hers|"
                     r"former|latter|same|there|previous|second|third)\b", re.I)
_ELLIPTIC = re.compile(r"^\s*(and|but|also|so|or|what about|how about|and what|what of|why|how come)\b", re.I)
MAX_QUESTION_CHARS = 500
MAX_TURNS = 20  # turns a thread's state keeps


def follows_up(question: str) -> bool:
    """Whether ``question`` leans on an earlier turn: a pronoun or reference word, an elliptical opening, or
    three words or fewer."""
    return bool(_REFERS.search(question) or _ELLIPTIC.match(question) or len(question.split()) <= 3)


def turns_text(history: list[dict[str, Any]], n: int) -> str:
    return "\n".join(f"User: {t['question']}\nAssistant: {t['answer']}" for t in history[-n:])


async def rewrite(state: AgentState, deps: Deps) -> dict[str, Any]:
    q = state["question"]
    history = list(state.get("history") or [])
    if not history or not follows_up(q):
        return {"search_query": q}
    turns = turns_text(history, deps.config.history_turns)
    how = "llm"
    try:
        out = await deps.llm.chat([{"role": "system", "content": REWRITE_SYSTEM},
                                   {"role": "user", "content": REWRITE_USER.format(turns=turns, question=q)}],
                                  max_tokens=64)
        standalone = " ".join(out.strip().strip('"').split())[:MAX_QUESTION_CHARS]
        if len(standalone) < 4:
            raise RagentError("empty rewrite")
    except LLMUnavailableError:
        raise
    except RagentError as e:
        logger.info("question rewrite failed (%s); searching with the previous question too", e)
        how = "fallback"
        standalone = f"{q} ({history[-1].get('search_query') or history[-1]['question']})"[:MAX_QUESTION_CHARS]
    event = emit(RewriteEvent(type="rewrite", question=q, standalone=standalone, how=how))
    return {"search_query": standalone, "trace": [event]}


def final_answer(state: AgentState) -> dict[str, Any]:
    """The last answer, unless an earlier round found one and the last came back "not found"."""
    ans = dict(state.get("answer") or {})
    best = state.get("best_answer") or {}
    if ans.get("short_answer") == NOT_FOUND and best and best.get("short_answer") != NOT_FOUND:
        ans = dict(best)
    return ans


def finish(state: AgentState) -> dict[str, Any]:
    ans = final_answer(state)
    short = str(ans.get("short_answer", ""))
    turn = {"question": state["question"], "search_query": state.get("search_query") or state["question"],
            "answer": f"{short}. {ans.get('answer', '')}".strip() if short and short != NOT_FOUND
            else str(ans.get("answer", ""))[:400]}
    kept = list(state.get("history") or [])[-(MAX_TURNS - 1):]
    return {"answer": ans, "history": [RESET, *kept, turn]}
