"""The REST API against the real app on the embedded defaults: real Qdrant Edge (the embedded vector default), real
MiniLM, the real example PDF; a scripted FakeLLM for speed (tests/test_api_openai.py has the real-vLLM test)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from app.runtime import Runtime
from core.settings import Settings
from tests.api_live import auth, parse_sse, wait_job
from tests.fakes import FakeLLM, HashEmbedder

ANSWER = "The NW-200 has a rated output of 5 kW [1]."


def scripted(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    """Structured calls get an empty object (the agent falls back to its default plan); answers cite [1]."""
    return "{}" if schema is not None else ANSWER


@dataclass
class Stack:
    client: TestClient
    runtime: Runtime
    admin: str
    demo: str
    other: str
    doc_id: str
    job: dict[str, Any]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, example_pdf: Path) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("api")
    # no LLM server at this URL, whatever else runs on the machine (a `make run` server on the default port)
    rt = Runtime(Settings(home=home, api_auth=True, llm_base_url="http://127.0.0.1:9/v1"),
                 overrides={"llm": FakeLLM([scripted])})  # real MiniLM
    app = create_app(rt)
    keys = app.state.ragent.keys
    admin, demo, other = keys.create(["*"]), keys.create(["demo"]), keys.create(["other"])
    with TestClient(app) as client:
        with example_pdf.open("rb") as f:
            r = client.post("/v1/workspaces/demo/documents", headers=auth(demo),
                            files=[("files", (example_pdf.name, f, "application/pdf"))])
        assert r.status_code == 202, r.text
        job = wait_job(client, r.json()["id"], auth(demo))
        assert job["state"] == "done", job
        yield Stack(client, rt, admin, demo, other, job["results"][0]["doc_id"], job)
    rt.close()


def test_upload_runs_a_background_job_and_lists_the_document(stack: Stack) -> None:
    c, h = stack.client, auth(stack.demo)
    assert stack.job["progress"] == 1.0 and stack.job["pages"] == 3 and stack.job["chunks"] > 0
    docs = c.get("/v1/workspaces/demo/documents", headers=h).json()["documents"]
    assert [d["doc_id"] for d in docs] == [stack.doc_id] and docs[0]["status"] == "done"
    doc = c.get(f"/v1/workspaces/demo/documents/{stack.doc_id}", headers=h).json()
    assert doc["pages"] == 3 and doc["title"]
    png = c.get(f"/v1/workspaces/demo/documents/{stack.doc_id}/pages/1.png?dpi=72", headers=h)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and float(png.headers["x-page-scale"]) == 1.0
    assert c.get(f"/v1/workspaces/demo/documents/{stack.doc_id}/pages/9.png", headers=h).status_code == 404


def test_search_returns_the_page_with_the_answer(stack: Stack) -> None:
    r = stack.client.post("/v1/workspaces/demo/search", headers=auth(stack.demo),
                          json={"query": "rated output of the NW-200 inverter", "k": 3})
    hits = r.json()["hits"]
    assert r.status_code == 200 and hits
    assert any("5 kW" in h["text"] and h["page"] in (1, 2) for h in hits)
    assert all(h["doc_id"] == stack.doc_id for h in hits)


def test_chat_streams_sse_events_with_the_answer_last_and_keeps_the_thread(stack: Stack) -> None:
    c, h = stack.client, auth(stack.demo)
    body = {"question": "What is the rated output of the NW-200?", "thread_id": "t-1"}
    with c.stream("POST", "/v1/workspaces/demo/chat", headers=h, json=body) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-thread-id"] == "t-1"
        text = "".join(r.iter_text())
    events = parse_sse(text)
    kinds = [e["type"] for e in events]
    assert "token" in kinds and "plan" in kinds and kinds[-1] == "answer" and "error" not in kinds, kinds
    answer = events[-1]["answer"]
    assert "5 kW" in answer["answer"] and answer["citations"]
    cite = answer["citations"][0]
    assert cite["doc_id"] == stack.doc_id and cite["page"] and cite["quote"]
    assert events[-1]["thread_id"] == "t-1"
    c.post("/v1/workspaces/demo/chat", headers=h, json={**body, "stream": False, "question": "And the warranty?"})
    thread = c.get("/v1/workspaces/demo/threads/t-1", headers=h).json()
    assert [m["role"] for m in thread["messages"]] == ["user", "assistant", "user", "assistant"]
    assert c.get("/v1/workspaces/demo/threads", headers=h).json()["threads"][0]["thread_id"] == "t-1"


def test_chat_without_streaming_returns_one_json_answer(stack: Stack) -> None:
    r = stack.client.post("/v1/workspaces/demo/chat", headers=auth(stack.demo),
                          json={"question": "rated output?", "stream": False})
    data = r.json()
    assert r.status_code == 200 and data["thread_id"] and data["answer"]["citations"]
    assert all(e["type"] != "token" for e in data["events"])


def test_no_key_is_401_wrong_workspace_is_403_as_problem_details(stack: Stack) -> None:
    c = stack.client
    r = c.get("/v1/workspaces/demo/documents")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    assert "ragent keys create" in r.json()["detail"] and r.json()["status"] == 401
    assert c.get("/v1/workspaces/demo/documents", headers=auth("rk_nope_nope")).status_code == 401
    r = c.post("/v1/workspaces/demo/search", headers=auth(stack.other), json={"query": "inverter"})
    assert r.status_code == 403 and "other" in r.json()["detail"]
    assert c.post("/v1/chat/completions", headers=auth(stack.other),
                  json={"model": "ragent:demo", "messages": [{"role": "user", "content": "hi"}]}).status_code == 403
    assert c.get("/v1/workspaces/demo/documents", headers={"X-API-Key": stack.admin}).status_code == 200
    keys = stack.client.app.state.ragent.keys  # type: ignore[attr-defined]
    temp = keys.create(["demo"])
    assert c.get("/v1/workspaces/demo/documents", headers=auth(temp)).status_code == 200
    keys.revoke(temp.split("_")[1])
    assert c.get("/v1/workspaces/demo/documents", headers=auth(temp)).status_code == 401


def test_cross_workspace_leak_finds_nothing(stack: Stack) -> None:
    c, h = stack.client, auth(stack.other)
    q = {"query": "NW-200 rated output warranty inverter", "k": 20}
    assert c.post("/v1/workspaces/other/search", headers=h, json=q).json()["hits"] == []
    assert c.get("/v1/workspaces/other/documents", headers=h).json()["documents"] == []
    assert c.get(f"/v1/workspaces/other/documents/{stack.doc_id}", headers=h).status_code == 404
    assert c.get(f"/v1/workspaces/other/documents/{stack.doc_id}/pages/1.png", headers=h).status_code == 404
    assert c.get(f"/v1/jobs/{stack.job['id']}", headers=h).status_code == 404
    r = c.post("/v1/workspaces/other/chat", headers=h, json={"question": q["query"], "stream": False}).json()
    assert r["answer"]["citations"] == [] and "5 kW" not in r["answer"]["answer"]
    assert c.get("/v1/workspaces/other/threads/t-1", headers=h).status_code == 404
    assert [m["id"] for m in c.get("/v1/models", headers=h).json()["data"]] == ["ragent:other"]
    # and at the store level: the demo collection's points all carry workspace=demo
    pts = stack.runtime.index.scroll("demo")
    assert pts and {p.payload["workspace"] for p in pts} == {"demo"}


def test_memory_crud(stack: Stack) -> None:
    c, h = stack.client, auth(stack.demo)
    base = "/v1/workspaces/demo/memory/tips"
    r = c.post(base, headers=h, json={"text": "Specs live in the table on page 2."})
    assert r.status_code == 201, r.text
    item = r.json()
    assert item["text"] == "Specs live in the table on page 2." and item["id"]
    assert item["id"] in [i["id"] for i in c.get(base, headers=h).json()["items"]]
    r = c.put(f"{base}/{item['id']}", headers=h, json={"text": "Specs are in the page-2 table."})
    assert r.status_code == 200 and r.json()["text"] == "Specs are in the page-2 table."
    assert c.get(f"{base}/{item['id']}", headers=h).json()["text"] == "Specs are in the page-2 table."
    assert c.get("/v1/workspaces/demo/memory/shortcuts", headers=h).status_code == 200
    # found by schemathesis: an extra field with an integer past 64 bits was a 500 from the store's JSON encoder
    big = c.post(base, headers=h, json={"text": "x", "meta": {"n": [2**64]}})
    assert big.status_code == 422 and "64 bits" in big.text
    theirs = c.get("/v1/workspaces/other/memory/tips", headers=auth(stack.other)).json()["items"]
    assert item["id"] not in [i["id"] for i in theirs]  # memory is per workspace too
    assert c.delete(f"{base}/{item['id']}", headers=h).status_code == 204
    assert c.get(f"{base}/{item['id']}", headers=h).status_code == 404
    assert c.delete(f"{base}/{item['id']}", headers=h).status_code == 404
    assert c.get("/v1/workspaces/demo/memory/bogus", headers=h).status_code == 422


def test_openai_facade_non_streaming_in_process(stack: Stack) -> None:
    r = stack.client.post("/v1/chat/completions", headers=auth(stack.demo), json={
        "model": "ragent:demo", "messages": [{"role": "user", "content": "What is the rated output?"}]})
    data = r.json()
    assert r.status_code == 200 and data["object"] == "chat.completion"
    content = data["choices"][0]["message"]["content"]
    assert "5 kW" in content and "Sources:" in content and data["citations"][0]["doc_id"] == stack.doc_id
    r = stack.client.post("/v1/chat/completions", headers=auth(stack.demo), json={
        "model": "ragent:no such", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404 and "GET /v1/models" in r.json()["detail"]


def test_health_ready_metrics_status_openapi(stack: Stack) -> None:
    c = stack.client
    assert c.get("/healthz").json() == {"status": "ok"}
    r = c.get("/readyz")  # no LLM server runs here: not ready, but Qdrant is fine
    assert r.status_code == 503 and r.json()["checks"]["qdrant"]["ok"] is True
    assert r.json()["checks"]["llm"]["ok"] is False
    metrics = c.get("/metrics").text
    assert "ragent_http_requests_total" in metrics and "ragent_chats_total" in metrics
    st = c.get("/v1/status", headers=auth(stack.admin)).json()
    assert st["index"]["demo"]["chunks"] > 0 and st["index"]["demo"]["documents"] == 1
    assert st["llm"]["reachable"] is False and "tokens_per_s" in st["llm"]
    assert c.get("/v1/status", headers=auth(stack.other)).json()["index"] == {"other": {"chunks": 0, "documents": 0}}
    spec = c.get("/openapi.json").json()
    assert "/v1/chat/completions" in spec["paths"] and "/v1/workspaces/{ws}/chat" in spec["paths"]


def test_upload_limits_and_delete(tmp_path: Path, example_pdf: Path) -> None:
    rt = Runtime(Settings(home=tmp_path / "var", api_auth=False, api_max_upload_mb=0.01),
                 overrides={"llm": FakeLLM(), "embedder": HashEmbedder()})
    with TestClient(create_app(rt)) as c:
        url = "/v1/workspaces/w1/documents"
        r = c.post(url, files=[("files", ("evil.exe", b"MZ...", "application/octet-stream"))])
        assert r.status_code == 415 and ".pdf" in r.json()["detail"]
        r = c.post(url, files=[("files", ("empty.txt", b"", "text/plain"))])
        assert r.status_code == 422
        r = c.post(url, files=[("files", ("big.txt", b"x" * 20000, "text/plain"))])
        assert r.status_code == 413 and "RAGENT_API_MAX_UPLOAD_MB" in r.json()["detail"]
        r = c.post(url, files=[("files", ("../../notes.md", b"# Notes\n\nThe pump is blue.", "text/markdown"))])
        job = wait_job(c, r.json()["id"])
        assert job["state"] == "done", job
        doc_id = job["results"][0]["doc_id"]
        assert (tmp_path / "var" / "uploads" / "w1" / "notes.md").is_file()
        assert c.delete(f"{url}/{doc_id}").status_code == 204
        assert c.get(f"{url}/{doc_id}").status_code == 404
        assert not (tmp_path / "var" / "uploads" / "w1" / "notes.md").exists()
        assert c.post("/v1/workspaces/w1/search", json={"query": "pump"}).json()["hits"] == []
        assert c.post("/v1/workspaces/bad name!/search", json={"query": "x"}).status_code in (404, 422)
    rt.close()


def test_keys_cli_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from app.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["keys", "create", "--workspace", "demo", "--json"])
    assert r.exit_code == 0, r.output
    made = json.loads(r.stdout)
    assert made["key"].startswith("rk_") and made["workspaces"] == ["demo"]
    listed = json.loads(runner.invoke(app, ["keys", "list", "--json"]).stdout)
    assert listed[0]["key_id"] == made["key_id"] and made["key"] not in r.stdout.replace(r.stdout, "")
    assert runner.invoke(app, ["keys", "revoke", made["key_id"]]).exit_code == 0
    assert runner.invoke(app, ["keys", "revoke", made["key_id"]]).exit_code == 1
    assert runner.invoke(app, ["keys", "create", "--workspace", "bad name"]).exit_code == 1
