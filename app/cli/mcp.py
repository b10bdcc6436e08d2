"""``ragent mcp``: serve a workspace to MCP clients (desktop and coding assistants) over stdio or streamable HTTP."""

from __future__ import annotations

import asyncio

import typer

from app.cli import common
from app.cli.common import WorkspaceOpt, err, fail, guarded

DEFAULT_PORT = 8765


def serve(
    workspace: str = WorkspaceOpt,
    transport: str = typer.Option("stdio", "--transport", "-t", help="stdio (a client starts this command; the "
                                  "workspace is fixed) or http (streamable HTTP at /mcp; API keys choose the "
                                  "workspace, as in the REST API)."),
    host: str = typer.Option("127.0.0.1", "--host", help="HTTP bind address."),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="HTTP port."),
    allow_ingest: bool = typer.Option(False, "--allow-ingest", help="Offer the `ingest` tool, which reads files "
                                      "on this machine into the workspace (off: the server only reads)."),
) -> None:
    """Serve a workspace as an MCP server: tools search, ask, list_documents (and ingest with --allow-ingest);
    resources ragent://WS/doc/ID and ragent://WS/chunk/ID. Over HTTP every request needs an API key
    (`ragent keys create`) unless RAGENT_API_AUTH=false."""
    from app.mcp import build_server, http_app, serve_stdio

    if transport not in ("stdio", "http"):
        fail(f"unknown transport {transport!r}: use stdio or http")
    with common.runtime() as rt:
        s = rt.settings
        ws = workspace or s.workspace
        server = guarded(lambda: build_server(rt, ws, "http" if transport == "http" else "stdio",
                                              allow_ingest=allow_ingest, host=host, port=port))
        if transport == "stdio":
            asyncio.run(serve_stdio(server))
            return
        import uvicorn

        from app.api.auth import KeyStore
        from app.api.factory import API_DB

        keys = KeyStore(s.home / API_DB) if s.api_auth else None
        if keys is not None and not keys.list():
            err.print("[yellow]no API keys yet:[/] create one with `ragent keys create --workspace WS` "
                      "(or set RAGENT_API_AUTH=false for local development)")
        err.print(f"MCP server (streamable HTTP) at http://{host}:{port}/mcp, default workspace {ws!r}",
                  highlight=False)
        try:
            uvicorn.run(http_app(server, keys), host=host, port=port, log_level="warning")
        finally:
            if keys is not None:
                keys.close()
