"""The data model every parser produces and every later stage reads: ``Block`` (one unit of a document in
reading order: text, heading, table or image, with page and bbox), ``ParsedDoc`` (a whole file) and
``to_markdown`` (a table's cell grid as Markdown). Parsers live one per format (``ingest.pdf``,
``ingest.docx``, ``ingest.text``); ``ingest.parse`` only picks one by file type."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

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


# characters that are never text: C0/C1 controls (a symbol font's unmapped glyphs come out as \x01, \x84...) and
# the private use area (Symbol and Wingdings bullets, arrows and boxes: \uf0b7, \uf06e), and U+FFFD
JUNK_RE = re.compile(r"[ \t]*(?:[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd][ \t]*)+")


def readable(s: str) -> str:
    """``s`` without control and private-use characters (each run becomes one space; lines are trimmed)."""
    if not JUNK_RE.search(s):
        return s
    return "\n".join(ln.strip() for ln in JUNK_RE.sub(" ", s).split("\n"))


def readable_doc(doc: ParsedDoc) -> ParsedDoc:
    """Every block's text, cells and caption (and the title) made ``readable``; text blocks left empty go."""
    blocks = []
    for b in doc.blocks:
        text = readable(b.text)
        if not text.strip() and b.kind == "text":
            continue
        cells = tuple(tuple(readable(c) for c in row) for row in b.cells)
        blocks.append(replace(b, text=text, cells=cells, caption=readable(b.caption)))
    return replace(doc, title=readable(doc.title), blocks=blocks)


def _cell(s: str | None) -> str:
    return re.sub(r"\s+", " ", s or "").replace("|", "\\|").strip()


NUMBER_RE = re.compile(r"^[-+\u2212\u00b1(]?\d[\d.,]*\)?%?$")  # 0.965, 2.73, (12), 5%, -3


def _merged_header(rows: list[list[str]]) -> list[list[str]]:
    """Two header rows as one when the first holds labels spanning groups of the second's columns:
    "| | Recall | | nDCG |" over "| | @5 | @10 | @5 | @10 |" reads "| | Recall @5 | Recall @10 | nDCG @5 | nDCG @10 |".
    Each run of columns the second row fills (after the first) is cut into equal groups, one per label of the
    first row over the run, and each label must sit inside its group (a centred label lands in either of its
    columns); anything else is left as found. Without it, which column was "Recall @10" had to be worked out
    by counting."""
    if len(rows) < 3 or any(NUMBER_RE.match(c) for c in (*rows[0], *rows[1])):
        return rows
    top, sub = rows[0], rows[1]
    if not any(sub[j] and not top[j] for j in range(len(top))):
        return rows  # no label spans columns
    head = list(top)
    j = 1  # the first column is the row labels' (its header is never under a spanning label)
    while j < len(sub):
        if not sub[j]:
            j += 1
            continue
        end = j
        while end + 1 < len(sub) and sub[end + 1]:
            end += 1
        labels = [(i, top[i]) for i in range(j, end + 1) if top[i]]
        n = end - j + 1
        if labels:
            if n % len(labels):
                return rows
            g = n // len(labels)
            for k, (i, label) in enumerate(labels):
                if not j + k * g <= i < j + (k + 1) * g:
                    return rows
                head[j + k * g: j + (k + 1) * g] = [label] * g
        j = end + 1
    merged = [" ".join(x for x in (h, s) if x) for h, s in zip(head, sub, strict=True)]
    return [merged, *rows[2:]]


def _filled_down(rows: list[list[str]]) -> list[list[str]]:
    """Row labels spanning the rows of their group repeated down it ("Elser | LT | 0.40" then "| RW | 0.49"
    reads "Elser | RW | 0.49"), when the body is groups of one size (the last may be shorter), each starting
    at its label. A label centred on its group (in a table read from word positions it sits on a middle row)
    breaks that pattern, and the rows above it would have taken the group before's label: left as found."""
    body = rows[1:]
    starts = [i for i, r in enumerate(body) if r[0]]
    if not starts or starts[0] != 0 or len(starts) == len(body):
        return rows
    sizes = [b - a for a, b in zip(starts, [*starts[1:], len(body)], strict=True)]
    if len(set(sizes[:-1])) > 1 or sizes[-1] > sizes[0] or sizes[0] < 2:
        return rows
    out = [rows[0]] + [list(r) for r in body]
    for i in range(2, len(out)):
        if not out[i][0] and any(out[i][1:]):
            out[i][0] = out[i - 1][0]
    return out


def to_markdown(rows: Cells) -> str:
    """A cell grid as a GitHub Markdown table (first row = header), as a reader takes it in: a two-row header
    with spanning labels merged into one row, row labels repeated down groups of equal size (``Block.cells``
    keeps the grid as found)."""
    rows = tuple(r for r in rows if any(c.strip() for c in r))
    if not rows:
        return ""
    width = max(len(r) for r in rows)
    norm = _filled_down(_merged_header([[_cell(c) for c in r] + [""] * (width - len(r)) for r in rows]))
    lines = ["| " + " | ".join(norm[0]) + " |", "|" + "---|" * width]
    lines += ["| " + " | ".join(r) + " |" for r in norm[1:]]
    return "\n".join(lines)
