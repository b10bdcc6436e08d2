"""The vision-model contract (#16): ragent sends each saved image to an OpenAI-compatible multimodal server as an
``image_url`` data URL, and the description it gets back becomes searchable. The server is a small fake on
loopback that records the exact payloads."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request

from app.runtime import Runtime
from core.settings import Settings
from tests.api_live import free_port, live_server
from tests.fakes import FakeLLM, HashEmbedder
from tests.scans import text_image_pdf

DESCRIPTION = "A bar chart of quarterly widget sales; the third quarter peaks at 981 units."


@pytest.fixture(scope="module")
def vlm() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request) -> dict[str, Any]:
        body = await request.json()
        seen.append(body)
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": DESCRIPTION}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}

    with live_server(app) as url:
        yield url + "/v1", seen


def _runtime(home: Path, base_url: str) -> Runtime:
    return Runtime(Settings(home=home, vlm_base_url=base_url, vlm_model="fake-vl"),
                   overrides={"llm": FakeLLM(), "embedder": HashEmbedder()})


def test_images_are_described_and_the_description_is_searchable(
    vlm: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, seen = vlm
    seen.clear()
    pdf = text_image_pdf(tmp_path / "report.pdf", "Sales grew in every region this year.", ["Q1 Q2 Q3 Q4"])
    rt = _runtime(tmp_path / "var", url)
    try:
        (res,) = rt.ingestor().ingest([pdf], "vis")
        assert res.status == "ingested" and res.images == 1, res
        (body,) = seen
        assert body["model"] == "fake-vl" and body["temperature"] == 0.0
        (msg,) = body["messages"]
        text_part, image_part = msg["content"]
        assert msg["role"] == "user" and text_part["type"] == "text" and "transcribe" in text_part["text"]
        assert image_part["type"] == "image_url"
        data_url = image_part["image_url"]["url"]
        assert data_url.startswith("data:image/png;base64,")
        hits = asyncio.run(rt.retriever.search("vis", "quarterly widget sales chart", k=3))
        top = hits[0].chunk
        assert top.kind == "image" and DESCRIPTION in top.text
        saved = rt.settings.home / "files" / top.doc_id / top.image
        assert base64.b64decode(data_url.split(",", 1)[1]) == saved.read_bytes()  # exactly the saved image
        # the description is cached by image hash: ingesting the document again asks nothing
        rt.ingestor().delete("vis", top.doc_id)
        (again,) = rt.ingestor().ingest([pdf], "vis")
        assert again.status == "ingested" and len(seen) == 1
    finally:
        rt.close()


def test_an_unreachable_vision_server_never_fails_the_document(tmp_path: Path) -> None:
    pdf = text_image_pdf(tmp_path / "console.pdf", "The console shows its status.", ["PUMP FAULT 4711"])
    rt = _runtime(tmp_path / "var", f"http://127.0.0.1:{free_port()}/v1")
    try:
        (res,) = rt.ingestor().ingest([pdf], "vis")
        assert res.status == "ingested" and res.images == 1
        assert "images were not described" in res.note and "RAGENT_VLM_BASE_URL" in res.note
    finally:
        rt.close()


def test_chat_images_are_described_by_the_vision_model(vlm: tuple[str, list[dict[str, Any]]], tmp_path: Path,
                                                       example_pdf: Path) -> None:
    from fastapi.testclient import TestClient

    from app.api import create_app

    url, seen = vlm
    seen.clear()
    asked: list[str] = []

    def record(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        asked.append("\n".join(str(m.get("content", "")) for m in messages))
        return "{}" if schema is not None else "Answer: 981\nExplanation: see [1]."

    s = Settings(home=tmp_path / "var", vlm_base_url=url, vlm_model="fake-vl", api_auth=False)
    rt = Runtime(s, overrides={"llm": FakeLLM([record]), "embedder": HashEmbedder()})
    rt.ingestor().ingest([example_pdf], "vc")
    import pymupdf

    with pymupdf.open() as d:
        d.new_page(width=200, height=100).draw_rect(pymupdf.Rect(20, 20, 120, 80), fill=(0.2, 0.4, 0.8))
        png = d[0].get_pixmap().tobytes("png")
    try:
        with TestClient(create_app(rt)) as client:
            r = client.post("/v1/workspaces/vc/chat", json={
                "question": "What is the peak in this chart?", "stream": False,
                "images": ["data:image/png;base64," + base64.b64encode(png).decode()]})
        assert r.status_code == 200, r.text
        assert len(seen) == 1 and seen[0]["messages"][0]["content"][1]["type"] == "image_url"
        assert any("981 units" in a and "peak in this chart" in a for a in asked)
    finally:
        rt.close()


def test_a_question_about_a_figure_sends_the_cited_figure_to_the_vision_model(
    vlm: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    url, seen = vlm
    asked: list[str] = []

    def record(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
        asked.append("\n".join(str(m.get("content", "")) for m in messages))
        return "{}" if schema is not None else "Answer: 981 units\nExplanation: The chart peaks at 981 units [1]."

    pdf = text_image_pdf(tmp_path / "report.pdf", "Sales grew in every region this year.", ["Q1 Q2 Q3 Q4"])
    s = Settings(home=tmp_path / "var", vlm_base_url=url, vlm_model="fake-vl")
    rt = Runtime(s, overrides={"llm": FakeLLM([record]), "embedder": HashEmbedder()})
    try:
        rt.ingestor().ingest([pdf], "fig")
        seen.clear()

        async def run() -> list[dict[str, Any]]:
            return [dict(ev) async for ev in rt.agent.astream("fig", "What does the sales chart in the figure show?")]

        events = asyncio.run(run())
        (body,) = seen  # the cited figure went to the vision model with the question
        text_part, image_part = body["messages"][0]["content"]
        assert "What does the sales chart in the figure show?" in text_part["text"]
        assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
        assert any(f"What the figure shows: {DESCRIPTION}" in a for a in asked)  # the answer reads it
        answer = next(e for e in events if e["type"] == "answer")["answer"]
        assert "981" in answer["short_answer"]
    finally:
        rt.close()
