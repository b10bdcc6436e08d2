"""``ragent memory``: list, show, edit and delete the agent's learned tips and shortcuts."""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.table import Table

from app.cli import common
from app.cli.common import JsonOpt, WorkspaceOpt, fail, out

memory_app = typer.Typer(no_args_is_help=True, help="The agent's learned tips and shortcuts.")

KindOpt = typer.Option(None, "--kind", "-k", help="tips or shortcuts (default: both).")
KINDS = ("tips", "shortcuts")


def _kinds(kind: str | None) -> tuple[str, ...]:
    if kind is None:
        return KINDS
    k = kind if kind.endswith("s") else kind + "s"
    if k not in KINDS:
        fail(f"unknown kind {kind!r}; use tips or shortcuts", 2)
    return (k,)


def _with_memory(workspace: str | None) -> tuple[Any, Any, str]:
    ws = workspace or common.settings().workspace
    cm = common.runtime()
    rt = cm.__enter__()
    return cm, rt.memory, ws


def _find(mem: Any, kinds: tuple[str, ...], ws: str, item_id: str) -> tuple[str, dict[str, Any]] | None:
    for k in kinds:
        item = mem.get(k, ws, item_id)
        if item is not None:
            return k, item
    return None


@memory_app.command("list")
def list_(kind: str = KindOpt, workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """List learned items, highest weight first."""
    cm, mem, ws = _with_memory(workspace)
    try:
        items = [{**i, "kind": k} for k in _kinds(kind) for i in mem.list(k, ws)]
    finally:
        cm.__exit__(None, None, None)
    if as_json:
        print(json.dumps({"workspace": ws, "items": items}))
        return
    table = Table("id", "kind", "text", "uses", "ok", "fail", "weight", title=f"memory of {ws!r}")
    for i in items:
        text = i.get("name", "") + (": " if i.get("name") else "") + str(i.get("description") or i.get("text", ""))
        table.add_row(i["id"], i["kind"], text[:90], str(i.get("uses", 0)), str(i.get("successes", 0)),
                      str(i.get("failures", 0)), f"{float(i.get('weight', 1)):.2f}")
    out.print(table)


@memory_app.command()
def show(item_id: str, kind: str = KindOpt, workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Show one item with its provenance (the runs it came from)."""
    cm, mem, ws = _with_memory(workspace)
    try:
        found = _find(mem, _kinds(kind), ws, item_id)
    finally:
        cm.__exit__(None, None, None)
    if found is None:
        fail(f"no memory item {item_id!r} in workspace {ws!r}; see `ragent memory list`")
    print(json.dumps(found[1], indent=None if as_json else 2))


@memory_app.command()
def edit(item_id: str, text: str = typer.Option(..., "--text", help="New text of the tip or shortcut description."),
         kind: str = KindOpt, workspace: str = WorkspaceOpt) -> None:
    """Replace a tip's text (or a shortcut's description)."""
    cm, mem, ws = _with_memory(workspace)
    try:
        found = _find(mem, _kinds(kind), ws, item_id)
        if found is None:
            fail(f"no memory item {item_id!r} in workspace {ws!r}")
        k, item = found
        field = "description" if k == "shortcuts" else "text"
        mem.put(k, ws, {**item, field: text, "text": text if k == "tips" else f"{item.get('name', '')}: {text}",
                        "edited": True})
    finally:
        cm.__exit__(None, None, None)
    out.print(f"updated {k[:-1]} {item_id}")


@memory_app.command()
def delete(item_id: str, kind: str = KindOpt, workspace: str = WorkspaceOpt) -> None:
    """Delete one tip or shortcut."""
    cm, mem, ws = _with_memory(workspace)
    try:
        done = any(mem.delete(k, ws, item_id) for k in _kinds(kind))
    finally:
        cm.__exit__(None, None, None)
    if not done:
        fail(f"no memory item {item_id!r} in workspace {ws!r}")
    out.print(f"deleted {item_id}")
