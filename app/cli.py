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

from agents.events import describe
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
    """Files to ingest: files as given (bad ones are reported per file), folders' supported files (sorted,
    hidden files skipped), each file once."""
    from ingest.parse import SUPPORTED

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = p.rglob("*") if recursive else p.glob("*")
            files.extend(sorted(f for f in found if f.is_file() and f.suffix.lower() in SUPPORTED
                                and not any(part.startswith(".") for part in f.relative_to(p).parts)))
        else:
            files.append(p)
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]  # type: ignore[func-returns-value]


@app.command()
def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders to ingest."),
    workspace: str = WorkspaceOpt,
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    enrich: bool = typer.Option(None, "--enrich/--no-enrich", help="LLM context per chunk (contextual retrieval; "
                                "needs the LLM server; slow on CPU). Default: RAGENT_ENRICH (off)."),
    as_json: bool = JsonOpt,
) -> None:
    """Ingest PDFs, Word (.docx), Markdown, HTML and text files into a workspace (unchanged files are
    skipped, changed ones replaced, a crashed run resumes). Exits 1 if any file failed."""
    from app.cli_docs import run_ingest

    ws = workspace or settings().workspace
    run_ingest(expand(paths, recursive), ws, enrich, as_json)


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
        res = guarded(lambda: asyncio.run(rt.retriever.run(ws, query, k=k)))
    hits = res.hits
    runs = {p: {"ms": round(r.ms, 1), "hits": len(r.hits), "skipped": r.skipped} for p, r in res.runs.items()}
    if as_json:
        print(json.dumps({"query": query, "workspace": ws, "hits": [h.to_json() for h in hits], "paths": runs,
                          "rerank_ms": round(res.rerank_ms, 1)}))
        return
    for i, h in enumerate(hits, start=1):
        c = h.chunk
        rr = "" if h.rerank_score is None else f" rerank {h.rerank_score:.2f}"
        out.print(f"[bold]{i}.[/] {c.doc_title} p.{c.page} [dim]rrf {h.score:.4f}{rr} {h.paths}[/]")
        out.print(f"   {c.text[:200]!r}", highlight=False)
    timing = ", ".join(f"{p} {r['ms']:.0f} ms" + (f" (skipped: {r['skipped']})" if r["skipped"] else "")
                       for p, r in runs.items())
    err.print(f"[dim]{timing}; rerank {res.rerank_ms:.0f} ms[/]", highlight=False)


@app.command()
def ask(
    question: str = typer.Argument(..., help="Your question."),
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
    no_memory: bool = typer.Option(False, "--no-memory", help="Do not use or update learned tips/shortcuts."),
    thread: str = typer.Option(None, "--thread", help="Thread id: a conversation. A follow-up question ('and its "
                               "warranty?') is read with the thread's earlier turns; the same question again "
                               "resumes an interrupted run."),
) -> None:
    """Answer a question with the agent (plan, search, reflect, cite); prints its steps live to stderr."""
    ws = workspace or settings().workspace
    final: dict[str, Any] = {}
    errors: list[str] = []

    async def run(rt: Runtime) -> None:
        async for ev in rt.agent.astream(ws, question, thread_id=thread, use_memory=not no_memory):
            if ev["type"] == "answer":
                final.update(ev["answer"])
            elif ev["type"] == "error":
                errors.append(ev["message"])
            if as_json:
                continue
            if ev["type"] == "token":
                err.print(ev["text"], end="", style="dim", highlight=False)
            elif (line := describe(ev)) is not None:
                err.print(line, style="red" if ev["type"] == "error" else None, highlight=False)

    with runtime() as rt:
        guarded(lambda: asyncio.run(run(rt)))
    if not as_json:
        err.print()
    if not final.get("citations") and errors:
        fail(errors[-1])
    if as_json:
        print(json.dumps(final))
    else:
        out.print(f"[bold]Answer:[/] {final.get('short_answer') or '-'}", highlight=False)
        out.print(final.get("answer", ""), highlight=False)
        for c in final.get("citations", []):
            mark = "✓" if c["verified"] else "?"
            out.print(f"  [{c['n']}] {c['doc']}, page {c['page']} {mark} “{c['quote'][:160]}”", highlight=False)
    budget = (final.get("stats") or {}).get("budget_exhausted")
    if budget and not final.get("citations"):
        fail(f"the agent's {budget}; raise RAGENT_AGENT_TIME_BUDGET_S / RAGENT_AGENT_MAX_STEPS or ask a narrower "
             "question")


import app.cli_server as _server  # noqa: E402

app.command("api")(_server.api)
app.command("ui")(_server.ui)
app.add_typer(_server.keys_app, name="keys")
from app.cli_memory import memory_app  # noqa: E402

app.add_typer(memory_app, name="memory")

from app.cli_eval import eval_app  # noqa: E402

app.add_typer(eval_app, name="eval")

from app.cli_finetune import finetune_app  # noqa: E402

app.add_typer(finetune_app, name="finetune")


from app.cli_docs import docs_app  # noqa: E402
from app.cli_llm import llm_app  # noqa: E402

app.add_typer(docs_app, name="docs")
app.add_typer(llm_app, name="llm")


def main() -> Any:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return app()


if __name__ == "__main__":
    main()
