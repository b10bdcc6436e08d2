"""The GPU benchmark's parts that run without a GPU: the agent-call replay and its latency estimate (against a stub
OpenAI server), the spec-decoding report's handling of old JSON and failed methods, and device.sh's part collection.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.gpu.agent_calls import _key, busy, groups, instant, replay
from bench.spec_decode import agent_table, load_saved, method_config
from core.llm import OpenAILLM
from core.settings import LLMConfig, Settings
from tests.fakes import QuietHandler, http_stub

ROOT = Path(__file__).resolve().parent.parent


def call(start: float, end: float, output: str = "ok", stream: bool = False) -> dict[str, Any]:
    return {"body": {"model": "recorded", "messages": [{"role": "user", "content": output}], "max_tokens": 8,
                     "temperature": 0.0}, "stream": stream, "start": start, "end": end, "output": output}


def test_overlapping_calls_are_grouped_and_counted_once() -> None:
    calls = [call(0.5, 2.0), call(1.0, 3.0), call(4.0, 5.0), call(2.5, 3.5)]
    assert [len(g) for g in groups(calls)] == [3, 1]
    assert busy(calls) == pytest.approx((3.5 - 0.5) + (5.0 - 4.0))
    assert busy([]) == 0


@pytest.fixture
def stub_llm() -> Iterator[str]:
    """Echoes the last user message back, as a plain or a streamed chat completion."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = body["messages"][-1]["content"]
            if text == "differs":
                text = "something else"
            self.send_response(200)
            if body.get("stream"):
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for piece in (text[:2], text[2:]):
                    ev = {"choices": [{"delta": {"content": piece}}]}
                    self.wfile.write(f"data: {json.dumps(ev)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")
            else:
                data = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

    with http_stub(Handler) as url:
        yield url


def test_replay_estimates_latency_from_the_time_outside_llm_calls(stub_llm: str, tmp_path: Path) -> None:
    rec = {"dataset": "hotpotqa", "model": "qwen2.5-coder-0.5b", "cpu": {"cores": 2}, "questions": [
        {"qid": "a", "total_s": 10.0, "calls": [call(1.0, 4.0, "plan"), call(5.0, 9.0, "answer", stream=True)],
         "nonllm_s": 1.5},
        {"qid": "b", "total_s": 6.0, "calls": [call(0.5, 5.0, "one"), call(1.0, 5.5, "differs")]},
    ]}
    path = tmp_path / "calls.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(rec, f)
    res = asyncio.run(replay(stub_llm, "ragent-llm", path))
    a, b = res["rows"]
    # a: the instant pass's 1.5 s outside LLM calls; b (none recorded): the recorded run's gaps
    assert (a["cpu_llm_s"], a["gaps_s"], a["non_llm_s"]) == (7.0, 3.0, 1.5)
    assert (b["cpu_llm_s"], b["non_llm_s"]) == (5.0, 1.0)
    assert a["est_total_s"] == pytest.approx(1.5 + a["gpu_llm_s"], abs=1e-3) and a["gpu_llm_s"] < 2
    assert a["est_gaps_total_s"] == pytest.approx(3.0 + a["gpu_llm_s"], abs=1e-3)
    assert res["non_llm_source"] == "recorded gaps"  # not every question has the instant pass
    row = agent_table({"config": "ngram", "runs": [res]}).splitlines()[-1]
    assert row.startswith("| hotpotqa (qwen2.5-coder-0.5b) | 2 | 4 | 0.75 |")
    assert f"**{res['est_total_p50_s']} s**" in row
    assert (a["same_outputs"], b["same_outputs"]) == (2, 1)
    assert res["llm_calls"] == 4 and res["identical_outputs"] == 0.75 and res["n"] == 2


def test_report_reads_batch8_json_and_methods(tmp_path: Path) -> None:
    old = {"command": "c", "batch": None, "b8_prompts": 16, "results": [{
        "label": "spec off", "spec": None, "startup_s": 1.0, "b1_tok_s": 1.0, "b1_ttft_ms_p50": 1.0,
        "b1_ttft_ms_mean": 1.0, "b1_tokens": 1, "b1_seconds": 1.0, "b1_decode_tok_s": 1.0, "b8_tok_s": 4.2,
        "b8_tokens": 10, "b8_seconds": 2.0, "acceptance_rate": None, "mean_acceptance_length": None, "outputs": []}]}
    del old["batch"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    results, meta = load_saved(path)
    assert results[0].batch_tok_s == 4.2 and meta["batch"] == 8 and meta["batch_prompts"] == 16
    s = Settings(home=tmp_path)
    assert method_config("ngram_gpu", s, 4).spec_method == "ngram_gpu"
    assert method_config("draft_model", s, 4).spec_tokens == 4
    with pytest.raises(SystemExit, match="unknown method"):
        method_config("medusa", s, 4)


def test_device_script_collects_parts_and_waits_for_the_rest(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".gpu").mkdir(parents=True)
    (repo / ".gpu" / "part.00").write_bytes(b"x" * 10)
    (repo / ".gpu" / "MANIFEST").write_text("part.00 10 sha\npart.01 20 sha\ntotal 30\n")
    env = {"PATH": "/usr/bin:/bin", "PARTS_DIR": str(tmp_path / "parts"), "OUT": str(tmp_path / "out")}
    script = ROOT / "bench" / "gpu" / "device.sh"
    res = subprocess.run(["bash", str(script)], cwd=repo, env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert "parts: 1 of 2 here" in res.stdout and "waiting for: part.01" in res.stdout
    assert (tmp_path / "parts" / "part.00").exists() and not (repo / ".gpu" / "part.00").exists()
    # a part that arrived cut short is not counted as there
    (repo / ".gpu" / "part.01").write_bytes(b"y" * 5)
    res = subprocess.run(["bash", str(script)], cwd=repo, env=env, capture_output=True, text=True, timeout=30)
    assert "waiting for: part.01" in res.stdout


def test_instant_answers_from_the_recording_and_counts_misses() -> None:
    llm = OpenAILLM(LLMConfig(base_url="http://127.0.0.1:9/v1", api_key="x", model="m", timeout_s=1.0,
                              max_tokens=8, temperature=0.0, retries=0))
    known = [{"role": "user", "content": "plan"}]
    misses: list[str] = []

    async def run() -> tuple[str, str, str]:
        streamed = "".join([p async for p in llm.stream(known)])
        return await llm.chat(known), await llm.chat([{"role": "user", "content": "new"}], schema={}), streamed

    with instant({_key(known): "the plan"}, misses):
        assert asyncio.run(run()) == ("the plan", "{}", "the plan")
    assert len(misses) == 1
    assert OpenAILLM.chat.__qualname__ == "OpenAILLM.chat"  # restored
