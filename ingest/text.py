"""Parse Markdown, HTML and plain text files into ``Block``s (headings, paragraphs, tables with their cell
grid; HTML ``<img>`` as image blocks: alt/title text, and for inline ``data:`` images the saved image and its OCR
text; remote images are never fetched)."""

from __future__ import annotations

import base64
import binascii
import html
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

from core.errors import IngestError
from ingest.blocks import Block, ParsedDoc, to_markdown
from ingest.images import image_block
from ingest.ocr import OcrConfig

DATA_IMG = re.compile(r"\Adata:image/[a-z+.-]+;base64,", re.I)
MAX_HTML_IMAGES = 500


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise IngestError(f"{path.name}: looks binary, not {path.suffix} text; check the file type")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise IngestError(f"{path.name}: not UTF-8 text ({e}); convert it to UTF-8 first") from e


def parse_text(path: Path, files_dir: Path | None = None, ocr: OcrConfig | None = None) -> ParsedDoc:
    text = _decode(path)
    suffix = path.suffix.lower()
    warnings: list[str] = []
    if suffix in {".html", ".htm"}:
        title, blocks = parse_html(text, files_dir, ocr or OcrConfig(), warnings)
    elif suffix in {".md", ".markdown"}:
        title, blocks = "", parse_markdown(text)
    else:
        title, blocks = "", [Block(text=p) for p in _paragraphs(text)]
    if not blocks:
        raise IngestError(f"{path.name}: the file has no text")
    if not title:
        title = next((b.text for b in blocks if b.heading_level == 1), path.stem)
    return ParsedDoc(title=title[:200], pages=0, blocks=blocks, images_seen=sum(b.kind == "image" for b in blocks),
                     warnings=tuple(warnings))


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


_MD_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _md_row(line: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in line.strip().strip("|").split("|"))


def parse_markdown(text: str) -> list[Block]:
    """ATX headings (``#``..``######``), pipe tables (kept whole, with their cell grid), paragraphs;
    fenced code blocks stay one block."""
    blocks: list[Block] = []
    lines = text.splitlines()
    para: list[str] = []

    def flush() -> None:
        if para:
            t = "\n".join(para).strip()
            if t:
                blocks.append(Block(text=t))
            para.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            flush()
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith("```"):
                j += 1
            blocks.append(Block(text="\n".join(lines[i : j + 1]).strip()))
            i = j + 1
            continue
        m = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if m:
            flush()
            blocks.append(Block(text=m.group(2), heading_level=len(m.group(1))))
            i += 1
            continue
        if "|" in line and i + 1 < len(lines) and _MD_TABLE_SEP.match(lines[i + 1]):
            flush()
            j = i + 2
            while j < len(lines) and "|" in lines[j] and lines[j].strip():
                j += 1
            rows = tuple(_md_row(r) for r in [lines[i], *lines[i + 2 : j]])
            blocks.append(Block(text=to_markdown(rows), kind="table", cells=rows))
            i = j
            continue
        if not line.strip():
            flush()
        else:
            para.append(line)
        i += 1
    flush()
    return blocks


class _HTMLBlocks(HTMLParser):
    """Headings h1-h6, paragraphs/list items, tables (-> Markdown + cells); script/style dropped."""

    BLOCK: ClassVar[set[str]] = {
        "p", "div", "li", "pre", "blockquote", "section", "article", "br", "dd", "dt", "figcaption"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.title = ""
        self._buf: list[str] = []
        self._skip = 0
        self._heading = 0
        self._in_title = False
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.images: list[tuple[int, str, str]] = []  # (index in blocks, alt text, src) of each <img>

    def _flush(self) -> None:
        t = re.sub(r"\s+", " ", "".join(self._buf)).strip()
        self._buf = []
        if t:
            self.blocks.append(Block(text=t, heading_level=self._heading))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style", "noscript", "template"}:
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = int(tag[1])
        elif tag == "table":
            self._flush()
            self._rows = []
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in {"td", "th"} and self._rows is not None:
            self._cell = []
        elif tag == "img" and not self._skip and self._rows is None and len(self.images) < MAX_HTML_IMAGES:
            a = {k: v or "" for k, v in attrs}
            alt = " ".join(x.strip() for x in (a.get("alt", ""), a.get("title", "")) if x.strip())
            if alt or DATA_IMG.match(a.get("src", "")):
                self._flush()
                self.images.append((len(self.blocks), alt, a.get("src", "")))
                self.blocks.append(Block(text=f"Image: {alt}" if alt else "Image", kind="image"))
        elif tag in self.BLOCK and self._rows is None:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style", "noscript", "template"}:
            self._skip = max(0, self._skip - 1)
        elif tag == "title":
            self._in_title = False
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = 0
        elif tag in {"td", "th"} and self._rows is not None and self._cell is not None:
            if not self._rows:
                self._rows.append([])
            self._rows[-1].append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "table" and self._rows is not None:
            cells = tuple(tuple(r) for r in self._rows if r)
            self._rows = None
            if cells:
                self.blocks.append(Block(text=to_markdown(cells), kind="table", cells=cells))
        elif tag in self.BLOCK and self._rows is None:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.title += data
        elif self._cell is not None:
            self._cell.append(data)
        elif self._rows is None:
            self._buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def parse_html(text: str, files_dir: Path | None = None, ocr: OcrConfig | None = None,
               warnings: list[str] | None = None) -> tuple[str, list[Block]]:
    p = _HTMLBlocks()
    p.feed(text)
    p.close()
    blocks = p.blocks
    for n, (i, alt, src) in enumerate(p.images, start=1):
        nearby = next((b.text for b in reversed(blocks[:i]) if b.kind == "text"), "")
        found: Block | None = None
        if DATA_IMG.match(src):
            try:
                data = base64.b64decode(src.split(",", 1)[1], validate=False)
            except (binascii.Error, ValueError):
                data = b""
            if data:
                found = image_block(data, f"html-img{n}", alt, nearby, files_dir, ocr or OcrConfig(),
                                    warnings if warnings is not None else [])
        if found is None and alt:
            found = Block(text="\n".join(x for x in (f"Image: {alt}", nearby[:400]) if x), kind="image")
        blocks[i] = found or Block(text="", kind="image")
    return html.unescape(p.title).strip(), [b for b in blocks if b.text]
