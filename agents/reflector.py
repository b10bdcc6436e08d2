"""Reflector node and the router after it. It runs twice a round, without an LLM call:

- after the executor: retry failed steps, ask for a new plan when nothing was found, else let the answerer
  answer (or answer with what there is when the step or time budget ran out);
- after the answerer: check the answer. A short answer that is "not found" or whose words do not occur in the
  evidence sends a single-route question down the multi-hop chain (once, within ``max_replans``); a supported
  answer, or one with no replans left, ends the run.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from agents.answer import NOT_FOUND
from agents.deps import Deps
from agents.events import ReflectionEvent, emit
from agents.evidence import coverage
from agents.state import AgentState

Decision = Literal["answer", "retry", "replan", "done"]


def budget_left(state: AgentState, deps: Deps) -> tuple[bool, str]:
    cfg = deps.config
    steps = int(state.get("steps_run", 0))
    elapsed = time.time() - float(state.get("started", time.time()))
    if steps >= cfg.max_steps:
        return False, f"step budget exhausted: {steps}/{cfg.max_steps} tool calls"
    if elapsed > cfg.time_budget_s:
        return False, f"time budget exhausted: {elapsed:.0f} s > {cfg.time_budget_s:.0f} s"
    return True, ""


def _after_answer(state: AgentState, deps: Deps) -> tuple[Decision, str, dict[str, Any]]:
    ans = state.get("answer") or {}
    short = str(ans.get("short_answer", ""))
    supported = bool(state.get("answer_supported"))
    replans = int(state.get("replans", 0))
    ok, why = budget_left(state, deps)
    if short != NOT_FOUND and supported:
        return "done", f"short answer {short[:60]!r} is supported by the evidence", {}
    problem = "the sources did not give the answer" if short == NOT_FOUND else \
        f"the short answer {short[:60]!r} does not occur in the evidence"
    if not ok:
        return "done", f"{problem}; {why}", {}
    if replans >= deps.config.max_replans:
        return "done", f"{problem}; no replans left", {}
    update: dict[str, Any] = {"replans": replans + 1, "feedback": problem,
                              "best_answer": _better(state.get("best_answer") or {}, ans)}
    if "multi" not in (state.get("routes_tried") or []):
        update["route"] = "multi"
        return "replan", f"{problem}; trying the multi-hop chain", update
    return "replan", f"{problem}; searching for what is missing", update


def _better(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Keep the earlier answer unless the new one says more (a later hop may come back empty)."""
    if not old or (old.get("short_answer") == NOT_FOUND and new.get("short_answer") != NOT_FOUND):
        return new
    return old


async def reflector(state: AgentState, deps: Deps) -> dict[str, Any]:
    cfg = deps.config
    update: dict[str, Any] = {}
    decision: Decision
    if state.get("answered_round") == state.get("round"):
        decision, reason, update = _after_answer(state, deps)
        event = emit(ReflectionEvent(type="reflection", decision=decision, reason=reason))
        return {**update, "decision": decision, "reason": reason, "trace": [event]}
    plan = [dict(s) for s in state["plan"]]
    evidence = state.get("evidence", [])
    cov, _ = coverage(state["question"], evidence)
    errors = [s for s in plan if s["status"] == "error"]
    retryable = [s for s in errors if int(s.get("attempts", 0)) < cfg.max_retries]
    ok, why = budget_left(state, deps)
    if not ok:
        decision, reason = "answer", why
        update["budget_exhausted"] = why
    elif retryable:
        decision = "retry"
        reason = "tool error in " + ", ".join(f"{s['id']} ({state['results'][s['id']]['error'][:80]})"
                                              for s in retryable)
        again = {s["id"] for s in retryable}
        for s in plan:
            if s["id"] in again:
                s["status"], s["attempts"] = "pending", int(s.get("attempts", 0)) + 1
        update = {"plan": plan, "retries": int(state.get("retries", 0)) + 1}
    elif not evidence and int(state.get("replans", 0)) < cfg.max_replans:
        decision, reason = "replan", "no evidence found"
        update = {"replans": int(state.get("replans", 0)) + 1, "feedback": reason}
    else:
        decision, reason = "answer", f"{len(evidence)} passages, question-term coverage {cov:.0%}"
    event = emit(ReflectionEvent(type="reflection", decision=decision, reason=reason, coverage=round(cov, 3)))
    return {**update, "decision": decision, "reason": reason, "trace": [event]}


def route_next(state: AgentState) -> str:
    """Pure router: the reflector's decision names the next node."""
    return {"retry": "executor", "replan": "planner", "answer": "answerer"}.get(state.get("decision", "done"), "end")
