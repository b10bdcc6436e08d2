"""The agent's event stream: one discriminated union (on ``type``) of TypedDicts, emitted by the graph's nodes,
the ``Agent`` and the API's straight engine, and consumed by the CLI, the SSE chat, the OpenAI facade, the UI
and the answer evaluation. TypedDicts keep events plain JSON (the checkpointer stores them in ``trace``) while
mypy checks every key a consumer reads after narrowing on ``type``; ``EVENTS.validate_python`` checks one at a
trust boundary (tests, the UI reading the API).

Order of one run: ``rewrite``? ``plan`` (``step_start`` ``step_end``)* ``reflection`` ... ``token``* ``citations``
``error``? and always last ``answer``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import Field, TypeAdapter
from typing_extensions import TypedDict  # pydantic validates typing_extensions' TypedDict on Python < 3.12


class RewriteEvent(TypedDict):
    type: Literal["rewrite"]
    question: str
    standalone: str  # the follow-up made standalone, what the run searches with
    how: str  # "llm" | "fallback"


class PlanEvent(TypedDict):
    type: Literal["plan"]
    plan: list[dict[str, Any]]  # steps: id, tool, input, depends_on, status, ...
    round: int
    source: str  # "shortcut" | "route" | "llm" | "wording" | "fallback" | "straight"
    route: NotRequired[str]  # "single" | "multi"
    fallback_reason: NotRequired[str]


class StepStartEvent(TypedDict):
    type: Literal["step_start"]
    step: dict[str, Any]  # id, tool, input (filled), depends_on


class StepEndEvent(TypedDict):
    type: Literal["step_end"]
    step: dict[str, Any]
    ok: bool
    summary: str


class ReflectionEvent(TypedDict):
    type: Literal["reflection"]
    decision: str  # "answer" | "retry" | "replan" | "done"
    reason: str
    coverage: NotRequired[float]


class TokenEvent(TypedDict):
    type: Literal["token"]
    text: str  # a piece of the draft answer (the checked answer may differ)
    round: NotRequired[int]


class CitationsEvent(TypedDict):
    type: Literal["citations"]
    citations: list[dict[str, Any]]  # Citation.to_json()


class ErrorEvent(TypedDict):
    type: Literal["error"]
    message: str
    error: NotRequired[str]  # the exception class, e.g. "LLMUnavailableError"


class AnswerEvent(TypedDict):
    type: Literal["answer"]
    answer: dict[str, Any]  # Answer.to_json() + trace, plan, thread_id, stats
    thread_id: NotRequired[str]


Event = RewriteEvent | PlanEvent | StepStartEvent | StepEndEvent | ReflectionEvent | TokenEvent | CitationsEvent \
    | ErrorEvent | AnswerEvent
EVENT_TYPES = ("rewrite", "plan", "step_start", "step_end", "reflection", "token", "citations", "error", "answer")
EVENTS: TypeAdapter[Event] = TypeAdapter(Annotated[Event, Field(discriminator="type")])  # type: ignore[arg-type, maybe-unrecognized-str-typeform]


def describe(ev: Event) -> str | None:
    """One progress line for a person watching a run (CLI stderr, the UI's status box); None for the events
    that are shown otherwise (tokens, citations, the answer)."""
    if ev["type"] == "rewrite":
        return f"follow-up: {ev['standalone']}"
    if ev["type"] == "plan":
        steps = ", ".join(str(s.get("tool")) for s in ev["plan"])
        return f"plan ({ev.get('route', '')} route, {ev['source']}): {steps}"
    if ev["type"] == "step_start":
        return None
    if ev["type"] == "step_end":
        query = str((ev["step"].get("input") or {}).get("query", ""))[:80]
        return (f"  {ev['step'].get('id')} {ev['step'].get('tool')} {'ok' if ev['ok'] else 'failed'}"
                f"{f' {query!r}' if query else ''}: {ev['summary'][:120]}")
    if ev["type"] == "reflection":
        return f"reflect: {ev['decision']} ({ev['reason'][:120]})"
    if ev["type"] == "error":
        return f"error: {ev['message']}"
    return None


def emit(event: Event) -> Event:
    """Send ``event`` to the live stream (a no-op outside a graph run) and return it for the trace."""
    try:
        from langgraph.config import get_stream_writer

        get_stream_writer()(event)
    except (RuntimeError, LookupError, KeyError):
        pass
    return event
