"""Tables found from their caption and horizontal rules: the booktabs style of most papers (LaTeX ``\\toprule``,
``\\midrule``, ``\\bottomrule``; no vertical rules, or only a few).

``page.find_tables()`` builds cells from rule intersections, so two or three short horizontal rules give it
nothing to work with (its ``vertical_strategy="text"`` splits words across columns: "Docu | ments (D)"), and the
word-position reader (``ingest.text_tables``) stops at the header row's merged cells or at wrapped text cells.
Here the table is anchored on what a paper always prints:

1. A caption block whose first line is "Table N" alone or followed by ":" / "." (not "Table 4 presents ...").
2. The nearest horizontal rule just above it (caption below the table) or just below it (caption above), in the
   caption's column; then the chain of rules of the same width beyond it, up to one that is too far or whose
   band holds a caption or text running outside the rules' width (the body text around the table).
3. Vertical rules touching that region extend it (a table with one midrule and ``||`` column rules).
4. The grid: the words inside, in rows and gap-separated columns (``text_tables``' rows and columns). Where
   rules also separate body rows (more than top/mid/bottom), the lines of each band are one row when only
   the band's first line starts a row (a cell wrapped over lines).

Example: MTRAG-UN's "Table 1: Statistics of new document corpora" sits under three rules 214 pt wide at
y = 219, 235 and 261; the chain gives the region 219-261, whose words make a 3 x 4 grid
(Corpus | Documents (D) | Passages (P) | Avg P/D; Banking | 4,497 | 33,380 | 7.4; Telco ...).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from core.types import BBox
from ingest.blocks import Block, Cells, to_markdown
from ingest.text_tables import Word, _columns, _grid, _Row, _rows, inside

TABLE_CAPTION = re.compile(r"^\s*(table|tab\.)\s*(\d+|[IVXL]+)\s*([:.|\u2013\u2014-]|$)", re.I)
CAPTION_GAP = 45.0  # points between a caption and the table's nearest rule
CAPTION_GAP_REGION = 25.0  # points between a caption and the table (its rules, and column rules touching them)
MAX_BAND = 420.0  # points between two rules of one table
SAME_WIDTH = 8.0  # points: rules of one table start and end within this of each other
OUTSIDE = 15.0  # points a line may run past the rules before it is body text, not a cell
EDGE = 12.0  # points: a word this close outside the region means the table goes on past its rules


def _first_line(block: dict[str, Any]) -> str:
    lines = block.get("lines") or [{"spans": []}]
    return "".join(s["text"] for s in lines[0]["spans"])


def table_captions(page_dict: dict[str, Any]) -> list[BBox]:
    """Boxes of the page's text blocks that are a table caption."""
    return [tuple(b["bbox"]) for b in page_dict["blocks"]  # type: ignore[misc]
            if b.get("type", 0) == 0 and TABLE_CAPTION.match(_first_line(b))]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return min(a1, b1) - max(a0, b0)


def _dedupe(rules: Sequence[BBox]) -> list[BBox]:
    """Rules less duplicates (a rect's edges drawn twice), collinear pieces that touch joined into one rule
    (a header's top border drawn cell by cell)."""
    out: list[BBox] = []
    for r in sorted(rules, key=lambda r: (round(r[1]), r[0])):
        last = out[-1] if out else None
        if last is not None and abs(r[1] - last[1]) < 1.0 and r[0] <= last[2] + 2:
            out[-1] = (last[0], last[1], max(last[2], r[2]), max(last[3], r[3]))
        else:
            out.append(r)
    return out


def _chain(anchor: BBox, rules: list[BBox], step: int, lines: list[BBox], caps: list[BBox]) -> list[BBox]:
    """The rules of one table from ``anchor`` on, going up (step -1) or down (step 1) the page."""
    same = sorted((r for r in rules if abs(r[0] - anchor[0]) <= SAME_WIDTH and abs(r[2] - anchor[2]) <= SAME_WIDTH),
                  key=lambda r: r[1] * step)
    chain = [anchor]
    for r in same:
        last = chain[-1]
        if (r[1] - last[1]) * step <= 0.5:
            continue
        lo, hi = sorted((last[1], r[1]))
        if hi - lo > MAX_BAND:
            break
        band = [ln for ln in lines if lo < (ln[1] + ln[3]) / 2 < hi and _overlap(ln[0], ln[2], last[0], last[2]) > 0]
        if any(ln[0] < last[0] - OUTSIDE or ln[2] > last[2] + OUTSIDE for ln in band):
            break  # body text around the table, not cells
        if any(lo < (c[1] + c[3]) / 2 < hi and _overlap(c[0], c[2], last[0], last[2]) > 0 for c in caps):
            break  # another figure's or table's caption
        chain.append(r)
    return chain


def _region(cap: BBox, rules: list[BBox], verticals: Sequence[BBox], lines: list[BBox],
            caps: list[BBox]) -> tuple[BBox, BBox] | None:
    """(where the table's words are, the box of its rules) for a caption, or None."""
    width = cap[2] - cap[0]
    col = [r for r in rules if _overlap(r[0], r[2], cap[0], cap[2]) >= 0.5 * min(width, r[2] - r[0])
           and r[2] - r[0] >= 0.6 * width]  # (rules under one column of a wide table's caption: not its rules)
    above = [r for r in col if -2 <= cap[1] - r[1] <= CAPTION_GAP]  # caption under the table
    below = [r for r in col if -2 <= r[1] - cap[3] <= CAPTION_GAP]  # caption over the table
    if not above and not below:
        return None
    up = max(above, key=lambda r: r[1]) if above else None
    down = min(below, key=lambda r: r[1]) if below else None
    over = up is not None and (down is None or cap[1] - up[1] <= down[1] - cap[3])  # the table is over the caption
    if over:
        assert up is not None
        chain = _chain(up, [r for r in col if r[1] < cap[1]], -1, lines, caps)
    else:
        assert down is not None
        chain = _chain(down, [r for r in col if r[1] > cap[3]], 1, lines, caps)
    x0, x1 = min(r[0] for r in chain), max(r[2] for r in chain)
    y0, y1 = min(r[1] for r in chain), max(r[3] for r in chain)
    grown = True
    while grown:  # column rules that touch the region extend it (a table with a midrule and || rules)
        grown = False
        for v in verticals:
            if x0 - 2 <= v[0] <= x1 + 2 and v[1] <= y1 + 5 and v[3] >= y0 - 5 and (v[1] < y0 - 0.5 or v[3] > y1 + 0.5):
                y0, y1, grown = min(y0, v[1]), max(y1, v[3]), True
    if y1 - y0 < 12 or (cap[1] < y1 < cap[3]) or (y0 < cap[1] < y1):
        return None
    if (cap[1] - y1 if over else y0 - cap[3]) > CAPTION_GAP_REGION:
        return None
    # the words may run under the whole caption (a first column without rules)
    return (min(x0, cap[0]), y0, max(x1, cap[2]), y1), (x0, y0, x1, y1)


def _dehyphen(text: str) -> str:
    return re.sub(r"(\w)- (?=[a-z])", r"\1", text)


def _band_grid(rows: list[_Row], cols: list[tuple[float, float]], inner: Sequence[float]) -> Cells:
    """The grid, band by band between the interior rules; a band's lines are one row when only its first line
    starts a row and the others hold text (a cell wrapped over lines: the first column is empty on the
    continuation lines; lines of numbers are rows of their own, under a label centred on them)."""
    bands: dict[int, list[_Row]] = {}
    for r in rows:
        bands.setdefault(sum(y < r.y0 for y in inner), []).append(r)
    out: list[tuple[str, ...]] = []
    for band in bands.values():
        grid = _grid(band, cols)
        more = [c for r in grid[1:] for c in r if c]
        if (len(grid) > 1 and grid[0][0] and not any(r[0] for r in grid[1:])
                and sum(len(c.split()) >= 3 for c in more) * 2 >= len(more)):  # wrapped text, not numbers
            out.append(tuple(_dehyphen(" ".join(r[j] for r in grid if r[j])) for j in range(len(cols))))
        else:
            out += grid
    return tuple(out)


def caption_tables(page_dict: dict[str, Any], pno: int, words: Sequence[Word], rules: Sequence[BBox],
                   verticals: Sequence[BBox] = (), taken: Sequence[BBox] = (), gap_em: float = 0.5) -> list[Block]:
    """Table blocks for the page's "Table N" captions that sit next to horizontal rules; ``taken``: regions
    already read as tables (left alone)."""
    caps = table_captions(page_dict)
    if not caps or not rules:
        return []
    rules = _dedupe(rules)
    lines = [tuple(ln["bbox"]) for b in page_dict["blocks"] if b.get("type", 0) == 0 for ln in b["lines"]
             if "".join(s["text"] for s in ln["spans"]).strip()]
    all_caps = caps + [tuple(b["bbox"]) for b in page_dict["blocks"] if b.get("type", 0) == 0 and re.match(
        r"^\s*(figure|fig\.)\s*\d+", _first_line(b), re.I)]
    out: list[Block] = []
    for cap in caps:
        found = _region(cap, rules, verticals, lines, [c for c in all_caps if c != cap])  # type: ignore[arg-type]
        if found is None:
            continue
        box, ruled = found
        if any(_overlap(box[1], box[3], t[1], t[3]) > 2 and _overlap(box[0], box[2], t[0], t[2]) > 2
                              for t in [*taken, *(b.bbox for b in out if b.bbox)]):
            continue
        mid = [w for w in words if box[1] < (w[1] + w[3]) / 2 < box[3]]
        if any(box[0] - EDGE < w[2] and w[0] < box[2] + EDGE and not inside(w, box, 1.0) for w in mid):
            continue  # words run on past the region (cells without rules): not the whole table, leave it
        rows = _rows([w for w in mid if inside(w, box, 1.0)], gap_em)
        if len(rows) < 2 or sum(len(r.segs) >= 2 for r in rows) < 2:
            continue
        cols = _columns(rows)
        if len(cols) < 2:
            continue
        inner = [r[1] for r in rules if box[1] + 1 < r[1] < box[3] - 1 and _overlap(r[0], r[2], box[0], box[2]) > 0]
        # rules between body rows too (more than a midrule): a band between two rules is a row
        grid = _band_grid(rows, cols, inner) if len(inner) >= 2 else _grid(rows, cols)
        if len(grid) < 2:
            continue
        bbox: BBox = (min(ruled[0], *(s.x0 for r in rows for s in r.segs)), box[1],
                      max(ruled[2], *(s.x1 for r in rows for s in r.segs)), box[3])
        out.append(Block(text=to_markdown(grid), page=pno, bbox=bbox, kind="table", cells=grid))
    return out
