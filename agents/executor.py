"""Executor node: runs the plan's ready steps, independent ones concurrently, within the step/time budget."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from agents.deps import Deps
from agents.events import Event, StepEndEvent, StepStartEvent, emit
from agents.evidence import chunk_of
from agents.plan import fill
from agents.state import AgentState, Step
from agents.tools import TOOLS, ToolContext, ToolResult
from core.types import Chunk

logger = logging.getLogger(__name__)


def ready(plan: list[Step]) -> list[Step]:
    """Pending steps whose dependencies have all run (a failed dependency does not block: it leaves its
    placeholder unfilled)."""
    status = {s["id"]: s["status"] for s in plan}
    return [s for s in plan if s["status"] == "pending"
            and all(status.get(d, "done") in ("done", "error") for d in s["depends_on"])]


def out_of_budget(state: AgentState, deps: Deps, steps_run: int) -> bool:
    return (steps_run >= deps.config.max_steps
            or time.time() - float(state.get("started", time.time())) > deps.config.time_budget_s)


async def _run(step: Step, ctx: ToolContext) -> tuple[ToolResult | None, str]:
    tool = TOOLS.get(step["tool"])
    if tool is None:
        return None, f"unknown tool {step['tool']!r}"
    try:
        return await tool(ctx, step["input"]), ""
    except Exception as e:  # a tool error is data for the reflector, not a crash
        logger.info("step %s (%s) failed: %s", step["id"], step["tool"], e)
        return None, f"{type(e).__name__}: {e}"[:300]


async def executor(state: AgentState, deps: Deps) -> dict[str, Any]:
    cfg = deps.config
    plan = [dict(s) for s in state["plan"]]
    results: dict[str, dict[str, Any]] = dict(state.get("results") or {})
    evidence: list[dict[str, Any]] = []
    ops: list[dict[str, Any]] = []
    trace: list[Event] = []
    steps_run = int(state.get("steps_run", 0))
    step_hits: dict[str, list[Chunk]] = {}
    for ev in state.get("evidence", []):
        step_hits.setdefault(ev["step"], []).append(chunk_of(ev))
    while True:
        wave = ready(plan)
        if not wave or out_of_budget(state, deps, steps_run):
            break
        wave = wave[: max(0, cfg.max_steps - steps_run)]
        values = {sid: str(r.get("value", "")) for sid, r in results.items()}
        all_chunks = tuple(c for cs in step_hits.values() for c in cs)
        ctx = ToolContext(retriever=deps.retriever, llm=deps.llm, workspace=state["workspace"],
                          question=state["question"], evidence=all_chunks,
                          step_hits={k: tuple(v) for k, v in step_hits.items()}, source_chars=cfg.source_chars,
                          answer_tokens=cfg.hop_tokens)
        filled = [{**s, "input": fill(s["input"], state["question"], values)} for s in wave]
        for s in filled:
            trace.append(emit(StepStartEvent(type="step_start", step=_public(s))))
        t0 = time.perf_counter()
        outs = await asyncio.gather(*(_run(s, ctx) for s in filled))
        ms = round((time.perf_counter() - t0) * 1000)
        steps_run += len(filled)
        for s, (res, error) in zip(filled, outs, strict=True):
            ok = res is not None and not error
            n_hits = len(res.hits) if res else 0
            summary = res.summary if res else error
            for p in plan:
                if p["id"] == s["id"]:
                    p["status"] = "done" if ok else "error"
                    p["filled"] = s["input"]  # the template stays in "input" (shortcuts reuse it)
            results[s["id"]] = {"ok": ok, "summary": summary, "error": error, "value": res.value if res else "",
                                "n": n_hits, **({"fact": res.extra["fact"]} if res and "fact" in res.extra else {})}
            if res:
                step_hits[s["id"]] = [h.chunk for h in res.hits]
                evidence.extend({"chunk": h.chunk.to_payload(), "score": h.score, "step": s["id"]}
                                for h in res.hits)
            ops.append({"step": s["id"], "tool": s["tool"], "input": s["input"], "ok": ok, "n": n_hits,
                        "error": error, "ms": ms, "round": s.get("round", 1), "shortcut": s.get("shortcut")})
            trace.append(emit(StepEndEvent(type="step_end", step=_public(s), ok=ok, summary=summary)))
    return {"plan": plan, "results": results, "evidence": evidence, "ops": ops, "trace": trace,
            "steps_run": steps_run}


def _public(step: Step) -> dict[str, Any]:
    return {k: step[k] for k in ("id", "tool", "input", "depends_on") if k in step} | (
        {"shortcut": step["shortcut"]} if step.get("shortcut") else {})
