"""The two experience reflectors (Mobile-Agent-E), run after each task as the graph's last node.

- tips reflector, from the operation log: error-derived tips (which tool failed, on what, what to do), a
  lesson when a replan rescued the run, and (optionally) up to two LLM-written tips; deterministic fallback.
- shortcuts reflector: a successful multi-step tool sequence is counted under ``("sequences", ws)``; seen in
  ``shortcut_min_runs`` successful runs it becomes a shortcut. Shortcuts (and tips) used in a failing run get
  a failure count (the error log), so they lose weight and decay away.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import Any

from pydantic import BaseModel, Field

from agents.answer import NOT_FOUND
from agents.deps import Deps
from agents.evidence import coverage, short_id, templated
from agents.prompts import TIPS_SYSTEM, TIPS_USER
from agents.state import AgentState
from core.errors import LLMError
from core.llm import chat_json

logger = logging.getLogger(__name__)


LEARN_VERSION = 2  # what the reflectors store; the answers eval keys its memory arms' caches by it
_NAMED = re.compile(r"\d|(?<=\s)[A-Z]\w*")  # a digit, or a capitalised word after the first


def general(tip: str) -> bool:
    """Whether an LLM-written tip is a strategy other questions can use: 4-25 words naming no entity, number or
    date. Measured (docs/ANSWERS.md, memory): the 1.5B's reflector mostly wrote this question's "facts", often
    wrong ("The country where Clonbrook is located is Jamaica"), which then reached similar questions' prompts."""
    words = tip.split()
    return 4 <= len(words) <= 25 and _NAMED.search(tip.strip()) is None


class TipsOut(BaseModel):
    tips: list[str] = Field(default_factory=list, max_length=2)


def succeeded(state: AgentState, min_cov: float) -> bool:
    ans = state.get("answer") or {}
    cites = ans.get("citations") or []
    cov, _ = coverage(state["question"], state.get("evidence", []))
    return (bool(cites) and all(c.get("verified") for c in cites) and cov >= min_cov
            and ans.get("short_answer") != NOT_FOUND and bool(state.get("answer_supported", True)))


def error_tips(ops: list[dict[str, Any]]) -> list[str]:
    tips = []
    for op in ops:
        if op["ok"]:
            continue
        err = str(op.get("error", "")).split(":")[0] or "an error"
        alt = "use 'search' instead" if op["tool"] != "search" else "rephrase the query with fewer words"
        tips.append(f"Tool '{op['tool']}' failed with {err} on input keys {sorted(op.get('input', {}))}; "
                    f"check its input or {alt}.")
    return tips


def run_tips(state: AgentState, ok: bool) -> list[str]:
    tips = error_tips(state.get("ops", []))
    empties = [op for op in state.get("ops", []) if op["ok"] and op["n"] == 0 and op["tool"] != "answer"]
    for op in empties[:1]:
        tips.append(f"'{op['tool']}' found nothing for a long query; search fewer, distinctive terms.")
    if ok and int(state.get("replans", 0)) > 0:
        plans = state.get("plans", [])
        first = "+".join(s["tool"] for s in plans[0]) if plans else "?"
        last = "+".join(s["tool"] for s in plans[-1]) if plans else "?"
        tips.append(f"When {first} finds too little, replan with {last} on the missing terms and the titles found.")
    return tips


def sequence(state: AgentState) -> list[dict[str, Any]]:
    """The successful steps of the final plan as a template (question -> ``{question}``, ids without round)."""
    q = state["question"]
    steps = [s for s in state.get("plan", []) if s["status"] == "done" and not s.get("shortcut")]
    out = []
    for s in steps:
        inp = {k: templated(v, q) for k, v in s["input"].items()}
        out.append({"id": short_id(s["id"]), "tool": s["tool"], "input": inp,
                    "depends_on": [short_id(d) for d in s["depends_on"]]})
    return out


def generic(seq: list[dict[str, Any]]) -> bool:
    """Whether a sequence can serve other questions: its text inputs are the question or earlier results
    (a decomposition's sub-questions name this question's entities, so they cannot)."""
    for s in seq:
        for v in s["input"].values():
            if isinstance(v, str) and v.strip() and "{" not in v:
                return False
    return True


async def learn(state: AgentState, deps: Deps) -> dict[str, Any]:
    mem, cfg = deps.memory, deps.config
    if mem is None or not mem.learns or not state.get("use_memory", True):
        return {"learned": {}}
    ws, run_id, q = state["workspace"], state["run_id"], state["question"]
    ok = succeeded(state, cfg.replan_coverage)
    used: set[str] = set()
    for t in state.get("tips") or []:
        mem.record("tips", ws, t["id"], success=ok, run_id=run_id)
        used.add(t["id"])
    shortcut_names = {s.get("shortcut") for s in state.get("plan", []) if s.get("shortcut")}
    for sc in state.get("shortcuts") or []:
        if sc["name"] in shortcut_names:
            mem.record("shortcuts", ws, sc["id"], success=ok, run_id=run_id)
            used.add(sc["id"])
    added: list[str] = []
    tips = run_tips(state, ok)
    if cfg.llm_experience:
        log = "\n".join(f"{op['tool']} {str(op['input'])[:60]} -> {'ok' if op['ok'] else 'error'} {op['n']} hits"
                        for op in state.get("ops", [])[:6])
        try:
            out = await chat_json(deps.llm, [
                {"role": "system", "content": TIPS_SYSTEM},
                {"role": "user", "content": TIPS_USER.format(question=q, log=log,
                                                             outcome="answered" if ok else "failed")}],
                TipsOut, max_tokens=96, retries=0)
            tips += [t.strip() for t in out.tips if 10 <= len(t.strip()) <= 200 and general(t)]
        except LLMError as e:
            logger.info("LLM tips reflector failed (%s); deterministic tips only", e)
    for text in tips:
        tid = mem.put("tips", ws, {"text": text, "provenance": [run_id], "origin": "run", "question": q[:200]})
        added.append(tid)
        used.add(tid)
    seq = sequence(state)
    promoted = ""
    if ok and len(seq) >= 2 and generic(seq):
        sig = "|".join(f"{s['tool']}:{sorted(s['input'])}" for s in seq)
        name = "seq_" + hashlib.sha1(sig.encode()).hexdigest()[:6]
        sid = mem.put("sequences", ws, {"text": q[:200], "steps": seq, "successes": 1, "provenance": [run_id]})
        count = int((mem.get("sequences", ws, sid) or {}).get("successes", 1))
        if count >= cfg.shortcut_min_runs:
            tools = " -> ".join(s["tool"] for s in seq)
            promoted = mem.put("shortcuts", ws, {
                "name": name, "params": ["question"], "steps": seq, "successes": 0,
                "description": f"{tools} (worked in {count} runs)",
                "text": f"{tools}. Worked for: {q[:200]}", "provenance": [run_id]})
            used.add(promoted)
    dropped = mem.decay(ws, used, cfg.decay, cfg.min_weight)
    learned = {"success": ok, "tips_added": added, "shortcut": promoted, "dropped": dropped}
    return {"learned": learned}
