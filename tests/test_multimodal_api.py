"""Multimodal through the API (#16): image chunks are served and flagged in hits, the UI client reads the page
scale, and images sent in chat are read into the question (unsupported parts are rejected with a 400)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.runtime import Runtime
from app.ui.client import ApiClient
from core.settings import Settings
from tests.api_live import wait_job
from tests.fakes import FakeLLM, HashEmbedder
from tests.scans import text_image_pdf

SEEN: list[str] = []


def scripted(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    SEEN.append("\n".join(str(m.get("content", "")) for m in messages))
    return "{}" if schema is not None else "Answer: key F9\nExplanation: Fault 4711 is reset with key F9 [1]."


@dataclass
class Stack:
    client: TestClient
    runtime: Runtime
    doc_id: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, example_pdf: Path) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("mm")
    pdf = text_image_pdf(home / "console.pdf", "The pump console shows its status after start-up.",
                         ["PUMP STATUS: FAULT 4711", "Reset with key F9"])
    rt = Runtime(Settings(home=home, api_auth=False, llm_base_url="http://127.0.0.1:9/v1"),
                 overrides={"llm": FakeLLM([scripted]), "embedder": HashEmbedder()})
    with TestClient(create_app(rt)) as client:
        files = []
        for p in (pdf, example_pdf):
            files.append(("files", (p.name, p.read_bytes(), "application/pdf")))
        r = client.post("/v1/workspaces/mm/documents", files=files)
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["id"], {})
        assert job["state"] == "done", job
        yield Stack(client, rt, job["results"][0]["doc_id"])
    rt.close()


def _image_hit(stack: Stack) -> dict[str, Any]:
    r = stack.client.post("/v1/workspaces/mm/search", json={"query": "FAULT 4711 reset key F9", "k": 5})
    assert r.status_code == 200, r.text
    hits = [h for h in r.json()["hits"] if h["image"]]
    assert hits, r.json()
    return hits[0]


def test_image_hits_are_flagged_and_served(stack: Stack) -> None:
    hit = _image_hit(stack)
    assert hit["kind"] == "image" and hit["ocr_confidence"] > 0.5 and "4711" in hit["text"]
    r = stack.client.get(f"/v1/workspaces/mm/images/{hit['chunk_id']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")
    ui = ApiClient("http://testserver", _http=stack.client)
    assert ui.image_png("mm", hit["chunk_id"]) == r.content


def test_image_route_errors_say_what_to_do(stack: Stack) -> None:
    r = stack.client.post("/v1/workspaces/mm/search", json={"query": "rated output", "k": 5})
    text_hit = next(h for h in r.json()["hits"] if not h["image"])
    r = stack.client.get(f"/v1/workspaces/mm/images/{text_hit['chunk_id']}")
    assert r.status_code == 404 and "pages/" in r.json()["detail"]
    assert stack.client.get(f"/v1/workspaces/mm/images/{'0' * 32}").status_code == 404
    assert stack.client.get(f"/v1/workspaces/other/images/{text_hit['chunk_id']}").status_code == 404
    assert stack.client.get("/v1/workspaces/mm/images/..%2F..%2Fetc").status_code in (404, 422)


def test_ui_client_uses_the_page_scale_header(stack: Stack) -> None:
    ui = ApiClient("http://testserver", _http=stack.client)
    png, scale = ui.page_png("mm", stack.doc_id, 1, dpi=144)
    assert png.startswith(b"\x89PNG") and scale == pytest.approx(2.0, rel=1e-3)


def _data_url(stack: Stack) -> str:
    hit = _image_hit(stack)
    png = stack.client.get(f"/v1/workspaces/mm/images/{hit['chunk_id']}").content
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_an_image_in_chat_joins_the_question(stack: Stack) -> None:
    SEEN.clear()
    r = stack.client.post("/v1/workspaces/mm/chat", json={
        "question": "What does this error screenshot mean?", "stream": False, "images": [_data_url(stack)]})
    assert r.status_code == 200, r.text
    assert any("4711" in p and "error screenshot" in p for p in SEEN), SEEN[-3:]


def test_an_image_part_in_chat_completions_is_used(stack: Stack) -> None:
    SEEN.clear()
    r = stack.client.post("/v1/chat/completions", json={"model": "ragent:mm", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "How do I clear the fault in this screenshot?"},
        {"type": "image_url", "image_url": {"url": _data_url(stack), "detail": "auto"}}]}]})
    assert r.status_code == 200, r.text
    assert any("4711" in p and "clear the fault" in p for p in SEEN), SEEN[-3:]


@pytest.mark.parametrize(("part", "status", "says"), [
    ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, 400, "supported: text, image_url"),
    ({"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}, 400, "does not fetch"),
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}, 400, "base64"),
    ({"type": "image_url", "image_url": {"url": "data:image/png;base64,aGVsbG8gd29ybGQ="}}, 400, "decoded"),
    ({"type": "image_url", "image_url": "data:image/png;base64,aGVsbG8="}, 400, "decoded"),
    ({"type": "image_url"}, 400, "image_url"),
])
def test_unsupported_or_bad_parts_get_a_400_that_says_why(stack: Stack, part: dict[str, Any], status: int,
                                                          says: str) -> None:
    r = stack.client.post("/v1/chat/completions", json={"model": "ragent:mm", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, part]}]})
    assert r.status_code == status and says in r.json()["detail"], r.text


def test_too_many_images_are_refused(stack: Stack) -> None:
    url = "data:image/png;base64,aGVsbG8="
    r = stack.client.post("/v1/workspaces/mm/chat", json={"question": "q", "stream": False, "images": [url] * 5})
    assert r.status_code == 422
