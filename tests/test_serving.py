"""Serving: the vLLM command line, /metrics parsing, server status, LLM client error paths, the `llm` CLI.

The fast tests use stub servers; ``test_real_server`` (slow) runs the real vLLM CPU server from
``tests/vllm_fixture.py``.
"""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from app.cli.llm import llm_app
from app.serving import vllm_server as vs
from core.errors import ConfigError, LLMError, LLMUnavailableError
from core.llm import OpenAILLM, chat_json, stream_chat
from core.settings import LLMConfig, ServeConfig, Settings
from tests.fakes import QuietHandler, http_stub

DATA = Path(__file__).parent / "data"


def serve_config(tmp_path: Path, **kw: Any) -> ServeConfig:
    return replace(Settings(home=tmp_path / "var").serve, **kw)


def spec_json(cmd: list[str]) -> dict[str, Any] | None:
    if "--speculative-config" not in cmd:
        return None
    return json.loads(cmd[cmd.index("--speculative-config") + 1])  # type: ignore[no-any-return]


# ---- command line -------------------------------------------------------------------------------------
def test_command_ngram(tmp_path: Path) -> None:
    cfg = serve_config(tmp_path, spec_tokens=6, spec_lookup_min=1, spec_lookup_max=3, port=8123,
                       memory_fraction=0.2, max_model_len=2048)
    cmd = vs.build_command(cfg)
    assert cmd[0].endswith(".venv-llm/bin/python") and cmd[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--model") + 1] == str((tmp_path / "var/models/Qwen2.5-Coder-1.5B-Instruct").absolute())
    assert cmd[cmd.index("--served-model-name") + 1] == "ragent-llm"
    assert cmd[cmd.index("--port") + 1] == "8123"
    assert cmd[cmd.index("--max-model-len") + 1] == "2048"
    assert cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.2"
    assert "--enable-prefix-caching" in cmd
    assert spec_json(cmd) == {"method": "ngram", "num_speculative_tokens": 6,
                              "prompt_lookup_min": 1, "prompt_lookup_max": 3}


def test_dtype_auto_follows_native_bf16(tmp_path: Path) -> None:
    assert vs.resolve_dtype("auto", {"avx2", "avx512_bf16"}) == "bfloat16"
    assert vs.resolve_dtype("auto", {"avx2", "amx_bf16"}) == "bfloat16"
    assert vs.resolve_dtype("auto", {"avx2", "fma"}) == "float32"
    assert vs.resolve_dtype("float16", {"avx2"}) == "float16"
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n")
    assert vs.cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
    assert vs.cpu_flags(tmp_path / "missing") == set()
    cmd = vs.build_command(serve_config(tmp_path, dtype="float32"))
    assert cmd[cmd.index("--dtype") + 1] == "float32"


def test_compact_json_output(tmp_path: Path) -> None:
    cmd = vs.build_command(serve_config(tmp_path))
    assert json.loads(cmd[cmd.index("--structured-outputs-config") + 1]) == {
        "backend": "xgrammar", "disable_any_whitespace": True}
    assert "--structured-outputs-config" not in vs.build_command(serve_config(tmp_path, compact_json=False))


def test_kv_cache_size_explicit_or_from_memory_fraction(tmp_path: Path) -> None:
    # vLLM CPU sizes the KV cache as fraction * RAM - model RSS, which went negative for the 1.5B model
    cmd = vs.build_command(serve_config(tmp_path, kv_cache_gib=1.5))
    assert cmd[cmd.index("--kv-cache-memory-bytes") + 1] == str(int(1.5 * 2**30))
    assert "--kv-cache-memory-bytes" not in vs.build_command(serve_config(tmp_path, kv_cache_gib=0))
    with pytest.raises(ConfigError, match="KV_CACHE_GIB"):
        vs.build_command(serve_config(tmp_path, kv_cache_gib=-1))


def test_command_draft_model_and_eagle(tmp_path: Path) -> None:
    draft = str(tmp_path / "draft")
    cmd = vs.build_command(serve_config(tmp_path, spec_method="draft_model", spec_draft_model=draft, spec_tokens=3))
    assert spec_json(cmd) == {"method": "draft_model", "model": draft, "num_speculative_tokens": 3}
    for method in ("eagle", "eagle3"):
        cmd = vs.build_command(serve_config(tmp_path, spec_method=method, spec_draft_model="org/eagle-head"))
        assert spec_json(cmd) == {"method": method, "model": "org/eagle-head", "num_speculative_tokens": 5}
        with pytest.raises(ConfigError, match="RAGENT_LLM_SPEC_DRAFT_MODEL"):
            vs.build_command(serve_config(tmp_path, spec_method=method, spec_draft_model=None))


def test_command_off_and_no_prefix_caching(tmp_path: Path) -> None:
    cmd = vs.build_command(serve_config(tmp_path, spec_method="off", prefix_caching=False))
    assert spec_json(cmd) is None and "--enable-prefix-caching" not in cmd


def test_command_rejects_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="LOOKUP_MIN"):
        vs.build_command(serve_config(tmp_path, spec_lookup_min=5, spec_lookup_max=4))
    with pytest.raises(ConfigError, match="MEMORY_FRACTION"):
        vs.build_command(serve_config(tmp_path, memory_fraction=0.0))


def test_server_env(tmp_path: Path) -> None:
    cfg = serve_config(tmp_path, venv=tmp_path / "venv")
    env = vs.server_env(cfg, {"PATH": "/bin"})
    assert env["HF_HUB_OFFLINE"] == "1" and env["VLLM_NO_USAGE_STATS"] == "1" and env["PATH"] == "/bin"
    assert "LD_PRELOAD" not in env
    (tmp_path / "venv" / "lib").mkdir(parents=True)
    (tmp_path / "venv" / "lib" / "libiomp5.so").touch()
    env = vs.server_env(cfg, {"LD_PRELOAD": "/x.so"})
    assert env["LD_PRELOAD"] == f"{(tmp_path / 'venv/lib/libiomp5.so').absolute()}:/x.so"


def test_server_env_shares_cores_on_small_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = serve_config(tmp_path)
    monkeypatch.setattr(vs.os, "cpu_count", lambda: 2)
    assert vs.server_env(cfg, {})["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0"
    assert vs.server_env(cfg, {"VLLM_CPU_NUM_OF_RESERVED_CPU": "1"})["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "1"
    monkeypatch.setattr(vs.os, "cpu_count", lambda: 32)
    assert "VLLM_CPU_NUM_OF_RESERVED_CPU" not in vs.server_env(cfg, {})


def test_cli_print_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGENT_LLM_SPEC_METHOD", "ngram")
    res = CliRunner().invoke(llm_app, ["serve", "--print-command", "--model", "qwen2.5-coder-0.5b"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("HF_HUB_OFFLINE=1 ")
    assert "vllm.entrypoints.openai.api_server" in res.output and "Qwen2.5-Coder-0.5B-Instruct" in res.output
    assert '\'{"method":"ngram","num_speculative_tokens":5' in res.output
    res = CliRunner().invoke(llm_app, ["serve", "--print-command", "--model", "gpt-17"])
    assert res.exit_code == 1 and "unknown model" in res.output


# ---- metrics --------------------------------------------------------------------------------------------
def test_parse_metrics_real_sample() -> None:
    m = vs.parse_metrics((DATA / "vllm_metrics.txt").read_text())
    assert m["spec_drafts"] > 0 and m["spec_draft_tokens"] >= m["spec_accepted_tokens"] > 0
    assert m["generation_tokens"] > 0 and m["prompt_tokens"] > 0
    assert m["acceptance_rate"] == pytest.approx(m["spec_accepted_tokens"] / m["spec_draft_tokens"])
    assert m["mean_acceptance_length"] == pytest.approx(1 + m["spec_accepted_tokens"] / m["spec_drafts"])


def test_parse_metrics_worked_example_and_delta() -> None:
    text = "\n".join([
        "# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.",
        "# TYPE vllm:spec_decode_num_drafts_total counter",
        'vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 10.0',
        'vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 50.0',
        'vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 30.0',
        'vllm:generation_tokens_total{engine="0",model_name="m"} 70.0',
        'vllm:num_requests_running{engine="0",model_name="m"} 2.0',
        'vllm:spec_decode_num_accepted_tokens_per_pos_total{engine="0",position="0"} 9.0',
    ])
    m = vs.parse_metrics(text)
    assert m["acceptance_rate"] == pytest.approx(0.6) and m["mean_acceptance_length"] == pytest.approx(4.0)
    assert m["requests_running"] == 2 and m["prompt_tokens"] == 0
    empty = vs.parse_metrics("")
    assert empty["acceptance_rate"] is None and empty["mean_acceptance_length"] is None
    d = vs.metrics_delta(empty, m)
    assert d["spec_accepted_tokens"] == 30 and d["mean_acceptance_length"] == pytest.approx(4.0)


# ---- stub server for status() and the CLI -------------------------------------------------------------
@pytest.fixture
def stub_server() -> Iterator[str]:
    metrics = (DATA / "vllm_metrics.txt").read_text()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            routes = {"/health": ("", "text/plain"), "/metrics": (metrics, "text/plain"),
                      "/v1/models": (json.dumps({"data": [{"id": "ragent-llm"}]}), "application/json")}
            body, ctype = routes.get(self.path, (None, ""))
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.end_headers()
            self.wfile.write(body.encode())

    with http_stub(Handler) as url:
        yield url + "/v1"


def test_status_and_cli_status(stub_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    st = vs.status(stub_server)
    assert st["reachable"] and st["models"] == ["ragent-llm"]
    assert st["metrics"] is not None and st["metrics"]["acceptance_rate"] is not None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGENT_LLM_BASE_URL", stub_server)
    res = CliRunner().invoke(llm_app, ["status", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["metrics"]["mean_acceptance_length"] > 1
    res = CliRunner().invoke(llm_app, ["status"])
    assert res.exit_code == 0 and "mean acceptance length" in res.output
    res = CliRunner().invoke(llm_app, ["serve"])
    assert res.exit_code == 0 and "nothing is started locally" in res.output
    monkeypatch.setenv("RAGENT_LLM_SERVED_NAME", "other")
    res = CliRunner().invoke(llm_app, ["status"])
    assert res.exit_code == 1 and "does not serve 'other'" in res.output


def test_status_unreachable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    st = vs.status("http://127.0.0.1:9/v1", timeout=1)
    assert not st["reachable"] and st["error"] and st["metrics"] is None
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RAGENT_LLM_PORT", "9")
    res = CliRunner().invoke(llm_app, ["status"])
    assert res.exit_code == 1 and "ragent llm serve" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(llm_app, ["stop"])
    assert res.exit_code == 0 and "no local vLLM server running" in res.output


# ---- start() error paths (no real server) ---------------------------------------------------------------
def test_start_missing_venv_or_model(tmp_path: Path) -> None:
    cfg = serve_config(tmp_path, venv=tmp_path / "nope", run_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match=r"scripts/setup_llm\.sh"):
        vs.start(cfg)
    fake_venv(tmp_path / "venv", "exit 0")
    cfg = replace(cfg, venv=tmp_path / "venv")
    with pytest.raises(ConfigError, match=r"make model MODEL=qwen2.5-coder-1.5b"):
        vs.start(cfg)


def fake_venv(venv: Path, script: str) -> None:
    py = venv / "bin" / "python"
    py.parent.mkdir(parents=True)
    py.write_text(f"#!/bin/sh\n{script}\n")
    py.chmod(py.stat().st_mode | stat.S_IEXEC)


def test_start_reports_log_tail_when_server_dies(tmp_path: Path) -> None:
    fake_venv(tmp_path / "venv", "echo 'ValueError: no such model architecture' >&2; exit 3")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    cfg = serve_config(tmp_path, venv=tmp_path / "venv", model_dir=model, run_dir=tmp_path / "run", port=9)
    with pytest.raises(LLMError, match=r"(?s)exited with code 3.*no such model architecture"):
        vs.start(cfg)
    assert not (tmp_path / "run" / vs.PID_NAME).exists()
    assert vs.stop(cfg) is False


# ---- LLM client error paths (stub transport) ----------------------------------------------------------
def client_with(handler: Callable[[httpx.Request], httpx.Response], retries: int = 2) -> OpenAILLM:
    from openai import AsyncOpenAI

    cfg = LLMConfig(base_url="http://llm.test/v1", api_key="k", model="ragent-llm", timeout_s=5,
                    max_tokens=16, temperature=0.0, retries=retries)
    llm = OpenAILLM(cfg)
    llm._client = AsyncOpenAI(base_url=cfg.base_url, api_key="k", max_retries=retries,
                              http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)))
    return llm


def completion(text: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "created": 0, "model": "ragent-llm",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}]}


def test_unreachable_server_hint() -> None:
    cfg = LLMConfig(base_url="http://127.0.0.1:9/v1", api_key="k", model="m", timeout_s=2, max_tokens=8,
                    temperature=0.0, retries=0)
    with pytest.raises(LLMUnavailableError, match="ragent llm serve"):
        asyncio.run(OpenAILLM(cfg).chat([{"role": "user", "content": "hi"}]))


def test_wrong_model_name() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"message": "The model `gpt-4` does not exist.",
                                                   "type": "NotFoundError", "code": 404}})

    with pytest.raises(LLMError, match="RAGENT_LLM_SERVED_NAME") as e:
        asyncio.run(client_with(handler).chat([{"role": "user", "content": "hi"}]))
    assert not isinstance(e.value, LLMUnavailableError)


def test_503_is_retried() -> None:
    calls: list[int] = []

    def handler(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(503, json={"error": {"message": "busy"}}, headers={"retry-after-ms": "10"})
        return httpx.Response(200, json=completion("ok"))

    assert asyncio.run(client_with(handler).chat([{"role": "user", "content": "hi"}])) == "ok"
    assert len(calls) == 2
    calls.clear()

    def always_503(req: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, json={"error": {"message": "busy"}}, headers={"retry-after-ms": "10"})

    with pytest.raises(LLMError, match="503"):
        asyncio.run(client_with(always_503, retries=1).chat([{"role": "user", "content": "hi"}]))
    assert len(calls) == 2


# ---- the real server ------------------------------------------------------------------------------------
class Capital(BaseModel):
    country: str
    capital: str


CONTEXT = ("Context:\n[1] The Northwind NW-200 inverter has a rated output of 2000 watts and a warranty of "
           "five years.\n[2] The NW-100 is the smaller model.\n")


@pytest.mark.slow
def test_real_server(llm_server: LLMConfig) -> None:
    llm = OpenAILLM(llm_server)
    before = vs.fetch_metrics(llm_server.base_url)
    question = [{"role": "system", "content": "Answer from the context; quote it; cite [n]."},
                {"role": "user", "content": CONTEXT + "Question: What is the rated output of the NW-200 inverter?"}]

    async def run() -> tuple[str, Capital, str, list[str]]:
        answer = await llm.chat(question, max_tokens=64)
        cap = await chat_json(llm, [{"role": "user", "content": "The capital of France is Paris. Give the "
                                     "country and its capital as JSON."}], Capital, max_tokens=64)
        pieces = [p async for p in stream_chat(llm, question, max_tokens=64)]
        return answer, cap, "".join(pieces), await llm.models()

    answer, cap, streamed, models = asyncio.run(run())
    assert "2000" in answer
    assert cap.capital.lower() == "paris"
    assert streamed == answer  # greedy: streaming gives the same text
    assert llm_server.model in models
    delta = vs.metrics_delta(before, vs.fetch_metrics(llm_server.base_url))
    assert delta["generation_tokens"] > 0
    assert delta["spec_drafts"] > 0 and delta["spec_draft_tokens"] > 0 and delta["spec_accepted_tokens"] > 0


def test_server_env_keeps_numba_off_openmp(tmp_path: Path) -> None:
    """Regression: numba's OpenMP layer (the ngram drafter) left torch on one thread; prefill ran 1.75x slower."""
    cfg = serve_config(tmp_path)
    assert vs.server_env(cfg, {})["NUMBA_THREADING_LAYER"] == "workqueue"
    assert vs.server_env(cfg, {"NUMBA_THREADING_LAYER": "tbb"})["NUMBA_THREADING_LAYER"] == "tbb"
