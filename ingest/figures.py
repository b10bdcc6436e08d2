"""Figures drawn as vector graphics (most papers' charts and diagrams): no raster image to save, so they used to
yield nothing. A figure is a cluster of drawing paths next to a "Figure N" / "Fig. N" caption: the paths are
merged into clusters (rects within ``GAP`` points of each other), and each caption not already next to a raster
image takes the largest cluster just above it (or just below, for captions set above their figure).

Example: page 13 of "Attention Is All You Need" draws its attention map with ~600 rects; they merge into one
cluster above "Figure 3: An example of the attention mechanism ...", which becomes a figure block whose bbox is
the cluster's and whose text is the caption plus the words drawn inside it.
"""

from __future__ import annotations

import re
from typing import Any

from core.types import BBox

FIG_CAPTION = re.compile(r"^\s*(figure|fig\.)\s*\d+", re.I)
GAP = 12.0  # points: paths closer than this belong to one figure
MIN_PATHS = 4  # fewer paths next to a caption: a rule or a frame, not a figure
MAX_PATHS = 20_000  # a page drawn with more paths is read as it is (bounded work)


def _near(a: BBox, b: BBox, gap: float) -> bool:
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]


def _union(a: BBox, b: BBox) -> BBox:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def clusters(rects: list[BBox], gap: float = GAP) -> list[tuple[BBox, int]]:
    """(bbox, number of paths) of groups of rects that touch within ``gap``, merged until stable."""
    groups: list[tuple[BBox, int]] = []
    for r in sorted(rects, key=lambda r: (r[1], r[0])):
        hit = [i for i, (g, _) in enumerate(groups) if _near(g, r, gap)]
        box, n = r, 1
        for i in reversed(hit):
            box, n = _union(box, groups[i][0]), n + groups[i][1]
            del groups[i]
        groups.append((box, n))
    merged = True
    while merged:  # a later rect can bridge two groups made earlier
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                if _near(groups[i][0], groups[j][0], gap):
                    groups[i] = (_union(groups[i][0], groups[j][0]), groups[i][1] + groups[j][1])
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return groups


def captions(page_dict: dict[str, Any]) -> list[tuple[BBox, str]]:
    """(bbox, text) of the page's text blocks that start like a figure caption."""
    out = []
    for b in page_dict["blocks"]:
        if b.get("type", 0) != 0:
            continue
        text = " ".join("".join(s["text"] for s in ln["spans"]) for ln in b["lines"]).strip()
        if FIG_CAPTION.match(text):
            out.append((tuple(b["bbox"]), re.sub(r"\s+", " ", text)))
    return out  # type: ignore[return-value]


def vector_figures(page: Any, page_dict: dict[str, Any], taken: list[BBox], min_frac: float = 0.02
                   ) -> list[tuple[BBox, str]]:
    """(bbox, caption) of the page's vector figures; ``taken``: regions already read (tables, raster images)."""
    caps = [c for c in captions(page_dict)
            if not any(_near(t, c[0], 60) and t[0] < c[0][2] and c[0][0] < t[2] for t in taken)]
    if not caps:
        return []
    drawings = page.get_cdrawings()
    if len(drawings) > MAX_PATHS:
        return []
    rects: list[BBox] = [tuple(d["rect"]) for d in drawings  # type: ignore[misc]
                         if not any(_inside(tuple(d["rect"]), t) for t in taken)]
    area = page.rect.width * page.rect.height
    groups = [(g, n) for g, n in clusters(rects) if n >= MIN_PATHS and
              (g[2] - g[0]) * (g[3] - g[1]) >= min_frac * area and (g[2] - g[0]) < 0.98 * page.rect.width]
    out: list[tuple[BBox, str]] = []
    used: set[int] = set()
    for cap_box, text in caps:
        def dist(g: BBox, cb: BBox = cap_box) -> float:
            above = cb[1] - g[3]  # the figure ends above the caption
            below = g[1] - cb[3]  # the figure starts below a caption set above it
            if g[1] < cb[1] < g[3]:  # paths run past the caption (an axis, a frame): the figure is above it
                return 0.0
            return above if above >= -4 else below + 20 if below >= -4 else 1e9

        near = [i for i, (g, _) in enumerate(groups) if i not in used and g[0] < cap_box[2] and cap_box[0] < g[2]
                and dist(g) <= 80]
        if near:
            i = max(near, key=lambda i: (groups[i][0][2] - groups[i][0][0]) * (groups[i][0][3] - groups[i][0][1]))
            used.add(i)
            g = groups[i][0]
            if g[1] < cap_box[1] < g[3]:
                g = (g[0], g[1], g[2], cap_box[1] - 2)
            if (g[2] - g[0]) * (g[3] - g[1]) >= min_frac * area:
                out.append((g, text))
    return out


def _inside(r: BBox, t: BBox, tol: float = 2.0) -> bool:
    return r[0] >= t[0] - tol and r[1] >= t[1] - tol and r[2] <= t[2] + tol and r[3] <= t[3] + tol
