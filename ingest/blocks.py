"""The data model every parser produces and every later stage reads: ``Block`` (one unit of a document in
reading order: text, heading, table or image, with page and bbox), ``ParsedDoc`` (a whole file) and
``to_markdown`` (a table's cell grid as Markdown). Parsers live one per format (``ingest.pdf``,
``ingest.docx``, ``ingest.text``); ``ingest.parse`` only picks one by file type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from core.types import BBox, ChunkKind

Cells = tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Block:
    """One unit of a parsed document, in reading order."""

    text: str
    page: int | None = None
    bbox: BBox | None = None
    kind: ChunkKind = "text"
    heading_level: int = 0  # 0 = body text; 1.. = heading depth
    cells: Cells = ()  # tables: the cell grid, row by row (``text`` is its Markdown)
    caption: str = ""  # tables: their "Table N: ..." caption (every piece of the table starts with it)
    image_path: str = ""  # images: the saved file's name (in the document's files folder)
    ocr_confidence: float | None = None  # set when the text was read by OCR (0..1, see ingest.ocr.quality)


@dataclass(frozen=True)
class ParsedDoc:
    title: str
    pages: int
    blocks: list[Block] = field(default_factory=list)
    images_seen: int = 0  # images in the file before dropping tiny/decorative ones
    ocr_pages: int = 0  # pages read by OCR
    warnings: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return "\n\n".join(f"{b.caption}\n{b.text}" if b.caption else b.text for b in self.blocks)


def _cell(s: str | None) -> str:
    return re.sub(r"\s+", " ", s or "").replace("|", "\\|").strip()


def to_markdown(rows: Cells) -> str:
    """A cell grid as a GitHub Markdown table (first row = header)."""
    rows = tuple(r for r in rows if any(c.strip() for c in r))
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    norm = [[_cell(c) for c in r] + [""] * (width - len(r)) for r in rows]
    lines = ["| " + " | ".join(norm[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in norm[1:]]
    return "\n".join(lines)
