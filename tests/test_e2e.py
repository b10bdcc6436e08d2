"""End to end on the real parts: vLLM CPU server (ngram speculative decoding), packaged MiniLM, Qdrant local
mode, the shipped example PDF, through the CLI a user runs."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.runtime import Runtime
from core.settings import LLMConfig, Settings

pytestmark = pytest.mark.slow


def test_ingest_then_ask_real(
    llm_server: LLMConfig, example_pdf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGENT_LLM_BASE_URL", llm_server.base_url)
    monkeypatch.setenv("RAGENT_LLM_SERVED_NAME", llm_server.model)
    runner = CliRunner()

    r = runner.invoke(app, ["ingest", str(example_pdf), "--workspace", "e2e", "--json"])
    assert r.exit_code == 0, r.output
    files = json.loads(r.stdout)["files"]
    assert files[0]["status"] == "ingested" and files[0]["chunks"] > 0

    r = runner.invoke(app, ["ask", "What is the rated output of the NW-200 inverter?", "-w", "e2e", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["answer"].strip()
    assert out["citations"], out
    rt = Runtime(Settings())
    try:
        for c in out["citations"]:
            assert c["doc"] and c["page"] in (1, 2, 3)
            (chunk,) = rt.index.get("e2e", [c["chunk_id"]])  # the citation points at a real chunk
            if c.get("verified"):
                assert " ".join(c["quote"].lower().split()) in " ".join(chunk.text.lower().split())
    finally:
        rt.close()
    assert any("5 kW" in c["quote"] or "5 kW" in out["answer"] for c in out["citations"]), out

    metrics = httpx.get(llm_server.base_url.removesuffix("/v1") + "/metrics", timeout=10).text
    accepted = [line for line in metrics.splitlines() if line.startswith("vllm:spec_decode_num_accepted_tokens")]
    assert accepted and float(accepted[0].rsplit(" ", 1)[1]) > 0, "speculative decoding counters stayed at 0"
