"""What the chat routes call: the agent when the runtime has one, else a straight retrieve-then-answer adapter
that emits the same events (``agents.events.Event``). Chosen once, when the app is built. ``answer`` is always
the last event and carries ``Answer.to_json()``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from agents.events import (
    AnswerEvent,
    CitationsEvent,
    ErrorEvent,
    Event,
    PlanEvent,
    StepEndEvent,
    StepStartEvent,
    TokenEvent,
)
from app.runtime import Runtime
from core.errors import RagentError
from core.llm import stream_chat
from core.types import Answer

logger = logging.getLogger(__name__)


class ChatEngine(Protocol):
    def astream(
        self, workspace: str, question: str, *, thread_id: str | None = None, use_memory: bool = True,
        history: list[tuple[str, str]] | None = None,
    ) -> AsyncIterator[Event]: ...


class StraightEngine:
    """Retrieve, stream the LLM's answer token by token, check its claims (no planning, no memory): the
    one-search + one-call path of ``agents.answer``."""

    def __init__(self, runtime: Runtime, k: int = 5) -> None:
        self.rt = runtime
        self.k = k

    async def astream(
        self, workspace: str, question: str, *, thread_id: str | None = None, use_memory: bool = True,
        history: list[tuple[str, str]] | None = None,
    ) -> AsyncIterator[Event]:
        from agents import AgentConfig
        from agents.answer import NOT_FOUND, answer_messages, finalize

        search: dict[str, Any] = {"id": "s1", "tool": "search", "input": {"query": question}}
        yield PlanEvent(type="plan", plan=[search, {"id": "s2", "tool": "answer", "input": {}}], round=1,
                        source="straight", route="single")
        yield StepStartEvent(type="step_start", step=search)
        hits = await self.rt.retriever.search(workspace, question, k=self.k)
        yield StepEndEvent(type="step_end", step=search, ok=True, summary=f"{len(hits)} passages")
        if not hits:
            ans = Answer(question, "No documents in this workspace match the question; ingest some first.",
                         short_answer=NOT_FOUND)
            yield CitationsEvent(type="citations", citations=[])
            yield AnswerEvent(type="answer", answer=ans.to_json())
            return
        raw = ""
        msgs = answer_messages(question, hits, history=(history or [])[-AgentConfig.history_turns:])
        async for piece in stream_chat(self.rt.llm, msgs, max_tokens=96):
            raw += piece
            yield TokenEvent(type="token", text=piece)
        ans = finalize(question, raw, hits)
        yield CitationsEvent(type="citations", citations=[c.to_json() for c in ans.citations])
        yield AnswerEvent(type="answer", answer=ans.to_json() | {"raw": raw.strip()})


class AgentEngine:
    """The runtime's agent (agents/), used as is."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def astream(
        self, workspace: str, question: str, *, thread_id: str | None = None, use_memory: bool = True,
        history: list[tuple[str, str]] | None = None,
    ) -> AsyncIterator[Event]:
        return self.rt.agent.astream(workspace, question, thread_id=thread_id, use_memory=use_memory,
                                     history=history)


def engine_for(runtime: Runtime) -> ChatEngine:
    """The runtime's agent (built on first use); pass ``engine=StraightEngine(runtime)`` to ``create_app`` for
    the one-search, one-call engine."""
    return AgentEngine(runtime)


async def guarded(events: AsyncIterator[Event], question: str) -> AsyncIterator[Event]:
    """Pass events through; turn a failure into an ``error`` event and make sure ``answer`` comes last."""
    answered = False
    try:
        async for ev in events:
            if answered:  # nothing may follow the answer
                continue
            answered = ev["type"] == "answer"
            yield ev
    except RagentError as e:
        yield ErrorEvent(type="error", message=str(e), error=type(e).__name__)
    except Exception as e:
        logger.exception("chat failed")
        yield ErrorEvent(type="error", message=f"internal error ({type(e).__name__}); see the API log",
                         error=type(e).__name__)
    if not answered:
        yield AnswerEvent(type="answer", answer=Answer(question, "").to_json())
