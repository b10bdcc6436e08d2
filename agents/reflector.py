"""Reflector node and the router after it: finish, retry failed steps, or replan; bounded by the budget.

Cheap first: question-term coverage of the evidence decides clear cases; the LLM is asked (JSON schema) only
in the grey zone between ``replan_coverage`` and ``finish_coverage``.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel

from agents.answer import format_sources
from agents.deps import Deps
from agents.events import coverage, emit, ranked_hits
from agents.prompts import JUDGE_SYSTEM, JUDGE_USER
from agents.state import AgentState
from core.errors import LLMError
from core.llm import chat_json

Decision = Literal["finish", "retry", "replan"]


class Judgement(BaseModel):
    answerable: bool
    missing: str = ""


def budget_left(state: AgentState, deps: Deps) -> tuple[bool, str]:
    cfg = deps.config
    steps = int(state.get("steps_run", 0))
    elapsed = time.time() - float(state.get("started", time.time()))
    if steps >= cfg.max_steps:
        return False, f"budget exhausted: {steps}/{cfg.max_steps} steps"
    if elapsed > cfg.time_budget_s:
        return False, f"budget exhausted: {elapsed:.0f}s > {cfg.time_budget_s:.0f}s"
    return True, ""


async def reflector(state: AgentState, deps: Deps) -> dict[str, Any]:
    cfg = deps.config
    q = state["question"]
    plan = [dict(s) for s in state["plan"]]
    evidence = state.get("evidence", [])
    cov, missing = coverage(q, evidence)
    errors = [s for s in plan if s["status"] == "error"]
    retryable = [s for s in errors if int(s.get("attempts", 0)) < cfg.max_retries]
    replans = int(state.get("replans", 0))
    ok, why = budget_left(state, deps)
    update: dict[str, Any] = {}
    decision: Decision
    if not ok:
        decision, reason = "finish", why
    elif retryable:
        decision = "retry"
        reason = "tool error in " + ", ".join(f"{s['id']} ({state['results'][s['id']]['error'][:80]})"
                                              for s in retryable)
        again = {s["id"] for s in retryable}
        for s in plan:
            if s["id"] in again:
                s["status"], s["attempts"] = "pending", int(s.get("attempts", 0)) + 1
        update = {"plan": plan, "retries": int(state.get("retries", 0)) + 1}
    elif cov >= cfg.finish_coverage:
        decision, reason = "finish", f"evidence covers {cov:.0%} of the question terms"
    elif (not evidence or cov < cfg.replan_coverage) and replans < cfg.max_replans:
        decision = "replan"
        reason = ("no evidence found" if not evidence else f"evidence covers only {cov:.0%}") + (
            f"; missing: {', '.join(missing[:6])}" if missing else "") + (
            f"; errors: {len(errors)}" if errors else "")
    elif not evidence:
        decision, reason = "finish", "no evidence found and no replans left"
    elif cfg.llm_judge and cov < cfg.finish_coverage and replans < cfg.max_replans:
        hits = ranked_hits(evidence, cfg.answer_k)
        try:
            j = await chat_json(deps.llm, [
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": JUDGE_USER.format(sources=format_sources(hits, cfg.source_chars // 2),
                                                              question=q)}], Judgement,
                max_tokens=cfg.judge_tokens, retries=0)
            decision = "finish" if j.answerable else "replan"
            reason = f"LLM judge: {'answerable' if j.answerable else 'missing ' + j.missing[:80]} (coverage {cov:.0%})"
        except LLMError:
            decision, reason = "finish", f"coverage {cov:.0%}; LLM judge unavailable"
    else:
        decision, reason = "finish", f"coverage {cov:.0%}; no replans left"
    if decision == "replan":
        update["replans"] = replans + 1
        update["feedback"] = reason
    event = emit({"type": "reflection", "decision": decision, "reason": reason, "coverage": round(cov, 3)})
    return {**update, "decision": decision, "reason": reason, "trace": [event]}


def route(state: AgentState) -> str:
    """Pure router: the reflector's decision names the next node."""
    return {"retry": "executor", "replan": "planner"}.get(state.get("decision", "finish"), "answerer")
