"""What the chat routes call: the agent when the runtime has one, else a straight retrieve-then-answer adapter
that emits the same event shapes. Chosen once, when the app is built.

Events are dicts ``{"type": "plan"|"step_start"|"step_end"|"reflection"|"token"|"citations"|"answer"|"error",
...}``; ``answer`` is always the last one and carries ``Answer.to_json()``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from app.runtime import Runtime
from core.errors import RagentError
from core.llm import stream_chat
from core.types import Answer

logger = logging.getLogger(__name__)

Event = dict[str, Any]


class ChatEngine(Protocol):
    def astream(
        self, workspace: str, question: str, *, thread_id: str | None = None, use_memory: bool = True,
        history: list[tuple[str, str]] | None = None,
    ) -> AsyncIterator[Event]: ...


def token_text(ev: Event) -> str:
    """The text piece of a ``token`` event, whatever key the producer used."""
    return str(ev.get("text") or ev.get("token") or ev.get("content") or ev.get("delta") or "")


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
        from agents.answer import NOT_FOUND, answer_messages, finalize

        yield {"type": "plan", "plan": [{"id": "s1", "tool": "search", "input": {"query": question}},
                                        {"id": "s2", "tool": "answer", "input": {}}], "source": "straight"}
        yield {"type": "step_start", "step": {"id": "s1", "tool": "search", "input": {"query": question}}}
        hits = await self.rt.retriever.search(workspace, question, k=self.k)
        yield {"type": "step_end", "step": {"id": "s1", "tool": "search", "input": {"query": question}}, "ok": True,
               "summary": f"{len(hits)} passages"}
        if not hits:
            ans = Answer(question, "No documents in this workspace match the question; ingest some first.",
                         short_answer=NOT_FOUND)
            yield {"type": "citations", "citations": []}
            yield {"type": "answer", "answer": ans.to_json()}
            return
        raw = ""
        msgs = answer_messages(question, hits, history=history or ())
        async for piece in stream_chat(self.rt.llm, msgs, max_tokens=96):
            raw += piece
            yield {"type": "token", "text": piece}
        ans = finalize(question, raw, hits)
        yield {"type": "citations", "citations": [c.to_json() for c in ans.citations]}
        yield {"type": "answer", "answer": ans.to_json() | {"raw": raw.strip()}}


class AgentEngine:
    """The runtime's agent (agents/), used as is."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def astream(
        self, workspace: str, question: str, *, thread_id: str | None = None, use_memory: bool = True,
        history: list[tuple[str, str]] | None = None,
    ) -> AsyncIterator[Event]:
        agent: Any = self.rt.agent
        return agent.astream(workspace, question, thread_id=thread_id, use_memory=use_memory,  # type: ignore[no-any-return]
                             history=history)


def engine_for(runtime: Runtime) -> ChatEngine:
    """The agent when ``Runtime`` offers one (checked on the class: nothing is built here), else the adapter."""
    if hasattr(type(runtime), "agent") or "agent" in runtime.overrides:
        return AgentEngine(runtime)
    return StraightEngine(runtime)


async def guarded(events: AsyncIterator[Event], question: str) -> AsyncIterator[Event]:
    """Pass events through; turn a failure into an ``error`` event and make sure ``answer`` comes last."""
    answered = False
    try:
        async for ev in events:
            if answered:  # nothing may follow the answer
                continue
            answered = ev.get("type") == "answer"
            yield ev
    except RagentError as e:
        yield {"type": "error", "message": str(e), "error": type(e).__name__}
    except Exception as e:
        logger.exception("chat failed")
        yield {"type": "error", "message": f"internal error ({type(e).__name__}); see the API log",
               "error": type(e).__name__}
    if not answered:
        yield {"type": "answer", "answer": Answer(question, "").to_json()}
