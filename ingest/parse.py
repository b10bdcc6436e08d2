"""Parse files into typed blocks (text with page + bbox, tables, images): picks the parser by file type.
PDF via PyMuPDF (``ingest.pdf``), DOCX in ``ingest.docx``, Markdown, HTML and plain text in ``ingest.text``, image
files (PNG, JPEG, WebP, TIFF, GIF) in ``ingest.image_file``; the blocks themselves are defined in ``ingest.blocks``.
Every failure is an ``IngestError`` that says what to do."""

from __future__ import annotations

from pathlib import Path

from core.errors import IngestError
from ingest.blocks import ParsedDoc, readable_doc
from ingest.image_file import IMAGE_SUFFIXES
from ingest.ocr import OcrConfig

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm"}
SUPPORTED = {".pdf", ".docx", *TEXT_SUFFIXES, *IMAGE_SUFFIXES}
PAGED = {".pdf", *(IMAGE_SUFFIXES - {".webp"})}  # files PyMuPDF opens as pages (the page images' route renders them)
# The version of what parsing + splitting make of a file. Bump it with any change under ingest/ that alters the
# blocks or chunks a file gives: the registry keeps it (``Ingestor.recipe``) and a file ingested under another
# version is parsed again on the next ingest, though its bytes are unchanged (no stale chunks after an upgrade).
PARSER_VERSION = 4  # 4: control and private-use characters dropped (blocks.readable); tables in scans


def parse_file(path: Path, *, max_pages: int = 3000, files_dir: Path | None = None,
               ocr: OcrConfig | None = None) -> ParsedDoc:
    """Parse one file. ``files_dir`` is where a PDF's images are saved (none saved when None); ``ocr`` says how
    scanned pages and images with text are read (default: auto). Control and private-use characters (a symbol
    font's glyphs) are dropped from the text (``blocks.readable``)."""
    return readable_doc(_parse(path, max_pages=max_pages, files_dir=files_dir, ocr=ocr))


def _parse(path: Path, *, max_pages: int, files_dir: Path | None, ocr: OcrConfig | None) -> ParsedDoc:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from ingest.pdf import parse_pdf

        return parse_pdf(path, max_pages=max_pages, files_dir=files_dir, ocr=ocr)
    if suffix == ".docx":
        from ingest.docx import parse_docx

        return parse_docx(path, files_dir=files_dir, ocr=ocr)
    if suffix in TEXT_SUFFIXES:
        from ingest.text import parse_text

        return parse_text(path, files_dir=files_dir, ocr=ocr)
    if suffix in IMAGE_SUFFIXES:
        from ingest.image_file import parse_image

        return parse_image(path, files_dir=files_dir, ocr=ocr, max_pages=max_pages)
    raise IngestError(
        f"{path.name}: unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(SUPPORTED))}"
    )
