"""The OpenAI-compatible facade through the official ``openai`` client against a live uvicorn on loopback,
and one end-to-end chat through the API with the REAL vLLM server (``llm_server`` fixture, slow)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api import create_app
from app.api.engine import StraightEngine
from app.runtime import Runtime
from core.llm import OpenAILLM
from core.settings import LLMConfig, Settings
from tests.api_live import auth, live_server, parse_sse, wait_job
from tests.fakes import FakeLLM, HashEmbedder

ANSWER = "The warranty lasts ten years [1]."


def scripted(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    return "{}" if schema is not None else ANSWER


def ingest(url: str, key: str, ws: str, pdf: Path) -> None:
    with httpx.Client(base_url=url, headers=auth(key) if key else {}, timeout=60) as c:
        r = c.post(f"/v1/workspaces/{ws}/documents", files=[("files", (pdf.name, pdf.read_bytes(), "application/pdf"))])
        assert r.status_code == 202, r.text
        assert wait_job(c, r.json()["id"])["state"] == "done"


@contextmanager
def serve_manual(home: Path, pdf: Path, llm: FakeLLM) -> Iterator[tuple[str, str]]:
    """A live API (agent engine, auth on, HashEmbedder) with ``pdf`` ingested into workspace "manuals":
    yields (url, key of that workspace)."""
    rt = Runtime(Settings(home=home), overrides={"llm": llm, "embedder": HashEmbedder()})
    app = create_app(rt, auth=True)
    key = app.state.ragent.keys.create(["manuals"])
    try:
        with live_server(app) as url:
            ingest(url, key, "manuals", pdf)
            yield url, key
    finally:
        rt.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, example_pdf: Path) -> Iterator[tuple[str, str]]:
    with serve_manual(tmp_path_factory.mktemp("oai"), example_pdf, FakeLLM([scripted])) as served:
        yield served


def test_openai_client_lists_workspaces_and_answers_with_citations(served: tuple[str, str]) -> None:
    from openai import OpenAI

    url, key = served
    client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    assert [m.id for m in client.models.list().data] == ["ragent:manuals"]
    resp = client.chat.completions.create(model="ragent:manuals",
                                          messages=[{"role": "user", "content": "How long is the warranty?"}])
    content = resp.choices[0].message.content or ""
    assert "ten years" in content and "Sources:" in content and "[1]" in content
    extra = resp.model_extra or {}
    assert extra["citations"] and extra["citations"][0]["page"] in (1, 2, 3)


def test_openai_client_streams_chunks_ending_with_citations(served: tuple[str, str]) -> None:
    from openai import OpenAI

    url, key = served
    client = OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
    stream = client.chat.completions.create(model="ragent:manuals", stream=True,
                                            messages=[{"role": "user", "content": "How long is the warranty?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(chunks) > 3 and "ten years" in text and "Sources:" in text
    assert chunks[-1].choices[0].finish_reason == "stop" and (chunks[-1].model_extra or {})["citations"]


def test_openai_client_errors_are_the_openai_kinds(served: tuple[str, str]) -> None:
    import openai

    url, key = served
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="rk_bad_key", max_retries=0).models.list()
    with pytest.raises(openai.PermissionDeniedError):
        openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0).chat.completions.create(
            model="ragent:someone-else", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.slow
def test_chat_through_the_api_with_the_real_llm(llm_server: LLMConfig, tmp_path: Path, example_pdf: Path) -> None:
    """Real MiniLM, real Qdrant local, real vLLM (Qwen2.5-Coder-0.5B with ngram speculative decoding), real
    token streaming over SSE. The straight engine (one LLM call) keeps it bounded on a busy CPU; the agent's own
    real-LLM runs are in the agent tests."""
    s = Settings(home=tmp_path / "var", llm_base_url=llm_server.base_url, llm_served_name=llm_server.model)
    rt = Runtime(s, overrides={"llm": OpenAILLM(llm_server)})
    app = create_app(rt, auth=False, engine=StraightEngine(rt))
    try:
        with live_server(app) as url:
            ingest(url, "", "real", example_pdf)
            with httpx.Client(base_url=url, timeout=600) as c:
                r = c.post("/v1/workspaces/real/chat",
                           json={"question": "What is the rated output of the NW-200 inverter?"})
                events = parse_sse(r.text)
                status = c.get("/v1/status").json()["llm"]
        kinds = [e["type"] for e in events]
        answer = events[-1]["answer"]
        assert kinds[-1] == "answer" and "token" in kinds, kinds
        assert answer["answer"].strip() and answer["citations"], answer
        assert any(c["page"] == 1 for c in answer["citations"])
        assert status["reachable"] is True
    finally:
        rt.close()
