"""Images in .docx (word/media) and HTML (<img>) become image chunks with their alt text and OCR text (#16)."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from pathlib import Path

import pymupdf
import pytest

from app.runtime import Runtime
from ingest.parse import parse_file


def _screenshot(lines: list[str]) -> bytes:
    with pymupdf.open() as d:
        p = d.new_page(width=360, height=30 + 22 * len(lines))
        for i, line in enumerate(lines):
            p.insert_text((14, 30 + 22 * i), line, fontsize=13, fontname="cour")
        return bytes(p.get_pixmap(dpi=200).tobytes("png"))


def _docx(path: Path, png: bytes, alt: str = "") -> Path:
    """A .docx written by python-docx (the structure Word writes): heading, paragraph, a picture with alt text."""
    import docx

    d = docx.Document()
    d.core_properties.title = "Pump console guide"
    d.add_heading("Pump console", level=1)
    d.add_paragraph("After start-up the console shows the pump status.")
    shape = d.add_picture(io.BytesIO(png))
    if alt:
        shape._inline.docPr.set("descr", alt)
    d.add_paragraph("Call service when a fault stays after a reset.")
    d.save(str(path))
    return path


SHOT = ["PUMP STATUS: FAULT 4711", "Reset with key F9"]


def test_docx_images_are_extracted_with_alt_and_ocr_text(tmp_path: Path) -> None:
    path = _docx(tmp_path / "guide.docx", _screenshot(SHOT), alt="Console screenshot showing a fault")
    doc = parse_file(path, files_dir=tmp_path / "files")
    (img,) = [b for b in doc.blocks if b.kind == "image"]
    assert "Console screenshot showing a fault" in img.text and "4711" in img.text and "F9" in img.text
    assert "console shows the pump status" in img.text  # the paragraph before it, as context
    assert img.ocr_confidence is not None and (tmp_path / "files" / img.image_path).is_file()
    kinds = [b.kind for b in doc.blocks]
    assert kinds.index("image") == 2 and doc.images_seen == 1  # in reading order, after its paragraph


def test_docx_with_a_corrupt_image_keeps_its_text(tmp_path: Path) -> None:
    path = _docx(tmp_path / "guide.docx", _screenshot(SHOT), alt="Console screenshot")
    broken = tmp_path / "broken.docx"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, b"\x89PNG not really" if item.filename.startswith("word/media/") else data)
    doc = parse_file(broken, files_dir=tmp_path / "files")
    assert any("console shows the pump status" in b.text for b in doc.blocks)
    imgs = [b for b in doc.blocks if b.kind == "image"]
    assert [b.text for b in imgs] == ["Image: Console screenshot"] and not imgs[0].image_path


def test_html_images_inline_and_alt_only(tmp_path: Path) -> None:
    data = base64.b64encode(_screenshot(SHOT)).decode()
    tiny = base64.b64encode(pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 8, 8), False).tobytes("png")).decode()
    html = tmp_path / "page.html"
    html.write_text(f"""<html><head><title>Console</title></head><body><h1>Console</h1>
        <p>The console shows the pump status.</p>
        <img src="data:image/png;base64,{data}" alt="Fault screen">
        <p>Wiring is shown below.</p>
        <img src="https://example.com/wiring.png" alt="Wiring diagram of the 32 A breaker">
        <img src="data:image/png;base64,{tiny}">
        <img src="spacer.gif">
        </body></html>""")
    doc = parse_file(html, files_dir=tmp_path / "files")
    imgs = [b for b in doc.blocks if b.kind == "image"]
    assert len(imgs) == 2
    assert "Fault screen" in imgs[0].text and "4711" in imgs[0].text and imgs[0].image_path
    assert imgs[1].text.startswith("Image: Wiring diagram of the 32 A breaker") and not imgs[1].image_path


def test_a_docx_image_is_found_by_search(tmp_path: Path, fake_runtime: Runtime) -> None:
    path = _docx(tmp_path / "guide.docx", _screenshot(SHOT))
    (res,) = fake_runtime.ingestor().ingest([path], "docx")
    assert res.status == "ingested" and res.images == 1, res
    hits = asyncio.run(fake_runtime.retriever.search("docx", "FAULT 4711 reset key F9", k=3))
    top = hits[0].chunk
    assert top.kind == "image" and top.image and top.ocr
    assert (fake_runtime.settings.home / "files" / top.doc_id / top.image).is_file()


@pytest.mark.parametrize("mode", ["off"])
def test_ocr_off_keeps_alt_text_only(tmp_path: Path, mode: str) -> None:
    from ingest.ocr import OcrConfig

    path = _docx(tmp_path / "guide.docx", _screenshot(SHOT), alt="Console screenshot")
    doc = parse_file(path, files_dir=tmp_path / "files", ocr=OcrConfig(mode=mode))  # type: ignore[arg-type]
    (img,) = [b for b in doc.blocks if b.kind == "image"]
    assert "4711" not in img.text and img.text.startswith("Image: Console screenshot") and img.image_path
