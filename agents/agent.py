"""``Agent``: runs the graph for one question, streams its events, resumes interrupted runs by thread id.

Events (JSON-serialisable dicts), in order: ``rewrite`` (a follow-up made standalone), ``plan``,
``step_start``/``step_end`` per tool call, ``reflection`` (answer | retry | replan | done), ``token`` (the draft
as the LLM streams it; the checked answer may differ), ``citations``, ``error``, and always last ``answer``
(also after errors) with ``short_answer``, the checked explanation and its citations.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

from agents.answer import NOT_FOUND
from agents.config import AgentConfig
from agents.deps import Deps
from agents.events import AnswerEvent, ErrorEvent, Event
from agents.experience import learn
from agents.graph import build_graph
from agents.memory import ExperienceMemory
from agents.rewrite import MAX_QUESTION_CHARS
from agents.state import RESET
from core.llm import LLM
from core.types import Answer, Citation
from retrieval.searcher import Searcher

logger = logging.getLogger(__name__)


class SqliteCheckpoints:
    """A checkpointer factory: opens LangGraph's AsyncSqliteSaver on ``path`` for each run (it binds to the
    running event loop, so it cannot be built ahead of ``asyncio.run``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # Concurrent runs (the API) each have a connection; a writer keeps the lock until its commit is scheduled on
    # a busy event loop, so SQLite's default 5 s wait failed 7 of 50 concurrent chats (tests/test_load.py)
    busy_timeout_s = 60.0

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Any]:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        self.path.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(str(self.path), timeout=self.busy_timeout_s) as conn:
            yield AsyncSqliteSaver(conn)


def answer_from_json(d: dict[str, Any], trace: list[dict[str, Any]], plan: list[dict[str, Any]]) -> Answer:
    cites = tuple(Citation(n=c["n"], chunk_id=c["chunk_id"], doc=c["doc"], page=c.get("page"), quote=c["quote"],
                           verified=bool(c.get("verified")), doc_id=c.get("doc_id", ""),
                           bbox=tuple(c["bbox"]) if c.get("bbox") else None,  # type: ignore[arg-type]
                           image=bool(c.get("image")))
                  for c in d.get("citations", []))
    return Answer(d.get("question", ""), d.get("answer", ""), cites, tuple(trace), tuple(plan),
                  short_answer=d.get("short_answer", ""), dropped=tuple(d.get("dropped", [])),
                  faithfulness=d.get("faithfulness"))


class Agent:
    """Planner / executor / reflector / answerer with an experience memory (see agents/graph.py)."""

    def __init__(self, retriever: Searcher, llm: LLM, memory: ExperienceMemory | None, config: AgentConfig,
                 checkpointer: Any = None, figures: Callable[[str, str, str], str] | None = None) -> None:
        self.deps = Deps(retriever, llm, memory, config, figures)
        self.builder = build_graph(self.deps)
        self.checkpointer = checkpointer
        self.last_state: dict[str, Any] = {}

    def compile(self, checkpointer: Any = None) -> Any:
        return self.builder.compile(checkpointer=checkpointer)

    def _saver(self) -> AbstractAsyncContextManager[Any]:
        cp = self.checkpointer
        if cp is None:
            return nullcontext(None)
        if hasattr(cp, "open"):
            return cp.open()  # type: ignore[no-any-return]
        return nullcontext(cp)

    async def astream(self, workspace: str, question: str, *, thread_id: str | None = None,
                      use_memory: bool = True, history: list[tuple[str, str]] | None = None,
                      ) -> AsyncIterator[Event]:
        """Run the graph for ``question``; yield its events live, then ``answer`` (always, also after errors).
        The experience reflectors run after the answer has been yielded (off the answer path). A thread id
        keeps the conversation: a follow-up question is rewritten from the thread's earlier turns. ``history``
        ((question, answer) pairs, e.g. an OpenAI client's messages) replaces the thread's own turns."""
        run_id = uuid.uuid4().hex[:12]
        tid = thread_id or run_id
        config: dict[str, Any] = {"configurable": {"thread_id": tid}, "recursion_limit": 60}
        question = question.strip()[:MAX_QUESTION_CHARS]
        values: dict[str, Any] = {}
        async with self._saver() as saver:
            graph = self.compile(saver)
            inp: dict[str, Any] | None = self._initial(run_id, workspace, question, use_memory)
            if history is not None and inp is not None:
                inp["history"] = [RESET, *({"question": q[:MAX_QUESTION_CHARS], "answer": a[:1000]}
                                           for q, a in history[-self.deps.config.history_turns:])]
            if saver is not None and thread_id:
                snap = await graph.aget_state(config)
                if snap.next and snap.values.get("question") == question:
                    logger.info("resuming thread %s at %s", thread_id, snap.next)
                    inp, values = None, dict(snap.values)
            try:
                async for mode, chunk in graph.astream(inp, config, stream_mode=["custom", "values"]):
                    if mode == "custom":
                        yield chunk
                    else:
                        values = chunk
            except Exception as e:
                logger.exception("agent run failed")
                yield ErrorEvent(type="error", message=f"{type(e).__name__}: {e}", error=type(e).__name__)
                values = {**values, "error": str(e)}
        self.last_state = values
        ans = values.get("answer") if values.get("answered_round") else None
        if not ans:
            ans = {"question": question, "short_answer": NOT_FOUND, "citations": [],
                   "answer": f"The run stopped before answering: {values.get('error', '?')}"}
        plan = [s for p in values.get("plans", []) for s in p]
        out = {**ans, "trace": values.get("trace", []),
               "plan": plan, "thread_id": tid, "stats": self._stats(values)}
        yield AnswerEvent(type="answer", answer=out, thread_id=tid)
        if values.get("answered_round") and self.deps.memory is not None and use_memory:
            try:  # the experience reflectors: after the answer, so the user never waits for them
                learned = await learn(values, self.deps)  # type: ignore[arg-type]
                self.last_state = {**values, **learned}
            except Exception:
                logger.exception("experience reflectors failed")

    async def ask(self, workspace: str, question: str, *, thread_id: str | None = None,
                  use_memory: bool = True, history: list[tuple[str, str]] | None = None) -> Answer:
        final: dict[str, Any] = {}
        async for ev in self.astream(workspace, question, thread_id=thread_id, use_memory=use_memory,
                                     history=history):
            if ev["type"] == "answer":
                final = ev["answer"]
        return answer_from_json(final, final.get("trace", []), final.get("plan", []))

    @staticmethod
    def _initial(run_id: str, workspace: str, question: str, use_memory: bool) -> dict[str, Any]:
        return {
            "run_id": run_id, "workspace": workspace, "question": question, "use_memory": use_memory,
            "started": time.time(), "tips": [], "shortcuts": [], "plan": [], "plans": [RESET], "round": 0,
            "results": {"__reset__": True}, "evidence": [RESET], "ops": [RESET], "trace": [RESET],
            "decision": "", "reason": "", "steps_run": 0, "retries": 0, "replans": 0, "plans_total": 0,
            "plans_llm_valid": 0, "plan_fallbacks": 0, "feedback": "", "answer": {}, "answer_source": "",
            "learned": {}, "counters": {"__reset__": True}, "search_query": question, "route": "",
            "routes_tried": [], "answer_supported": False, "answered_round": 0, "best_answer": {},
            "budget_exhausted": "",
        }

    @staticmethod
    def _stats(v: dict[str, Any]) -> dict[str, Any]:
        stats = {k: v.get(k) for k in ("steps_run", "retries", "replans", "plans_total", "plans_llm_valid",
                                       "plan_fallbacks", "answer_source", "answer_supported", "route",
                                       "search_query", "budget_exhausted", "run_id")}
        return stats
