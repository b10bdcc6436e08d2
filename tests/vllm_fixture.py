"""pytest plugin: a real vLLM CPU server for the ``slow`` tests, started once per session.

``llm_server`` yields an ``LLMConfig``:
- ``RAGENT_TEST_LLM_BASE_URL`` set: that server (e.g. a GPU server, or one you keep running between runs;
  ``RAGENT_TEST_LLM_SERVED_NAME`` names its model, default ``ragent-llm``);
- otherwise it starts ``RAGENT_TEST_LLM_MODEL`` (default ``qwen2.5-coder-0.5b``, prepared under the repo's
  ``var/models`` by ``make test``) on port ``RAGENT_TEST_LLM_PORT`` (8012) with ngram speculative decoding,
  and stops it at the end of the session. A missing venv or model FAILS the test: ``make test`` provides
  both, so a skip would hide a broken set-up.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from core.errors import RagentError
from core.settings import LLMConfig, Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEST_MODEL = "qwen2.5-coder-0.5b"
DEFAULT_TEST_PORT = 8012


def _client_config(base_url: str, served_name: str) -> LLMConfig:
    return LLMConfig(base_url=base_url.rstrip("/"), api_key=os.environ.get("RAGENT_TEST_LLM_API_KEY", "EMPTY"),
                     model=served_name, timeout_s=600.0, max_tokens=128, temperature=0.0, retries=1)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMConfig]:
    from core import vllm_server

    base_url = os.environ.get("RAGENT_TEST_LLM_BASE_URL")
    if base_url:
        yield _client_config(base_url, os.environ.get("RAGENT_TEST_LLM_SERVED_NAME", "ragent-llm"))
        return

    model = os.environ.get("RAGENT_TEST_LLM_MODEL", DEFAULT_TEST_MODEL)
    s = Settings(
        home=ROOT / "var",
        llm_model=model,
        llm_venv=ROOT / ".venv-llm",
        llm_port=int(os.environ.get("RAGENT_TEST_LLM_PORT", DEFAULT_TEST_PORT)),
        llm_spec_method="ngram",
        llm_memory_fraction=0.15,
        llm_max_model_len=4096,
        llm_startup_timeout_s=900.0,
    )
    cfg = replace(s.serve, run_dir=tmp_path_factory.mktemp("vllm-run"))
    try:
        vllm_server.start(cfg)
    except RagentError as e:
        pytest.fail(f"cannot start the test vLLM server ({model}): {e}\n"
                    f"`make test` sets it up: bash scripts/setup_llm.sh && "
                    f".venv-llm/bin/python scripts/prepare_model.py {model} --home var", pytrace=False)
    try:
        yield _client_config(f"{vllm_server.local_url(cfg)}/v1", cfg.served_name)
    finally:
        vllm_server.stop(cfg)
