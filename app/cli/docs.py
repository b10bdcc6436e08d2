"""``ragent ingest`` and ``ragent docs list|show|delete``: what goes into a workspace, what is in it, removing it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from app.cli import common
from app.cli.common import JsonOpt, WorkspaceOpt, err, fail, guarded, out

docs_app = typer.Typer(no_args_is_help=True, help="Documents in a workspace: list, show, delete.")
STATUS_STYLE = {"done": "green", "ingested": "green", "updated": "green", "unchanged": "dim",
                "duplicate": "yellow", "pending": "yellow", "processing": "yellow", "searchable": "cyan",
                "failed": "red"}


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


def ingest(
    paths: list[Path] = typer.Argument(..., help="Files or folders to ingest."),
    workspace: str = WorkspaceOpt,
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders."),
    enrich: bool = typer.Option(None, "--enrich/--no-enrich", help="LLM context per chunk (contextual retrieval; "
                                "needs the LLM server; slow on CPU). Default: RAGENT_ENRICH (off)."),
    as_json: bool = JsonOpt,
) -> None:
    """Ingest PDFs, Word (.docx), Markdown, HTML, text and image files (png, jpg, webp, tiff, gif: OCR + the
    vision model when set) into a workspace (unchanged files are
    skipped, changed ones replaced, a crashed run resumes). Each document is searchable once its vectors are
    written; the graph stage (entities, relations) then runs for every searchable document whose graph is
    pending, this batch's and any a crash left (RAGENT_GRAPH_STAGE=inline: vectors and graph together).
    Exits 1 if any file failed."""
    ws = workspace or common.settings().workspace
    run_ingest(expand(paths, recursive), ws, enrich, as_json)


def run_ingest(files: list[Path], ws: str, enrich: bool | None, as_json: bool) -> None:
    """The body of ``ragent ingest``: progress bars (files, pages, chunks), a summary, exit 1 on failures."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with common.runtime() as rt, Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                          TimeElapsedColumn(), console=err, transient=True, disable=as_json) as bar:
        t_files = bar.add_task("files", total=len(files))
        t_pages = bar.add_task("pages parsed", total=None)
        t_chunks = bar.add_task("chunks embedded", total=0)
        t_graph = bar.add_task("graph stage (chunks)", total=0, visible=False)

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
            elif event == "graph_chunks":
                bar.update(t_graph, total=(bar.tasks[t_graph].total or 0) + n, visible=True)
            elif event == "graphed":
                bar.advance(t_graph, n)

        def on_file(p: Path) -> None:
            bar.update(t_files, description=f"files ({p.name[:20]})")

        use_enrich = rt.settings.ingest.enrich if enrich is None else enrich
        ing = rt.ingestor(enrich=use_enrich, progress=tick, on_file=on_file)
        results = guarded(lambda: ing.ingest(files, ws))
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
def list_(workspace: str = WorkspaceOpt,
          status: str = typer.Option(None, "--status", help="Only this status (searchable: graph stage pending)."),
          as_json: bool = JsonOpt) -> None:
    """List the workspace's documents with status, version, pages and chunks. A searchable document is found
    by search; its graph stage (entities, relations) has not finished yet (`ragent ingest` finishes it)."""
    with common.runtime() as rt:
        ws = workspace or rt.settings.workspace
        recs = [r for r in rt.registry.list(ws) if status is None or status in (r.status, r.stage)]
    if as_json:
        print(json.dumps({"workspace": ws, "documents": [r.to_json() for r in recs]}))
        return
    table = Table("id", "title", "file", "status", "v", "pages", "chunks", title=f"documents in {ws!r}")
    for r in recs:
        st = STATUS_STYLE.get(r.stage, "")
        table.add_row(r.doc_id[:12], r.title[:40], Path(r.source).name, f"[{st}]{r.stage}[/]", str(r.version),
                      str(r.pages), str(len(r.chunk_ids)))
    out.print(table)


@docs_app.command("show")
def show(doc: str = typer.Argument(..., help="Document id (or prefix), path or file name."),
         workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Show one document: its registry record and its chunks by kind and page."""
    with common.runtime() as rt:
        ws = workspace or rt.settings.workspace
        rec = _find(rt, ws, doc)
        if rec is None:
            fail(f"no document {doc!r} in workspace {ws!r}; see `ragent docs list -w {ws}`")
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
           workspace: str = WorkspaceOpt, as_json: bool = JsonOpt) -> None:
    """Delete documents: their chunks, vectors, graph mentions, saved images and page renders."""
    results = []
    with common.runtime() as rt:
        ws = workspace or rt.settings.workspace
        for ref in docs:
            rec = _find(rt, ws, ref)
            ok = False
            if rec is not None:
                doc_id: str = rec.doc_id
                ok = guarded(lambda: rt.delete_document(ws, doc_id))  # noqa: B023 (called right here)
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
