"""The GPU path of the one vLLM command builder, and docker-compose's vllm service wired to it.

``docker compose config`` is not available here, so the compose file is parsed as YAML and its variables are
interpolated the way compose does (``${VAR:-default}``, ``${VAR}``, list entries ``KEY`` passed through from the
shell). For every speculative method the test then runs the ``vllm-command`` service's command (the ragent CLI)
with that service's environment, checks the JSON it writes equals what ``vllm_server.launch_spec`` builds, and
runs the ``vllm`` service's entrypoint on that JSON with a stand-in ``python3`` that records what it was given.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cli.llm import llm_app
from app.serving import vllm_server as vs
from core.errors import ConfigError
from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: str, shell: dict[str, str]) -> str:
    """Compose's ``${VAR}`` / ``${VAR:-default}`` (unset or empty -> default)."""
    return _VAR.sub(lambda m: shell.get(m.group(1)) or (m.group(2) or ""), value)


def service_env(service: dict[str, Any], shell: dict[str, str]) -> dict[str, str]:
    """A service's ``environment:`` after interpolation; bare ``KEY`` entries pass the shell's value through."""
    raw = service.get("environment", {})
    items = raw.items() if isinstance(raw, dict) else (e.split("=", 1) if "=" in e else (e, None) for e in raw)
    env: dict[str, str] = {}
    for key, val in items:
        if val is None:
            if key in shell:
                env[key] = shell[key]
        else:
            env[key] = interpolate(str(val), shell)
    return env


def mounts(service: dict[str, Any], shell: dict[str, str]) -> dict[str, str]:
    """container path -> source (volume name or host path) of a service's short-syntax volumes."""
    out = {}
    for v in service.get("volumes", []):
        src, dst, *_ = interpolate(v, shell).split(":")
        out[dst] = src
    return out


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def gpu_config(tmp_path: Path, **kw: Any) -> Any:
    return replace(Settings(home=tmp_path / "var").serve, device="gpu", **kw)


# ---- the builder on a GPU --------------------------------------------------------------------------------
def test_gpu_command(tmp_path: Path) -> None:
    model = tmp_path / "m"
    cfg = gpu_config(tmp_path, model_dir=model, gpu_memory_fraction=0.8, max_num_seqs=64, kv_cache_gib=2.0,
                     python="python3")
    cmd = vs.build_command(cfg)
    assert cmd[:3] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--model") + 1] == str(model.absolute())
    assert cmd[cmd.index("--gpu-memory-utilization") + 1] == "0.8"
    assert cmd[cmd.index("--dtype") + 1] == "auto"  # no CPU bf16 probing on a GPU
    assert cmd[cmd.index("--max-num-seqs") + 1] == "64"
    assert "--kv-cache-memory-bytes" not in cmd  # a GPU sizes its KV cache from the memory fraction
    env = vs.server_env(cfg, {})
    assert env["HF_HUB_OFFLINE"] == "1" and "VLLM_CPU_NUM_OF_RESERVED_CPU" not in env and "LD_PRELOAD" not in env
    with pytest.raises(ConfigError, match="RAGENT_LLM_GPU_MEMORY_FRACTION"):
        vs.build_command(replace(cfg, gpu_memory_fraction=1.5))
    with pytest.raises(ConfigError, match="RAGENT_LLM_MAX_NUM_SEQS"):
        vs.build_command(replace(cfg, max_num_seqs=-1))


def test_gpu_python_defaults_to_this_one_without_the_cpu_venv(tmp_path: Path) -> None:
    cfg = gpu_config(tmp_path, venv=tmp_path / "no-venv")
    assert vs.build_command(cfg)[0] == sys.executable
    assert vs.build_command(replace(cfg, device="cpu"))[0] == str(tmp_path / "no-venv/bin/python")


def test_hub_model_is_an_explicit_opt_in(tmp_path: Path) -> None:
    s = Settings(home=tmp_path / "var", llm_model="hf:Qwen/Qwen2.5-Coder-1.5B-Instruct", llm_device="gpu")
    cfg = s.serve
    assert cfg.hub_model == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    cmd = vs.build_command(cfg)
    assert cmd[cmd.index("--model") + 1] == "Qwen/Qwen2.5-Coder-1.5B-Instruct"
    assert "HF_HUB_OFFLINE" not in vs.server_env(cfg, {})  # vLLM may download it
    assert vs.server_env(Settings(home=tmp_path / "var").serve, {})["HF_HUB_OFFLINE"] == "1"


def test_device_auto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gpus = tmp_path / "gpus"
    gpus.mkdir()
    assert not vs.gpu_visible({}, gpus)
    (gpus / "0000:00:1e.0").mkdir()
    assert vs.gpu_visible({}, gpus)
    assert not vs.gpu_visible({"CUDA_VISIBLE_DEVICES": ""}, gpus)
    cfg = Settings(home=tmp_path / "var").serve
    assert cfg.device == "auto"
    monkeypatch.setattr(vs, "gpu_visible", lambda: True)
    assert vs.resolve_device(cfg) == "gpu"
    monkeypatch.setattr(vs, "gpu_visible", lambda: False)
    assert vs.resolve_device(cfg) == "cpu"
    assert vs.resolve_device(replace(cfg, device="gpu")) == "gpu"


def test_gpu_check_ready_names_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    cfg = gpu_config(tmp_path, model_dir=model, venv=tmp_path / "no-venv")
    monkeypatch.setattr(vs.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="has no vllm"):
        vs.check_ready(cfg)
    with pytest.raises(ConfigError, match="RAGENT_LLM_PYTHON=/nope/python3 does not exist"):
        vs.check_ready(replace(cfg, python="/nope/python3"))
    vs.check_ready(replace(cfg, python="python3"))  # a name on PATH: vLLM's own image


def test_cli_gpu_flag_json_and_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(llm_app, ["serve", "--gpu", "--print-command", "--json", "--python", "python3"])
    assert res.exit_code == 0, res.output
    spec = json.loads(res.output)
    assert spec["device"] == "gpu" and spec["argv"][0] == "python3" and spec["env"]["HF_HUB_OFFLINE"] == "1"
    out = tmp_path / "run" / "command.json"
    res = CliRunner().invoke(llm_app, ["serve", "--cpu", "--print-command", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["device"] == "cpu"
    blocked = tmp_path / "file"
    blocked.write_text("")
    res = CliRunner().invoke(llm_app, ["serve", "--print-command", "--out", str(blocked / "x.json")])
    assert res.exit_code == 1 and "could not write" in res.output


# ---- docker-compose --------------------------------------------------------------------------------------
def test_compose_is_pinned_and_offline_by_default(compose: dict[str, Any]) -> None:
    svc = compose["services"]
    for name in ("vllm", "vlm"):
        image = interpolate(svc[name]["image"], {})
        assert re.fullmatch(r"vllm/vllm-openai:v\d+\.\d+\.\d+", image), image
    cmd_env = service_env(svc["vllm-command"], {})
    assert cmd_env["RAGENT_LLM_MODEL"] == "/models/llm"  # a mounted folder unless GPU_LLM_MODEL opts in to a hub
    vol = mounts(svc["vllm"], {})
    assert vol["/models/llm"] == "./var/models/Qwen2.5-Coder-1.5B-Instruct"
    assert vol["/models/spec"] == "./var/models/Qwen2.5-Coder-0.5B-Instruct"
    assert mounts(svc["vllm"], {"GPU_LLM_MODEL_DIR": "/srv/llm"})["/models/llm"] == "/srv/llm"
    assert svc["vllm"]["depends_on"]["vllm-command"]["condition"] == "service_completed_successfully"
    assert "command" not in svc["vllm"]  # the argv comes from ragent's builder only
    vlm = [interpolate(a, {}) for a in svc["vlm"]["command"]]
    assert vlm[vlm.index("--model") + 1] == "/models/vlm" and "/models/vlm" in mounts(svc["vlm"], {})
    assert service_env(svc["vlm"], {})["HF_HUB_OFFLINE"] == "1"


FAKE_PYTHON = """#!/bin/sh
printf '%s\\n' "$@" > "$RECORD"
echo "HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-unset}" >> "$RECORD"
"""


@pytest.mark.parametrize(("shell", "spec"), [
    ({}, {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_min": 2, "prompt_lookup_max": 4}),
    ({"RAGENT_LLM_SPEC_METHOD": "ngram", "RAGENT_LLM_SPEC_TOKENS": "8", "RAGENT_LLM_SPEC_LOOKUP_MAX": "5"},
     {"method": "ngram", "num_speculative_tokens": 8, "prompt_lookup_min": 2, "prompt_lookup_max": 5}),
    ({"RAGENT_LLM_SPEC_METHOD": "off"}, None),
    ({"RAGENT_LLM_SPEC_METHOD": "ngram_gpu"},
     {"method": "ngram_gpu", "num_speculative_tokens": 5, "prompt_lookup_min": 2, "prompt_lookup_max": 4}),
    ({"RAGENT_LLM_SPEC_METHOD": "draft_model", "RAGENT_LLM_SPEC_TOKENS": "4"},
     {"method": "draft_model", "model": "/models/spec", "num_speculative_tokens": 4}),
    ({"RAGENT_LLM_SPEC_METHOD": "eagle3", "RAGENT_LLM_SPEC_TOKENS": "3"},
     {"method": "eagle3", "model": "/models/spec", "num_speculative_tokens": 3}),
    ({"GPU_LLM_MODEL": "hf:Qwen/Qwen2.5-Coder-1.5B-Instruct", "RAGENT_LLM_MAX_NUM_SEQS": "32"},
     {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_min": 2, "prompt_lookup_max": 4}),
], ids=["default", "ngram-k8", "off", "ngram_gpu", "draft_model", "eagle3", "hub-opt-in"])
def test_compose_runs_the_builders_command(compose: dict[str, Any], shell: dict[str, str],
                                           spec: dict[str, Any] | None, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    svc = compose["services"]
    writer, server = svc["vllm-command"], svc["vllm"]
    # the writer's --out lies on the volume the server reads its command from
    argv = [interpolate(a, shell) for a in writer["command"]]
    assert argv[:3] == ["ragent", "llm", "serve"] and "--gpu" in argv
    out_path = argv[argv.index("--out") + 1]
    entry = [interpolate(a, shell) for a in server["entrypoint"]]
    assert entry[-1] == out_path
    volume = mounts(writer, shell)[str(Path(out_path).parent)]
    assert mounts(server, shell)[str(Path(out_path).parent)] == volume and volume in compose["volumes"]

    # run the writer's command with the writer's environment (and no .env)
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.startswith("RAGENT_")]:
        monkeypatch.delenv(key)
    env = service_env(writer, shell)
    for key, val in env.items():
        monkeypatch.setenv(key, val)
    local_out = tmp_path / "command.json"
    args = argv[2:]  # llm_app gets "serve ..."
    args[args.index("--out") + 1] = str(local_out)
    res = CliRunner().invoke(llm_app, args)
    assert res.exit_code == 0, res.output
    written = json.loads(local_out.read_text())

    # ... which is exactly what the builder gives for those settings
    expected = vs.launch_spec(replace(Settings().serve, device="gpu"))
    assert written == expected
    cmd = written["argv"]
    assert cmd[:3] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[cmd.index("--port") + 1] == "8000"
    assert (cmd[cmd.index("--speculative-config") + 1] if "--speculative-config" in cmd else None) == (
        None if spec is None else json.dumps(spec, separators=(",", ":")))
    hub = shell.get("GPU_LLM_MODEL", "").removeprefix("hf:")
    assert cmd[cmd.index("--model") + 1] == (hub or "/models/llm")

    # the server's entrypoint execs that argv with that env
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    record = tmp_path / "record.txt"
    assert entry[0] == "python3" and entry[1] == "-c"
    run_env = {"PATH": f"{bindir}:{os.environ['PATH']}", "RECORD": str(record)}
    subprocess.run([sys.executable, "-c", entry[2], str(local_out)], env=run_env, check=True, timeout=30)
    lines = record.read_text().splitlines()
    assert lines[:-1] == cmd[1:]
    assert lines[-1] == ("HF_HUB_OFFLINE=unset" if hub else "HF_HUB_OFFLINE=1")
