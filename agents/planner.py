"""Planner node: question + tips + tools + shortcuts -> a validated plan, or the deterministic fallback."""

from __future__ import annotations

import logging
from typing import Any

from agents.deps import Deps
from agents.events import coverage, emit, ranked_hits
from agents.plan import SHORTCUT_PREFIX, Plan, PlanStep, default_plan, expand_shortcut, problems, to_steps
from agents.prompts import PLAN_FEEDBACK, PLAN_SHORTCUTS, PLAN_SYSTEM, PLAN_TIPS, PLAN_USER
from agents.state import AgentState, Step
from agents.tools import TOOL_DOCS, TOOLS
from core.errors import LLMError, LLMUnavailableError
from core.llm import chat_json

logger = logging.getLogger(__name__)


def _tool_lines(deps: Deps) -> str:
    paths = ", ".join(deps.retriever.paths)
    lines = [f"- {name}: {doc}" for name, doc in TOOL_DOCS.items()]
    return "\n".join(lines).replace("one recall path alone.", f"one recall path alone ({paths}).")


def _memory_text(tips: list[dict[str, Any]], shortcuts: list[dict[str, Any]]) -> str:
    out = ""
    if tips:
        out += PLAN_TIPS.format(tips="\n".join(f"- {t['text']}" for t in tips))
    if shortcuts:
        out += PLAN_SHORTCUTS.format(shortcuts="\n".join(
            f"- {s['name']}({', '.join(s.get('params', []))}): {s.get('description', '')}" for s in shortcuts))
    return out


def expand(steps: list[Step], shortcuts: dict[str, dict[str, Any]]) -> list[Step]:
    """Replace shortcut steps by their tool calls; later steps that depended on a shortcut depend on its last
    call."""
    out: list[Step] = []
    last: dict[str, str] = {}
    for s in steps:
        s = {**s, "depends_on": [last.get(d, d) for d in s["depends_on"]]}
        if s["tool"].startswith(SHORTCUT_PREFIX):
            sc = shortcuts[s["tool"][len(SHORTCUT_PREFIX):]]
            inner = expand_shortcut(s, sc)
            if inner:
                last[s["id"]] = inner[-1]["id"]
                out.extend(inner)
            continue
        out.append(s)
    return out


async def planner(state: AgentState, deps: Deps) -> dict[str, Any]:
    cfg = deps.config
    q, ws = state["question"], state["workspace"]
    round_no = int(state.get("round", 0)) + 1
    tips, shortcuts = list(state.get("tips") or []), list(state.get("shortcuts") or [])
    if round_no == 1 and state.get("use_memory", True) and deps.memory is not None:
        tips = deps.memory.search("tips", ws, q, cfg.memory_k)
        shortcuts = deps.memory.search("shortcuts", ws, q, cfg.memory_k)
    by_name = {s["name"]: s for s in shortcuts}
    feedback = state.get("feedback", "") if round_no > 1 else ""
    msgs = [
        {"role": "system", "content": PLAN_SYSTEM.format(tools=_tool_lines(deps))},
        {"role": "user", "content": PLAN_USER.format(
            memory=_memory_text(tips, shortcuts), question=q,
            feedback=PLAN_FEEDBACK.format(feedback=feedback) if feedback else "")},
    ]
    plan: Plan | None = None
    why = ""
    try:
        plan = await chat_json(deps.llm, msgs, Plan, max_tokens=cfg.plan_tokens, retries=1)
        bad = problems(plan, set(TOOLS), set(by_name))
        if bad:
            why, plan = "; ".join(bad), None
    except LLMUnavailableError:
        raise  # no server: say so (the CLI prints how to start one) instead of planning blind
    except LLMError as e:
        why = str(e)[:200]
    source = "llm"
    if plan is not None and not any(st.tool in ("search", "recall", "read_chunk", "read_page")
                                    or st.tool.startswith(SHORTCUT_PREFIX)
                                    for st in plan.steps):
        # a plan with no text retrieval (e.g. graph lookups only) can come back empty: always search too
        plan = Plan(steps=[PlanStep(id="s0", tool="search", input={"query": q, "k": cfg.search_k}), *plan.steps])
    if plan is None:
        source = "fallback"
        logger.info("plan fallback (round %d): %s", round_no, why)
        best = next((s for s in shortcuts if s.get("score", 0) >= cfg.shortcut_min_score), None)
        followup = ""
        if round_no > 1:
            _, missing = coverage(q, state.get("evidence", []))
            titles = [h.chunk.doc_title for h in ranked_hits(state.get("evidence", []), 2) if h.chunk.doc_title]
            followup = " ".join([*titles, *missing]) or q
        plan = default_plan(q, best if round_no == 1 else None, followup=followup, k=cfg.search_k)
    steps = expand(to_steps(plan, round_no), by_name)
    event = emit({"type": "plan", "plan": steps, "round": round_no, "source": source,
                  **({"fallback_reason": why} if why else {})})
    return {
        "plan": steps, "plans": [steps], "round": round_no, "tips": tips, "shortcuts": shortcuts, "trace": [event],
        "plans_total": int(state.get("plans_total", 0)) + 1,
        "plans_llm_valid": int(state.get("plans_llm_valid", 0)) + (source == "llm"),
        "plan_fallbacks": int(state.get("plan_fallbacks", 0)) + (source == "fallback"),
    }
