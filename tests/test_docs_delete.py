"""Deleting a document builds no entity extractor, retriever, writer, embedder or LLM: ``Runtime.delete_document``
(which ``ragent docs delete`` and ``DELETE /workspaces/{ws}/documents/{id}`` call) needs the index, graph store and
registry only."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.runtime import Runtime
from core.settings import Settings
from retrieval.extract import LLMExtractor, SpacyExtractor
from tests.fakes import FakeLLM, HashEmbedder

TEXT = "# Fjord notes\n\nIngrid Halvorsen founded the Bergen Fjord Museum in Norway in 1921.\n"
HEAVY = {"retriever", "extractor", "writer", "llm", "embedder"}


def _ingest(settings: Settings, tmp_path: Path) -> str:
    """One document ingested with its graph (spaCy), by a runtime of its own."""
    src = tmp_path / "fjord.md"
    src.write_text(TEXT, encoding="utf-8")
    rt = Runtime(settings, overrides={"embedder": HashEmbedder(), "llm": FakeLLM()})
    try:
        [res] = rt.ingestor().ingest([src], "w")
        assert res.status == "ingested" and rt.graph.view("w").mentions
        return res.doc_id
    finally:
        rt.close()


def _forbid_extractors(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_: object, **__: object) -> None:
        raise AssertionError("deleting a document built an entity extractor")

    monkeypatch.setattr(SpacyExtractor, "__init__", boom)
    monkeypatch.setattr(LLMExtractor, "__init__", boom)


def _gone(rt: Runtime, doc_id: str) -> bool:
    return rt.index.count("w") == 0 and not rt.graph.view("w").mentions and rt.registry.get("w", doc_id) is None


def test_runtime_delete_document_builds_no_extractor(settings: Settings, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    doc_id = _ingest(settings, tmp_path)
    _forbid_extractors(monkeypatch)
    rt = Runtime(settings)
    try:
        assert rt.delete_document("w", doc_id)
        assert not rt.delete_document("w", doc_id)  # unknown now
        assert _gone(rt, doc_id)
        assert not HEAVY & rt.__dict__.keys()  # only the index, graph store and registry were built
    finally:
        rt.close()


def test_cli_docs_delete_builds_no_extractor(settings: Settings, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from app import cli
    from app.cli import common

    doc_id = _ingest(settings, tmp_path)
    _forbid_extractors(monkeypatch)
    built: list[Runtime] = []

    @contextmanager
    def runtime() -> Iterator[Runtime]:
        rt = Runtime(settings)
        built.append(rt)
        try:
            yield rt
        finally:
            rt.close()

    monkeypatch.setattr(common, "runtime", runtime)
    r = CliRunner().invoke(cli.app, ["docs", "delete", "fjord.md", "-w", "w", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["results"] == [{"doc": "fjord.md", "doc_id": doc_id, "deleted": True, "chunks": 1}]
    [rt] = built
    assert not HEAVY & rt.__dict__.keys()
    assert _gone(rt, doc_id)  # reopens the closed index, graph and registry lazily
    rt.close()


def test_api_delete_goes_through_delete_document_not_an_ingestor(settings: Settings, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from app.api import create_app

    doc_id = _ingest(settings, tmp_path)

    def no_ingestor(*_: object, **__: object) -> None:
        raise AssertionError("DELETE built an ingestor")

    monkeypatch.setattr(Runtime, "ingestor", no_ingestor)
    rt = Runtime(settings, overrides={"embedder": HashEmbedder(), "llm": FakeLLM()})
    try:
        with TestClient(create_app(rt, auth=False)) as c:
            assert c.delete(f"/v1/workspaces/w/documents/{doc_id}").status_code == 204
            assert c.get(f"/v1/workspaces/w/documents/{doc_id}").status_code == 404
        assert "writer" not in rt.__dict__ and _gone(rt, doc_id)
    finally:
        rt.close()
