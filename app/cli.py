"""The ``ragent`` command line (Typer). Errors become one red line and a non-zero exit, never a traceback."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from app.runtime import Runtime
from core.errors import RagentError
from core.settings import Settings

T = TypeVar("T")
app = typer.Typer(add_completion=False, no_args_is_help=True, help="ragent: documents in, cited answers out.")
err = Console(stderr=True)
out = Console()

WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="Workspace (default: RAGENT_WORKSPACE).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def settings() -> Settings:
    return Settings.from_env(".env")


@contextmanager
def runtime() -> Iterator[Runtime]:
    rt = Runtime(settings())
    try:
        yield rt
    finally:
        rt.close()


def fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn ragent errors into a clear message and exit code 1."""
    try:
        return fn()
    except RagentError as e:
        fail(str(e))
        raise  # unreachable: fail() exits


def expand(paths: list[Path], recursive: bool) -> list[Path]:
    from ingest.parse import SUPPORTED

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            files.extend(sorted(f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in SUPPORTED))
        else:
            files.append(p)
    return files


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders to ingest."),
    workspace: str = WorkspaceOpt,
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    as_json: bool = JsonOpt,
) -> None:
    """Ingest PDFs, Markdown, HTML and text files into a workspace (re-ingest upserts)."""
    from rich.progress import Progress

    from ingest.pipeline import Ingestor

    s = settings()
    ws = workspace or s.workspace
    files = expand(paths, recursive)
    with runtime() as rt, Progress(console=err, transient=True, disable=as_json) as bar:
        task = bar.add_task("ingesting", total=len(files))
        counts = {"pages": 0, "chunks": 0}

        def tick(event: str, n: int) -> None:
            if event == "file":
                bar.advance(task, n)
            else:
                counts[event] = counts.get(event, 0) + n
            bar.update(task, description=f"files · {counts['pages']} pages · {counts['chunks']} chunks")

        ing = Ingestor(rt.index, rt.registry, rt.embedder, chunk_chars=s.chunk_chars, max_file_mb=s.max_file_mb,
                       max_pages=s.max_pages, progress=tick)
        results = guarded(lambda: ing.ingest(files, ws))
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        print(json.dumps({"workspace": ws, "files": [r.to_json() for r in results], "failed": len(failed)}))
    else:
        table = Table("file", "status", "pages", "chunks", "error", title=f"ingest into {ws!r}")
        for r in results:
            style = "red" if r.status == "failed" else "green"
            table.add_row(Path(r.path).name, f"[{style}]{r.status}[/]", str(r.pages), str(r.chunks), r.error)
        out.print(table)
    if failed or not results:
        raise typer.Exit(1)


@app.command()
def search(
    query: str = typer.Argument(..., help="What to look for."),
    workspace: str = WorkspaceOpt,
    k: int = typer.Option(10, "--k", "-k", help="How many hits."),
    as_json: bool = JsonOpt,
) -> None:
    """Search a workspace; print the top hits."""
    ws = workspace or settings().workspace
    with runtime() as rt:
        hits = guarded(lambda: asyncio.run(rt.retriever.search(ws, query, k=k)))
    if as_json:
        print(json.dumps({"query": query, "workspace": ws, "hits": [h.to_json() for h in hits]}))
        return
    for i, h in enumerate(hits, start=1):
        c = h.chunk
        out.print(f"[bold]{i}.[/] {c.doc_title} p.{c.page} [dim]{h.score:.3f} {h.paths}[/]")
        out.print(f"   {c.text[:200]!r}", highlight=False)


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question."),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
    no_memory: bool = typer.Option(False, "--no-memory", help="Do not use or update learned tips/shortcuts."),
    thread: str = typer.Option(None, "--thread", help="Thread id: resumes an interrupted run of the same question."),
) -> None:
    """Answer a question with the agent (plan, search, reflect, cite); prints its steps live to stderr."""
    ws = workspace or settings().workspace
    final: dict[str, Any] = {}
    errors: list[str] = []

    async def run(rt: Runtime) -> None:
        async for ev in rt.agent.astream(ws, question, thread_id=thread, use_memory=not no_memory):
            kind = ev["type"]
            if kind == "answer":
                final.update(ev["answer"])
            elif kind == "error":
                errors.append(ev["message"])
            if as_json or kind in ("answer", "citations"):
                continue
            if kind == "plan":
                steps = ", ".join(f"{s['tool']}" for s in ev["plan"])
                err.print(f"[cyan]plan[/] ({ev.get('source')}): {steps}", highlight=False)
            elif kind == "step_end":
                mark = "[green]ok[/]" if ev["ok"] else "[red]failed[/]"
                err.print(f"  {ev['step']['id']} {ev['step']['tool']} {mark} {ev['summary'][:120]}", highlight=False)
            elif kind == "reflection":
                err.print(f"[magenta]reflect[/]: {ev['decision']} ({ev['reason'][:120]})", highlight=False)
            elif kind == "token":
                err.print(ev["text"], end="", style="dim", highlight=False)
            elif kind == "error":
                err.print(f"[red]{ev['message']}[/]", highlight=False)

    with runtime() as rt:
        guarded(lambda: asyncio.run(run(rt)))
    if not as_json:
        err.print()
    if not final.get("citations") and errors:
        fail(errors[-1])
    if as_json:
        print(json.dumps(final))
        return
    out.print(final.get("answer", ""), highlight=False)
    for c in final.get("citations", []):
        mark = "✓" if c["verified"] else "?"
        out.print(f"  [{c['n']}] {c['doc']}, page {c['page']} {mark} “{c['quote'][:160]}”", highlight=False)


import app.cli_server as _server  # noqa: E402

app.command("api")(_server.api)
app.command("ui")(_server.ui)
app.add_typer(_server.keys_app, name="keys")

from app.cli_finetune import finetune_app  # noqa: E402

app.add_typer(finetune_app, name="finetune")

from app.cli_memory import memory_app  # noqa: E402

app.add_typer(memory_app, name="memory")


def main() -> Any:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return app()


if __name__ == "__main__":
    main()
