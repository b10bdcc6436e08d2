"""Parse files into typed blocks (text with page + bbox). PDF via PyMuPDF; Markdown, HTML, plain text."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import IngestError
from core.types import BBox, ChunkKind

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".html", ".htm"}
SUPPORTED = {".pdf", *TEXT_SUFFIXES}


@dataclass(frozen=True)
class Block:
    text: str
    page: int | None = None
    bbox: BBox | None = None
    kind: ChunkKind = "text"
    heading_level: int = 0  # 0 = body text; 1.. = heading depth


@dataclass(frozen=True)
class ParsedDoc:
    title: str
    pages: int
    blocks: list[Block] = field(default_factory=list)


def parse_file(path: Path, *, max_pages: int = 3000) -> ParsedDoc:
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        return parse_pdf(path, max_pages=max_pages)
    if suffix in TEXT_SUFFIXES:
        return parse_text(path)
    raise IngestError(
        f"{path.name}: unsupported file type {suffix or '(none)'}; supported: {', '.join(sorted(SUPPORTED))}"
    )


def parse_pdf(path: Path, *, max_pages: int = 3000) -> ParsedDoc:
    import pymupdf

    try:
        doc = pymupdf.open(path)
    except (pymupdf.FileDataError, RuntimeError, ValueError) as e:
        raise IngestError(f"{path.name}: not a readable PDF (corrupt, truncated or another format): {e}") from e
    with doc:
        if doc.needs_pass:
            raise IngestError(f"{path.name}: the PDF is encrypted; decrypt it (e.g. `qpdf --decrypt`) first")
        if doc.page_count > max_pages:
            raise IngestError(
                f"{path.name}: {doc.page_count} pages is over the limit of {max_pages}; "
                "raise RAGENT_MAX_PAGES or split the file"
            )
        blocks: list[Block] = []
        for page in doc.pages():
            for x0, y0, x1, y1, text, _no, btype in page.get_text("blocks", sort=True):
                text = re.sub(r"[ \t]+", " ", text).strip()
                if btype == 0 and text:
                    blocks.append(Block(text=text, page=page.number + 1, bbox=(x0, y0, x1, y1)))
        title = (doc.metadata or {}).get("title") or path.stem
        if not blocks:
            raise IngestError(
                f"{path.name}: no extractable text in {doc.page_count} pages (a scanned PDF?); "
                "no OCR model is available offline: run OCR (e.g. ocrmypdf) first"
            )
        return ParsedDoc(title=title, pages=doc.page_count, blocks=blocks)


def parse_text(path: Path) -> ParsedDoc:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise IngestError(f"{path.name}: not UTF-8 text ({e}); convert it to UTF-8 first") from e
    if path.suffix.lower() in {".html", ".htm"}:
        text = re.sub(r"(?is)<(script|style).*?</\1>", " ", text)
        text = re.sub(r"(?s)<[^>]+>", " ", text)
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    if not paras:
        raise IngestError(f"{path.name}: the file has no text")
    blocks = []
    for p in paras:
        m = re.match(r"^(#{1,6})\s+(.*)", p)
        blocks.append(Block(text=m.group(2) if m else p, heading_level=len(m.group(1)) if m else 0))
    return ParsedDoc(title=path.stem, pages=0, blocks=blocks)
