"""DOCX (Word 2007+) parsing with the standard library: the package is a zip whose ``word/document.xml`` holds
the body. Paragraphs keep their heading level (``Heading N`` / ``Title`` styles or an outline level), tables
become Markdown plus their cell grid, in reading order. DOCX has no fixed pages, so blocks carry no page."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from core.errors import IngestError
from ingest.blocks import Block, ParsedDoc, to_markdown

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
DC_TITLE = "{http://purl.org/dc/elements/1.1/}title"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # a legacy .doc, or an encrypted .docx (both are OLE compound files)
_HEADING = re.compile(r"^heading\s*(\d)$", re.I)
MAX_XML_BYTES = 200 * 2**20


def _text(el: ET.Element) -> str:
    parts: list[str] = []
    for node in el.iter():
        if node.tag == f"{W}t" and node.text:
            parts.append(node.text)
        elif node.tag == f"{W}tab":
            parts.append("\t")
        elif node.tag in (f"{W}br", f"{W}cr"):
            parts.append("\n")
    return "".join(parts).strip()


def _level(p: ET.Element) -> int:
    ppr = p.find(f"{W}pPr")
    if ppr is None:
        return 0
    style = ppr.find(f"{W}pStyle")
    name = (style.get(f"{W}val") or "") if style is not None else ""
    if name.lower() == "title":
        return 1
    m = _HEADING.match(name)
    if m:
        return int(m.group(1))
    outline = ppr.find(f"{W}outlineLvl")
    if outline is not None and (outline.get(f"{W}val") or "").isdigit():
        return int(outline.get(f"{W}val") or 0) + 1
    return 0


def _table(tbl: ET.Element) -> Block | None:
    rows = tuple(
        tuple(" ".join(_text(p) for p in tc.iter(f"{W}p")).strip() for tc in tr.findall(f"{W}tc"))
        for tr in tbl.findall(f"{W}tr")
    )
    md = to_markdown(rows)
    return Block(text=md, kind="table", cells=rows) if md else None


def _read(z: zipfile.ZipFile, name: str) -> bytes:
    info = z.getinfo(name)
    if info.file_size > MAX_XML_BYTES:  # a zip bomb, or a document far beyond anything sensible
        raise IngestError(f"{name} in the DOCX unpacks to {info.file_size / 2**20:.0f} MB; split the document")
    return z.read(name)


def parse_docx(path: Path) -> ParsedDoc:
    """Parse ``path``; an ``IngestError`` says what to do when it is not a readable DOCX."""
    with path.open("rb") as f:
        if f.read(4) == OLE_MAGIC:
            raise IngestError(f"{path.name}: a password-protected DOCX or a legacy .doc; remove the password or "
                              "save it as .docx (Word 2007+) and ingest again")
    try:
        with zipfile.ZipFile(path) as z:
            body_xml = _read(z, "word/document.xml")
            core_xml = _read(z, "docProps/core.xml") if "docProps/core.xml" in z.namelist() else b""
        body = ET.fromstring(body_xml).find(f"{W}body")
    except IngestError as e:
        raise IngestError(f"{path.name}: {e}") from e
    except (zipfile.BadZipFile, KeyError, ET.ParseError, OSError) as e:
        raise IngestError(f"{path.name}: not a readable DOCX (corrupt, truncated or another format): {e}; "
                          "re-save it from Word or LibreOffice") from e
    blocks: list[Block] = []
    for el in body if body is not None else []:
        if el.tag == f"{W}p":
            text = _text(el)
            if text:
                blocks.append(Block(text=text, heading_level=_level(el)))
        elif el.tag == f"{W}tbl":
            table = _table(el)
            if table is not None:
                blocks.append(table)
    if not blocks:
        raise IngestError(f"{path.name}: the document has no text")
    title = ""
    if core_xml:
        try:
            title = (ET.fromstring(core_xml).findtext(DC_TITLE) or "").strip()
        except ET.ParseError:
            title = ""
    title = title or next((b.text for b in blocks if b.heading_level == 1), path.stem)
    return ParsedDoc(title=title[:200], pages=0, blocks=blocks)
