"""``ragent eval answers``: metrics, a user's JSONL, the per-question cache (resume), and a smoke run of the CLI
with the real 0.5B model on vLLM CPU (slow)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.memory import PlaceboMemory
from app.eval_answers import agent_evidence, evaluate, load_set, normalize, score
from app.runtime import Runtime
from core.errors import ConfigError
from core.settings import LLMConfig, Settings
from ingest.pipeline import Ingestor
from tests.fakes import FakeLLM, HashEmbedder

QUESTIONS = [
    {"question": "What is the rated output of the NW-200 inverter?", "answer": "5 kW",
     "gold_doc": "Northwind NW-200 Field Manual", "gold_pages": [1]},
    {"question": "How long is the warranty of the NW-200?", "answer": "ten years", "answer_aliases": ["10 years"]},
]


def reply(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    q = messages[-1]["content"].rsplit("Question:", 1)[-1]
    if "warranty" in q:
        return "Answer: ten years\nExplanation: The warranty lasts ten years [1]."
    return "Answer: 5 kW\nExplanation: The NW-200 has a rated output of 5 kW [1]."


@pytest.fixture
def qfile(tmp_path: Path) -> Path:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(q) for q in QUESTIONS) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def fake_rt(tmp_path: Path, example_pdf: Path) -> Iterator[tuple[Runtime, FakeLLM]]:
    llm = FakeLLM([reply])
    rt = Runtime(Settings(home=tmp_path / "var"), overrides={"llm": llm, "embedder": HashEmbedder()})
    Ingestor(rt.index, rt.registry, rt.embedder, index_writer=rt.writer).ingest([example_pdf], "manual")
    yield rt, llm
    rt.close()


def test_squad_metrics_on_the_short_answer() -> None:
    assert normalize("The  Eiffel-Tower!") == "eiffel tower"
    s = score("5 kW", "The NW-200 has a rated output of 5 kW [1].", ["5 kW"])
    assert s == {"em": 1.0, "f1": 1.0, "contains": 1.0}
    s = score("about 5 kW", "", ["5 kW", "five kilowatts"])
    assert s["em"] == 0.0 and 0.7 < s["f1"] < 0.9 and s["contains"] == 1.0


def test_a_question_file_needs_its_workspace_and_valid_lines(qfile: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="-w WS"):
        load_set(str(qfile), tmp_path, "", None)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no answer"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1"):
        load_set(str(bad), tmp_path, "ws", None)
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_set("nope", tmp_path, "ws", None)
    qs = load_set(str(qfile), tmp_path, "manual", 1)
    assert len(qs.questions) == 1 and qs.questions[0].gold_pages == frozenset({1})


def test_every_system_is_scored_and_a_second_run_resumes_from_the_cache(fake_rt: tuple[Runtime, FakeLLM],
                                                                      qfile: Path, tmp_path: Path) -> None:
    rt, llm = fake_rt
    qs = load_set(str(qfile), tmp_path, "manual")
    rep = evaluate(rt, qs, ["llm-only", "rag", "agent"])
    for system in ("llm-only", "rag", "agent"):
        s = rep["systems"][system]
        assert s["n"] == 2 and s["em"] == 1.0 and s["f1"] == 1.0
    assert rep["systems"]["rag"]["faithfulness"] == 1.0 and rep["systems"]["agent"]["faithfulness"] == 1.0
    assert rep["systems"]["llm-only"]["cited_gold"] is None
    row = rep["rows"]["rag"][0]
    assert row["cited_gold"] == 1.0 and row["citations"][0]["page"] == 1 and row["total_s"] > 0
    # the passages each system read, by id: recall of the gold passages is computed from the rows
    assert set(row["retrieved_ids"]) >= {c["chunk_id"] for c in row["citations"]}
    agent_row = rep["rows"]["agent"][0]
    assert len(agent_row["evidence_ids"]) == len(agent_row["evidence"]) > 0
    calls = len(llm.calls)
    again = evaluate(rt, qs, ["llm-only", "rag", "agent"])
    assert len(llm.calls) == calls  # every row came from the cache
    assert again["systems"]["agent"] == {**rep["systems"]["agent"]}


@pytest.mark.slow
def test_cli_eval_answers_with_the_real_model(llm_server: LLMConfig, tmp_path: Path, example_pdf: Path,
                                             qfile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The smoke run: a user's workspace + JSONL, all three systems, the real 0.5B on vLLM CPU."""
    from app import cli

    monkeypatch.setenv("RAGENT_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("RAGENT_LLM_BASE_URL", llm_server.base_url)
    monkeypatch.setenv("RAGENT_LLM_SERVED_NAME", llm_server.model)
    monkeypatch.setenv("RAGENT_AGENT_LLM_EXPERIENCE", "false")
    runner = CliRunner()
    r = runner.invoke(cli.app, ["ingest", str(example_pdf), "-w", "manual"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "report.json"
    r = runner.invoke(cli.app, ["eval", "answers", "--dataset", str(qfile), "-w", "manual", "--systems",
                                "llm-only,rag,agent", "--json", "--out", str(out)])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert set(summary["systems"]) == {"llm-only", "rag", "agent"}
    assert all(s["n"] == 2 and s["errors"] == 0 for s in summary["systems"].values())
    rows = json.loads(out.read_text())["rows"]
    for row in rows["rag"] + rows["agent"]:
        assert row["llm_calls"] >= 1 and row["prompt_tokens"] > 0 and row["short_answer"]
        assert all(c["verified"] for c in row["citations"])
    assert summary["systems"]["rag"]["contains"] >= 0.5  # the 0.5B finds at least one of two plain facts


def test_skip_leaves_out_the_first_questions(qfile: Path, tmp_path: Path) -> None:
    qs = load_set(str(qfile), tmp_path, "manual", limit=1, skip=1)
    assert [q.question for q in qs.questions] == [QUESTIONS[1]["question"]]
    with pytest.raises(ConfigError, match="no questions left"):
        load_set(str(qfile), tmp_path, "manual", skip=2)


def test_placebo_memory_reads_random_tips_of_the_same_length_and_learns_nothing(fake_rt: tuple[Runtime, FakeLLM],
                                                                                ) -> None:
    rt, _ = fake_rt
    tip = "Search the model number alone when the question names a product and a part."
    tid = rt.memory.put("tips", "manual", {"text": tip})
    rt.memory.put("shortcuts", "manual", {"name": "sc", "steps": [{"tool": "search", "input": {}}], "text": "x"})
    placebo = PlaceboMemory(rt.memory)
    got = placebo.search("tips", "manual", "rated output of the NW-200", 3)
    assert len(got) == 1 and got[0]["id"] == tid
    assert got[0]["text"] != tip and len(got[0]["text"].split()) == len(tip.split())
    assert set(got[0]["text"].lower().rstrip(".").split()) <= set(tip.lower().rstrip(".").split())
    assert placebo.search("tips", "manual", "rated output of the NW-200", 3) == got  # seeded: the same placebo
    assert placebo.search("shortcuts", "manual", "anything", 3) == []
    assert placebo.put("tips", "manual", {"text": "a new lesson"}) == ""
    placebo.record("tips", "manual", tid, success=True, run_id="r")
    assert [t["text"] for t in rt.memory.list("tips", "manual")] == [tip]
    assert rt.memory.get("tips", "manual", tid)["uses"] == 0  # type: ignore[index]


def test_memory_arms_learn_after_the_answer_and_the_placebo_learns_nothing(fake_rt: tuple[Runtime, FakeLLM],
                                                                           qfile: Path, tmp_path: Path) -> None:
    rt, llm = fake_rt
    qs = load_set(str(qfile), tmp_path, "manual")
    rep = evaluate(rt, qs, ["agent-memory"])
    assert rep["systems"]["agent-memory"]["n"] == 2 and rep["systems"]["agent-memory"]["f1"] == 1.0
    learned = rt.memory.list("tips", "manual") + rt.memory.list("shortcuts", "manual")
    row = rep["rows"]["agent-memory"][0]
    assert row["learn_s"] >= 0 and "learn_llm_calls" in row and row["evidence"]
    assert row["evidence"][0] == "Northwind NW-200 Field Manual"
    assert any((c["schema"] or {}).get("title") == "TipsOut" for c in llm.calls)  # the tips reflector ran
    before = len(llm.calls)
    rep = evaluate(rt, qs, ["agent-placebo"])
    assert rep["systems"]["agent-placebo"]["n"] == 2
    assert not any((c["schema"] or {}).get("title") == "TipsOut" for c in llm.calls[before:])  # it learns nothing
    assert rt.memory.list("tips", "manual") + rt.memory.list("shortcuts", "manual") == learned


def test_agent_evidence_is_what_the_answerer_reads(fake_rt: tuple[Runtime, FakeLLM]) -> None:
    rt, _ = fake_rt
    hits = asyncio.run(agent_evidence(rt.agent, "manual", "What is the rated output of the NW-200 inverter?", 10))
    assert hits and all(h.chunk.doc_title == "Northwind NW-200 Field Manual" for h in hits)
    assert len({h.chunk.id for h in hits}) == len(hits) <= 10


def test_systems_take_turns_going_first(fake_rt: tuple[Runtime, FakeLLM], qfile: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The second system on a question finds the shared prompt in vLLM's prefix cache: each goes first in turn."""
    rt, _ = fake_rt
    order: list[tuple[str, str]] = []

    async def fake_run(rt: Runtime, system: str, ws: str, q: Any) -> dict[str, Any]:
        order.append((q.qid, system))
        return {"qid": q.qid, "short_answer": "x", "total_s": 1.0, "em": 0.0, "f1": 0.0, "contains": 0.0}

    monkeypatch.setattr("app.eval_answers.run_one", fake_run)
    evaluate(rt, load_set(str(qfile), tmp_path, "manual"), ["rag", "agent"])
    assert order == [("0", "rag"), ("0", "agent"), ("1", "agent"), ("1", "rag")]


def test_eval_workspaces_of_int8_and_fp32_vectors_differ(tmp_path: Path) -> None:
    """An int8 run in a home holding the fp32 eval workspace gets its own workspace instead of the refusal."""
    from app.eval_answers import embedder_key
    from core.settings import Settings
    from retrieval.sparse import SPARSE_VERSION

    fp32, int8 = Settings(home=tmp_path), Settings(home=tmp_path, embed_quant="int8")
    # fp32 adds nothing for the vectors; the BM25 tokeniser's version (2: Unicode) gets a workspace of its own
    assert embedder_key(fp32) == f"{fp32.embed_model}|{fp32.graph_extractor}|sparse{SPARSE_VERSION}"
    assert embedder_key(int8) != embedder_key(fp32)


def test_a_run_with_other_agent_settings_does_not_reuse_the_cached_rows(tmp_path: Path) -> None:
    """The cache was keyed by set, workspace, system, model and prompts only: an A/B run with
    RAGENT_AGENT_CHAIN_FIRST_DEPTH=100 read the default run's agent rows back as its own results."""
    from app.eval_answers import cache_path, run_config

    base, other = Settings(home=tmp_path), Settings(home=tmp_path, agent_chain_first_depth=100)
    def path(s: Settings) -> Path:
        return cache_path(tmp_path, "musique", "ws", "agent", "m", run_config(s, "agent"))

    assert path(base) != path(other)
    assert path(base) == path(Settings(home=tmp_path))
    # llm-only does not search: the agent's settings do not split its rows
    assert run_config(base, "llm-only") == run_config(other, "llm-only")
    secret = Settings(home=tmp_path, neo4j_password="hunter2")
    assert "hunter2" not in json.dumps(run_config(secret, "rag"), default=str)


def test_covidqa_heldout_asks_other_questions_of_the_same_articles() -> None:
    from app.cli.eval import DEFAULT_DATA
    tuned, held = load_set("covidqa", DEFAULT_DATA), load_set("covidqa-heldout", DEFAULT_DATA)
    assert len(tuned.questions) == 50 and len(held.questions) == 91
    assert not {q.qid for q in tuned.questions} & {q.qid for q in held.questions}
    assert {g for q in held.questions for g in q.gold_docs} <= {g for q in tuned.questions for g in q.gold_docs}
    assert held.name == "covidqa-heldout" and len(load_set("covidqa-heldout", DEFAULT_DATA, limit=10).questions) == 10


def test_a_gold_document_may_be_named_by_its_file(fake_rt: tuple[Runtime, FakeLLM], tmp_path: Path,
                                                 example_pdf: Path) -> None:
    rt, _ = fake_rt
    path = tmp_path / "by_file.jsonl"
    path.write_text(json.dumps({**QUESTIONS[0], "gold_doc": example_pdf.name}) + "\n", encoding="utf-8")
    rep = evaluate(rt, load_set(str(path), tmp_path, "manual"), ["rag"])
    assert rep["rows"]["rag"][0]["citations"][0]["doc"] != example_pdf.name  # cited by its title ...
    assert rep["rows"]["rag"][0]["cited_gold"] == 1.0  # ... and found gold by its file name


def test_the_pdf_set_names_real_pdfs_and_pages_that_hold_its_answers() -> None:
    import pymupdf

    from app.cli.eval import DEFAULT_DATA
    qs = load_set("pdfs", DEFAULT_DATA)
    assert qs.name == "pdfs" and len(qs.questions) == 60 and qs.prepare is not None
    files = {f.name: f for f in (DEFAULT_DATA.parent / "pdfs").rglob("*.pdf")}
    stated = 0
    for q in qs.questions:
        (doc,) = q.gold_docs
        with pymupdf.open(files[doc]) as pdf:
            text = " ".join(" ".join(pdf[p - 1].get_text().split()) for p in q.gold_pages).lower()
        stated += any(" ".join(a.split()).lower() in text for a in q.answers)
    assert stated >= 59  # one answer is read off a chart (an image with no text layer)
    from app.eval_answers import ingest_key
    assert ingest_key("a") == ingest_key("a") != ingest_key("b")  # the workspace follows the ingest code
