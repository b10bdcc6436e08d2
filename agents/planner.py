"""Planner node: question + tips + tools + shortcuts -> a validated plan, or the deterministic fallback."""

from __future__ import annotations

import logging
from typing import Any

from agents.cite import content_words
from agents.deps import Deps
from agents.events import PlanEvent, emit
from agents.evidence import coverage, ranked_hits
from agents.plan import SHORTCUT_PREFIX, Plan, default_plan, expand_shortcut, to_steps
from agents.prompts import (
    DECOMPOSE_EXAMPLE_REPLY,
    DECOMPOSE_EXAMPLE_USER,
    DECOMPOSE_SYSTEM,
    DECOMPOSE_USER,
    PLAN_SHORTCUTS,
    PLAN_TIPS,
)
from agents.route import HOP_REF, Decomposition, chain_plan, depth, route, split_by_wording
from agents.state import AgentState, Step
from core.errors import LLMError, LLMUnavailableError
from core.llm import chat_json

logger = logging.getLogger(__name__)


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


async def _decompose(deps: Deps, question: str, tips: list[dict[str, Any]]) -> list[str]:
    """Sub-questions from the LLM (JSON schema), or [] when it fails or returns a single question."""
    msgs = [{"role": "system", "content": DECOMPOSE_SYSTEM + ("\n" + _memory_text(tips, []) if tips else "")},
            {"role": "user", "content": DECOMPOSE_EXAMPLE_USER},
            {"role": "assistant", "content": DECOMPOSE_EXAMPLE_REPLY},
            {"role": "user", "content": DECOMPOSE_USER.format(question=question)}]
    try:
        out = await chat_json(deps.llm, msgs, Decomposition, max_tokens=deps.config.plan_tokens, retries=1,
                              free_first=True)
    except LLMUnavailableError:
        raise  # no server: say so (the CLI prints how to start one) instead of planning blind
    except LLMError as e:
        logger.info("decomposition failed: %s", e)
        return []
    problem = chain_problem(out.questions, question)
    if problem:
        logger.info("decomposition is not a chain (%s): %s", problem, out.questions)
        return []
    return out.questions


def chain_problem(subs: list[str], question: str) -> str:
    """Why sub-questions do not make a self-ask chain, or "" when they do. Every hop after the first must use an
    earlier hop's answer (``#1``): a hop without one was cut loose from the question by the split ("What year was
    it released?") and its answer would be a guess; no hop may use its own or a later hop's answer (not known yet:
    its search would carry a literal "#1"); hop 1 must not restate the whole question.

    Example: ["Who designed the HP-7?", "Where was #1 born?"] -> ""; ["Who designed the HP-7?", "Where was the
    designer born?"] -> "hop 2 does not use an earlier hop's answer".
    """
    if len(subs) < 2:
        return "a single question"
    if _restates(subs[0], question):
        return "hop 1 restates the question"
    for i, sub in enumerate(subs, start=1):
        refs = [int(m) for m in HOP_REF.findall(sub)]
        if any(m >= i for m in refs):
            return f"hop {i} uses an answer not known yet (#{max(refs)})"
        if i > 1 and not refs:
            return f"hop {i} does not use an earlier hop's answer"
    return ""


def _restates(sub: str, question: str) -> bool:
    """Whether a sub-question is the whole question again (small models often return it as hop 1)."""
    qw = content_words(question)
    return bool(qw) and len(qw & content_words(sub)) / len(qw) >= 0.8


async def planner(state: AgentState, deps: Deps) -> dict[str, Any]:
    """Round 1: a learned shortcut that matches, else the self-ask chain for a question that describes an entity
    instead of naming it, else one search on the question. The chain's hops come from the LLM for a question that
    nests ``chain_first_depth`` or more descriptions, else (or when the LLM's split is no chain) from the wording
    (``split_by_wording``, no LLM call) for a question with ``wording_split_depth`` or more; the 1.5B splits one-
    description questions badly (docs/ANSWERS.md). Later rounds (the reflector found the answer missing or
    unsupported): the multi-hop chain when it was not tried yet, else a follow-up search on the titles found and
    the missing terms."""
    cfg = deps.config
    q, ws = state["question"], state["workspace"]
    search_q = state.get("search_query") or q
    round_no = int(state.get("round", 0)) + 1
    tips, shortcuts = list(state.get("tips") or []), list(state.get("shortcuts") or [])
    if round_no == 1 and state.get("use_memory", True) and deps.memory is not None:
        tips = [t for t in deps.memory.search("tips", ws, q, cfg.memory_k) if _valid(t, "text")]
        shortcuts = [s for s in deps.memory.search("shortcuts", ws, q, cfg.memory_k) if _valid(s, "name", "steps")]
    by_name = {s["name"]: s for s in shortcuts}
    want = state.get("route") or route(search_q)
    tried = set(state.get("routes_tried") or [])
    plan: Plan | None = None
    source, why = "route", ""
    best = next((s for s in shortcuts if s.get("score", 0) >= cfg.shortcut_min_score), None)
    if round_no == 1 and best is not None:
        plan, source = default_plan(search_q, best, k=cfg.search_k), "shortcut"
    elif want == "multi" and "multi" not in tried:
        d = depth(search_q)
        subs, by = [], "llm"
        if round_no > 1 or d >= cfg.chain_first_depth:
            subs = await _decompose(deps, search_q, tips)
            tried.add("multi")
        if not subs and (round_no > 1 or d >= cfg.wording_split_depth):
            subs, by = split_by_wording(search_q), "wording"
            if subs:
                tried.add("multi")
        if subs:
            plan, source = chain_plan(search_q, subs, cfg.search_k), by
        elif "multi" in tried:
            why = "the question did not split into a chain of sub-questions"
    if plan is None:
        if round_no == 1:
            plan = default_plan(search_q, k=cfg.search_k)
            tried.add("single")
        else:
            source = "fallback"
            _, missing = coverage(q, state.get("evidence", []))
            titles = [h.chunk.doc_title for h in ranked_hits(state.get("evidence", []), 2) if h.chunk.doc_title]
            plan = default_plan(search_q, followup=" ".join([*titles, *missing]) or search_q, k=cfg.search_k)
            plan = Plan(steps=plan.steps[1:])  # the question's own search already ran
    steps = expand(to_steps(plan, round_no), by_name)
    event = PlanEvent(type="plan", plan=steps, round=round_no, source=source, route=want)
    if why:
        event["fallback_reason"] = why
    emit(event)
    return {
        "plan": steps, "plans": [steps], "round": round_no, "tips": tips, "shortcuts": shortcuts, "trace": [event],
        "route": want, "routes_tried": sorted(tried),
        "plans_total": int(state.get("plans_total", 0)) + 1,
        "plans_llm_valid": int(state.get("plans_llm_valid", 0)) + (source == "llm"),
        "plan_fallbacks": int(state.get("plan_fallbacks", 0)) + (source == "fallback"),
    }


def _valid(item: dict[str, Any], *keys: str) -> bool:
    """A memory item the planner can use; a malformed one (e.g. a shortcut without steps) is skipped."""
    ok = all(item.get(k) for k in keys)
    if not ok:
        logger.warning("skipping malformed memory item %s (needs %s)", item.get("id", "?"), ", ".join(keys))
    return ok
