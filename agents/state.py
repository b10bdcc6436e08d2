"""The agent graph's state: a TypedDict whose list/dict fields merge through reducers.

Everything in it is plain JSON (the SQLite checkpointer stores it). A node returns only the keys it changes.
A list field set to ``[RESET, ...]`` is replaced instead of extended: a new question on an old thread
starts from a clean slate while the checkpoint history stays.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from agents.events import Event

RESET: dict[str, Any] = {"__reset__": True}

Step = dict[str, Any]  # {"id", "tool", "input", "depends_on", "status", "attempts", "round"}


def extend(old: list[Any] | None, new: list[Any] | None) -> list[Any]:
    """List reducer: append, or replace when ``new`` starts with ``RESET``."""
    if new and new[0] == RESET:
        return list(new[1:])
    return [*(old or []), *(new or [])]


def merge(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any]:
    """Dict reducer: update, or replace when ``new`` holds the ``__reset__`` key."""
    if new and new.get("__reset__"):
        return {k: v for k, v in new.items() if k != "__reset__"}
    return {**(old or {}), **(new or {})}


class AgentState(TypedDict, total=False):
    run_id: str
    workspace: str
    question: str
    use_memory: bool
    started: float  # time.time() at the start of the run
    tips: list[dict[str, Any]]  # retrieved for the planner
    shortcuts: list[dict[str, Any]]
    plan: list[Step]  # the current plan (replaced on replan)
    plans: Annotated[list[list[Step]], extend]  # every plan made in this run
    round: int
    results: Annotated[dict[str, dict[str, Any]], merge]  # step id -> {"ok", "summary", "error", "value", "n"}
    evidence: Annotated[list[dict[str, Any]], extend]  # {"chunk": payload, "score", "step"}
    ops: Annotated[list[dict[str, Any]], extend]  # operation log: one entry per tool call
    trace: Annotated[list[Event], extend]  # the events (tokens excepted)
    decision: str
    reason: str
    steps_run: int
    retries: int
    replans: int
    plans_total: int
    plans_llm_valid: int
    plan_fallbacks: int
    feedback: str  # what the reflector tells the planner on replan
    search_query: str  # the question, rewritten to stand alone when it follows up an earlier turn
    route: str  # "single" | "multi" (agents/route.py)
    routes_tried: list[str]
    answer: dict[str, Any]
    answer_source: str  # "llm" | "none"
    answer_supported: bool  # the short answer's words occur in the evidence
    answered_round: int  # the round the current answer belongs to
    best_answer: dict[str, Any]  # the best answer of earlier rounds (a later round may come back empty)
    budget_exhausted: str  # why the budget ran out, when it did
    history: Annotated[list[dict[str, Any]], extend]  # the thread's earlier turns: {"question", "answer"}
    learned: dict[str, Any]
    counters: Annotated[dict[str, int], merge]


def add(a: int, b: int) -> int:
    return operator.add(a, b)
