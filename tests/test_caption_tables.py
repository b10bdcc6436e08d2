"""Captioned tables drawn with a few horizontal rules (booktabs): found from the caption and the rules."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from ingest.blocks import Cells
from ingest.pdf import parse_pdf
from ingest.split import split_blocks
from tests.conftest import SHARED

# numbers set as tightly as papers set them (~6 pt apart at 9 pt): too close for the word-gap reader alone
ROWS = [("Model", "P", "R", "F1", "Acc"), ("BM25", "0.29", "0.38", "0.27", "0.31"),
        ("BGE-base", "0.25", "0.32", "0.23", "0.26"), ("Granite", "0.29", "0.38", "0.28", "0.32")]
XS = (80, 150, 174, 198, 222)


def _booktabs(path: Path, caption: str, caption_below: bool = True, rules: bool = True) -> Path:
    """A page with prose, then a booktabs table (top rule, midrule under the header, bottom rule) with its
    caption under (or over) it, then more prose."""
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_textbox((72, 60, 520, 140), "Some running text before the table. " * 6, fontsize=10)
    top = 160.0 if caption_below else 185.0
    if not caption_below:
        page.insert_text((72, 170), caption, fontsize=10)
    y = top + 14
    for i, row in enumerate(ROWS):
        for x, cell in zip(XS, row, strict=True):
            page.insert_text((x, y), cell, fontsize=9)
        y += 14 if i else 18
    if rules:
        for ry in (top, top + 20, y - 8):
            page.draw_line((75, ry), (255, ry), width=0.6)
    if caption_below:
        page.insert_text((72, y + 12), caption, fontsize=10)
    page.insert_textbox((72, y + 40, 520, y + 140), "Table 1 presents the corpora; more text follows. " * 4,
                        fontsize=10)
    doc.save(path)
    return path


@pytest.mark.parametrize("caption_below", [True, False])
def test_booktabs_table_is_read_with_its_cells(tmp_path: Path, caption_below: bool) -> None:
    pdf = _booktabs(tmp_path / "t.pdf", "Table 1: Statistics of the corpora.", caption_below)
    doc = parse_pdf(pdf, images=False)
    [table] = [b for b in doc.blocks if b.kind == "table"]
    assert table.cells == tuple(ROWS)
    assert "Statistics of the corpora" not in table.text  # the Markdown grid is the cells alone
    assert table.caption == "Table 1: Statistics of the corpora."  # the caption moved to its table ...
    body = " ".join(b.text for b in doc.blocks if b.kind == "text")
    assert "Statistics of the corpora" not in body and "0.38" not in body  # ... out of the text: nothing twice
    assert "Table 1 presents the corpora" in body  # a sentence about the table is not its caption
    [piece] = [p for p in split_blocks(doc.blocks) if p.kind == "table"]
    assert piece.text.startswith("Table 1: Statistics of the corpora.\n| ") and "0.38" in piece.text
    assert not [b for b in doc.blocks if b.kind == "image"]  # the rules are not a figure


def test_rules_without_a_table_caption_are_not_a_caption_table(tmp_path: Path) -> None:
    from ingest.caption_tables import TABLE_CAPTION

    assert TABLE_CAPTION.match("Table 1: Statistics") and TABLE_CAPTION.match("TABLE IV")
    assert TABLE_CAPTION.match("Table 2-1. Simulated fuel savings")
    assert not TABLE_CAPTION.match("Table 4 presents the generation results")
    pdf = _booktabs(tmp_path / "t.pdf", "Results are summarised in the lines above.")
    doc = parse_pdf(pdf, images=False)
    assert all("Results are summarised" not in b.text for b in doc.blocks if b.kind == "table")


def test_a_caption_without_rules_reads_no_table_from_prose(tmp_path: Path) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=595, height=842)
    page.insert_textbox((72, 60, 520, 200), "Plain prose that runs on for a while. " * 12, fontsize=10)
    page.insert_text((72, 215), "Table 1: A caption with no table drawn near it.", fontsize=10)
    page.draw_line((72, 300), (520, 300), width=0.6)  # a rule far from the caption
    doc.save(tmp_path / "p.pdf")
    assert not [b for b in parse_pdf(tmp_path / "p.pdf", images=False).blocks if b.kind == "table"]


PAPER = SHARED / "data" / "pdfs" / "papers" / "MTRAG-UN-arxiv.pdf"


@pytest.mark.skipif(not PAPER.exists(), reason="shared papers not present")
def test_mtrag_booktabs_tables_are_found() -> None:
    doc = parse_pdf(PAPER, images=False)
    tables: dict[int | None, list[Cells]] = {}
    for b in doc.blocks:
        if b.kind == "table":
            tables.setdefault(b.page, []).append(b.cells)
    assert ("Corpus", "Documents (D)", "Passages (P)", "Avg P/D") in tables[2][0]
    assert any(("BM25", "LT", "0.29", "0.38", "0.27", "0.31") in c for c in tables[3])  # Table 2
    assert any(("", "Subset", "LT", "RW") in c for c in tables[3])  # Table 3 (one midrule, || column rules)
    assert any(("gpt-oss-120b", "0.65", "0.59", "0.76", "0.65", "0.46", "0.37") in c for c in tables[4])
    [pattern] = [c for c in tables[7] if c[0] == ("Pattern", "Example")]  # Table 5: wrapped cells, one row each
    assert len(pattern) == 4 and pattern[2][0] == "Hedging over list" and "Chipotle" in pattern[2][1]


def test_lines_side_by_side_across_the_columns_of_a_paper_are_not_a_table() -> None:
    """MTRAG-UN page 1: the "Abstract" heading (left column) beside the short labels of Figure 1 (right column)
    lined up like the rows of a table; on a two-column page, a table whose cells never cross the middle but
    sit on both sides of it is two columns of text."""
    from ingest.text_tables import text_tables
    from tests.test_text_tables import _line

    left = "we present a benchmark for multi turn retrieval"
    right = "conversations that end with an underspecified question"
    prose = [w for i in range(8) for w in _line(300 + 12 * i, [(50, left), (320, right)])]
    side = [*_line(100, [(120, "Abstract"), (330, "Burger"), (400, "Box"), (470, "Grill")]),
            *_line(114, [(60, "Introduction"), (330, "chain"), (400, "founded"), (470, "ranked")]),
            *_line(128, [(60, "Methods"), (330, "regional"), (400, "restaurant"), (470, "growing")])]
    assert text_tables(side, 1, 600)  # alone (a one-column page), this reads as a table
    assert text_tables(side + prose, 1, 600) == []  # on a two-column page it is not
    across = [*_line(100, [(120, "Region"), (280, "2019 total"), (470, "2020")]),
              *_line(114, [(120, "North"), (280, "1,204 units"), (470, "1,388")]),
              *_line(128, [(120, "South"), (280, "977 units"), (470, "1,020")])]
    assert text_tables(across + prose, 1, 600)  # a full-width table with a column across the middle stays


def test_a_long_table_split_in_pieces_repeats_caption_and_header() -> None:
    from ingest.blocks import Block, to_markdown

    rows = (("Variable", "Type"), *((f"VAR_{i:03d}", f"VARCHAR({i})") for i in range(120)))
    table = Block(text=to_markdown(rows), page=12, kind="table", cells=rows, caption="Table 3-2 Built-in globals")
    pieces = split_blocks([table], chunk_chars=400)
    assert len(pieces) > 3
    for p in pieces:
        assert p.text.startswith("Table 3-2 Built-in globals\n| Variable | Type |\n|---|---|\n| VAR_")
        assert len(p.text) <= 400 * 1.1
