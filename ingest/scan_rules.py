"""A scanned page made readable for the table finders: the rules in its pixels, and the page rebuilt as text.

A text PDF draws its table rules as vector lines, which ``ingest.pdf._drawings`` reads; a scanned page has them
only as pixels, so its tables could be found from word positions alone (``ingest.text_tables``), and a booktabs
table (three rules under a "Table N" caption) was never found by its caption and rules
(``ingest.caption_tables``). This finds the same rules in the rendered page Tesseract reads: runs of dark pixels
at least ``MIN_RULE_FRAC`` of the page wide (horizontal) or ``MIN_VERTICAL_PT`` tall (vertical, longer than a
letter's stem), merged over the few pixel rows a stroke is thick. A band thicker than ``BAR_PT`` (a filled header
bar) gives its top and bottom edges, as a filled rectangle does in ``_drawings``.

``text_page`` then rebuilds the scan as what its text PDF would be: each OCR word written at its box (Helvetica,
the box's height, narrowed to its width) and each rule drawn as a line, so ``find_tables`` (which reads
characters and vector lines, and a scan has neither), the caption + rules finder and the word-gap finder all run
on a scan as they do on a text PDF. On the ICDAR 2013 table pages rendered at 200 dpi, cell F1 went from 0.661
(Tesseract's words alone) to 0.781; the text layer gives 0.923 (``bench/multimodal.py --scanned-tables``).

Example: a rule 300 pt wide drawn 1 pt thick at y = 100 on a 612 pt page, rendered at 200 dpi, comes back as
``(x0, 100 +- 0.4, x1, same y)`` with x0, x1 within a pixel (0.36 pt) of the drawing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.types import BBox

DARK = 128  # grey level (0 = black) below which a pixel is ink
MIN_RULE_FRAC = 0.1  # a horizontal rule spans at least this share of the page width (as in _drawings)
MIN_VERTICAL_PT = 14.0  # a vertical rule is taller than a letter's stem at body sizes
BAR_PT = 2.0  # a horizontal band thicker than this is a filled bar: its two edges are rules
MAX_BAR_PT = 24.0  # ... up to this thick; a thicker dark band is a picture, not a rule
MERGE_PX = 2  # runs this close (pixels, across the stroke) belong to one stroke


def _runs(dark: np.ndarray, min_len: int) -> list[tuple[int, int, int]]:
    """(row, start, end) of every run of True along the rows of ``dark`` at least ``min_len`` long."""
    padded = np.zeros((dark.shape[0], dark.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = dark
    d = np.diff(padded, axis=1)
    rs, starts = np.nonzero(d == 1)
    _, ends = np.nonzero(d == -1)  # row-major: the i-th end closes the i-th start
    keep = ends - starts >= min_len
    return list(zip(rs[keep].tolist(), starts[keep].tolist(), ends[keep].tolist(), strict=True))


def _strokes(runs: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Runs merged into strokes: (first row, last row, start, end) of runs on rows <= MERGE_PX apart that
    overlap along the run."""
    active: list[list[int]] = []  # [row0, row1, start, end]
    done: list[list[int]] = []
    for r, a, b in sorted(runs):
        keep: list[list[int]] = []
        for s in active:  # strokes that ended more than MERGE_PX rows above are complete
            (keep if r - s[1] <= MERGE_PX else done).append(s)
        active = keep
        for s in active:
            if a < s[3] and b > s[2]:
                s[1], s[2], s[3] = r, min(s[2], a), max(s[3], b)
                break
        else:
            active.append([r, r, a, b])
    return [(s[0], s[1], s[2], s[3]) for s in done + active]


def scan_rules(gray: np.ndarray, dpi: int) -> tuple[list[BBox], list[BBox]]:
    """(horizontal rules, vertical rules) in page points of a page rendered in grey at ``dpi``."""
    if gray.ndim != 2 or gray.size == 0:
        return [], []
    k = 72.0 / dpi
    dark = gray < DARK
    rules: list[BBox] = []
    for r0, r1, a, b in _strokes(_runs(dark, max(2, int(MIN_RULE_FRAC * gray.shape[1])))):
        x0, x1 = a * k, b * k
        if (r1 - r0 + 1) * k > MAX_BAR_PT:
            continue
        if (r1 - r0 + 1) * k > BAR_PT:
            rules += [(x0, r0 * k, x1, r0 * k), (x0, (r1 + 1) * k, x1, (r1 + 1) * k)]
        else:
            y = (r0 + r1 + 1) / 2 * k
            rules.append((x0, y, x1, y))
    verticals: list[BBox] = []
    for c0, c1, a, b in _strokes(_runs(dark.T, max(2, int(MIN_VERTICAL_PT / k)))):
        if (c1 - c0 + 1) * k <= BAR_PT:  # thin: a rule, not a filled column or a picture's edge
            x = (c0 + c1 + 1) / 2 * k
            verticals.append((x, a * k, x, b * k))
    return sorted(rules, key=lambda r: (r[1], r[0])), sorted(verticals)


def _lines(words: Sequence[tuple[float, float, float, float, str]]) -> list[list[int]]:
    """Indices of ``words`` grouped into text lines: vertical centres within 0.4 x the median word height."""
    if not words:
        return []
    med = float(np.median([w[3] - w[1] for w in words]))
    order = sorted(range(len(words)), key=lambda i: (words[i][1] + words[i][3]) / 2)
    lines: list[list[int]] = []
    centre = -1e9
    for i in order:
        c = (words[i][1] + words[i][3]) / 2
        if lines and abs(c - centre) <= 0.4 * med:
            lines[-1].append(i)
            centre += (c - centre) / len(lines[-1])
        else:
            lines.append([i])
            centre = c
    return lines


def text_page(words: Sequence[tuple[float, float, float, float, str]], rules: Sequence[BBox],
              verticals: Sequence[BBox], width: float, height: float) -> Any:
    """A one-page in-memory PDF (``pymupdf.Document``; the caller closes it) of ``width`` x ``height`` points
    with ``words`` written at their boxes and ``rules`` and ``verticals`` drawn as lines. The words of a line
    share its baseline (the median bottom of their boxes: most words have no descender) and a size from its
    median box height; each word's size is then fitted to its box's width, so the gaps between words, which
    the table finders read as column breaks, stay as they were scanned."""
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=width, height=height)
    font = pymupdf.Font("helv")
    writer = pymupdf.TextWriter(page.rect)
    for line in _lines(words):
        base = float(np.median([words[i][3] for i in line]))
        size = max(1.15 * float(np.median([words[i][3] - words[i][1] for i in line])), 1.0)
        for i in line:
            x0, _, x1, _, text = words[i]
            length = font.text_length(text, fontsize=size)
            if length <= 0 or x1 <= x0:
                continue
            fitted = min(max(size * (x1 - x0) / length, 0.5 * size), 2.0 * size)
            writer.append((x0, base), text, font=font, fontsize=fitted)
    writer.write_text(page)
    for x0, y0, x1, y1 in [*rules, *verticals]:
        page.draw_line((x0, y0), (x1, y1), width=0.5)
    return doc
