"""The MCP server (``ragent mcp``) driven by the ``mcp`` SDK's own client over both transports, against a real
workspace (packaged MiniLM, Qdrant local mode, the example PDF): streamable HTTP in-process behind the REST API's
keys (a scripted FakeLLM answers ``ask``), stdio as a ``python -m app.cli mcp`` subprocess."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import McpError
from pydantic import AnyUrl

from app.api.auth import KeyStore
from app.api.factory import API_DB
from app.mcp import build_server, http_app
from app.runtime import Runtime
from core.settings import Settings
from tests.api_live import auth, free_port, live_server
from tests.fakes import FakeLLM

ROOT = Path(__file__).resolve().parent.parent
ANSWER = "The NW-200 has a rated output of 5 kW [1]."
SECRET = "Project Heron's launch code is 7431; only the other workspace knows it."
DEAD_LLM = "http://127.0.0.1:9/v1"  # nothing listens on the discard port


def scripted(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    """Structured calls get an empty object (the agent falls back to its default plan); answers cite [1]."""
    return "{}" if schema is not None else ANSWER


@dataclass
class Stack:
    url: str
    runtime: Runtime
    demo: str  # key scoped to workspace demo
    other: str  # key scoped to workspace other
    doc_id: str  # the example PDF in demo
    other_doc: str
    other_chunk: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, example_pdf: Path) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp("mcp")
    rt = Runtime(Settings(home=home, api_auth=True, llm_base_url=DEAD_LLM),
                 overrides={"llm": FakeLLM([scripted])})  # real MiniLM, real Qdrant local
    [res] = rt.ingestor().ingest([example_pdf], "demo")
    secret = home / "heron.txt"
    secret.write_text(SECRET + "\n")
    [other] = rt.ingestor().ingest([secret], "other")
    assert res.status == "ingested" and other.status == "ingested", (res, other)
    keys = KeyStore(home / API_DB)
    demo, other_key = keys.create(["demo"]), keys.create(["other"])
    server = build_server(rt, "demo", "http", allow_ingest=False)
    with live_server(http_app(server, keys)) as url:
        chunk = rt.registry.get("other", other.doc_id)
        assert chunk is not None
        yield Stack(f"{url}/mcp", rt, demo, other_key, res.doc_id, other.doc_id, chunk.chunk_ids[0])
    keys.close()
    rt.close()


@asynccontextmanager
async def http_session(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = auth(key) if key else {}
    async with httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(60, read=300)) as client, \
            streamable_http_client(url, http_client=client) as (read, write, _), ClientSession(read, write) as s:
        await s.initialize()
        yield s


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def data(result: Any) -> dict[str, Any]:
    """A tool result's structured content (the same JSON is its text content, for clients without it)."""
    assert result.structuredContent is not None, text_of(result)
    return dict(result.structuredContent)


def resource_json(result: Any) -> Any:
    return json.loads(result.contents[0].text)


async def read_res(s: ClientSession, uri: str) -> Any:
    return await s.read_resource(AnyUrl(uri))


def test_http_lists_tools_with_bounded_inputs_and_the_resource_templates(stack: Stack) -> None:
    async def go() -> tuple[Any, Any]:
        async with http_session(stack.url, stack.demo) as s:
            return await s.list_tools(), await s.list_resource_templates()

    tools, templates = run(go())
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == {"search", "ask", "list_documents"}  # no ingest without --allow-ingest
    search = by_name["search"].inputSchema["properties"]
    assert search["k"]["maximum"] == 50 and search["query"]["maxLength"] == 4000
    assert by_name["ask"].inputSchema["properties"]["question"]["maxLength"] == 4000
    assert by_name["search"].outputSchema is not None
    assert {t.uriTemplate for t in templates.resourceTemplates} == {"ragent://{ws}/doc/{doc_id}",
                                                                    "ragent://{ws}/chunk/{chunk_id}"}


def test_http_search_returns_hits_with_doc_page_score_text(stack: Stack) -> None:
    async def go() -> Any:
        async with http_session(stack.url, stack.demo) as s:
            return await s.call_tool("search", {"query": "rated output of the NW-200 inverter", "k": 3})

    r = run(go())
    assert not r.isError, text_of(r)
    out = data(r)
    assert out["workspace"] == "demo" and 1 <= len(out["hits"]) <= 3
    assert any("5 kW" in h["text"] and h["page"] in (1, 2) for h in out["hits"])
    h = out["hits"][0]
    assert h["doc_id"] == stack.doc_id and h["doc"] and isinstance(h["score"], float)
    assert h["uri"] == f"ragent://demo/chunk/{h['chunk_id']}"
    assert json.loads(text_of(r))["hits"][0]["chunk_id"] == h["chunk_id"]  # the same as text, for any client


def test_http_ask_answers_with_citations_and_reports_progress(stack: Stack) -> None:
    steps: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        steps.append((progress, message))

    async def go() -> Any:
        async with http_session(stack.url, stack.demo) as s:
            return await s.call_tool("ask", {"question": "What is the rated output of the NW-200?",
                                             "thread_id": "t-1"}, progress_callback=on_progress)

    r = run(go())
    assert not r.isError, text_of(r)
    out = data(r)
    assert "5 kW" in out["answer"] and out["thread_id"] == "t-1" and out["short_answer"]
    cite = out["citations"][0]
    assert cite["doc_id"] == stack.doc_id and cite["quote"] and cite["page"]
    assert cite["uri"] == f"ragent://demo/chunk/{cite['chunk_id']}"
    assert steps and any(m and m.startswith("plan") for _, m in steps), steps
    assert [v for v, _ in steps] == sorted(v for v, _ in steps)


def test_http_reads_document_and_chunk_resources(stack: Stack) -> None:
    async def go() -> tuple[Any, Any, Any]:
        async with http_session(stack.url, stack.demo) as s:
            docs = await s.call_tool("list_documents", {})
            doc = await read_res(s, data(docs)["documents"][0]["uri"])
            chunk_id = resource_json(doc)["chunk_ids"][0]
            return docs, doc, await read_res(s, f"ragent://demo/chunk/{chunk_id}")

    docs, doc, chunk = run(go())
    [d] = data(docs)["documents"]
    assert d["doc_id"] == stack.doc_id and d["pages"] >= 2 and d["uri"] == f"ragent://demo/doc/{stack.doc_id}"
    meta = resource_json(doc)
    assert meta["doc_id"] == stack.doc_id and meta["source"] == "northwind-field-manual.pdf" and meta["chunk_ids"]
    c = resource_json(chunk)
    assert c["doc_id"] == stack.doc_id and c["text"] and c["page"] >= 1


def test_http_a_key_for_one_workspace_never_reaches_another(stack: Stack) -> None:
    async def go() -> list[Any]:
        out: list[Any] = []
        async with http_session(stack.url, stack.demo) as s:
            out.append(await s.call_tool("search", {"query": "launch code", "workspace": "other"}))
            out.append(await s.call_tool("ask", {"question": "What is the launch code?", "workspace": "other"}))
            out.append(await s.call_tool("list_documents", {"workspace": "other"}))
            for uri in (f"ragent://other/doc/{stack.other_doc}", f"ragent://other/chunk/{stack.other_chunk}"):
                try:
                    out.append(await read_res(s, uri))
                except McpError as e:
                    out.append(e)
            # its own workspace by default: the secret is not found in demo either
            out.append(await s.call_tool("search", {"query": "Project Heron launch code", "k": 20}))
        async with http_session(stack.url, stack.other) as s:  # the control: the right key reads it
            out.append(await read_res(s, f"ragent://other/chunk/{stack.other_chunk}"))
        return out

    search, ask, docs, doc_err, chunk_err, own, control = run(go())
    for r in (search, ask, docs):
        assert r.isError and "may not use workspace 'other'" in text_of(r), text_of(r)
    for e in (doc_err, chunk_err):
        assert isinstance(e, McpError) and "may not use workspace 'other'" in str(e)
    assert not own.isError and all("7431" not in h["text"] for h in data(own)["hits"])
    assert "7431" in resource_json(control)["text"]


def test_http_without_a_valid_key_is_401(stack: Stack) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    hdrs = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(stack.url, json=init, headers=hdrs)
    assert r.status_code == 401 and "ragent keys create" in r.json()["detail"]
    assert httpx.post(stack.url, json=init, headers={**hdrs, **auth("rk_nope_nope")}).status_code == 401


def test_http_oversize_inputs_are_tool_errors_and_the_server_stays_up(stack: Stack) -> None:
    async def go() -> list[Any]:
        async with http_session(stack.url, stack.demo) as s:
            return [await s.call_tool("search", {"query": "inverter", "k": 51}),
                    await s.call_tool("search", {"query": "x" * 4001}),
                    await s.call_tool("ask", {"question": "q" * 4001}),
                    await s.call_tool("search", {"query": "inverter", "paths": ["telepathy"]}),
                    await s.call_tool("search", {"query": "inverter", "workspace": "../etc"}),
                    await s.call_tool("search", {"query": "inverter", "k": 1})]

    *bad, ok = run(go())
    for r, word in zip(bad, ("less than or equal to 50", "at most 4000", "at most 4000", "telepathy",
                             "invalid workspace name"), strict=True):
        assert r.isError and word in text_of(r), text_of(r)
    assert not ok.isError and len(data(ok)["hits"]) == 1


def test_stdio_subprocess_ingests_searches_reads_and_refuses(tmp_path: Path, example_pdf: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
    env.update(RAGENT_HOME=str(tmp_path / "home"), RAGENT_LLM_BASE_URL=DEAD_LLM, RAGENT_LLM_RETRIES="0",
               HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    params = StdioServerParameters(command=sys.executable, cwd=str(ROOT), env=env,
                                   args=["-m", "app.cli", "mcp", "--workspace", "demo", "--allow-ingest"])
    pages: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        pages.append(progress)

    async def go() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with stdio_client(params) as (read, write), ClientSession(read, write) as s:
            await s.initialize()
            out["tools"] = {t.name for t in (await s.list_tools()).tools}
            out["ingest"] = await s.call_tool("ingest", {"paths": [str(example_pdf)]}, progress_callback=on_progress)
            out["search"] = await s.call_tool("search", {"query": "rated output of the NW-200 inverter", "k": 3})
            hit = data(out["search"])["hits"][0]
            out["chunk"] = await read_res(s, hit["uri"])
            out["other"] = await s.call_tool("search", {"query": "inverter", "workspace": "other"})
            try:
                out["other_res"] = await read_res(s, f"ragent://other/chunk/{hit['chunk_id']}")
            except McpError as e:
                out["other_res"] = e
            out["missing"] = await s.call_tool("ingest", {"paths": [str(tmp_path / "nope.pdf")]})
            out["ask"] = await s.call_tool("ask", {"question": "What is the rated output of the NW-200?"})
        return out

    out = run(go())
    assert out["tools"] == {"search", "ask", "list_documents", "ingest"}
    ing = data(out["ingest"])
    assert not out["ingest"].isError and ing["failed"] == 0 and ing["files"][0]["status"] == "ingested"
    assert pages and max(pages) >= 2
    assert any("5 kW" in h["text"] for h in data(out["search"])["hits"])
    assert resource_json(out["chunk"])["text"]
    assert out["other"].isError and "serves workspace 'demo' only" in text_of(out["other"])
    assert isinstance(out["other_res"], McpError) and "'demo' only" in str(out["other_res"])
    assert out["missing"].isError and "no such file" in text_of(out["missing"])
    # no LLM server: a clear tool error, and the server answered every call up to here
    assert out["ask"].isError and "cannot reach the LLM server" in text_of(out["ask"]), text_of(out["ask"])


def test_cli_http_transport_needs_a_key_and_serves_with_one(tmp_path: Path) -> None:
    """``ragent mcp --transport http``: the real command, behind the key store of its RAGENT_HOME."""
    home, port = tmp_path / "home", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
    env.update(RAGENT_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    home.mkdir()
    keys = KeyStore(home / API_DB)
    demo = keys.create(["demo"])
    keys.close()
    url = f"http://127.0.0.1:{port}/mcp"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "mcp", "--transport", "http", "--port", str(port),
                             "--workspace", "demo"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline, r = time.time() + 90, None
        while r is None:
            try:
                r = httpx.post(url, json={}, headers={"Accept": "application/json, text/event-stream"})
            except httpx.TransportError:
                assert proc.poll() is None and time.time() < deadline, "the MCP server did not start"
                time.sleep(0.2)
        assert r.status_code == 401 and "ragent keys create" in r.json()["detail"]

        async def go() -> tuple[Any, Any]:
            async with http_session(url, demo) as s:
                return await s.list_tools(), await s.call_tool("list_documents", {})

        tools, docs = run(go())
        assert {t.name for t in tools.tools} == {"search", "ask", "list_documents"}
        assert data(docs) == {"workspace": "demo", "documents": []}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
