"""Parsing and splitting: PDF headings/tables/images, Markdown/HTML/text, extraction quality on real ground truth."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ingest.blocks import Block
from ingest.parse import parse_file
from ingest.pdf import parse_pdf, render_page
from ingest.quality import cell_f1, icdar_cells, text_recall
from ingest.split import LexicalEmbedder, SemanticSplitter, split_blocks
from tests.conftest import SHARED
from tests.fakes import HashEmbedder

PDFS = SHARED / "data" / "pdfs"
ICDAR = PDFS / "tables" / "icdar2013"
LAYOUT = PDFS / "layout"


def test_pdf_headings_tables_no_duplicate_text(example_pdf: Path) -> None:
    doc = parse_pdf(example_pdf)
    assert doc.title == "Northwind NW-200 Field Manual" and doc.pages == 3
    heads = {b.text: b.heading_level for b in doc.blocks if b.heading_level}
    assert heads["Northwind NW-200 Field Manual"] == 1 and heads["Specifications"] == 2
    (table,) = [b for b in doc.blocks if b.kind == "table"]
    assert table.cells[0] == ("Parameter", "Value") and ("Rated output", "5 kW") in table.cells
    assert table.text.startswith("| Parameter | Value |\n|---|---|")
    texts = " ".join(b.text for b in doc.blocks if b.kind == "text")
    assert "Max DC input" not in texts  # table-area text is not duplicated in the text blocks
    assert all(b.page and b.bbox for b in doc.blocks)


def test_pdf_images_saved_with_captions(tmp_path: Path) -> None:
    doc = parse_pdf(PDFS / "papers" / "1706.03762v7.pdf", files_dir=tmp_path)
    imgs = [b for b in doc.blocks if b.kind == "image" and "-img" in b.image_path]  # raster (figures: "-fig")
    assert len(imgs) == doc.images_seen == 3
    assert all((tmp_path / b.image_path).is_file() and "/" not in b.image_path for b in imgs)  # names in files_dir
    assert imgs[0].page == 3 and imgs[0].text.startswith("Figure 1: The Transformer")


def test_pdf_image_count_mtrag(tmp_path: Path) -> None:
    """22 images per the data README (get_images); 9 are 13-pt icons on page 1 (< 1% of the page): dropped."""
    doc = parse_pdf(PDFS / "papers" / "MTRAG-UN-arxiv.pdf", files_dir=tmp_path)
    imgs = [b for b in doc.blocks if b.kind == "image" and "-img" in b.image_path]  # raster only
    assert doc.images_seen == 22
    assert 10 <= len(imgs) <= 13 and not any(b.page == 1 for b in imgs)
    assert len(list(tmp_path.glob("*-img*.png"))) == len(imgs)


def test_render_page_cached(tmp_path: Path, example_pdf: Path) -> None:
    p = render_page(tmp_path, "doc1", example_pdf, 2)
    assert p == tmp_path / "pages" / "doc1" / "2.png" and p.read_bytes()[:4] == b"\x89PNG"
    mtime = p.stat().st_mtime_ns
    assert render_page(tmp_path, "doc1", example_pdf, 2).stat().st_mtime_ns == mtime


@pytest.mark.parametrize("name", ["eu-002", "eu-003", "eu-005", "eu-009a", "us-005", "us-006", "us-038"])
def test_icdar_table_cell_f1(name: str) -> None:
    """Ruled tables (borderless ones: tests/test_text_tables.py)."""
    xml = next(ICDAR.glob(f"*/{name}-str.xml"))
    doc = parse_pdf(xml.with_name(f"{name}.pdf"), images=False)
    pred = [c for b in doc.blocks if b.kind == "table" for row in b.cells for c in row]
    assert cell_f1(icdar_cells(xml), pred) >= 0.8


@pytest.mark.parametrize("name", ["2305.03393v1-pg9", "multi_page", "code_and_formula", "amt_handbook_sample"])
def test_docling_text_recall(name: str) -> None:
    doc = parse_pdf(LAYOUT / "sources" / f"{name}.pdf", images=False)
    gt = (LAYOUT / "groundtruth" / f"{name}.md").read_text()
    assert text_recall(gt, doc.text) >= 0.95


def test_paragraphs_laid_out_in_a_frame_are_text_not_a_table() -> None:
    """The Redpaper's back cover (p. 18) was one 2 x 2 "table" of paragraphs; the publication number and the
    publisher were cells of it, which the answer excerpt could not show."""
    doc = parse_pdf(LAYOUT / "sources" / "redp5110_sampled.pdf", images=False)
    back = [b for b in doc.blocks if b.page == 18]
    assert not [b for b in back if b.kind == "table"]
    texts = [b.text for b in back]
    assert "REDP-5110-00" in texts and "INTERNATIONAL TECHNICAL SUPPORT ORGANIZATION" in texts
    assert [b for b in doc.blocks if b.kind == "table" and b.page == 12]  # its real tables stay tables


def test_right_to_left_table_cells_read_in_logical_order() -> None:
    """find_tables reads a cell's characters left to right, which holds Persian/Arabic backwards (recall was
    0.168 on this file before the cells were turned around)."""
    doc = parse_pdf(LAYOUT / "sources" / "right_to_left_03.pdf", images=False)
    gt = (LAYOUT / "groundtruth" / "right_to_left_03.md").read_text()
    assert text_recall(gt, doc.text) >= 0.9
    cells = [c for b in doc.blocks if b.kind == "table" for row in b.cells for c in row]
    assert "شماره استاندارد ملی" in cells and "20300" in cells


def test_logical_rtl_and_word_order() -> None:
    from ingest.text_tables import _Seg, logical_rtl

    logical = "شماره استاندارد ملی"
    assert logical_rtl(logical[::-1]) == logical  # characters read left to right come back around
    logical = "زبان برنامه نویسی R 3.14 و Python"
    visual = logical[::-1].replace("41.3", "3.14").replace("nohtyP", "Python")  # how the line reads left to right
    assert logical_rtl(visual) == logical  # numbers and Latin runs keep their own direction
    assert logical_rtl("Total 20300") == "Total 20300"  # left-to-right text is untouched
    assert _Seg(0, 1, ["شماره", "استاندارد"]).text == "استاندارد شماره"
    assert _Seg(0, 1, ["Net", "sales"]).text == "Net sales"


def test_markdown_html_text(tmp_path: Path) -> None:
    md = tmp_path / "a.md"
    md.write_text("# Guide\n\nIntro text.\n\n## Specs\n\n| k | v |\n|---|---|\n| volts | 230 |\n\n"
                  "```\ncode\n\nmore\n```\n")
    doc = parse_file(md)
    assert doc.title == "Guide"
    assert [(b.kind, b.heading_level) for b in doc.blocks] == [
        ("text", 1), ("text", 0), ("text", 2), ("table", 0), ("text", 0)]
    assert doc.blocks[3].cells == (("k", "v"), ("volts", "230"))
    html = tmp_path / "b.html"
    html.write_text("<html><head><title>T</title><style>x{}</style></head><body><h2>Sec</h2><p>Body &amp; more"
                    "</p><table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table></body></html>")
    doc = parse_file(html)
    assert doc.title == "T"
    assert [(b.kind, b.heading_level, b.text) for b in doc.blocks][:2] == [
        ("text", 2, "Sec"), ("text", 0, "Body & more")]
    assert doc.blocks[2].cells == (("a", "b"), ("1", "2")) and "| 1 | 2 |" in doc.blocks[2].text
    txt = tmp_path / "c.txt"
    txt.write_text("para one\n\npara two")
    assert [b.text for b in parse_file(txt).blocks] == ["para one", "para two"]


def write_docx(path: Path, body: str, title: str = "") -> Path:
    """A minimal Word 2007+ package (what Word and LibreOffice write, less the optional parts)."""
    import zipfile

    w = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", f'<?xml version="1.0"?><w:document {w}><w:body>{body}</w:body></w:document>')
        if title:
            z.writestr("docProps/core.xml", '<cp:coreProperties xmlns:cp="urn:cp" '
                       f'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></cp:coreProperties>')
    return path


def para(text: str, style: str = "") -> str:
    ppr = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{ppr}<w:r><w:t>{text}</w:t></w:r></w:p>"


def test_docx_headings_tables_and_bad_files(tmp_path: Path) -> None:
    cell = "<w:tc>{}</w:tc>"
    table = ("<w:tbl>" + "".join("<w:tr>" + "".join(cell.format(para(c)) for c in row) + "</w:tr>"
                                 for row in (("Parameter", "Value"), ("Rated output", "5 kW"))) + "</w:tbl>")
    body = (para("Pump Manual", "Heading1") + para("The pump moves water.") + para("Specs", "Heading2") + table
            + "<w:p><w:r><w:t>Line one</w:t><w:br/><w:t>line two</w:t></w:r></w:p>")
    doc = parse_file(write_docx(tmp_path / "m.docx", body, title="P-100 Manual"))
    assert doc.title == "P-100 Manual" and doc.pages == 0
    assert [(b.kind, b.heading_level) for b in doc.blocks] == [
        ("text", 1), ("text", 0), ("text", 2), ("table", 0), ("text", 0)]
    assert doc.blocks[3].cells == (("Parameter", "Value"), ("Rated output", "5 kW"))
    assert "| Rated output | 5 kW |" in doc.blocks[3].text and doc.blocks[4].text == "Line one\nline two"
    assert parse_file(write_docx(tmp_path / "n.docx", para("Only body"))).title == "n"
    from core.errors import IngestError

    (tmp_path / "bad.docx").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(IngestError, match="not a readable DOCX"):
        parse_file(tmp_path / "bad.docx")
    (tmp_path / "old.docx").write_bytes(b"\xd0\xcf\x11\xe0" + b"\0" * 100)
    with pytest.raises(IngestError, match="password-protected"):
        parse_file(tmp_path / "old.docx")
    with pytest.raises(IngestError, match="no text"):
        parse_file(write_docx(tmp_path / "empty.docx", ""))


def test_split_headings_pages_and_tables() -> None:
    rows = [("h1", "h2")] + [(f"row {i} " + "x" * 40, str(i)) for i in range(60)]
    from ingest.blocks import to_markdown

    blocks = [
        Block("Manual", page=1, heading_level=1), Block("Intro", page=1, heading_level=2),
        Block("First page text.", page=1, bbox=(0, 0, 10, 10)), Block("Second page text.", page=2),
        Block(to_markdown(tuple(rows)), page=2, kind="table", cells=tuple(rows)),
        Block("Figure 1: a pump", page=2, kind="image"),
    ]
    pieces = split_blocks(blocks, chunk_chars=600)
    assert pieces[0].text == "First page text." and pieces[0].heading_path == ("Manual", "Intro")
    assert pieces[1].page == 2  # never across pages
    tables = [p for p in pieces if p.kind == "table"]
    assert len(tables) > 1
    for t in tables:  # split between rows only, header repeated
        lines = t.text.split("\n")
        assert lines[0] == "| h1 | h2 |" and lines[1] == "|---|---|"
        assert all(re.fullmatch(r"\| row \d+ x+ \| \d+ \|", ln) for ln in lines[2:])
    assert sum(len(t.text.split("\n")) - 2 for t in tables) == 60
    assert pieces[-1].kind == "image"


@pytest.mark.parametrize("embedder", [HashEmbedder(), LexicalEmbedder()], ids=["hash", "lexical"])
def test_semantic_splitter_breaks_on_topic_change(embedder: Any) -> None:
    pumps = [f"The pump number {i} moves water through the pump housing quickly." for i in range(6)]
    taxes = [f"Income tax return {i} is filed with the revenue office each year." for i in range(6)]
    text = " ".join(pumps + taxes)
    pieces = split_blocks([Block(text, page=1)], chunk_chars=700, semantic=SemanticSplitter(embedder))
    assert len(pieces) == 2
    assert "tax" not in pieces[0].text and "pump" not in pieces[1].text
    assert all(len(p.text) <= 700 for p in pieces)


def test_semantic_splitter_respects_limit() -> None:
    text = " ".join(f"Sentence {i} is about subject {i % 3} in some detail here." for i in range(80))
    pieces = split_blocks([Block(text, page=1)], chunk_chars=300, semantic=SemanticSplitter(HashEmbedder()))
    assert all(len(p.text) <= 300 for p in pieces)
    assert Counter(" ".join(p.text for p in pieces).split()) == Counter(text.split())


def test_vector_figures_become_image_blocks(tmp_path: Path) -> None:
    """Figures 3-5 of "Attention Is All You Need" are drawn with ~600-900 vector paths each (no raster image):
    each becomes one figure block with its caption, the words drawn in it, and a rendered PNG. Counted by hand:
    5 figures in the paper (1-2 raster, 3-5 vector), all 5 found."""
    doc = parse_pdf(PDFS / "papers" / "1706.03762v7.pdf", files_dir=tmp_path)
    figs = [b for b in doc.blocks if b.kind == "image" and "-fig" in b.image_path]
    assert [(b.page, b.text.split(":")[0]) for b in figs] == [(13, "Figure 3"), (14, "Figure 4"), (15, "Figure 5")]
    for b in figs:
        assert (tmp_path / b.image_path).is_file() and b.bbox is not None
        assert b.bbox[3] - b.bbox[1] > 150  # the drawing, not just the caption line
    assert "making" in figs[0].text  # a word drawn inside the attention map
    captions = {b.text.split(":")[0] for b in doc.blocks if b.kind == "image"}
    assert captions >= {f"Figure {i}" for i in range(1, 6)}
    # the words drawn inside a figure are read once, in the figure, not again as body text
    assert not any(b.kind == "text" and b.page == 13 and b.bbox and b.bbox[1] > 80 and b.bbox[3] < 300
                   for b in doc.blocks)


def test_symbol_font_glyphs_and_control_characters_are_dropped(tmp_path: Path) -> None:
    """A symbol font's unmapped glyphs came out as C1 controls and private-use characters ("\\x84 \\x84 Yes, at
    the national level", bullets as "\\uf0b7") and went into chunks, embeddings and prompts; parse_file drops
    them from text, cells and captions, and a block of nothing else goes."""
    md = tmp_path / "form.md"
    md.write_text("# Form\n\n\x84 \x84 Yes, at the national level \x84 \x84 No\n\n\uf0b7\n\n"
                  "| a\x07 | b |\n|---|---|\n| 1 | 2\x01 |\n")
    doc = parse_file(md)
    text = doc.text
    assert "Yes, at the national level No" in text
    assert not re.search(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]", text)
    assert all(b.text.strip() for b in doc.blocks)
    pdf = PDFS / "layout" / "sources" / "table_mislabeled_as_picture.pdf"
    if pdf.exists():  # the real form: its check boxes were "\x84" in 64 places
        real = parse_file(pdf)
        assert "\x84" not in real.text and "They work in parallel to State funded" in real.text
