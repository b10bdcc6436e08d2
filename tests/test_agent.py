"""The agent graph with a scripted FakeLLM: every route, the event stream, citations, resume, the graph shape."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents import Agent, AgentConfig, ExperienceMemory, SqliteCheckpoints, store_from_url
from agents.cite import extractive_answer, verify_answer
from app.runtime import Runtime
from core.settings import Settings
from core.types import Chunk, Hit
from ingest.pipeline import Ingestor
from retrieval.retriever import Retriever
from tests.fakes import FakeLLM, HashEmbedder

SNAPSHOT = Path(__file__).parent / "snapshots" / "agent_graph.mmd"
Q = "What is the rated output of the NW-200 inverter?"
GOOD_ANSWER = "The NW-200 has a rated output of 5 kW [1]."


@pytest.fixture(scope="module")
def ws_runtime(tmp_path_factory: pytest.TempPathFactory, example_pdf: Path) -> Iterator[Runtime]:
    """One ingested workspace shared by this module's tests (HashEmbedder: fast, deterministic)."""
    home = tmp_path_factory.mktemp("agent") / "var"
    rt = Runtime(Settings(home=home), overrides={"embedder": HashEmbedder()})
    Ingestor(rt.index, rt.registry, rt.embedder).ingest([example_pdf], "w")
    yield rt
    rt.close()


def plan_json(*steps: dict[str, Any]) -> str:
    return json.dumps({"steps": list(steps)})


def step(sid: str, tool: str, deps: tuple[str, ...] = (), **inp: Any) -> dict[str, Any]:
    return {"id": sid, "tool": tool, "input": inp, "depends_on": list(deps)}


def by_schema(plans: list[str], answer: str = GOOD_ANSWER, judge: str = '{"answerable": true}'):  # type: ignore[no-untyped-def]
    """A FakeLLM reply function: plans in order for Plan schema calls, the judge reply, else the answer."""
    it = iter(plans)

    def reply(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        if title == "Plan":
            return next(it, plans[-1])
        if title == "Judgement":
            return judge
        if title == "TipsOut":
            return '{"tips": []}'
        return answer
    return reply


def fast_retriever(rt: Runtime) -> Retriever:
    """Dense + BM25 only (no cross-encoder, graph or LLM decomposition): fast unit tests."""
    return Retriever(rt.index, rt.embedder, rt.registry)


def make_agent(rt: Runtime, llm: FakeLLM, memory: ExperienceMemory | None = None, **cfg: Any) -> Agent:
    base = {"llm_judge": False, "llm_experience": False}
    return Agent(fast_retriever(rt), llm, memory, AgentConfig(**{**base, **cfg}))


def run(agent: Agent, q: str = Q, **kw: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [ev async for ev in agent.astream("w", q, **kw)]
    return asyncio.run(go())


def decisions(events: list[dict[str, Any]]) -> list[str]:
    return [e["decision"] for e in events if e["type"] == "reflection"]


def test_finish_route_streams_events_and_verified_citations(ws_runtime: Runtime) -> None:
    llm = FakeLLM([by_schema([plan_json(step("s1", "search", query="{question}", k=3))],
                             answer="The NW-200 has a rated output of 5 kW.")])
    events = run(make_agent(ws_runtime, llm))
    types = [e["type"] for e in events]
    assert types[0] == "plan" and types[-1] == "answer"
    assert types.index("step_start") < types.index("step_end") < types.index("reflection") < types.index("token")
    assert "citations" in types and decisions(events) == ["finish"]
    ans = events[-1]["answer"]
    assert "5 kW" in ans["answer"] and ans["citations"] and all(c["verified"] for c in ans["citations"])
    start = next(e for e in events if e["type"] == "step_start")
    assert start["step"]["input"]["query"] == Q and ans["plan"][0]["input"]["query"] == "{question}"
    assert ans["stats"]["plan_fallbacks"] == 0 and ans["stats"]["answer_source"] == "llm"
    json.dumps(events)  # the stream is JSON-serialisable


def test_invalid_plan_json_falls_back_to_default_plan(ws_runtime: Runtime) -> None:
    llm = FakeLLM([by_schema(["not json at all", "{\"steps\": []}"])])
    events = run(make_agent(ws_runtime, llm))
    plan_ev = events[0]
    assert plan_ev["source"] == "fallback" and plan_ev["plan"][0]["tool"] == "search"
    assert sum(1 for c in llm.calls if (c["schema"] or {}).get("title") == "Plan") == 2  # validated, retried once
    assert events[-1]["answer"]["stats"]["plan_fallbacks"] == 1
    assert events[-1]["answer"]["citations"]


def test_unknown_tool_falls_back(ws_runtime: Runtime) -> None:
    llm = FakeLLM([by_schema([plan_json(step("s1", "web_search", query="x"))])])
    events = run(make_agent(ws_runtime, llm))
    assert events[0]["source"] == "fallback" and "unknown tool" in events[0]["fallback_reason"]


def test_tool_error_then_retry(ws_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}

    async def flaky(*a: Any, **kw: Any) -> list[Hit]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("index busy")
        return await real(*a, **kw)

    llm = FakeLLM([by_schema([plan_json(step("s1", "search", query="rated output NW-200 inverter"))])])
    agent = make_agent(ws_runtime, llm)
    real = agent.deps.retriever.search
    monkeypatch.setattr(agent.deps.retriever, "search", flaky)
    events = run(agent)
    ends = [e for e in events if e["type"] == "step_end"]
    assert [e["ok"] for e in ends] == [False, True] and "index busy" in ends[0]["summary"]
    assert decisions(events) == ["retry", "finish"]
    assert events[-1]["answer"]["stats"]["retries"] == 1


def test_empty_results_replan(ws_runtime: Runtime) -> None:
    first = plan_json(step("s1", "read_page", doc_id="nope", page=99))
    second = plan_json(step("s1", "search", query="NW-200 rated output"),
                       step("s2", "answer", ("s1",), question="rated output?", **{"from": ["s1"]}))
    llm = FakeLLM([by_schema([first, second], answer=GOOD_ANSWER)])
    events = run(make_agent(ws_runtime, llm))
    assert decisions(events) == ["replan", "finish"]
    plans = [e for e in events if e["type"] == "plan"]
    assert len(plans) == 2 and plans[1]["plan"][0]["id"] == "r2.s1" and plans[1]["plan"][1]["depends_on"] == ["r2.s1"]
    replan_prompt = [c for c in llm.calls if (c["schema"] or {}).get("title") == "Plan"][-1]["messages"][-1]["content"]
    assert "not enough" in replan_prompt


def test_budget_exhausted_still_answers(ws_runtime: Runtime) -> None:
    many = plan_json(*[step(f"s{i}", "read_page", doc_id="nope", page=99) for i in range(1, 5)])
    llm = FakeLLM([by_schema([many])])
    events = run(make_agent(ws_runtime, llm, max_steps=2))
    assert sum(1 for e in events if e["type"] == "step_end") == 2
    refl = [e for e in events if e["type"] == "reflection"]
    assert refl[-1]["decision"] == "finish" and "budget exhausted" in refl[-1]["reason"]
    assert events[-1]["type"] == "answer"


def test_llm_judge_in_grey_zone(ws_runtime: Runtime) -> None:
    llm = FakeLLM([by_schema([plan_json(step("s1", "search", query="{question}"))], judge='{"answerable": true}')])
    agent = make_agent(ws_runtime, llm, llm_judge=True, finish_coverage=1.01, replan_coverage=0.0)
    events = run(agent, "Who must install the inverter, and what about zebras?")
    refl = [e for e in events if e["type"] == "reflection"]
    assert refl[0]["decision"] == "finish" and refl[0]["reason"].startswith("LLM judge")


def test_unsupported_llm_answer_falls_back_to_extractive(ws_runtime: Runtime) -> None:
    llm = FakeLLM([by_schema([plan_json(step("s1", "search", query="{question}"))],
                             answer="Bananas are purple giraffes [1].")])
    ans = run(make_agent(ws_runtime, llm))[-1]["answer"]
    assert ans["stats"]["answer_source"] == "extractive"
    assert ans["citations"] and all(c["verified"] for c in ans["citations"]) and "Bananas" not in ans["answer"]
    assert "5 kW" in ans["answer"]


def test_error_still_ends_with_answer_and_resume_by_thread(ws_runtime: Runtime, tmp_path: Path) -> None:
    """A crash in the answerer leaves a checkpoint; the same thread resumes there without re-planning."""
    state = {"crash": True}

    def reply(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        if (schema or {}).get("title") == "Plan":
            return plan_json(step("s1", "search", query="{question}"))
        if state["crash"]:
            raise RuntimeError("killed mid-answer")
        return GOOD_ANSWER

    llm = FakeLLM([reply])
    agent = Agent(fast_retriever(ws_runtime), llm, None, AgentConfig(llm_judge=False, llm_experience=False),
                  SqliteCheckpoints(tmp_path / "cp.db"))
    events = run(agent, thread_id="t1")
    assert [e["type"] for e in events][-2:] == ["error", "answer"] and "killed" in events[-2]["message"]
    n_plan_calls = len(llm.calls)
    state["crash"] = False
    events = run(agent, thread_id="t1")
    assert not any(e["type"] == "plan" for e in events)  # resumed at the answerer
    assert len(llm.calls) == n_plan_calls + 1 and events[-1]["answer"]["citations"]
    assert events[-1]["answer"]["thread_id"] == "t1"


def test_ask_returns_answer_with_trace_and_plan(ws_runtime: Runtime) -> None:
    llm = FakeLLM([by_schema([plan_json(step("s1", "search", query="{question}"))])])
    ans = asyncio.run(make_agent(ws_runtime, llm).ask("w", Q))
    assert ans.citations and ans.trace and ans.plan and ans.citations[0].verified


def test_verifier_drops_unsupported_sentences() -> None:
    c = Chunk(id="c" * 32, doc_id="d", workspace="w", text="The warranty lasts ten years. Install indoors.")
    text, cites, dropped = verify_answer("The warranty lasts ten years [1]. Penguins fly to Mars [1].",
                                         [Hit(chunk=c, score=1.0)])
    assert "Penguins" not in text and dropped and cites[0].verified
    text, cites = extractive_answer("How long is the warranty?", [Hit(chunk=c, score=1.0)])
    assert text.startswith("The warranty lasts ten years [1].") and cites[0].verified


def test_verifier_moves_trailing_marks_and_cites_every_source_a_sentence_uses() -> None:
    # seen with the real 1.5B model: "... installation. [1]" and one sentence joining facts of two pages
    p1 = Chunk(id="a" * 32, doc_id="d", workspace="w", page=1,
               text="The NW-200 has a rated output of 5 kW and a peak efficiency of 97.6 percent.")
    p3 = Chunk(id="b" * 32, doc_id="d", workspace="w", page=3,
               text="The warranty lasts ten years when the unit is registered within 90 days.")
    hits = [Hit(chunk=p1, score=1.0), Hit(chunk=p3, score=0.9)]
    text, cites, dropped = verify_answer("The rated output is 5 kW, and the warranty lasts ten years. [1]", hits)
    assert not dropped and text == "The rated output is 5 kW, and the warranty lasts ten years [1] [2]."
    assert [(c.n, c.page) for c in cites] == [(1, 1), (2, 3)] and all(c.verified for c in cites)
    assert "warranty" in cites[1].quote
    table = Chunk(id="e" * 32, doc_id="d", workspace="w", page=2,
                  text="| Rated output | 5 kW |\n| Warranty | 10 years |")
    _, cites, _ = verify_answer("The rated output is 5 kW [1], and the warranty is 10 years.",
                                [hits[0], Hit(chunk=table, score=0.8)])
    assert [c.quote for c in cites][1] == "| Warranty | 10 years |"  # the row the first source did not quote


def test_sentences_do_not_end_at_abbreviations_or_initials() -> None:
    # seen with the real model: 'was "Mr [1] [3]. Bill's Real Life Adventures"' (a marker inside the title)
    from agents.cite import sentences

    assert sentences('It was "Mr. Bill\'s Real Life Adventures" by J. R. Drake [3]. It is 5 kW.') == [
        'It was "Mr. Bill\'s Real Life Adventures" by J. R. Drake [3].', "It is 5 kW."]


def test_recall_with_an_invented_path_runs_hybrid_search(ws_runtime: Runtime) -> None:
    llm = FakeLLM([by_schema([plan_json(step("s1", "recall", path="specifications", query="rated output"))])])
    events = run(make_agent(ws_runtime, llm))
    end = next(e for e in events if e["type"] == "step_end")
    assert end["ok"] and "unknown recall path 'specifications'" in end["summary"]
    assert events[-1]["answer"]["citations"]


def test_graph_mermaid_snapshot() -> None:
    from agents.deps import Deps
    from agents.graph import build_graph

    deps = Deps(retriever=None, llm=FakeLLM(), memory=None, config=AgentConfig())  # type: ignore[arg-type]
    mermaid = build_graph(deps).compile().get_graph().draw_mermaid()
    if not SNAPSHOT.exists():  # first run writes it; commit the file
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(mermaid)
    assert mermaid == SNAPSHOT.read_text()


# ---- experience memory updates ---------------------------------------------------------------------------


def test_failing_run_creates_error_derived_tip(ws_runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    from langgraph.store.memory import InMemoryStore

    mem = ExperienceMemory(InMemoryStore(), HashEmbedder())
    llm = FakeLLM([by_schema([plan_json(step("s1", "recall", path="dense", query="{question}"))])])
    agent = make_agent(ws_runtime, llm, mem, max_retries=0, max_replans=0)

    async def broken(*a: Any, **kw: Any) -> list[Hit]:
        raise TimeoutError("dense index timed out")

    monkeypatch.setattr(agent.deps.retriever, "recall", broken)
    events = run(agent)
    learned = next(e for e in events if e["type"] == "memory")
    assert learned["success"] is False and learned["tips_added"]
    tips = mem.list("tips", "w")
    assert any("'recall' failed with TimeoutError" in t["text"] for t in tips)
    assert all(t["provenance"] == [events[-1]["answer"]["stats"]["run_id"]] for t in tips)
    # the next run on a similar question sees the tip in its planning prompt
    llm2 = FakeLLM([by_schema([plan_json(step("s1", "search", query="{question}"))])])
    run(make_agent(ws_runtime, llm2, mem))
    assert "failed with TimeoutError" in llm2.calls[0]["messages"][-1]["content"]


def test_repeated_sequence_becomes_shortcut_used_by_later_plan(ws_runtime: Runtime) -> None:
    from langgraph.store.memory import InMemoryStore

    mem = ExperienceMemory(InMemoryStore(), HashEmbedder())
    two_step = plan_json(step("s1", "search", query="{question}"),
                         step("s2", "answer", ("s1",), question="{question}", **{"from": ["s1"]}))
    for q in (Q, "What is the rated output of the NW-200?"):
        events = run(make_agent(ws_runtime, FakeLLM([by_schema([two_step])]), mem), q)
        assert events[-1]["answer"]["stats"]["learned"]["success"]
    (sc,) = mem.list("shortcuts", "w")
    assert [s["tool"] for s in sc["steps"]] == ["search", "answer"] and len(sc["provenance"]) == 1
    assert sc["steps"][1]["input"]["from"] == ["s1"]
    # a later run whose LLM plan is unusable falls back to the learned shortcut
    llm = FakeLLM([by_schema(["garbage"])])
    events = run(make_agent(ws_runtime, llm, mem), "Rated output of the NW-200 inverter?")
    plan = events[0]["plan"]
    assert [s["tool"] for s in plan] == ["search", "answer"] and all(s["shortcut"] == sc["name"] for s in plan)
    assert plan[1]["input"]["from"] == ["r1.s1.s1"] and events[-1]["answer"]["citations"]
    assert sc["name"] in llm.calls[0]["messages"][-1]["content"]  # offered to the planner
    assert mem.get("shortcuts", "w", sc["id"])["uses"] == 1  # type: ignore[index]


def test_no_memory_flag_skips_memory(ws_runtime: Runtime) -> None:
    from langgraph.store.memory import InMemoryStore

    mem = ExperienceMemory(InMemoryStore(), HashEmbedder())
    mem.put("tips", "w", {"text": "Rated output questions: read page one."})
    llm = FakeLLM([by_schema([plan_json(step("s1", "search", query="{question}"))])])
    events = run(make_agent(ws_runtime, llm, mem), use_memory=False)
    assert not any(e["type"] == "memory" for e in events)
    assert "Tips" not in llm.calls[0]["messages"][-1]["content"]


# ---- the CLI and a real run -------------------------------------------------------------------------------


def test_cli_ask_json_has_trace_plan_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              example_pdf: Path) -> None:
    from contextlib import contextmanager

    from typer.testing import CliRunner

    from app import cli

    home = tmp_path / "var"
    monkeypatch.setenv("RAGENT_HOME", str(home))
    llm = FakeLLM([by_schema([plan_json(step("s1", "search", query="{question}"))])])

    @contextmanager
    def fake_rt():  # type: ignore[no-untyped-def]
        rt = Runtime(Settings(home=home), overrides={"llm": llm, "embedder": HashEmbedder()})
        rt.__dict__["retriever"] = fast_retriever(rt)
        try:
            yield rt
        finally:
            rt.close()

    monkeypatch.setattr(cli, "runtime", fake_rt)
    with fake_rt() as rt:
        Ingestor(rt.index, rt.registry, rt.embedder).ingest([example_pdf], "c")
    runner = CliRunner()
    r = runner.invoke(cli.app, ["ask", Q, "-w", "c", "--json", "--thread", "th1"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["trace"] and data["plan"] and data["citations"] and all("verified" in c for c in data["citations"])
    assert data["thread_id"] == "th1"
    r = runner.invoke(cli.app, ["ask", Q, "-w", "c", "--no-memory"])
    assert r.exit_code == 0 and "plan" in r.stderr and "5 kW" in r.stdout


@pytest.mark.slow
def test_real_llm_agent_cites_the_pdf(llm_server: Any, tmp_path: Path, example_pdf: Path) -> None:
    """The whole agent on the real vLLM CPU server (Qwen2.5-Coder-0.5B) and the real MiniLM embedder."""
    from core.llm import OpenAILLM

    rt = Runtime(Settings(home=tmp_path / "var"), overrides={"llm": OpenAILLM(llm_server)})
    try:
        Ingestor(rt.index, rt.registry, rt.embedder).ingest([example_pdf], "real")
        mem = ExperienceMemory(store_from_url(None, tmp_path / "var" / "memory.db"), rt.embedder)
        agent = Agent(Retriever(rt.index, rt.embedder, rt.registry), rt.llm, mem,
                      AgentConfig(llm_judge=False, llm_experience=False, time_budget_s=900,
                                  plan_tokens=160, answer_tokens=64),
                      SqliteCheckpoints(tmp_path / "var" / "cp.db"))
        ans = asyncio.run(agent.ask("real", "What is the rated output of the NW-200 inverter?"))
        assert "5 kW" in ans.answer
        assert ans.citations and all(c.verified for c in ans.citations)
        assert any(e["type"] == "plan" for e in ans.trace)
    finally:
        rt.close()
