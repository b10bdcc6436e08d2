"""OCR with Tesseract (#16): scanned PDFs are ingested and cited on the right page region, text inside images is
searchable, and missing Tesseract / broken images give clear errors without losing the document."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.runtime import Runtime
from core.errors import IngestError
from core.settings import LLMConfig, Settings
from core.types import Chunk
from ingest import ocr as ocr_mod
from ingest.ocr import OcrConfig, OcrUnavailable, quality, usable
from ingest.pdf import parse_pdf
from tests.scans import image_only_pdf, text_image_pdf


@pytest.fixture(scope="module")
def scanned_manual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = Path(__file__).resolve().parent.parent / "examples" / "northwind-field-manual.pdf"
    return image_only_pdf(src, tmp_path_factory.mktemp("scan") / "northwind-scanned.pdf")


def _center(b: tuple[float, float, float, float]) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def test_text_layer_checks() -> None:
    assert not usable("") and not usable("\ufffd" * 40) and usable("The inverter has a rated output of 5 kW.")
    assert quality("Mount the inverter on a wall, 22 kg.") == 1.0
    assert quality("~~ |{ ]]\\ ;;") < 0.5


def test_scanned_pdf_reads_like_its_text_layer(scanned_manual: Path, example_pdf: Path) -> None:
    scanned = parse_pdf(scanned_manual)
    native = parse_pdf(example_pdf)
    assert scanned.ocr_pages == 3 and native.ocr_pages == 0
    assert all(b.ocr_confidence is not None and b.ocr_confidence > 0.8 for b in scanned.blocks)
    # the ruled table comes back as the same table, cell for cell
    (table,) = [b for b in scanned.blocks if b.kind == "table"]
    (ref,) = [b for b in native.blocks if b.kind == "table"]
    assert table.text == ref.text and table.page == ref.page == 2
    # word-level positions: each block sits where the text layer puts it (within a few points)
    native_by_text = {b.text: b for b in native.blocks if b.kind == "text"}
    matched = [(b, native_by_text[b.text]) for b in scanned.blocks if b.text in native_by_text]
    assert len(matched) >= 8
    for b, n in matched:
        assert b.bbox and n.bbox and b.page == n.page
        (x, y), (nx, ny) = _center(b.bbox), _center(n.bbox)
        assert abs(x - nx) < 12 and abs(y - ny) < 12, (b.text, b.bbox, n.bbox)
    assert [b.heading_level > 0 for b in scanned.blocks] == [b.heading_level > 0 for b in native.blocks]


def test_ocr_off_refuses_a_scan_saying_how(scanned_manual: Path) -> None:
    with pytest.raises(IngestError, match="RAGENT_OCR=auto"):
        parse_pdf(scanned_manual, ocr=OcrConfig(mode="off"))


def test_missing_tesseract_says_what_to_install(scanned_manual: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr_mod.shutil, "which", lambda _: None)
    ocr_mod.tesseract_bin.cache_clear()
    try:
        with pytest.raises(OcrUnavailable, match="tesseract-ocr tesseract-ocr-eng"):
            parse_pdf(scanned_manual)
    finally:
        ocr_mod.tesseract_bin.cache_clear()


def test_missing_language_data_says_which_package(scanned_manual: Path) -> None:
    with pytest.raises(OcrUnavailable, match="tesseract-ocr-xyz"):
        parse_pdf(scanned_manual, ocr=OcrConfig(languages="eng+xyz"))
    with pytest.raises(OcrUnavailable, match="language codes"):
        parse_pdf(scanned_manual, ocr=OcrConfig(languages="eng; rm -rf /"))


def test_broken_image_ocr_keeps_the_document(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pdf = text_image_pdf(tmp_path / "console.pdf", "The console shows its status after start-up.",
                         ["PUMP STATUS: FAULT 4711", "Reset with key F9"])

    def boom(*_: object) -> tuple[str, float]:
        raise RuntimeError("corrupt image data")

    monkeypatch.setattr("ingest.ocr.ocr_pixmap", boom)  # image_text looks it up there
    doc = parse_pdf(pdf, files_dir=tmp_path / "files")
    (img,) = [b for b in doc.blocks if b.kind == "image"]
    assert img.text.startswith("Figure 1") and img.ocr_confidence is None and img.image_path
    assert any("console shows" in b.text for b in doc.blocks)


def test_figure_ocr_indexes_only_words_tesseract_is_sure_of(monkeypatch: pytest.MonkeyPatch) -> None:
    import pymupdf

    read = [("Output", 96.0), ("rropepaes", 18.0), ("Softmax", 64.0), ("&", 91.0), ("Norm", 0.0), ("}s", 2.0),
            ("Feed", 97.0), ("Forward", 96.0)]
    words = [ocr_mod.OcrWord((0, 0, 1, 1), t, c, (1, 1), (1, 1, 1)) for t, c in read]
    monkeypatch.setattr("ingest.ocr.tesseract", lambda *_: words)
    text, conf = ocr_mod.ocr_pixmap(pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 200, 120), False), OcrConfig())
    assert text == "Output Softmax Feed Forward"  # strokes read as words at low confidence, lone symbols: gone
    assert conf == round(sum(c for _, c in read) / len(read) / 100, 3)  # the image's readability: all it read


def test_text_inside_an_image_is_found_by_search(tmp_path: Path, fake_runtime: Runtime) -> None:
    pdf = text_image_pdf(tmp_path / "console.pdf", "The console shows its status after start-up.",
                         ["PUMP STATUS: FAULT 4711", "Reset with key F9"])
    (res,) = fake_runtime.ingestor().ingest([pdf], "ocr")
    assert res.status == "ingested" and res.images == 1
    hits = asyncio.run(fake_runtime.retriever.search("ocr", "FAULT 4711 reset key", k=3))
    top = hits[0].chunk
    assert top.kind == "image" and top.page == 1 and top.ocr and "4711" in top.text
    assert top.image and (Path(fake_runtime.settings.home) / "files" / top.doc_id / top.image).is_file()
    assert top.bbox is not None and top.bbox[1] >= 300  # the image's region, below the body text


@pytest.mark.slow
def test_scanned_pdf_ingested_and_answered_real(
    llm_server: LLMConfig, scanned_manual: Path, example_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGENT_LLM_BASE_URL", llm_server.base_url)
    monkeypatch.setenv("RAGENT_LLM_SERVED_NAME", llm_server.model)
    runner = CliRunner()
    r = runner.invoke(app, ["ingest", str(scanned_manual), "--workspace", "scan", "--json"])
    assert r.exit_code == 0, r.output
    (f,) = json.loads(r.stdout)["files"]
    assert f["status"] == "ingested" and f["chunks"] > 0
    r = runner.invoke(app, ["ingest", str(example_pdf), "--workspace", "native", "--json"])
    assert r.exit_code == 0, r.output

    r = runner.invoke(app, ["ask", "What is the rated output of the NW-200 inverter?", "-w", "scan", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert "5 kW" in out["answer"] or "5 kW" in out.get("short_answer", ""), out
    assert out["citations"], out
    rt = Runtime(Settings())
    try:
        natives = [Chunk.from_payload(p.payload) for p in rt.index.scroll("native")]
        for c in out["citations"]:
            (chunk,) = rt.index.get("scan", [c["chunk_id"]])
            assert chunk.ocr and chunk.bbox is not None and chunk.page in (1, 2)
            # the cited region is where the text layer puts the same passage: the native chunk on that page
            # sharing the most words with it
            words = set(chunk.text.lower().split())
            ref = max((n for n in natives if n.page == chunk.page),
                      key=lambda n: len(words & set(n.text.lower().split())))
            assert ref.bbox is not None
            (x, y), (nx, ny) = _center(chunk.bbox), _center(ref.bbox)
            assert abs(x - nx) < 15 and abs(y - ny) < 15, (chunk.text, chunk.bbox, ref.text, ref.bbox)
    finally:
        rt.close()


def test_scan_rules_finds_table_rules_not_letters() -> None:
    """Rules drawn in a page's pixels come back in page points (within a pixel at 200 dpi); letters, even a "|"
    or a run of "l", do not; a filled bar gives its two edges."""
    import numpy as np
    import pymupdf

    from ingest.scan_rules import scan_rules

    with pymupdf.open() as doc:
        page = doc.new_page(width=612, height=792)
        page.draw_line((100, 100), (400, 100), width=1)
        page.draw_line((100, 130), (400, 130), width=0.4)
        page.draw_line((250, 100), (250, 200), width=0.5)
        page.draw_rect(pymupdf.Rect(100, 300, 400, 310), fill=(0, 0, 0))
        page.insert_text((100, 150), "Hello | world lllll", fontsize=11)
        pix = page.get_pixmap(dpi=200, colorspace=pymupdf.csGRAY)
    rules, verticals = scan_rules(np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width), 200)
    assert [round(r[1]) for r in rules] == [100, 130, 300, 310]
    assert all(abs(r[0] - 100) < 1 and abs(r[2] - 400) < 1 for r in rules)
    assert len(verticals) == 1 and abs(verticals[0][0] - 250) < 1 and abs(verticals[0][3] - 200) < 1


PAPER = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "pdfs" / "papers" / "1706.03762v7.pdf"


@pytest.mark.skipif(not PAPER.exists(), reason="needs ../shared/data/pdfs/papers/1706.03762v7.pdf")
def test_scanned_booktabs_table_is_found_by_its_caption_and_pixel_rules(tmp_path: Path) -> None:
    """A scanned page has no vector rules, so a booktabs table ("Table 4" over three rules) was read from word
    gaps alone: the header row and the first body row were lost. With the rules found in the pixels the scan's
    table has the text PDF's grid (the Transformer paper's Table 4)."""
    import pymupdf

    page10 = tmp_path / "p10.pdf"
    with pymupdf.open(PAPER) as doc:
        doc.select([9])
        doc.save(page10)
    scan = parse_pdf(image_only_pdf(page10, tmp_path / "p10-scan.pdf"))
    (table,) = [b for b in scan.blocks if b.kind == "table"]
    assert scan.ocr_pages == 1 and table.caption.startswith("Table 4")
    assert table.cells[0] == ("Parser", "Training", "WSJ 23 F1")
    assert table.cells[1] == ("Vinyals & Kaiser el al. (2014) [37]", "WSJ only, discriminative", "88.3")


def test_text_page_rebuilds_a_scan_for_the_table_finders() -> None:
    """The rebuilt page holds each OCR word where it was scanned (same line, within its box) and the pixel rules
    as vector lines, which is what find_tables and the caption finder read; a ruled "table" whose rows fell
    together (three or more numbers in a quarter of its cells) is left to the other finders."""
    from ingest.blocks import Block
    from ingest.pdf import _collapsed, _drawings
    from ingest.scan_rules import text_page
    from ingest.text_tables import page_words

    words = [(72.0, 100.0, 110.0, 110.0, "Region"), (200.0, 100.0, 230.0, 110.0, "2005"),
             (72.0, 120.0, 100.0, 132.0, "North"), (200.0, 121.0, 226.0, 131.0, "18.7")]
    rules = [(70.0, 95.0, 300.0, 95.0), (70.0, 115.0, 300.0, 115.0), (70.0, 136.0, 300.0, 136.0)]
    with text_page(words, rules, [], 612, 792) as doc:
        page = doc[0]
        got = page_words(page, page.get_textpage(), [])
        assert [w[4] for w in got] == ["Region", "2005", "North", "18.7"]
        for (x0, y0, x1, y1, _), g in zip(words, got, strict=True):
            assert x0 - 0.5 <= g[0] and g[2] <= x1 + 0.5 and y0 - 6 <= g[1] and g[3] <= y1 + 6
        assert len(_drawings(page)[0]) == 3
    rows = (("Category", "2005"), ("All ages 291,099 34,947 54,425", "100.0 18.7 12.0"), ("Aged 6", "266,752"))
    assert _collapsed(Block(text="", kind="table", cells=rows))
    assert not _collapsed(Block(text="", kind="table", cells=(("Category", "2005"), ("All ages", "291,099"))))
