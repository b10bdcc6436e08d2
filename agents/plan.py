"""Plans: the pydantic schema the planner LLM fills (a trust boundary), validation and fallbacks.

A step names a tool (or a learned shortcut as ``shortcut:<name>``), its input, and the steps it depends on.
String inputs may hold ``{question}`` and ``{<step id>}`` placeholders: the latter is replaced with that
step's result value (the top hit's title for searches, the text for sub-answers) when the step runs.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from agents.state import Step

SHORTCUT_PREFIX = "shortcut:"


class PlanStep(BaseModel):
    id: str = Field(description="short id such as s1")
    tool: str = Field(description="a tool name, or shortcut:<name>")
    input: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)


class Plan(BaseModel):
    steps: list[PlanStep] = Field(min_length=1, max_length=4)


def problems(plan: Plan, tools: set[str], shortcuts: set[str]) -> list[str]:
    """Why ``plan`` cannot run: unknown tools or shortcuts, duplicate ids, dangling or cyclic dependencies."""
    out: list[str] = []
    ids = [s.id for s in plan.steps]
    if len(set(ids)) != len(ids):
        out.append("duplicate step ids")
    seen: set[str] = set()
    for s in plan.steps:
        if s.tool.startswith(SHORTCUT_PREFIX):
            if s.tool[len(SHORTCUT_PREFIX):] not in shortcuts:
                out.append(f"unknown shortcut {s.tool!r}")
        elif s.tool not in tools:
            out.append(f"unknown tool {s.tool!r}")
        for d in s.depends_on:
            if d not in seen:  # a step may depend only on earlier steps: no cycles
                out.append(f"step {s.id} depends on {d!r}, which is not an earlier step")
        seen.add(s.id)
    return out


def to_steps(plan: Plan, round_no: int) -> list[Step]:
    """Runnable steps, ids prefixed by the round so a replan never collides with earlier results."""
    pre = f"r{round_no}."
    steps = []
    for s in plan.steps:
        inp = {k: _prefix_refs(v, [x.id for x in plan.steps], pre) for k, v in s.input.items()}
        steps.append({"id": pre + s.id, "tool": s.tool, "input": inp, "depends_on": [pre + d for d in s.depends_on],
                      "status": "pending", "attempts": 0, "round": round_no})
    return steps


def _prefix_refs(value: Any, ids: list[str], pre: str) -> Any:
    if isinstance(value, str):
        for i in ids:
            value = value.replace("{" + i + "}", "{" + pre + i + "}")
        return value
    if isinstance(value, list):  # a list item naming a step (``"from": ["s1"]``) is a reference too
        return [pre + v if isinstance(v, str) and v in ids else _prefix_refs(v, ids, pre) for v in value]
    return value


def default_plan(question: str, shortcut: dict[str, Any] | None = None, *, followup: str = "",
                 k: int = 5) -> Plan:
    """The deterministic plan: a matching learned shortcut, else a hybrid search on the question (plus a
    follow-up search on ``followup`` terms when replanning)."""
    if shortcut is not None:
        params = {p: question for p in shortcut.get("params", ["question"])}
        return Plan(steps=[PlanStep(id="s1", tool=SHORTCUT_PREFIX + shortcut["name"], input=params)])
    steps = [PlanStep(id="s1", tool="search", input={"query": question, "k": k})]
    if followup:
        steps.append(PlanStep(id="s2", tool="search", input={"query": followup, "k": k}))
    return Plan(steps=steps)


_REF = re.compile(r"\{([\w.]+)\}")


def fill(value: Any, question: str, values: dict[str, str]) -> Any:
    """Replace ``{question}`` and ``{<step id>}`` placeholders in a step input."""
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            key = m.group(1)
            if key == "question":
                return question
            return values.get(key, "")  # an unfilled reference (a failed step) drops out of the text

        return " ".join(_REF.sub(sub, value).split())
    if isinstance(value, list):
        return [fill(v, question, values) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, question, values) for k, v in value.items()}
    return value


def expand_shortcut(step: Step, shortcut: dict[str, Any]) -> list[Step]:
    """A shortcut step becomes its tool calls: params substituted, ids nested under the shortcut step."""
    params = {p: str(step["input"].get(p, "")) for p in shortcut.get("params", [])}
    out: list[Step] = []
    prev: list[str] = list(step.get("depends_on", []))
    inner_ids = [s["id"] for s in shortcut.get("steps", [])]
    for s in shortcut.get("steps", []):
        sid = f"{step['id']}.{s['id']}"
        inp = {}
        for k, v in s.get("input", {}).items():
            if isinstance(v, str):
                for p, val in params.items():
                    v = v.replace("{" + p + "}", val)
                for i in inner_ids:
                    v = v.replace("{" + i + "}", "{" + f"{step['id']}.{i}" + "}")
            elif isinstance(v, list):
                v = [f"{step['id']}.{x}" if x in inner_ids else x for x in v]
            inp[k] = v
        deps = [f"{step['id']}.{d}" for d in s.get("depends_on", [])] or prev
        out.append({"id": sid, "tool": s["tool"], "input": inp, "depends_on": deps, "status": "pending",
                    "attempts": 0, "round": step.get("round", 1), "shortcut": shortcut["name"]})
    return out
