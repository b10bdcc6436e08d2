"""DOCX (Word 2007+) parsing with the standard library: the package is a zip whose ``word/document.xml`` holds
the body. Paragraphs keep their heading level (``Heading N`` / ``Title`` styles or an outline level), tables
become Markdown plus their cell grid, in reading order; images (``word/media``, linked from ``a:blip``) become
image blocks with their alt text, their OCR text and the paragraph before them. DOCX has no fixed pages, so
blocks carry no page."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

from core.errors import IngestError
from ingest.blocks import Block, ParsedDoc, to_markdown
from ingest.images import image_block
from ingest.ocr import OcrConfig

W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
A = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
R = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
WP = "{http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing}"
RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}"
MAX_IMAGES = 500
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


def _media(z: zipfile.ZipFile) -> dict[str, str]:
    """Relationship id -> part name (``word/media/image1.png``) of the body's images."""
    if "word/_rels/document.xml.rels" not in z.namelist():
        return {}
    out = {}
    for rel in ET.fromstring(_read(z, "word/_rels/document.xml.rels")).iter(f"{RELS}Relationship"):
        target = rel.get("Target") or ""
        if rel.get("TargetMode") != "External" and rel.get("Type", "").endswith("/image"):
            out[rel.get("Id") or ""] = "word/" + target.removeprefix("/word/").lstrip("/")
    return out


def _images(p: ET.Element, z: zipfile.ZipFile, media: dict[str, str], nearby: str, files_dir: Path | None,
            ocr: OcrConfig, warnings: list[str], start: int) -> list[Block]:
    blocks: list[Block] = []
    for drawing in p.iter(f"{W}drawing"):
        doc_pr = drawing.find(f".//{WP}docPr")
        alt = " ".join(x for x in ((doc_pr.get("title") or "", doc_pr.get("descr") or "")
                                   if doc_pr is not None else ()) if x).strip()
        for blip in drawing.iter(f"{A}blip"):
            part = media.get(blip.get(f"{R}embed") or "")
            if not part or part not in z.namelist():
                continue
            n = start + len(blocks) + 1
            try:
                data = _read(z, part)
            except IngestError as e:
                warnings.append(str(e))
                continue
            b = image_block(data, f"docx-img{n}", alt, nearby, files_dir, ocr, warnings)
            if b is not None:
                blocks.append(b)
    return blocks


def parse_docx(path: Path, files_dir: Path | None = None, ocr: OcrConfig | None = None) -> ParsedDoc:
    """Parse ``path``; an ``IngestError`` says what to do when it is not a readable DOCX. Images are saved in
    ``files_dir`` (none saved when None) and read by OCR as ``ocr`` says."""
    ocr = ocr or OcrConfig()
    warnings: list[str] = []
    with path.open("rb") as f:
        if f.read(4) == OLE_MAGIC:
            raise IngestError(f"{path.name}: a password-protected DOCX or a legacy .doc; remove the password or "
                              "save it as .docx (Word 2007+) and ingest again")
    blocks: list[Block] = []
    try:
        with zipfile.ZipFile(path) as z:
            body_xml = _read(z, "word/document.xml")
            core_xml = _read(z, "docProps/core.xml") if "docProps/core.xml" in z.namelist() else b""
            body = ET.fromstring(body_xml).find(f"{W}body")
            media = _media(z)
            images = 0
            for el in body if body is not None else []:
                if el.tag == f"{W}p":
                    text = _text(el)
                    if text:
                        blocks.append(Block(text=text, heading_level=_level(el)))
                    if media and images < MAX_IMAGES:
                        nearby = text or next((b.text for b in reversed(blocks) if b.kind == "text"), "")
                        found = _images(el, z, media, nearby, files_dir, ocr, warnings, images)
                        images += len(found)
                        blocks += found
                elif el.tag == f"{W}tbl":
                    table = _table(el)
                    if table is not None:
                        blocks.append(table)
    except IngestError as e:
        raise IngestError(f"{path.name}: {e}") from e
    except (zipfile.BadZipFile, KeyError, ET.ParseError, OSError) as e:
        raise IngestError(f"{path.name}: not a readable DOCX (corrupt, truncated or another format): {e}; "
                          "re-save it from Word or LibreOffice") from e
    if not any(b.kind != "image" or b.ocr_confidence is not None for b in blocks):
        raise IngestError(f"{path.name}: the document has no text")
    title = ""
    if core_xml:
        try:
            title = (ET.fromstring(core_xml).findtext(DC_TITLE) or "").strip()
        except ET.ParseError:
            title = ""
    title = title or next((b.text for b in blocks if b.heading_level == 1), path.stem)
    return ParsedDoc(title=title[:200], pages=0, blocks=blocks, images_seen=sum(b.kind == "image" for b in blocks),
                     warnings=tuple(warnings))
