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
) -> None:
    """Answer a question from a workspace's documents, with citations."""
    from agents.answer import answer_question

    ws = workspace or settings().workspace
    with runtime() as rt:
        ans = guarded(lambda: asyncio.run(answer_question(rt.retriever, rt.llm, ws, question)))
    if as_json:
        print(json.dumps(ans.to_json()))
        return
    out.print(ans.answer, highlight=False)
    for c in ans.citations:
        mark = "✓" if c.verified else "?"
        out.print(f"  [{c.n}] {c.doc}, page {c.page} {mark} “{c.quote[:160]}”", highlight=False)


import app.cli_server as _server  # noqa: E402

app.command("api")(_server.api)
app.command("ui")(_server.ui)
app.add_typer(_server.keys_app, name="keys")

from app.cli_finetune import finetune_app  # noqa: E402

app.add_typer(finetune_app, name="finetune")


def main() -> Any:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return app()


if __name__ == "__main__":
    main()
