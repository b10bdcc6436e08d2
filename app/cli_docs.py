"""``ragent ingest`` (its body) and ``ragent docs list|show|delete``: what is in a workspace, and removing it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

docs_app = typer.Typer(no_args_is_help=True, help="Documents in a workspace: list, show, delete.")
out = Console()
err = Console(stderr=True)

WsOpt = typer.Option(None, "--workspace", "-w", help="Workspace (default: RAGENT_WORKSPACE).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")
STATUS_STYLE = {"done": "green", "ingested": "green", "updated": "green", "unchanged": "dim",
                "duplicate": "yellow", "pending": "yellow", "processing": "yellow", "failed": "red"}


def build_ingestor(rt: Any, *, enrich: bool, progress: Any = None, on_file: Any = None) -> Any:
    """An Ingestor wired from the runtime: per-workspace embedder, settings limits, optional enrichment."""
    from ingest.enrich import ContextCache, Enricher
    from ingest.pipeline import Ingestor
    from retrieval.factory import build_writer

    s = rt.settings
    enricher = None
    if enrich:
        enricher = Enricher(rt.llm, ContextCache(s.home / "enrich_cache.db"),
                            model_key=f"{s.llm_model}:{s.llm_served_name}", doc_chars=s.enrich_doc_chars,
                            concurrency=s.enrich_concurrency)
    return Ingestor(rt.index, rt.registry, rt.retriever.embedder_for, home=s.home, chunk_chars=s.chunk_chars,
                    max_file_mb=s.max_file_mb, max_pages=s.max_pages, split_mode=s.split_mode,
                    enricher=enricher, progress=progress, on_file=on_file,
                    index_writer=build_writer(s.retrieval, rt.retriever, rt.llm))


def run_ingest(files: list[Path], ws: str, enrich: bool | None, as_json: bool) -> None:
    """The body of ``ragent ingest``: progress bars (files, pages, chunks), a summary, exit 1 on failures."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from app import cli

    with cli.runtime() as rt, Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                       TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
        t_files = bar.add_task("files", total=len(files))
        t_pages = bar.add_task("pages parsed", total=None)
        t_chunks = bar.add_task("chunks embedded", total=0)

        def tick(event: str, n: int) -> None:
            if event == "file":
                bar.advance(t_files, n)
            elif event == "pages":
                bar.advance(t_pages, n)
            elif event == "chunks":
                total = bar.tasks[t_chunks].total or 0
                bar.update(t_chunks, total=total + n)
            elif event == "embedded":
                bar.advance(t_chunks, n)

        def on_file(p: Path) -> None:
            bar.update(t_files, description=f"files ({p.name[:20]})")

        use_enrich = rt.settings.enrich if enrich is None else enrich
        ing = build_ingestor(rt, enrich=use_enrich, progress=tick, on_file=on_file)
        results = cli.guarded(lambda: ing.ingest(files, ws))
        if ing.enricher is not None:
            ing.enricher.cache.close()
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        print(json.dumps({"workspace": ws, "files": [r.to_json() for r in results], "failed": len(failed),
                          "summary": dict(Counter(r.status for r in results))}))
    else:
        table = Table("file", "status", "pages", "chunks", "tables", "images", "s", "note",
                      title=f"ingest into {ws!r}")
        for r in results:
            st = STATUS_STYLE.get(r.status, "")
            table.add_row(Path(r.path).name, f"[{st}]{r.status}[/]", str(r.pages), str(r.chunks), str(r.tables),
                          str(r.images), f"{r.seconds:.1f}", r.error or r.note)
        out.print(table)
        counts = Counter(r.status for r in results)
        pages = sum(r.pages for r in results if r.status in ("ingested", "updated"))
        secs = sum(r.seconds for r in results) or 1e-9
        out.print(", ".join(f"{n} {k}" for k, n in counts.items()) + f"; {pages} pages in {secs:.1f} s "
                  f"({pages / secs:.1f} pages/s)", highlight=False)
    if failed or not results:
        raise typer.Exit(1)


def _find(rt: Any, ws: str, ref: str) -> Any:
    """A document by id, id prefix (>= 6 chars), source path or file name."""
    recs = rt.registry.list(ws)
    path = str(Path(ref).resolve()) if Path(ref).exists() else None
    hits = [r for r in recs if r.doc_id == ref or r.source == path or Path(r.source).name == ref
            or (len(ref) >= 6 and r.doc_id.startswith(ref))]
    if len(hits) > 1:
        names = ", ".join(f"{r.doc_id[:10]} ({Path(r.source).name})" for r in hits[:5])
        raise typer.BadParameter(f"{ref!r} matches {len(hits)} documents: {names}; give a longer id")
    return hits[0] if hits else None


@docs_app.command("list")
def list_(workspace: str = WsOpt, status: str = typer.Option(None, "--status", help="Only this status."),
          as_json: bool = JsonOpt) -> None:
    """List the workspace's documents with status, version, pages and chunks."""
    from app import cli

    with cli.runtime() as rt:
        ws = workspace or rt.settings.workspace
        recs = [r for r in rt.registry.list(ws) if status is None or r.status == status]
    if as_json:
        print(json.dumps({"workspace": ws, "documents": [r.to_json() for r in recs]}))
        return
    table = Table("id", "title", "file", "status", "v", "pages", "chunks", title=f"documents in {ws!r}")
    for r in recs:
        st = STATUS_STYLE.get(r.status, "")
        table.add_row(r.doc_id[:12], r.title[:40], Path(r.source).name, f"[{st}]{r.status}[/]", str(r.version),
                      str(r.pages), str(len(r.chunk_ids)))
    out.print(table)


@docs_app.command("show")
def show(doc: str = typer.Argument(..., help="Document id (or prefix), path or file name."),
         workspace: str = WsOpt, as_json: bool = JsonOpt) -> None:
    """Show one document: its registry record and its chunks by kind and page."""
    from app import cli

    with cli.runtime() as rt:
        ws = workspace or rt.settings.workspace
        rec = _find(rt, ws, doc)
        if rec is None:
            cli.fail(f"no document {doc!r} in workspace {ws!r}; see `ragent docs list -w {ws}`")
        points = rt.index.scroll(ws, rec.doc_id)
    kinds = Counter(p.payload.get("kind", "text") for p in points)
    pages = sorted({p.payload.get("page") for p in points if p.payload.get("page")})
    data = {**rec.to_json(), "chunks_indexed": len(points), "kinds": dict(kinds), "pages_with_chunks": len(pages)}
    if as_json:
        print(json.dumps(data))
        return
    for k, v in data.items():
        out.print(f"[bold]{k}[/]: {v}", highlight=False)


@docs_app.command("delete")
def delete(docs: list[str] = typer.Argument(..., help="Document ids (or prefixes), paths or file names."),
           workspace: str = WsOpt, as_json: bool = JsonOpt) -> None:
    """Delete documents: their chunks, vectors, graph mentions, saved images and page renders."""
    from app import cli

    results = []
    with cli.runtime() as rt:
        ws = workspace or rt.settings.workspace
        ing = build_ingestor(rt, enrich=False)
        for ref in docs:
            rec = _find(rt, ws, ref)
            ok = False
            if rec is not None:
                doc_id: str = rec.doc_id
                ok = cli.guarded(lambda: bool(ing.delete(ws, doc_id)))  # noqa: B023 (called right here)
            results.append({"doc": ref, "doc_id": rec.doc_id if rec else None, "deleted": bool(ok),
                            "chunks": len(rec.chunk_ids) if rec else 0})
    missing = [r for r in results if not r["deleted"]]
    if as_json:
        print(json.dumps({"workspace": ws, "results": results}))
    else:
        for r in results:
            msg = f"deleted {r['doc']} ({r['chunks']} chunks)" if r["deleted"] else f"[red]not found: {r['doc']}[/]"
            out.print(msg, highlight=False)
    if missing:
        raise typer.Exit(1)
