"""Shared fixtures. Every test gets its own RAGENT_HOME under tmp_path and a clean RAGENT_* environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.runtime import Runtime
from core.settings import Settings
from tests.fakes import FakeLLM, HashEmbedder

pytest_plugins = ["tests.vllm_fixture"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SHARED = ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RAGENT_") and not key.startswith("RAGENT_TEST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAGENT_HOME", str(tmp_path / "var"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "var")


@pytest.fixture
def fake_llm() -> FakeLLM:
    return FakeLLM()


@pytest.fixture
def fake_runtime(settings: Settings, fake_llm: FakeLLM) -> Iterator[Runtime]:
    rt = Runtime(settings, overrides={"llm": fake_llm, "embedder": HashEmbedder()})
    yield rt
    rt.close()


@pytest.fixture(scope="session")
def example_pdf() -> Path:
    return EXAMPLES / "northwind-field-manual.pdf"
