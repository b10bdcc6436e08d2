"""Tables from word positions: borderless tables, and ruled tables whose columns have no rules.

``page.find_tables()`` needs ruling lines; many real tables (most US government reports in ICDAR 2013, the
tables of arXiv papers) have none, or only horizontal rules, so their cells come back merged or not at all.
This module reads the grid from where the words are, in four steps:

1. Rows: words grouped by vertical position; lines that overlap vertically (a label centred on a two-line
   cell) are one row. Within a row, a horizontal gap wider than ``gap_em`` x the word height starts a new
   segment (a cell candidate): inter-word spaces are ~0.3 em, column gutters are wider.
2. Runs: consecutive rows with >= 2 segments, close together (gap <= ``row_gap`` x height), allowing short
   one-segment rows inside (section labels, wrapped cells); a row holding a prose segment (>= 4 words and
   wider than ``prose_frac`` of the page) ends a run, which keeps two-column text from reading as a table.
3. Columns: the union of the x-extents of the segments of the run's fuller rows; every segment goes to the
   column it overlaps most. A row that only continues cells above (every segment starts lower case, in a
   column already filled, tightly below) is merged into that row: wrapped cell text.
4. Checks: >= ``min_rows`` tabular rows, >= 2 columns, short cells (median <= ``max_cell_chars``), a grid at
   least ``min_fill`` full, few punctuation-only cells, not a bulleted/numbered list, not a code listing
   with aligned comments, not a chart (few curves or diagonal lines inside), and, on a two-column page, not
   lines of the two columns side by side (cells on both sides of the middle, none across it).

Measured on ICDAR 2013 (67 PDFs, bench/ingest.py): mean table cell F1 0.558 with ``find_tables`` alone,
0.911 with this module added (docs/INGEST.md).
"""

from __future__ import annotations

import itertools
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.types import BBox
from ingest.blocks import NUMBER_RE, Block, Cells, to_markdown

Word = tuple[float, float, float, float, str]  # x0, y0, x1, y1, text (the head of PyMuPDF's word tuples)

COMMENT = ("//", "/*", "#", "--", "%", ";")
RTL_RE = re.compile(r"[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")  # Hebrew, Arabic, Persian, ... letters
LATIN_RE = re.compile(r"[A-Za-z]")
LTR_RUN_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.,:/%+\-]*[A-Za-z0-9])?")
BULLET_RE = re.compile(r"^([\u2022\u25cf\u25aa\u2013\-*·o]|\(?[0-9a-zA-Z]{1,3}[.)])$")


def right_to_left(text: str) -> bool:
    """Mostly right-to-left script (more Hebrew/Arabic letters than Latin ones)."""
    n = len(RTL_RE.findall(text))
    return n > 0 and n > len(LATIN_RE.findall(text))


def logical_rtl(cell: str) -> str:
    """A cell read character by character from left to right (``find_tables``) holds right-to-left script
    backwards: reverse it, then turn its left-to-right runs (numbers, Latin words) back around."""
    if not right_to_left(cell):
        return cell
    return LTR_RUN_RE.sub(lambda m: m.group(0)[::-1], cell[::-1])


@dataclass
class _Seg:
    x0: float
    x1: float
    words: list[str] = field(default_factory=list)
    y0: float = 0.0
    y1: float = 0.0

    @property
    def text(self) -> str:
        """The words left to right, or right to left for right-to-left script (each word is in logical order)."""
        text = " ".join(self.words)
        return " ".join(reversed(self.words)) if right_to_left(text) else text


@dataclass
class _Row:
    y0: float
    y1: float
    h: float
    segs: list[_Seg]


def inside(inner: Sequence[Any], outer: Sequence[float], pad: float = 2.0) -> bool:
    """Whether the centre of ``inner`` lies in ``outer`` (grown by ``pad``)."""
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] - pad <= cx <= outer[2] + pad and outer[1] - pad <= cy <= outer[3] + pad


def _rows(words: Sequence[Word], gap_em: float) -> list[_Row]:
    lines: list[list[Word]] = []
    for w in sorted(words, key=lambda w: ((w[1] + w[3]) / 2, w[0])):
        cy = (w[1] + w[3]) / 2
        if lines and statistics.median(x[1] for x in lines[-1]) <= cy <= statistics.median(x[3] for x in lines[-1]):
            lines[-1].append(w)
        else:
            lines.append([w])
    rows: list[_Row] = []
    for ln in lines:
        ln.sort(key=lambda w: w[0])
        segs: list[_Seg] = []
        prev_h = 0.0
        for w in ln:
            wh = w[3] - w[1]
            if segs and w[0] - segs[-1].x1 < gap_em * max(wh, prev_h):
                segs[-1].x1 = max(segs[-1].x1, w[2])
                segs[-1].words.append(w[4])
                segs[-1].y0, segs[-1].y1 = min(segs[-1].y0, w[1]), max(segs[-1].y1, w[3])
            else:
                segs.append(_Seg(w[0], w[2], [w[4]], w[1], w[3]))
            prev_h = wh
        row = _Row(min(w[1] for w in ln), max(w[3] for w in ln), statistics.median(w[3] - w[1] for w in ln), segs)
        prev = rows[-1] if rows else None
        if prev is not None and prev.y1 - row.y0 > 0.3 * min(prev.h, row.h):
            prev.segs = sorted(prev.segs + row.segs, key=lambda g: g.x0)  # overlapping lines: one row
            prev.y1 = max(prev.y1, row.y1)
        else:
            rows.append(row)
    return rows


def _columns(rows: list[_Row]) -> list[tuple[float, float]]:
    counts = [len(r.segs) for r in rows if len(r.segs) >= 2]
    need = statistics.median(counts) if counts else 2
    cols: list[list[float]] = []
    for a, b in sorted((s.x0, s.x1) for r in rows if len(r.segs) >= need for s in r.segs):
        if cols and a <= cols[-1][1] + 1:
            cols[-1][1] = max(cols[-1][1], b)
        else:
            cols.append([a, b])
    return [(a, b) for a, b in cols]


def _col(s: _Seg, cols: list[tuple[float, float]]) -> int:
    """The column ``s`` overlaps most, else the nearest."""
    return max(range(len(cols)), key=lambda i: (min(s.x1, cols[i][1]) - max(s.x0, cols[i][0]),
                                                -abs(s.x0 - cols[i][0])))


def _continues(r: _Row, last: Sequence[str], cols: list[tuple[float, float]]) -> bool:
    """A wrapped line of the cells above: only in columns already filled, each starting lower case."""
    return all(last[_col(s, cols)] and (s.text[:1].islower() or s.text[:1] in "(&") for s in r.segs)


def _unstack(r: _Row, cols: list[tuple[float, float]]) -> list[_Row]:
    """A row that is k rows stacked beside labels centred on them ("6 | 6 | OTSL/HTML | 0.965/0.969 | ...",
    merged into one row by the label overlapping both lines) as k rows, the labels repeated in each: at
    least two columns hold k segments each on the same k lines, one of them all numbers; a lone segment on one
    of the lines is that row's (Table 3 of "Attention Is All You Need"). Kept as one row, the
    column read "OTSL HTML" and "0.965 0.969", and which number was whose was lost."""
    by_col: dict[int, list[_Seg]] = {}
    for s in r.segs:
        by_col.setdefault(_col(s, cols), []).append(s)
    multi = {j: sorted(ss, key=lambda s: s.y0) for j, ss in by_col.items() if len(ss) >= 2}
    ks = {len(ss) for ss in multi.values()}
    if len(multi) < 2 or len(ks) != 1 or not any(all(NUMBER_RE.match(s.text) for s in ss) for ss in multi.values()):
        return [r]
    k = ks.pop()
    levels = [[(ss[i].y0 + ss[i].y1) / 2 for ss in multi.values()] for i in range(k)]
    centre = [sum(lv) / len(lv) for lv in levels]
    if any(max(lv) - min(lv) > 0.5 * r.h for lv in levels) or any(
            b - a < 0.5 * r.h for a, b in itertools.pairwise(centre)):  # not k lines (side by side in one column)
        return [r]
    rows = [[ss[i] for ss in multi.values()] for i in range(k)]
    for j, ss in by_col.items():
        if j in multi:
            continue
        c = (ss[0].y0 + ss[0].y1) / 2
        line = min(range(k), key=lambda i: abs(centre[i] - c))
        if abs(centre[line] - c) <= 0.25 * r.h:  # on one of the lines: that row's cell
            rows[line].append(ss[0])
        else:  # between them: a label of all k
            for row in rows:
                row.append(ss[0])
    return [_Row(min(g.y0 for g in row), max(g.y1 for g in row), r.h, sorted(row, key=lambda g: g.x0))
            for row in rows]


def unstack_lines(row: Sequence[str]) -> list[tuple[str, ...]]:
    """The ruled-table form of ``_unstack``: a row whose cells hold k lines each in two or more cells (one of
    them all numbers; the others one line, repeated) as k rows ("OTSL\\nHTML | 0.965\\n0.969")."""
    lines = [[x.strip() for x in c.split("\n") if x.strip()] for c in row]
    multi = [ls for ls in lines if len(ls) >= 2]
    ks = {len(ls) for ls in multi}
    if len(multi) < 2 or len(ks) != 1 or not any(all(NUMBER_RE.match(x) for x in ls) for ls in multi):
        return [tuple(row)]
    k = ks.pop()
    return [tuple(ls[i] if len(ls) == k else " ".join(ls) for ls in lines) for i in range(k)]


def _grid(rows: list[_Row], cols: list[tuple[float, float]]) -> Cells:
    rows = [sub for r in rows for sub in _unstack(r, cols)]
    out: list[list[str]] = []
    for i, r in enumerate(rows):
        if not (i and r.y0 - rows[i - 1].y1 < 0.4 * r.h and _continues(r, out[-1], cols)):
            out.append([""] * len(cols))  # a new row, unless r wraps the cells of the one above
        for s in r.segs:
            j = _col(s, cols)
            out[-1][j] = f"{out[-1][j]} {s.text}".strip()
    return tuple(tuple(row) for row in out)


def _code(grid: Cells) -> bool:
    """A code listing with aligned comments: a column of comments, or statements ending in ; { }."""
    for j in range(len(grid[0])):
        col = [r[j] for r in grid if r[j]]
        if col and (sum(c.startswith(COMMENT) for c in col) * 2 >= len(col)
                    or sum(c.endswith((";", "{", "}")) for c in col) * 2 >= len(col)):
            return True
    return False


def _filled(grid: Cells) -> list[str]:
    return [c for row in grid for c in row if c]


def _two_columns(rows: list[_Row], page_width: float, prose_w: float) -> bool:
    """A two-column page: its prose lines sit left or right of the middle, few run across it."""
    mid = page_width / 2
    prose = [g for r in rows for g in r.segs if len(g.words) >= 4 and g.x1 - g.x0 >= prose_w]
    left, right = sum(g.x1 < mid for g in prose), sum(g.x0 > mid for g in prose)
    return left >= 5 and right >= 5 and len(prose) - left - right < min(left, right)


def text_tables(words: Sequence[Word], pno: int, page_width: float, *, gap_em: float = 0.75, min_rows: int = 3,
                row_gap: float = 2.0, max_cell_chars: float = 28.0, prose_frac: float = 0.3,
                min_fill: float = 0.5, strokes: Sequence[BBox] = (), max_strokes: int = 20) -> list[Block]:
    """Borderless tables among a page's words (pass only horizontal words outside ruled tables). A candidate
    holding more than ``max_strokes`` curves/diagonal lines (``strokes``) is a chart's labels: skipped."""
    if len(words) < 6:
        return []
    prose_w = prose_frac * page_width
    runs: list[list[_Row]] = []
    cur: list[_Row] = []
    rows = _rows(words, gap_em)
    two_col = _two_columns(rows, page_width, prose_w)
    for r in rows:
        if any(len(s.words) >= 4 and s.x1 - s.x0 >= prose_w for s in r.segs):
            runs.append(cur)
            cur = []
            continue
        if cur and r.y0 - cur[-1].y1 > row_gap * max(r.h, cur[-1].h):
            runs.append(cur)
            cur = []
        if len(r.segs) >= 2 or cur:
            cur.append(r)
            if len(cur) >= 3 and all(len(x.segs) < 2 for x in cur[-3:]):  # three plain lines end a run
                runs.append(cur)
                cur = []
    runs.append(cur)
    blocks = []
    for run in runs:
        while run and len(run[-1].segs) < 2:
            run.pop()
        if sum(len(r.segs) >= 2 for r in run) < min_rows:
            continue
        if statistics.median(len(s.text) for r in run for s in r.segs) > max_cell_chars:
            continue
        cols = _columns(run)
        if len(cols) < 2:
            continue
        grid = _grid(run, cols)
        if len(grid) < 2 or _code(grid):
            continue
        filled = _filled(grid)
        if len(filled) < min_fill * len(grid) * len(cols):
            continue
        if sum(not any(ch.isalnum() for ch in c) for c in filled) > 0.2 * len(filled):
            continue
        first = [row[0] for row in grid if row[0]]
        if len(cols) == 2 and first and all(BULLET_RE.match(c) for c in first):  # a list, not a table
            continue
        bbox: BBox = (min(s.x0 for r in run for s in r.segs), run[0].y0,
                      max(s.x1 for r in run for s in r.segs), run[-1].y1)
        if sum(inside(s, bbox) for s in strokes) > max_strokes:
            continue
        mid = page_width / 2
        if two_col and bbox[0] < mid < bbox[2] and not any(g.x0 < mid < g.x1 for r in run for g in r.segs):
            continue  # lines of the two columns side by side (a heading beside a figure's labels), not a table
        blocks.append(Block(text=to_markdown(grid), page=pno, bbox=bbox, kind="table", cells=grid))
    return blocks


def regrid(block: Block, words: Sequence[Word], *, gap_em: float = 0.75, gain: float = 2.0,
           min_fill: float = 0.6) -> Block:
    """A ruled table whose columns collapsed (``find_tables`` saw only the horizontal rules, so each row came
    back as one cell): rebuild its grid from the words inside it when that gives ``gain`` x more cells."""
    if not block.bbox or not block.cells:
        return block
    rows = _rows([w for w in words if inside(w, block.bbox, 0.0)], gap_em)
    if len(rows) < 2 or not any(len(r.segs) >= 2 for r in rows):
        return block
    cols = _columns(rows)
    if len(cols) < 2:
        return block
    grid = _grid(rows, cols)
    # more cells, in a regular grid (a ragged one means wrapped cell text was split: keep the ruled grid); a
    # grid of numbers may be sparse (Attention Is All You Need, Table 3: blank = as in the base model)
    filled = _filled(grid)
    n = len(filled)
    fill = min_fill / 2 if sum(bool(NUMBER_RE.match(c)) for c in filled) >= 0.6 * n else min_fill
    if n >= gain * len(_filled(block.cells)) and n >= fill * len(grid) * len(cols):
        return Block(text=to_markdown(grid), page=block.page, bbox=block.bbox, kind="table", cells=grid)
    return block


def page_words(page: Any, textpage: Any, rotated: Sequence[BBox]) -> list[Word]:
    """The horizontal words of a page, as (x0, y0, x1, y1, text)."""
    return [(w[0], w[1], w[2], w[3], w[4]) for w in page.get_text("words", textpage=textpage)
            if w[4].strip() and not any(inside(w, r) for r in rotated)]
