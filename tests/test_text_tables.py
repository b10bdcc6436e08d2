"""Tables read from word positions: borderless tables, collapsed ruled tables, and what must not be a table."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from ingest.blocks import Block
from ingest.pdf import parse_pdf
from ingest.quality import cell_f1, icdar_cells
from ingest.text_tables import Word, regrid, text_tables, unstack_lines
from tests.conftest import SHARED

ICDAR = SHARED / "data" / "pdfs" / "tables" / "icdar2013"


def _line(y: float, cells: list[tuple[float, str]], h: float = 10.0) -> list[Word]:
    """Words of one text line: each (x, text) cell is split into words 5 pt wide per char, 3 pt apart."""
    out: list[Word] = []
    for x, text in cells:
        for w in text.split():
            out.append((x, y, x + 5 * len(w), y + h, w))
            x += 5 * len(w) + 3
    return out


def test_borderless_table_found_with_cells() -> None:
    words = [*_line(100, [(50, "Region"), (200, "2019"), (300, "2020")]),
             *_line(114, [(50, "North"), (200, "1,204"), (300, "1,388")]),
             *_line(128, [(50, "South east"), (200, "977"), (300, "1,020")]),
             *_line(142, [(50, "West"), (200, "1,551"), (300, "1,602")])]
    [t] = text_tables(words, 1, 600)
    assert t.kind == "table" and t.page == 1
    assert t.cells == (("Region", "2019", "2020"), ("North", "1,204", "1,388"), ("South east", "977", "1,020"),
                       ("West", "1,551", "1,602"))
    assert t.bbox is not None and t.bbox[1] == 100 and t.bbox[3] == 152


def test_wrapped_cell_and_centred_label_join_their_row() -> None:
    words = [*_line(100, [(50, "Measure"), (250, "1997"), (330, "1998")]),
             *_line(114, [(50, "Household income"), (250, "0.459"), (330, "0.456")]),
             *_line(124, [(50, "inequality (Gini)")]),  # wrapped cell text: lower case, tight below
             *_line(142, [(50, "Premature mortality"), (250, "7108"), (330, "6960")])]
    [t] = text_tables(words, 1, 600)
    assert t.cells[1] == ("Household income inequality (Gini)", "0.459", "0.456")
    assert len(t.cells) == 3


def test_two_column_prose_is_not_a_table() -> None:
    left = "the quick brown fox jumps over the lazy dog again and"
    right = "a second column of running text that goes on and on"
    words = [w for i in range(12) for w in _line(100 + 12 * i, [(50, left), (320, right)])]
    assert text_tables(words, 1, 600) == []


def test_bulleted_list_and_sparse_grids_are_not_tables() -> None:
    bullets = [w for i in range(4) for w in _line(100 + 14 * i, [(50, "•"), (80, f"point {i}")])]
    assert text_tables(bullets, 1, 600) == []
    scattered = [*_line(100, [(50, "a1"), (300, "b1")]), *_line(114, [(150, "c2"), (450, "d2")]),
                 *_line(128, [(60, "e3"), (380, "f3")]), *_line(142, [(220, "g4"), (520, "h4")])]
    assert text_tables(scattered, 1, 600) == []  # labels dotted around a figure: a grid under half full


def test_chart_labels_are_not_a_table() -> None:
    words = [w for i in range(6) for w in _line(100 + 14 * i, [(50, f"{100 * i}"), (300, f"{50 * i}")])]
    assert len(text_tables(words, 1, 600)) == 1
    curves = [(60.0 + i, 110.0 + i, 70.0 + i, 120.0 + i) for i in range(40)]
    assert text_tables(words, 1, 600, strokes=curves) == []


def test_regrid_splits_collapsed_columns_only() -> None:
    words = [w for i, (a, b, c) in enumerate([("Bulgaria", "2.3", "5.5"), ("Cyprus", "0.21", "0.21"),
                                              ("Estonia", "1.1", "3.0"), ("Malta", "0.28", "0.72")])
             for w in _line(100 + 14 * i, [(50, a), (200, b), (300, c)])]
    collapsed = Block(text="", page=1, bbox=(40, 95, 400, 160), kind="table",
                      cells=(("Bulgaria 2.3 5.5 Cyprus 0.21 0.21 Estonia 1.1 3.0 Malta 0.28 0.72",),))
    fixed = regrid(collapsed, words)
    assert fixed.cells[0] == ("Bulgaria", "2.3", "5.5") and len(fixed.cells) == 4
    good = Block(text="", page=1, bbox=(40, 95, 400, 160), kind="table",
                 cells=tuple(tuple(r) for r in fixed.cells))
    assert regrid(good, words) is good


def test_borderless_table_in_a_real_pdf(tmp_path: Path) -> None:
    """A generated PDF: a paragraph, then a table drawn with no lines at all."""
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 80), "Quarterly output of the three plants is given below.", fontsize=11)
    rows = [("Plant", "Q1", "Q2", "Q3"), ("Leeds", "410", "432", "455"), ("Bristol", "288", "301", "297"),
            ("Glasgow", "512", "498", "530")]
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            page.insert_text((72 + 110 * j, 120 + 16 * i), cell, fontsize=10)
    page.insert_text((72, 220), "Output rose in every plant except Glasgow in the second quarter.", fontsize=11)
    pdf = tmp_path / "plants.pdf"
    doc.save(pdf)
    parsed = parse_pdf(pdf, images=False)
    [table] = [b for b in parsed.blocks if b.kind == "table"]
    assert table.cells == tuple(rows)
    texts = [b.text for b in parsed.blocks if b.kind == "text"]
    assert any("Quarterly output" in t for t in texts) and any("Output rose" in t for t in texts)
    assert not any("Bristol" in t for t in texts)  # the table's text is not indexed twice


@pytest.mark.parametrize("name", ["us-003", "us-017", "us-022", "us-035a", "eu-016", "eu-027"])
def test_icdar_borderless_and_collapsed_tables(name: str) -> None:
    """ICDAR 2013 tables find_tables alone read as nothing (F1 0) or as merged cells (eu-016: 0.05)."""
    xml = next(ICDAR.glob(f"*/{name}-str.xml"))
    doc = parse_pdf(xml.with_name(f"{name}.pdf"), images=False)
    pred = [c for b in doc.blocks if b.kind == "table" for row in b.cells for c in row]
    assert cell_f1(icdar_cells(xml), pred) >= 0.9


def test_no_tables_in_prose_papers() -> None:
    """Pages of plain two-column prose: no table may come out of them."""
    doc = parse_pdf(SHARED / "data" / "pdfs" / "layout" / "sources" / "multi_page.pdf", images=False)
    assert not [b for b in doc.blocks if b.kind == "table"]


def test_table_detection_prints_nothing_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """PyMuPDF's find_tables print()s a package tip once a process; `ragent ingest --json` output must stay JSON."""
    pymupdf._recommend_layout = True  # type: ignore[attr-defined]
    xml = next(ICDAR.glob("*/eu-002-str.xml"))
    doc = parse_pdf(xml.with_name("eu-002.pdf"), images=False)
    assert any(b.kind == "table" for b in doc.blocks)
    assert capsys.readouterr().out == ""


def test_code_with_aligned_comments_is_not_a_table() -> None:
    code = [("write(c);", "// Outputs 2;"), ("p.f();", "// Outputs 0;"), ("c.f();", "// Outputs 1;"),
            ("write(c.y);", "// Outputs 3;")]
    words = [w for i, (a, b) in enumerate(code) for w in _line(100 + 14 * i, [(50, a), (250, b)])]
    assert text_tables(words, 1, 600) == []


def test_stacked_rows_beside_a_centred_label_are_split() -> None:
    """OTSL vs HTML (2305.03393v1-pg9, Table 1): the layer counts are centred on two lines, one per language,
    so the lines overlap into one row; each line of numbers is a row of its own, the labels repeated."""
    words = [*_line(100, [(50, "enc"), (100, "Language"), (200, "TEDs"), (300, "secs")]),
             *_line(120, [(100, "OTSL"), (200, "0.965"), (300, "2.73")]),
             *_line(131, [(100, "HTML"), (200, "0.969"), (300, "5.39")]),
             *_line(125.5, [(50, "6")]),
             *_line(150, [(100, "OTSL"), (200, "0.938"), (300, "1.97")]),
             *_line(161, [(100, "HTML"), (200, "0.952"), (300, "3.77")]),
             *_line(155.5, [(50, "4")])]
    (t,) = text_tables(words, 1, 600)
    assert t.cells == (("enc", "Language", "TEDs", "secs"), ("6", "OTSL", "0.965", "2.73"),
                       ("6", "HTML", "0.969", "5.39"), ("4", "OTSL", "0.938", "1.97"), ("4", "HTML", "0.952", "3.77"))


def test_stacked_lines_of_ruled_cells_are_split_only_with_numbers() -> None:
    assert unstack_lines(["6", "OTSL\nHTML", "0.965\n0.969", "2.73\n5.39"]) == [
        ("6", "OTSL", "0.965", "2.73"), ("6", "HTML", "0.969", "5.39")]
    # wrapped text (no column of numbers) and lines of unequal counts stay one row
    assert unstack_lines(["Sequential\nOperations", "Maximum path\nlength", "O(1)"]) == [
        ("Sequential\nOperations", "Maximum path\nlength", "O(1)")]
    assert unstack_lines(["a\nb", "1\n2\n3", "4\n5"]) == [("a\nb", "1\n2\n3", "4\n5")]


def test_real_ruled_table_with_stacked_rows() -> None:
    doc = parse_pdf(SHARED / "data" / "pdfs" / "layout" / "sources" / "2305.03393v1-pg9.pdf")
    (t,) = [b for b in doc.blocks if b.kind == "table"]
    assert ("6", "6", "OTSL", "0.965", "0.934", "0.955", "0.88", "2.73") in t.cells
    assert ("6", "6", "HTML", "0.969", "0.927", "0.955", "0.857", "5.39") in t.cells
    assert "| TEDs simple | TEDs complex | TEDs all |" in t.text  # the two header rows read as one


def test_markdown_reads_spanning_header_and_row_labels() -> None:
    """MTRAG-UN Table 2: "Recall" and "nDCG" span two columns each (a centred label lands in either), and
    "Elser" labels both its rows; the Markdown reads each cell's full header and row label."""
    from ingest.blocks import to_markdown

    rows = (("", "", "", "Recall", "", "nDCG"), ("", "", "@5", "@10", "@5", "@10"),
            ("BM25", "LT", "0.29", "0.38", "0.27", "0.31"), ("", "RW", "0.36", "0.47", "0.34", "0.39"),
            ("Elser", "LT", "0.40", "0.49", "0.36", "0.40"), ("", "RW", "0.49", "0.60", "0.45", "0.51"))
    md = to_markdown(rows).splitlines()
    assert md[0] == "|  |  | Recall @5 | Recall @10 | nDCG @5 | nDCG @10 |"
    assert md[-1] == "| Elser | RW | 0.49 | 0.60 | 0.45 | 0.51 |" and len(md) == 6
    # labels that do not divide their run into equal groups, or sit outside their group: left as found
    odd = (("", "BLEU", "", "Cost"), ("Model", "EN-DE", "EN-FR", "EN-DE EN-FR"), ("ByteNet", "23.75", "", ""))
    assert to_markdown(odd).splitlines()[0] == "|  | BLEU |  | Cost |"
    # a first body row is never filled from the header, and numbers are never a header
    assert to_markdown((("a", "b"), ("", "1"), ("", "2"))).splitlines()[2:] == ["|  | 1 |", "|  | 2 |"]


def test_row_labels_are_not_filled_down_ragged_or_centred_groups() -> None:
    """Attention Is All You Need, Table 3: "(A)" is centred on its four rows; filled down, the row above it
    would have read "base"."""
    from ingest.blocks import to_markdown

    rows = (("", "h", "PPL"), ("base", "8", "4.92"), ("", "1", "5.29"), ("(A)", "4", "5.00"), ("", "16", "4.91"),
            ("", "32", "5.01"), ("(B)", "", "5.16"))
    assert to_markdown(rows).splitlines()[3] == "|  | 1 | 5.29 |"
    uneven_last = (("m", "x"), ("a", "1"), ("", "2"), ("b", "3"), ("", "4"), ("c", "5"))
    assert to_markdown(uneven_last).splitlines()[-2:] == ["| b | 4 |", "| c | 5 |"]


def test_sparse_grid_of_numbers_is_regridded() -> None:
    """Attention Is All You Need, Table 3: blank cells mean "as in the base model", so the grid is under half
    full; read from the words it holds 13 columns (find_tables gave 3, numbers run together)."""
    doc = parse_pdf(SHARED / "data" / "pdfs" / "papers" / "1706.03762v7.pdf")
    (t,) = [b for b in doc.blocks if b.kind == "table" and b.page == 9]
    assert len(t.cells[0]) == 13
    assert t.cells[-1][:2] == ("big", "6") and t.cells[-1][-1] == "213"
    d = [r for r in t.cells if r[0] == "(D)"]  # centred on four rows, on two of them; each line its own values
    assert [r[7:9] for r in d] == [("0.2", ""), ("", "0.0")]
