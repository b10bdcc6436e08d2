"""Documents (upload -> background ingest job, list, get, delete, page images), jobs and search."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile
from fastapi import Path as PathParam

from app.api import uploads
from app.api.deps import Caller, State, Workspace
from app.api.problems import Problem
from app.api.schemas import DocumentList, DocumentOut, JobOut, SearchRequest, SearchResponse

router = APIRouter(prefix="/v1", tags=["documents"])
DocId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{8,64}$", description="Document id (hex).")]
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
PAGE_DPI = 110  # ingest.pdf.render_page's default: those renders are cached under RAGENT_HOME/pages


def safe_name(name: str) -> str:
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).strip(" .")
    return base[:150] or "upload"


@router.post("/workspaces/{ws}/documents", status_code=202, response_model=JobOut,
             summary="Upload files; they are ingested in the background (poll GET /v1/jobs/{id})")
async def upload(st: State, ws: Workspace, files: Annotated[list[UploadFile], File(description="PDF/MD/HTML/TXT")]
                 ) -> JobOut:
    from ingest.parse import SUPPORTED

    if not files:
        raise Problem(400, "no files in the upload: send one or more multipart fields named 'files'")
    folder = st.settings.home / "uploads" / ws
    saved: list[Path] = []
    for f in files:
        name = safe_name(f.filename or "upload")
        if Path(name).suffix.lower() not in SUPPORTED:
            raise Problem(415, f"{name}: unsupported file type; supported: {', '.join(sorted(SUPPORTED))}")
        saved.append(await uploads.save(f, folder, name, st.settings.api_max_upload_mb))
    job = st.jobs.submit(ws, saved)
    st.telemetry.jobs.inc()
    return JobOut(**job.to_json())


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"],
            summary="A job's status and progress (ingest or finetune)")
def get_job(st: State, caller: Caller, job_id: Annotated[str, PathParam(max_length=64)]) -> JobOut:
    job = st.jobs.get(job_id)
    if job is None or not caller.can(job.workspace):
        raise Problem(404, f"no job {job_id!r}: jobs are kept in memory until the API restarts")
    return JobOut(**job.to_json())


@router.get("/workspaces/{ws}/documents", response_model=DocumentList)
def list_documents(st: State, ws: Workspace) -> DocumentList:
    docs = [DocumentOut(**r.to_json()) for r in st.runtime.registry.list(ws)]  # type: ignore[arg-type]
    return DocumentList(workspace=ws, documents=docs)


def _doc(st: State, ws: str, doc_id: str):  # type: ignore[no-untyped-def]
    rec = st.runtime.registry.get(ws, doc_id)
    if rec is None:
        raise Problem(404, f"no document {doc_id!r} in workspace {ws!r}; GET /v1/workspaces/{ws}/documents lists them")
    return rec


@router.get("/workspaces/{ws}/documents/{doc_id}", response_model=DocumentOut)
def get_document(st: State, ws: Workspace, doc_id: DocId) -> DocumentOut:
    return DocumentOut(**_doc(st, ws, doc_id).to_json())


@router.delete("/workspaces/{ws}/documents/{doc_id}", status_code=204)
def delete_document(st: State, ws: Workspace, doc_id: DocId) -> Response:
    from app.cli_docs import build_ingestor

    rec = _doc(st, ws, doc_id)
    build_ingestor(st.runtime, enrich=False).delete(ws, doc_id)
    src = Path(rec.source)
    home = (st.settings.home / "uploads").resolve()
    if src.is_file() and home in src.resolve().parents:
        src.unlink(missing_ok=True)
    uploads.prune(st.settings.home, ws, st.runtime.registry)
    return Response(status_code=204)


def render_png(home: Path, doc_id: str, source: Path, page: int, dpi: int) -> bytes:
    """The page as PNG: ingest's cached render at its default dpi, a fresh render at any other."""
    import pymupdf

    from ingest.pdf import render_page

    with pymupdf.open(source) as pdf:
        if not 1 <= page <= pdf.page_count:
            raise Problem(404, f"page {page} is out of range: the document has {pdf.page_count} pages")
        if dpi != PAGE_DPI:
            return bytes(pdf[page - 1].get_pixmap(dpi=dpi).tobytes("png"))
    return render_page(home, doc_id, source, page, dpi).read_bytes()


@router.get("/workspaces/{ws}/documents/{doc_id}/pages/{page}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}},
            summary="A PDF page as PNG (bbox coordinates are PDF points: multiply by dpi/72 for pixels)")
async def page_image(st: State, ws: Workspace, doc_id: DocId, page: Annotated[int, PathParam(ge=1, le=100000)],
                     dpi: Annotated[int, Query(ge=36, le=300)] = PAGE_DPI) -> Response:
    rec = _doc(st, ws, doc_id)
    src = uploads.source_of(st.settings.home, rec)  # this version's bytes, whatever a later upload did to the name
    if src.suffix.lower() != ".pdf":
        raise Problem(404, f"{rec.title or rec.source} is not a PDF: it has no page images")
    if not src.is_file():
        raise Problem(404, f"the source file {src.name} is gone; re-upload the document to see its pages")
    data = await asyncio.to_thread(render_png, st.settings.home, doc_id, src, page, dpi)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600",
                                                          "X-Page-Scale": f"{dpi / 72:.6f}"})


@router.post("/workspaces/{ws}/search", response_model=SearchResponse, tags=["retrieval"])
async def search(st: State, ws: Workspace, req: SearchRequest) -> SearchResponse:
    hits = await st.runtime.retriever.search(ws, req.query, k=req.k, rerank=req.rerank)
    return SearchResponse(query=req.query, workspace=ws, hits=[h.to_json() for h in hits])  # type: ignore[misc]
