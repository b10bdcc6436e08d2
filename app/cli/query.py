"""``ragent search`` and ``ragent ask``: query a workspace, with the retriever or with the agent."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from agents.events import describe
from app.cli import common
from app.cli.common import JsonOpt, WorkspaceOpt, err, fail, guarded, out
from app.runtime import Runtime


def search(
    query: str = typer.Argument(..., help="What to look for."),
    workspace: str = WorkspaceOpt,
    k: int = typer.Option(10, "--k", "-k", help="How many hits."),
    as_json: bool = JsonOpt,
) -> None:
    """Search a workspace; print the top hits."""
    ws = workspace or common.settings().workspace
    with common.runtime() as rt:
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
    ws = workspace or common.settings().workspace
    final: dict[str, Any] = {}
    errors: list[str] = []

    drafting = [False]

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
                drafting[0] = True
            elif (line := describe(ev)) is not None:
                if drafting[0]:  # end the streamed draft's line first
                    err.print()
                    drafting[0] = False
                err.print(line, style="red" if ev["type"] == "error" else None, highlight=False)

    with common.runtime() as rt:
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
