"""``ragent api`` (uvicorn), ``ragent ui`` (Streamlit) and ``ragent keys create|list|revoke``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from core.errors import RagentError
from core.settings import Settings

err = Console(stderr=True)
out = Console()
keys_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Manage API keys (hashed, per workspace).")
UI_MAIN = Path(__file__).resolve().parent / "ui" / "main.py"


def _settings() -> Settings:
    return Settings.from_env(".env")


def api(
    host: str = typer.Option(None, "--host", help="Bind address (default: RAGENT_API_HOST)."),
    port: int = typer.Option(None, "--port", help="Port (default: RAGENT_API_PORT)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
) -> None:
    """Serve the REST API (documents, search, agent chat with SSE, OpenAI-compatible /v1/chat/completions)."""
    import uvicorn

    from app.api import create_app
    from app.runtime import Runtime

    s = _settings()
    rt = Runtime(s)
    try:
        if s.api_auth and not _key_store(s).list():
            err.print("[yellow]no API keys yet:[/] create one with `ragent keys create --workspace WS` "
                      "(or set RAGENT_API_AUTH=false for local development)")
        uvicorn.run(create_app(rt), host=host or s.api_host, port=port or s.api_port, log_level=log_level)
    finally:
        rt.close()


def ui(
    port: int = typer.Option(None, "--port", help="Port (default: RAGENT_UI_PORT)."),
    api_url: str = typer.Option(None, "--api-url", help="REST API base URL (default: RAGENT_API_URL)."),
) -> None:
    """Serve the Streamlit chat UI; it talks to the REST API only (RAGENT_API_URL, RAGENT_API_KEY)."""
    s = _settings()
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
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Create an API key; the key is printed once (only its salted hash is stored)."""
    store = _key_store(_settings())
    try:
        token = store.create(workspace, name)
    except RagentError as e:
        err.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(1) from None
    finally:
        store.close()
    key_id = token.split("_")[1]
    if as_json:
        print(json.dumps({"key": token, "key_id": key_id, "workspaces": sorted(set(workspace))}))
    else:
        out.print(token, highlight=False)
        err.print(f"key {key_id} for {', '.join(workspace)}: store it now, it cannot be shown again")


@keys_app.command("list")
def keys_list(as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
    """List API keys (ids and scopes; never the keys)."""
    store = _key_store(_settings())
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
    store = _key_store(_settings())
    try:
        ok = store.revoke(key_id)
    finally:
        store.close()
    if not ok:
        err.print(f"[bold red]error:[/] no active key {key_id!r}; `ragent keys list` shows them")
        raise typer.Exit(1)
    out.print(f"revoked {key_id}")
