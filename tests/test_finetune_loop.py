"""The whole finetune loop for real (packaged MiniLM, spaCy, Qdrant local mode), reduced to a few steps."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from typer.testing import CliRunner

from core.embedder import SentenceTransformerEmbedder
from core.settings import Settings
from finetune import list_versions, rollback, run_finetune
from retrieval.index import QdrantIndex
from retrieval.registry import Registry
from retrieval.retriever import Retriever
from tests.finetune_corpus import build_workspace, passages

pytestmark = pytest.mark.slow


def test_loop_synthesises_mines_trains_evaluates_and_swaps(settings: Settings) -> None:
    index, registry = QdrantIndex(settings.index), Registry(settings.index.db_path)
    r = Retriever(index, SentenceTransformerEmbedder("minilm"), registry)
    try:
        build_workspace(r, registry, "w", n=40)
        original = index.physical("w")
        errors: list[BaseException] = []
        done = threading.Event()

        def query_loop() -> None:  # searches keep working while the loop trains and swaps
            while not done.is_set():
                try:
                    assert asyncio.run(r.search("w", "who designed the bridge", 3, paths=["dense"], rerank=False))
                except BaseException as e:  # the assertion below reports it
                    errors.append(e)
                done.wait(0.05)

        t = threading.Thread(target=query_loop)
        t.start()
        stages: set[str] = set()
        try:
            res = asyncio.run(run_finetune(r, "w", settings.finetune, max_pairs=60, max_steps=3, force=True,
                                           progress=lambda stage, d, n: stages.add(stage)))
        finally:
            done.set()
            t.join(timeout=60)
        assert not errors, errors[:3]
        assert {"synthesise", "mine", "train", "embed", "swap"} <= stages
        assert res.pairs >= 40 and res.train_examples >= 10 and res.val_examples >= 1
        vdir = settings.finetune.root / "w" / "v1"
        rows = [json.loads(x) for x in (vdir / "examples.jsonl").read_text().splitlines()]
        assert all(len(x["negative_ids"]) == 1 and x["positive_id"] not in x["negative_ids"] for x in rows)
        assert (vdir / "model" / "config.json").exists() and not (vdir / "checkpoints").exists()
        assert res.before["validation"].n == res.val_examples and 0 <= res.after["validation"].ndcg_at_10 <= 1
        assert res.ir_evaluator["after"]["cosine_ndcg@10"] >= 0
        assert res.promoted and index.physical("w") == res.collection != original
        assert isinstance(r.embedder_for("w"), SentenceTransformerEmbedder)
        assert r.embedder_for("w").model_name == res.model_dir  # type: ignore[attr-defined]
        hits = asyncio.run(r.search("w", "Veltrane Bridge", 3, paths=["dense"], rerank=False))
        assert hits and index.count("w") == 40
        assert list((vdir / "onnx").glob("*.onnx")), "the tuned model re-embeds on ONNX Runtime, exported beside it"
        assert [v["version"] for v in list_versions(r, settings.finetune.root, "w") if v["active"]] == [1]
        assert rollback(r, "w") is None and index.physical("w") == original
    finally:
        index.close()
        registry.close()


def test_cli_finetune_run_list_rollback(settings: Settings) -> None:
    from app.cli import app

    index, registry = QdrantIndex(settings.index), Registry(settings.index.db_path)
    build_workspace(Retriever(index, SentenceTransformerEmbedder("minilm"), registry), registry, "cli", n=30)
    index.close()
    registry.close()
    runner = CliRunner()
    res = runner.invoke(app, ["finetune", "run", "-w", "cli", "--max-pairs", "40", "--max-steps", "2", "--force",
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["promoted"] and out["version"] == 1 and out["train_seconds"] > 0
    listed = json.loads(runner.invoke(app, ["finetune", "list", "-w", "cli", "--json"]).stdout)
    assert [(v["version"], v["active"]) for v in listed["versions"]] == [(1, True)]
    back = runner.invoke(app, ["finetune", "rollback", "-w", "cli", "--json"])
    assert back.exit_code == 0 and json.loads(back.stdout)["collection"] == "chunks_cli_v1"
    again = runner.invoke(app, ["finetune", "rollback", "-w", "cli"])
    assert again.exit_code == 1 and "nothing to roll back" in again.output
    assert passages(1)  # the corpus helper is deterministic
