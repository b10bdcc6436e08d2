"""``ragent api`` (uvicorn), ``ragent ui`` (Streamlit) and ``ragent keys create|list|revoke``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer
from rich.table import Table

from app.cli import common
from app.cli.common import JsonOpt, err, fail, guarded, out
from core.settings import Settings

keys_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Manage API keys (hashed, per workspace).")
UI_MAIN = Path(__file__).resolve().parent.parent / "ui" / "main.py"


def api(
    host: str = typer.Option(None, "--host", help="Bind address (default: RAGENT_API_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (default: RAGENT_API_PORT)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the REST API (documents, search, agent chat with SSE, OpenAI-compatible /v1/chat/completions)."""
    import uvicorn

    from app.api import create_app

    with common.runtime() as rt:
        s = rt.settings
        if s.api_auth and not _key_store(s).list():
            err.print("[yellow]no API keys yet:[/] create one with `ragent keys create --workspace WS` "
                      "(or set RAGENT_API_AUTH=false for local development)")
        uvicorn.run(create_app(rt), host=host or s.api_host, port=port or s.api_port, log_level=log_level)


def ui(
    port: int = typer.Option(None, "--port", help="Port (default: RAGENT_UI_PORT)."),
    api_url: str = typer.Option(None, "--api-url", help="REST API base URL (default: RAGENT_API_URL)."),
) -> None:
    """Serve the Streamlit chat UI; it talks to the REST API only (RAGENT_API_URL, RAGENT_API_KEY)."""
    s = common.settings()
    env = {**os.environ, "RAGENT_API_URL": api_url or s.api_url}
    if s.api_key:
        env["RAGENT_API_KEY"] = s.api_key
    cmd = [sys.executable, "-m", "streamlit", "run", str(UI_MAIN), "--server.port", str(port or s.ui_port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    raise typer.Exit(subprocess.call(cmd, env=env))


def _key_store(s: Settings):  # type: ignore[no-untyped-def]
    from app.api.auth import KeyStore
    from app.api.factory import API_DB

    return KeyStore(s.home / API_DB)


@keys_app.command("create")
def keys_create(
    workspace: list[str] = typer.Option(..., "--workspace", "-w", help="Workspace the key may use (repeat; '*' = all)"),
    name: str = typer.Option("", "--name", help="A label for the key."),
    as_json: bool = JsonOpt,
) -> None:
    """Create an API key; the key is printed once (only its salted hash is stored)."""
    store = _key_store(common.settings())
    try:
        token = guarded(lambda: store.create(workspace, name))
    finally:
        store.close()
    key_id = token.split("_")[1]
    if as_json:
        print(json.dumps({"key": token, "key_id": key_id, "workspaces": sorted(set(workspace))}))
    else:
        out.print(token, highlight=False)
        err.print(f"key {key_id} for {', '.join(workspace)}: store it now, it cannot be shown again")


@keys_app.command("list")
def keys_list(as_json: bool = JsonOpt) -> None:
    """List API keys (ids and scopes; never the keys)."""
    store = _key_store(common.settings())
    try:
        infos = store.list()
    finally:
        store.close()
    if as_json:
        print(json.dumps([k.to_json() for k in infos]))
        return
    table = Table("key id", "workspaces", "name", "revoked")
    for k in infos:
        table.add_row(k.key_id, ", ".join(k.workspaces), k.name, "yes" if k.revoked else "")
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="The key id (`ragent keys list`).")) -> None:
    """Revoke an API key."""
    store = _key_store(common.settings())
    try:
        ok = store.revoke(key_id)
    finally:
        store.close()
    if not ok:
        fail(f"no active key {key_id!r}; `ragent keys list` shows them")
    out.print(f"revoked {key_id}")
