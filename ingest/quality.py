"""Extraction quality measures against ground truth (used by tests and bench/ingest.py).

- ``text_recall``: the share of ground-truth word tokens (multiset) found in the extracted text.
- ``cell_f1``: F1 of normalised non-empty table cell texts (multiset) against ICDAR 2013 ``*-str.xml`` cells.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> Counter[str]:
    return Counter(w.lower() for w in WORD_RE.findall(text))


def text_recall(groundtruth_md: str, extracted: str) -> float:
    """Fraction of ground-truth words found (with multiplicity) in the extracted text. Markdown syntax,
    image placeholders and HTML comments in the ground truth are ignored."""
    gt = re.sub(r"<!--.*?-->|!\[[^\]]*\]\([^)]*\)", " ", groundtruth_md, flags=re.S)
    g, e = words(gt), words(extracted)
    total = sum(g.values())
    return sum((g & e).values()) / total if total else 1.0


def _norm(cell: str) -> str:
    return re.sub(r"\s+", " ", cell).strip().lower()


def icdar_cells(str_xml: Path) -> list[str]:
    """The non-empty cell texts of every table in an ICDAR 2013 structure file."""
    root = ET.parse(str_xml).getroot()
    return [n for c in root.iter("cell") if (n := _norm(c.findtext("content") or ""))]


def cell_f1(truth: Iterable[str], predicted: Iterable[str | None]) -> float:
    g = Counter(_norm(c) for c in truth if c and _norm(c))
    p = Counter(_norm(c) for c in predicted if c and _norm(c))
    tp = sum((g & p).values())
    if not tp:
        return 0.0
    prec, rec = tp / sum(p.values()), tp / sum(g.values())
    return 2 * prec * rec / (prec + rec)
