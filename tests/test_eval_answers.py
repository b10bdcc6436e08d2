"""``ragent eval answers``: metrics, a user's JSONL, the per-question cache (resume), and a smoke run of the CLI
with the real 0.5B model on vLLM CPU (slow)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.eval_answers import evaluate, load_set, normalize, score
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
    Ingestor(rt.index, rt.registry, rt.embedder).ingest([example_pdf], "manual")
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
