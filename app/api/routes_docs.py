"""Documents (upload -> background ingest job, list, get, delete, page images), jobs and search."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, Response, UploadFile
from fastapi import Path as PathParam

from app.api import uploads
from app.api.deps import Caller, State, Workspace
from app.api.problems import Problem
from app.api.redact import no_paths
from app.api.schemas import DocumentList, DocumentOut, JobOut, SearchRequest, SearchResponse
from retrieval.registry import DocRecord

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["documents"])
DocId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{8,64}$", description="Document id (hex).")]
ChunkId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$", description="Chunk id (32 hex characters).")]
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
PAGE_DPI = 110  # ingest.pdf.render_page's default: renders at this dpi are cached under RAGENT_HOME/pages
MAX_PAGE_PIXELS = 25_000_000  # a page image never has more pixels (25 MP ~ 75 MB RGB): the dpi is lowered


MAX_NAME = 150


def safe_name(name: str) -> str:
    """A file name safe to store: one path component of letters, digits, ``._ -``, at most 150 characters; a
    long name is shortened before its extension, which decides the parser."""
    base = _UNSAFE.sub("_", Path(name.replace("\\", "/")).name).strip(" .")
    if len(base) > MAX_NAME:
        suffix = Path(base).suffix if len(Path(base).suffix) <= 16 else ""
        base = base[: MAX_NAME - len(suffix)].rstrip(" .") + suffix
    return base or "upload"


UPLOAD_TYPES = "PDF, DOCX, MD, HTML, TXT or an image (PNG, JPEG, WebP, TIFF, GIF)"


@router.post("/workspaces/{ws}/documents", status_code=202, response_model=JobOut,
             summary="Upload files; they are ingested in the background (poll GET /v1/jobs/{id})")
async def upload(st: State, ws: Workspace, files: Annotated[list[UploadFile], File(description=UPLOAD_TYPES)]
                 ) -> JobOut:
    from ingest.parse import SUPPORTED

    if not files:
        raise Problem(400, "no files in the upload: send one or more multipart fields named 'files'")
    folder = st.settings.home / "uploads" / ws
    saved: list[uploads.Staged] = []
    for f in files:
        name = safe_name(f.filename or "upload")
        if Path(name).suffix.lower() not in SUPPORTED:
            raise Problem(415, f"{name}: unsupported file type; supported: {', '.join(sorted(SUPPORTED))}")
        saved.append(await uploads.save(f, folder, name, st.settings.api_max_upload_mb))
    job = st.jobs.submit(ws, [s.path for s in saved], [s.hold for s in saved])
    st.telemetry.jobs.inc()
    return JobOut(**job.to_json())


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"],
            summary="A job's status and progress (ingest or finetune)")
def get_job(st: State, caller: Caller, job_id: Annotated[str, PathParam(max_length=64)]) -> JobOut:
    job = st.jobs.get(job_id)
    if job is None or not caller.can(job.workspace):
        raise Problem(404, f"no job {job_id!r}; finished jobs are kept for a while, then pruned")
    return JobOut(**job.to_json())


@router.get("/workspaces/{ws}/documents", response_model=DocumentList)
def list_documents(st: State, ws: Workspace) -> DocumentList:
    return DocumentList(workspace=ws, documents=[_out(r) for r in st.runtime.registry.list(ws)])


def _out(rec: DocRecord) -> DocumentOut:
    """A registry record as the API shows it: its source and error name the file, not the server's folders."""
    d = rec.to_json()
    d["source"] = Path(rec.source).name
    d["error"] = no_paths(rec.error, {rec.source: Path(rec.source).name})
    return DocumentOut.model_validate(d)


def _doc(st: State, ws: str, doc_id: str):  # type: ignore[no-untyped-def]
    rec = st.runtime.registry.get(ws, doc_id)
    if rec is None:
        raise Problem(404, f"no document {doc_id!r} in workspace {ws!r}; GET /v1/workspaces/{ws}/documents lists them")
    return rec


@router.get("/workspaces/{ws}/documents/{doc_id}", response_model=DocumentOut)
def get_document(st: State, ws: Workspace, doc_id: DocId) -> DocumentOut:
    return _out(_doc(st, ws, doc_id))


@router.delete("/workspaces/{ws}/documents/{doc_id}", status_code=204)
def delete_document(st: State, ws: Workspace, doc_id: DocId) -> Response:
    rec = _doc(st, ws, doc_id)
    st.runtime.delete_document(ws, doc_id)
    src = Path(rec.source)
    home = (st.settings.home / "uploads").resolve()
    if src.is_file() and home in src.resolve().parents:
        src.unlink(missing_ok=True)
    uploads.prune(st.settings.home, ws, st.runtime.registry)
    return Response(status_code=204)


def page_zoom(width_pt: float, height_pt: float, dpi: int, max_pixels: int) -> float:
    """Pixels per PDF point: ``dpi / 72``, lowered so the image stays within ``max_pixels``.

    Example: a 14,400 pt square page at 300 dpi would be 60,000 x 60,000 px (3.6 GP, ~10 GB); with a 25 MP cap
    the zoom is sqrt(25e6 / 14400**2) = 0.347 (25 dpi), a 5,000 x 5,000 px image.
    """
    zoom = dpi / 72
    area = max(width_pt, 1.0) * max(height_pt, 1.0)
    if area * zoom * zoom > max_pixels:
        zoom = math.sqrt(max_pixels / area) * 0.999  # under the cap after rounding to whole pixels
    return zoom


def render_png(home: Path, doc_id: str, source: Path, page: int, dpi: int) -> tuple[bytes, float]:
    """The page as PNG and its pixels per PDF point: cached under RAGENT_HOME/pages/<doc_id>/ at the default dpi
    (where ingest.pdf.render_page caches it; ingest drops the folder with the version), a fresh render at any
    other dpi or when the pixel cap lowers the zoom."""
    import pymupdf

    with pymupdf.open(source) as pdf:
        if not 1 <= page <= pdf.page_count:
            raise Problem(404, f"page {page} is out of range: the document has {pdf.page_count} pages")
        p = pdf[page - 1]
        zoom = page_zoom(p.rect.width, p.rect.height, dpi, MAX_PAGE_PIXELS)
        if dpi != PAGE_DPI or zoom != dpi / 72:
            return bytes(p.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom)).tobytes("png")), zoom
        dest = home / "pages" / doc_id / f"{page}.png"
        if dest.is_file():
            return dest.read_bytes(), zoom
        data = bytes(p.get_pixmap(dpi=dpi).tobytes("png"))
    cache_write(dest, data)
    return data, zoom


def cache_write(dest: Path, data: bytes) -> None:
    """Write ``dest`` atomically under a temporary name of its own, so concurrent renders of one page never
    share a file (each renames a whole PNG into place; the last one wins). Best effort: a cache that cannot be
    written (the version's folder dropped meanwhile) is only logged."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    except OSError as e:
        logger.warning("could not cache the page image %s: %s", dest, e)
    finally:
        tmp.unlink(missing_ok=True)


@router.get("/workspaces/{ws}/documents/{doc_id}/pages/{page}.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}}},
            summary="A PDF page as PNG (bbox coordinates are PDF points: multiply by X-Page-Scale for pixels; "
                    "dpi/72 unless the 25 MP pixel cap lowered it)")
async def page_image(st: State, ws: Workspace, doc_id: DocId, page: Annotated[int, PathParam(ge=1, le=100000)],
                     dpi: Annotated[int, Query(ge=36, le=300)] = PAGE_DPI) -> Response:
    rec = _doc(st, ws, doc_id)
    src = uploads.source_of(st.settings.home, rec)  # this version's bytes, whatever a later upload did to the name
    from ingest.parse import PAGED

    if src.suffix.lower() not in PAGED:  # PDFs, and image files (PyMuPDF opens them as one page)
        raise Problem(404, f"{rec.title or rec.source} has no page images (PDFs and PNG, JPEG, TIFF, GIF files have)")
    if not src.is_file():
        raise Problem(404, f"the source file {src.name} is gone; re-upload the document to see its pages")
    data, scale = await asyncio.to_thread(render_png, st.settings.home, doc_id, src, page, dpi)
    return Response(data, media_type="image/png", headers={"Cache-Control": "private, max-age=3600",
                                                          "X-Page-Scale": f"{scale:.6f}"})


@router.get("/workspaces/{ws}/images/{chunk_id}", response_class=Response,
            responses={200: {"content": {"image/png": {}}}},
            summary="The image of an image chunk (a search hit or citation with kind 'image'), as PNG")
def chunk_image(st: State, ws: Workspace, chunk_id: ChunkId) -> Response:
    found = st.runtime.index.get(ws, [chunk_id]) if st.runtime.index.exists(ws) else []
    if not found:
        raise Problem(404, f"no chunk {chunk_id!r} in workspace {ws!r}")
    chunk = found[0]
    if chunk.kind != "image" or not chunk.image:
        raise Problem(404, f"chunk {chunk_id!r} is a {chunk.kind} chunk with no image; its page image is at "
                           f"/v1/workspaces/{ws}/documents/{chunk.doc_id}/pages/{chunk.page or 1}.png")
    folder = (st.settings.home / "files" / chunk.doc_id).resolve()
    path = (folder / chunk.image).resolve()
    if path.parent != folder or not path.is_file():
        raise Problem(404, f"the image file of chunk {chunk_id!r} is gone; re-ingest its document")
    return Response(path.read_bytes(), media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/workspaces/{ws}/search", response_model=SearchResponse, tags=["retrieval"])
async def search(st: State, ws: Workspace, req: SearchRequest) -> SearchResponse:
    hits = await st.runtime.retriever.search(ws, req.query, k=req.k, rerank=req.rerank)
    return SearchResponse(query=req.query, workspace=ws, hits=[h.to_json() for h in hits])  # type: ignore[misc]
