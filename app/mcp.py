"""A ragent workspace as an MCP server (the official ``mcp`` SDK's FastMCP): tools ``search``, ``ask``,
``list_documents`` and, when enabled, ``ingest``; resources ``ragent://{ws}/doc/{id}`` (a document's metadata) and
``ragent://{ws}/chunk/{id}`` (a chunk's text). A thin layer over the :class:`~app.runtime.Runtime`'s retriever,
agent, registry, index and ingestor: nothing here searches or answers by itself.

Workspace isolation: over stdio the workspace is fixed when the server starts (a tool asking for another one is
refused); over streamable HTTP every request carries an API key of the REST API's key store
(``Authorization: Bearer rk_...`` or ``X-API-Key``), and each tool call and resource read is checked against
that request's key scopes. Inputs are bounded (``k``, text lengths, path counts); every failure is an MCP tool
error with a clear message, never a crashed server.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.fastmcp import Context, FastMCP
from mcp.server.fastmcp.exceptions import ResourceError, ToolError
from pydantic import BaseModel, Field

from agents.events import describe
from app.api.auth import ANONYMOUS, Principal
from core.errors import RagentError
from core.types import Hit
from core.workspace import check_workspace

if TYPE_CHECKING:
    from app.api.auth import KeyStore
    from app.runtime import Runtime

Transport = Literal["stdio", "http"]
MAX_TEXT = 4000  # query and question characters (the REST API's limit)
MAX_K = 50
MAX_INGEST_PATHS = 50
MAX_DOC_CHUNKS = 500  # chunk ids listed in a document resource
PRINCIPAL_KEY = "ragent.principal"  # where the HTTP auth middleware leaves the caller in the ASGI scope
DOC_ID = re.compile(r"^[0-9a-f]{8,64}$")
CHUNK_ID = re.compile(r"^[0-9a-f]{32}$")
INSTRUCTIONS = ("ragent: a document store with cited answers. `search` returns the passages that match a query "
                "(document, page, score, text); `ask` runs ragent's agent and returns a checked answer whose "
                "[n] markers cite verified quotes. Read a hit in full with the resource ragent://{ws}/chunk/{id}.")

Workspace = Annotated[str | None, Field(None, max_length=64, description=(
    "Workspace to use; default: the server's (stdio: only the server's workspace is allowed; HTTP: one your "
    "API key may use)."))]


# ---- outputs (pydantic: this is a trust boundary) ----------------------------------------------------------
class HitOut(BaseModel):
    rank: int
    doc: str
    doc_id: str
    chunk_id: str
    page: int | None
    score: float
    rerank_score: float | None
    text: str
    uri: str = Field(description="ragent://{ws}/chunk/{id}: the chunk as a resource")


class SearchOut(BaseModel):
    workspace: str
    query: str
    hits: list[HitOut]


class CitationOut(BaseModel):
    n: int
    doc: str
    doc_id: str
    page: int | None
    quote: str
    verified: bool = Field(description="the quote occurs in the cited chunk")
    chunk_id: str
    uri: str


class AskOut(BaseModel):
    workspace: str
    thread_id: str | None
    short_answer: str
    answer: str = Field(description="the checked explanation; its [n] markers refer to citations")
    citations: list[CitationOut]


class DocOut(BaseModel):
    doc_id: str
    title: str
    source: str
    status: str
    version: int
    pages: int
    chunks: int
    uri: str


class DocumentsOut(BaseModel):
    workspace: str
    documents: list[DocOut]


class IngestOut(BaseModel):
    workspace: str
    files: list[dict[str, Any]]
    failed: int


# ---- the server ----------------------------------------------------------------------------------------------
class _Access:
    """Which workspace a call may use: the fixed one over stdio, the request key's scopes over HTTP."""

    def __init__(self, default: str, transport: Transport) -> None:
        self.default, self.transport = default, transport

    def principal(self, ctx: Context[Any, Any, Any]) -> Principal:
        request = ctx.request_context.request if ctx.request_context else None
        if request is None:
            return ANONYMOUS
        p = getattr(request, "scope", {}).get(PRINCIPAL_KEY)
        if not isinstance(p, Principal):
            raise ToolError("no authenticated caller on this request")
        return p

    def workspace(self, ctx: Context[Any, Any, Any], requested: str | None) -> str:
        if self.transport == "stdio":
            if requested and requested != self.default:
                raise ToolError(f"this server serves workspace {self.default!r} only (fixed at start); "
                                f"start another with `ragent mcp --workspace {requested}`")
            return self.default
        p = self.principal(ctx)
        ws = requested or (p.workspaces[0] if not p.admin and len(p.workspaces) == 1 else self.default)
        try:
            check_workspace(ws)
        except RagentError as e:
            raise ToolError(str(e)) from e
        if not p.can(ws):
            raise ToolError(f"this API key may not use workspace {ws!r}")
        return ws


async def _guard(fn: Callable[[], Awaitable[Any]]) -> Any:
    """Run ``fn``; a ragent error or a bad value becomes a tool error with its message."""
    try:
        return await fn()
    except ToolError:
        raise
    except (RagentError, ValueError) as e:
        raise ToolError(str(e)) from e


def _hit(ws: str, rank: int, h: Hit) -> HitOut:
    c = h.chunk
    return HitOut(rank=rank, doc=c.doc_title or Path(c.source).name, doc_id=c.doc_id, chunk_id=c.id, page=c.page,
                  score=round(float(h.score), 6), text=c.text, uri=f"ragent://{ws}/chunk/{c.id}",
                  rerank_score=None if h.rerank_score is None else round(float(h.rerank_score), 6))


def build_server(runtime: Runtime, workspace: str, transport: Transport = "stdio", *, allow_ingest: bool = False,
                 host: str = "127.0.0.1", port: int = 8765) -> FastMCP:
    """The FastMCP server over ``runtime``; ``workspace`` is the fixed one (stdio) or the default (HTTP)."""
    check_workspace(workspace)
    access = _Access(workspace, transport)
    server = FastMCP("ragent", instructions=INSTRUCTIONS, host=host, port=port, log_level="WARNING")

    @server.tool(title="Search the documents")
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, description="What to look for.")],
        ctx: Context[Any, Any, Any],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many hits.")] = 10,
        paths: Annotated[list[Literal["dense", "sparse", "graph", "decompose"]] | None, Field(
            max_length=4, description="Recall paths to fuse (default: the configured ones).")] = None,
        workspace: Workspace = None,
    ) -> SearchOut:
        """Hybrid search (dense + BM25 + graph, fused, reranked): the top passages with document, page, score."""
        ws = access.workspace(ctx, workspace)
        hits = await _guard(lambda: runtime.retriever.search(ws, query, k=k, paths=paths or None))
        return SearchOut(workspace=ws, query=query, hits=[_hit(ws, i, h) for i, h in enumerate(hits, start=1)])

    @server.tool(title="Ask a question (cited answer)")
    async def ask(
        question: Annotated[str, Field(min_length=1, max_length=MAX_TEXT, description="Your question.")],
        ctx: Context[Any, Any, Any],
        thread_id: Annotated[str | None, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$",
                                               description="A conversation: follow-ups are read with its earlier "
                                                           "turns.")] = None,
        workspace: Workspace = None,
    ) -> AskOut:
        """Ragent's agent plans, searches, reflects and answers; every citation's quote is checked against its
        chunk. Progress notifications report each step when the client asks for them."""
        ws = access.workspace(ctx, workspace)
        final: dict[str, Any] = {}
        errors: list[str] = []
        step = 0
        # threads are per workspace: the same id in another workspace is another conversation
        tid = f"mcp:{ws}:{thread_id}" if thread_id else None

        async def run() -> None:
            nonlocal step
            async for ev in runtime.agent.astream(ws, question, thread_id=tid):
                if ev["type"] == "answer":
                    final.update(ev["answer"])
                elif ev["type"] == "error":
                    errors.append(ev["message"])
                if (line := describe(ev)) is not None:
                    step += 1
                    await ctx.report_progress(step, None, line.strip())

        await _guard(run)
        if not final.get("citations") and errors:
            raise ToolError(f"ragent could not answer: {errors[-1]}")
        cites = [CitationOut(n=c["n"], doc=c["doc"], doc_id=c.get("doc_id", ""), page=c.get("page"),
                             quote=c["quote"], verified=bool(c.get("verified")), chunk_id=c["chunk_id"],
                             uri=f"ragent://{ws}/chunk/{c['chunk_id']}") for c in final.get("citations", [])]
        return AskOut(workspace=ws, thread_id=thread_id, short_answer=str(final.get("short_answer") or ""),
                      answer=str(final.get("answer") or ""), citations=cites)

    @server.tool(title="List the documents")
    async def list_documents(ctx: Context[Any, Any, Any], workspace: Workspace = None) -> DocumentsOut:
        """The workspace's documents: id, title, status, pages, chunks and their resource URI."""
        ws = access.workspace(ctx, workspace)
        recs = await _guard(lambda: asyncio.to_thread(runtime.registry.list, ws))
        return DocumentsOut(workspace=ws, documents=[
            DocOut(doc_id=r.doc_id, title=r.title, source=Path(r.source).name, status=r.stage, version=r.version,
                   pages=r.pages, chunks=len(r.chunk_ids), uri=f"ragent://{ws}/doc/{r.doc_id}") for r in recs])

    if allow_ingest:
        @server.tool(title="Ingest files on the server")
        async def ingest(
            paths: Annotated[list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(
                min_length=1, max_length=MAX_INGEST_PATHS,
                description="Files or folders on the server (a folder: its supported files, not sub-folders).")],
            ctx: Context[Any, Any, Any],
            workspace: Workspace = None,
        ) -> IngestOut:
            """Ingest PDF, Word, Markdown, HTML and text files that are on the server (unchanged files are skipped,
            changed ones replaced). Progress notifications report pages parsed when the client asks for them."""
            ws = access.workspace(ctx, workspace)
            files = _expand(paths)
            return await _guard(lambda: _ingest(runtime, ws, files, ctx))

    # resources take a bare ``Context``: the SDK re-validates their arguments, and a parametrised one would be
    # copied without its request
    @server.resource("ragent://{ws}/doc/{doc_id}", mime_type="application/json", title="A document's metadata")
    async def document(ws: str, doc_id: str, ctx: Context) -> str:  # type: ignore[type-arg]
        """A document's metadata: title, source file, status, version, pages and its chunk ids."""
        _resource_access(access, ctx, ws)
        rec = runtime.registry.get(ws, doc_id) if DOC_ID.match(doc_id) else None
        if rec is None:
            raise ResourceError(f"no document {doc_id!r} in workspace {ws!r}; the list_documents tool lists them")
        d = {**rec.to_json(), "source": Path(rec.source).name, "chunk_ids": list(rec.chunk_ids[:MAX_DOC_CHUNKS]),
             "chunk_uri": f"ragent://{ws}/chunk/{{chunk_id}}"}
        return json.dumps(d, ensure_ascii=False)

    @server.resource("ragent://{ws}/chunk/{chunk_id}", mime_type="application/json", title="A chunk's text")
    async def chunk(ws: str, chunk_id: str, ctx: Context) -> str:  # type: ignore[type-arg]
        """A chunk: its text (what citations quote), document, page, heading path and bounding box."""
        _resource_access(access, ctx, ws)
        found = []
        if CHUNK_ID.match(chunk_id) and runtime.index.exists(ws):
            found = await asyncio.to_thread(runtime.index.get, ws, [chunk_id])
        if not found or found[0].workspace != ws:
            raise ResourceError(f"no chunk {chunk_id!r} in workspace {ws!r}")
        c = found[0]
        return json.dumps({"chunk_id": c.id, "doc_id": c.doc_id, "doc": c.doc_title or Path(c.source).name,
                           "page": c.page, "kind": c.kind, "heading_path": list(c.heading_path),
                           "bbox": list(c.bbox) if c.bbox else None, "text": c.text}, ensure_ascii=False)

    return server


def _resource_access(access: _Access, ctx: Context[Any, Any, Any], ws: str) -> None:
    try:
        access.workspace(ctx, ws)
    except ToolError as e:
        raise ResourceError(str(e)) from e


def _expand(paths: list[str]) -> list[Path]:
    from ingest.parse import SUPPORTED

    files: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUPPORTED
                                and not f.name.startswith(".")))
        elif p.is_file():
            files.append(p)
        else:
            raise ToolError(f"{raw}: no such file or folder on the server")
    if not files:
        raise ToolError(f"no supported files in {paths}; supported: {', '.join(sorted(SUPPORTED))}")
    return files


async def _ingest(runtime: Runtime, ws: str, files: list[Path], ctx: Context[Any, Any, Any]) -> IngestOut:
    """The ingestor in a worker thread; its page counter is reported as progress every half second."""
    counts = {"pages": 0, "file": 0}

    def tick(event: str, n: int) -> None:
        if event in counts:
            counts[event] += n

    ing = runtime.ingestor(enrich=False, progress=tick)
    ing.graph_stage = runtime.settings.graph_stage
    job = asyncio.ensure_future(asyncio.to_thread(ing.ingest, files, ws))
    sent = -1
    while True:
        done, _ = await asyncio.wait({job}, timeout=0.5)
        if counts["pages"] != sent:
            sent = counts["pages"]
            await ctx.report_progress(sent, None, f"{sent} pages parsed, {counts['file']}/{len(files)} files")
        if done:
            break
    results = job.result()
    return IngestOut(workspace=ws, files=[{**r.to_json(), "path": Path(r.path).name} for r in results],
                     failed=sum(r.status == "failed" for r in results))


# ---- streamable HTTP with the REST API's keys -------------------------------------------------------------
Scope = MutableMapping[str, Any]
ASGI = Callable[[Scope, Any, Any], Awaitable[None]]
KEY_HINT = "create one with `ragent keys create --workspace WS` and send it as 'Authorization: Bearer <key>'"


def http_app(server: FastMCP, keys: KeyStore | None) -> ASGI:
    """The server's streamable HTTP app (at ``/mcp``) behind the API keys: a request without a valid key is a
    401; a valid one is left in the scope, where every tool call and resource read checks its workspaces.
    ``keys=None``: no auth (RAGENT_API_AUTH=false, local development), every workspace allowed."""
    inner = server.streamable_http_app()

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            if keys is None:
                scope[PRINCIPAL_KEY] = ANONYMOUS
            else:
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                auth = headers.get("authorization", "")
                token = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get("x-api-key", "")
                p = await asyncio.to_thread(keys.verify, token.strip()) if token else None
                if p is None:
                    why = "invalid or revoked API key" if token else "missing API key"
                    await _deny(send, f"{why}: {KEY_HINT}")
                    return
                scope[PRINCIPAL_KEY] = p
        await inner(scope, receive, send)

    return app


async def _deny(send: Any, detail: str) -> None:
    body = json.dumps({"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": detail}).encode()
    await send({"type": "http.response.start", "status": 401,
                "headers": [(b"content-type", b"application/problem+json"), (b"www-authenticate", b"Bearer")]})
    await send({"type": "http.response.body", "body": body})


async def serve_stdio(server: FastMCP) -> None:
    """Serve over stdin/stdout. Anything else that prints is sent to stderr, so it cannot break the protocol."""
    import sys
    from io import TextIOWrapper

    import anyio
    from mcp.server.stdio import stdio_server

    out = anyio.wrap_file(TextIOWrapper(sys.stdout.buffer, encoding="utf-8"))
    sys.stdout = sys.stderr
    low = server._mcp_server  # FastMCP.run_stdio_async, with the protocol's stdout kept apart
    async with stdio_server(stdout=out) as (read, write):
        await low.run(read, write, low.create_initialization_options())


__all__ = ["build_server", "http_app", "serve_stdio"]
