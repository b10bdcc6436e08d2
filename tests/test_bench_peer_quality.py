"""bench/ingest.py --peer-quality: its table questions from ICDAR structure files and the scoring of both pipelines'
hits (bench/splitters.py's passage coverage, shared)."""

from __future__ import annotations

from pathlib import Path

from bench.ingest import TableQuery, table_found, table_queries
from bench.splitters import Doc, Locator, passages_found

STR_XML = """<?xml version="1.0" encoding="UTF-8"?>
<document filename="x-str.xml">
 <table id="1">
  <region id="1" page="2">
   <cell id="1" start-col="1" end-col="2" start-row="0"><content>THRESHOLD</content></cell>
   <cell id="2" start-col="1" start-row="1"><content>to air
kg/year</content></cell>
   <cell id="3" start-col="2" start-row="1"><content>to water</content></cell>
   <cell id="4" start-col="0" start-row="2"><content>Benzene</content></cell>
   <cell id="5" start-col="1" start-row="2"><content>1 000</content></cell>
   <cell id="6" start-col="0" start-row="3"><content>Nitrous oxide</content></cell>
   <cell id="7" start-col="1" start-row="3"><content>10 000</content></cell>
   <cell id="8" start-col="0" start-row="4"><content>Lead</content></cell>
   <cell id="9" start-col="1" start-row="4"><content>200</content></cell>
  </region>
 </table>
 <table id="2"><region id="1" page="3"><cell id="1" start-col="0" start-row="0"><content>only</content></cell>
 </region></table>
</document>
"""


def test_table_queries_use_the_row_and_column_headers_of_a_middle_value_cell(tmp_path: Path) -> None:
    xml = tmp_path / "x-str.xml"
    xml.write_text(STR_XML)
    assert table_queries(xml, "x") == [
        TableQuery("Nitrous oxide THRESHOLD to air kg/year", "x", (2,), "Nitrous oxide", "10 000")]  # table 2: none


def test_table_found_needs_the_page_for_page_and_row_plus_value_for_cell() -> None:
    q = TableQuery("Nitrous oxide THRESHOLD to air kg/year", "x", (2,), "Nitrous oxide", "10 000")
    md_row = "| **Nitrous<br>oxide** | 10 000 |"  # pymupdf4llm's Markdown: marks and <br> are ignored
    assert table_found([("x", 2, md_row)], q) == (True, True)
    assert table_found([("x", 2, "Nitrous oxide 200")], q) == (True, False)
    assert table_found([("x", 1, md_row), ("y", 2, md_row)], q) == (False, False)
    assert table_found([], q) == (False, False)


def test_passages_found_counts_a_gold_passage_covered_at_least_half() -> None:
    text = "# A\n\nalpha beta gamma delta\n\n# B\n\nepsilon zeta eta theta\n\n"
    a0 = text.index("alpha")
    b0 = text.index("epsilon")
    doc = Doc("d", text, [(0, a0, a0 + 22), (1, b0, b0 + 22)])
    loc = Locator(text)
    lens = {0: 22, 1: 22}
    half_a = loc.find("# A alpha beta")  # 10 of 22 characters of A: not enough
    assert passages_found([(doc, half_a)], {0}, lens) == 0.0
    assert passages_found([(doc, half_a), (doc, loc.find("gamma delta"))], {0}, lens) == 1.0
    assert passages_found([(doc, loc.find("epsilon zeta eta"))], {0, 1}, lens) == 0.5
    assert passages_found([(doc, None)], {0}, lens) == 0.0
    assert passages_found([], set(), lens) == 0.0
