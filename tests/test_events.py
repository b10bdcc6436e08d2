"""The event union (``agents.events``): every producer emits only events of the union, and every consumer (the
CLI, the SSE chat, the OpenAI facade, the UI client, ``describe``) handles every event type."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from agents import Agent, AgentConfig, SqliteCheckpoints, build_graph
from agents.events import EVENT_TYPES, EVENTS, Event, describe
from app.api import create_app
from app.api.engine import StraightEngine, guarded
from app.runtime import Runtime
from core.errors import LLMUnavailableError
from core.settings import Settings
from ingest.pipeline import Ingestor
from retrieval.retriever import Retriever
from tests.api_live import live_server, parse_sse
from tests.fakes import FakeLLM, HashEmbedder
from tests.test_agent import MULTI_Q, TURNS, Q, scripted, three_turns

ANSWER = {"question": Q, "short_answer": "5 kW", "answer": "It has 5 kW [1].", "dropped": [], "faithfulness": 1.0,
          "citations": [{"n": 1, "chunk_id": "c" * 32, "doc": "Manual", "page": 1, "quote": "It has 5 kW.",
                         "verified": True, "doc_id": "d", "bbox": None}], "trace": [], "plan": []}
SAMPLES: list[Event] = [
    {"type": "rewrite", "question": "and its warranty?", "standalone": "How long is the NW-200 warranty?",
     "how": "llm"},
    {"type": "plan", "plan": [{"id": "r1.s1", "tool": "search", "input": {"query": Q}}], "round": 1,
     "source": "route", "route": "single"},
    {"type": "step_start", "step": {"id": "r1.s1", "tool": "search", "input": {"query": Q}}},
    {"type": "step_end", "step": {"id": "r1.s1", "tool": "search", "input": {"query": Q}}, "ok": True,
     "summary": "search: 5 hits"},
    {"type": "reflection", "decision": "answer", "reason": "5 passages", "coverage": 1.0},
    {"type": "token", "text": "Answer: 5 kW"},
    {"type": "citations", "citations": ANSWER["citations"]},  # type: ignore[typeddict-item]
    {"type": "error", "message": "answer generation failed: test", "error": "LLMError"},
    {"type": "answer", "answer": ANSWER},
]


def test_the_samples_cover_the_union() -> None:
    assert [e["type"] for e in SAMPLES] == list(EVENT_TYPES)
    for e in SAMPLES:
        assert EVENTS.validate_python(e) == e
    with pytest.raises(ValueError):
        EVENTS.validate_python({"type": "token", "token": "guessed key"})


# ---- producers ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory, example_pdf: Path) -> Iterator[Runtime]:
    home = tmp_path_factory.mktemp("events") / "var"
    r = Runtime(Settings(home=home), overrides={"embedder": HashEmbedder(), "llm": FakeLLM([scripted()])})
    Ingestor(r.index, r.registry, r.embedder, index_writer=r.writer).ingest([example_pdf], "w")
    yield r
    r.close()


async def _collect(events: AsyncIterator[Event]) -> list[Event]:
    return [e async for e in events]


def _agent(rt: Runtime, llm: FakeLLM, checkpoints: Path | None = None) -> Agent:
    return Agent(Retriever(rt.index, rt.embedder, rt.registry), llm, None, AgentConfig(llm_experience=False),
                 SqliteCheckpoints(checkpoints) if checkpoints else None)


def produce(name: str, rt: Runtime, tmp_path: Path) -> list[Event]:
    if name == "agent single route":
        return asyncio.run(_collect(_agent(rt, FakeLLM([scripted()])).astream("w", Q)))
    if name == "agent multi-hop route":
        agent = _agent(rt, FakeLLM([scripted()]))
        agent.deps = replace(agent.deps, config=replace(agent.deps.config, chain_first_depth=1))
        agent.builder = build_graph(agent.deps)
        return asyncio.run(_collect(agent.astream("w", MULTI_Q)))
    if name == "agent follow-up in a thread":
        agent = _agent(rt, FakeLLM([three_turns]), tmp_path / "cp.db")
        asyncio.run(_collect(agent.astream("w", TURNS[0], thread_id="t")))
        return asyncio.run(_collect(agent.astream("w", TURNS[1], thread_id="t")))
    if name == "agent whose LLM fails":
        def down(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
            raise RuntimeError("the model crashed")
        return asyncio.run(_collect(_agent(rt, FakeLLM([down])).astream("w", Q)))
    if name == "straight engine":
        straight = Runtime(rt.settings, overrides={**rt.overrides, "llm": FakeLLM([scripted()])})
        straight.__dict__.update(index=rt.index, registry=rt.registry)
        return asyncio.run(_collect(StraightEngine(straight).astream("w", Q)))
    assert name == "guarded engine failure"

    async def broken() -> AsyncIterator[Event]:
        yield SAMPLES[1]
        raise LLMUnavailableError("cannot reach the LLM server")

    return asyncio.run(_collect(guarded(broken(), Q)))


PRODUCERS = ["agent single route", "agent multi-hop route", "agent follow-up in a thread", "agent whose LLM fails",
             "straight engine", "guarded engine failure"]


@pytest.mark.parametrize("producer", PRODUCERS)
def test_every_producer_emits_only_events_of_the_union(producer: str, rt: Runtime, tmp_path: Path) -> None:
    events = produce(producer, rt, tmp_path)
    for e in events:
        assert EVENTS.validate_python(e) == e, e
    json.dumps(events)
    assert events[-1]["type"] == "answer" and sum(e["type"] == "answer" for e in events) == 1
    if producer == "agent follow-up in a thread":
        assert events[0]["type"] == "rewrite"
    if producer in ("agent whose LLM fails", "guarded engine failure"):
        assert any(e["type"] == "error" for e in events)


# ---- consumers ------------------------------------------------------------------------------------------------
class SampleEngine:
    """A chat engine that emits one event of every type."""

    def astream(self, workspace: str, question: str, *, thread_id: str | None = None, use_memory: bool = True,
                history: list[tuple[str, str]] | None = None) -> AsyncIterator[Event]:
        async def gen() -> AsyncIterator[Event]:
            for e in SAMPLES:
                yield e
        return gen()


@pytest.fixture(scope="module")
def sample_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    r = Runtime(Settings(home=tmp_path_factory.mktemp("sample") / "var"),
                overrides={"embedder": HashEmbedder(), "llm": FakeLLM()})
    with live_server(create_app(r, auth=False, engine=SampleEngine())) as url:
        yield url
    r.close()


CONSUMERS = ["describe", "cli ask", "sse chat", "openai facade", "openai facade stream", "ui client"]


@pytest.mark.parametrize("consumer", CONSUMERS)
def test_every_consumer_handles_every_event_type(consumer: str, sample_api: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if consumer == "describe":
        lines = {e["type"]: describe(e) for e in SAMPLES}
        assert lines["plan"] and "search" in lines["plan"] and lines["error"] and lines["rewrite"]
        assert lines["token"] is None and lines["answer"] is None
    elif consumer == "cli ask":
        from contextlib import contextmanager

        from app import cli
        from app.cli import common

        class FakeAgent:
            def astream(self, *a: Any, **kw: Any) -> AsyncIterator[Event]:
                return SampleEngine().astream("w", Q)

        @contextmanager
        def fake_rt():  # type: ignore[no-untyped-def]
            r = Runtime(Settings(home=tmp_path / "var"), overrides={"embedder": HashEmbedder()})
            r.__dict__["agent"] = FakeAgent()
            yield r

        monkeypatch.setattr(common, "runtime", fake_rt)
        res = CliRunner().invoke(cli.app, ["ask", Q, "-w", "w"])
        assert res.exit_code == 0, res.output
        assert "Answer: 5 kW" in res.stdout and "reflect: answer" in res.stderr and "follow-up:" in res.stderr
    elif consumer == "sse chat":
        with httpx.Client(base_url=sample_api, timeout=30) as c:
            events = parse_sse(c.post("/v1/workspaces/w/chat", json={"question": Q}).text)
        assert [e["type"] for e in events] == list(EVENT_TYPES)
        assert all(EVENTS.validate_python(e) for e in events) and events[-1]["thread_id"]
    elif consumer == "openai facade":
        with httpx.Client(base_url=sample_api, timeout=30) as c:
            body = c.post("/v1/chat/completions", json={"model": "ragent:w", "messages": [
                {"role": "user", "content": Q}]}).json()
        msg = body["choices"][0]["message"]
        assert msg["content"].startswith("Answer: 5 kW") and msg["short_answer"] == "5 kW" and msg["citations"]
    elif consumer == "openai facade stream":
        with httpx.Client(base_url=sample_api, timeout=30) as c:
            text = c.post("/v1/chat/completions", json={"model": "ragent:w", "stream": True, "messages": [
                {"role": "user", "content": Q}]}).text
        chunks = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]
        content = "".join(ch["choices"][0]["delta"].get("content") or "" for ch in chunks)
        assert "[ragent error: answer generation failed: test]" in content and "Answer: 5 kW" in content
        assert "Answer: 5 kW\n" not in content.split("[ragent error")[0]  # the draft token is not streamed
    else:
        from app.ui.client import ApiClient

        events = list(ApiClient(sample_api).chat_stream("w", Q))
        assert [e["type"] for e in events] == list(EVENT_TYPES)
