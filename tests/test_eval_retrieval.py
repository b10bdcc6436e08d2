"""The retrieval eval harness on a tiny HotpotQA slice: metrics, caching, CLI, markdown."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retrieval.eval import load_dataset, markdown, metrics

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "multihop"


def tiny(tmp_path: Path, n: int = 2) -> Path:
    qs = json.loads((SHARED / "hotpotqa_100.json").read_text())[:n]
    corpus = {t: s for q in qs for t, s in q["context"]}
    (tmp_path / "tiny_100.json").write_text(json.dumps(qs))
    (tmp_path / "tiny_corpus.json").write_text(json.dumps(corpus))
    return tmp_path / "tiny_100.json"


def test_metrics() -> None:
    m = metrics(["x", "g1", "y", "g2"], frozenset({"g1", "g2"}))
    assert m["recall@2"] == 0.5 and m["recall@5"] == 1.0 and m["mrr"] == 0.5
    assert 0 < m["ndcg@10"] < 1


def test_load_datasets(tmp_path: Path) -> None:
    ds = load_dataset(str(tiny(tmp_path)), tmp_path)
    assert len(ds.questions) == 2 and len(ds.passages) == 20
    assert all(len(q.gold) == 2 for q in ds.questions)
    mu = load_dataset("musique", SHARED, limit=3)
    assert len(mu.questions) == 3 and all(len(q.gold) >= 2 for q in mu.questions)


@pytest.mark.slow
def test_eval_cli_on_tiny_slice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import app
    from app.cli.eval import write_markdown

    path = tiny(tmp_path)
    monkeypatch.setenv("RAGENT_DECOMPOSE", "off")
    args = ["eval", "retrieval", "--dataset", str(path), "--rerank-n", "5", "--json",
            "--out", str(tmp_path / "res" / "retrieval_tiny.json")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    names = {row["name"] for row in rep["rows"]}
    want = {"dense", "sparse", "graph", "fused (RRF, all paths)", "fused + rerank top-5", "fused without graph"}
    assert want <= names
    assert rep["rows"][0]["recall@10"] is not None and 0 <= rep["rows"][0]["recall@10"] <= 100
    assert rep["indexed_now"]["passages"] == 20
    again = json.loads(CliRunner().invoke(app, args).stdout.strip().splitlines()[-1])
    assert again["indexed_now"]["passages"] == 0  # cached workspace: nothing re-embedded
    doc = tmp_path / "RETRIEVAL.md"
    write_markdown(tmp_path / "res", doc)
    assert "| fused (RRF, all paths) |" in doc.read_text() and "ref: BM25" not in markdown([rep])


def test_the_agent_evidence_row(tmp_path: Path) -> None:
    """``ragent eval retrieval --agent``: a row scored on the evidence the agent's answerer reads."""
    from app.eval_answers import agent_evidence
    from app.runtime import Runtime
    from core.settings import Settings
    from retrieval.eval import evaluate, index_corpus
    from tests.fakes import FakeLLM, HashEmbedder

    ds = load_dataset(str(tiny(tmp_path)), tmp_path)
    rt = Runtime(Settings(home=tmp_path / "var"), overrides={
        "llm": FakeLLM(["Answer: not found\nExplanation: The sources do not say."] * 20),
        "embedder": HashEmbedder()})
    try:
        index_corpus(ds, "tiny", rt.writer, rt.registry)
        rt.retriever.reranker = None
        rep = asyncio.run(evaluate(rt.retriever, ds, "tiny", pool=20,
                                   extra={"agent evidence": partial(agent_evidence, rt.agent, "tiny")}))
    finally:
        rt.close()
    row = next(r for r in rep["rows"] if r["name"] == "agent evidence")
    assert row["n"] == 2 and 0 < row["recall@10"] <= 100
