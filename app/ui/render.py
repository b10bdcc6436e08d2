"""Pure helpers for the UI: highlight a cited bbox on a page image, turn benchmark JSON into plottable rows."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any


def highlight(png: bytes, bbox: Sequence[float] | None, scale: float, pad: float = 3.0) -> Any:
    """The page image (PIL) with ``bbox`` (PDF points, top-left origin) outlined and tinted in yellow."""
    from PIL import Image, ImageDraw

    img = Image.open(io.BytesIO(png)).convert("RGB")
    if not bbox or len(bbox) != 4:
        return img
    x0, y0, x1, y1 = (float(v) * scale for v in bbox)
    box = (max(0.0, x0 - pad), max(0.0, y0 - pad), min(img.width - 1.0, x1 + pad), min(img.height - 1.0, y1 + pad))
    overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(overlay).rectangle(box, fill=(255, 221, 0, 70), outline=(230, 80, 0, 255), width=3)
    return Image.alpha_composite(img.convert("RGBA"), overlay).convert("RGB")


def numeric_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows with numbers from one bench result: its first list of dicts, else its numeric top-level fields."""
    for key in ("rows", "results", "table", "runs"):
        rows = result.get(key)
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            return [r for r in rows if any(isinstance(v, int | float) and not isinstance(v, bool) for v in r.values())]
    for v in result.values():
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            return numeric_rows({"rows": v})
    flat = {k: v for k, v in result.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return [{"metric": k, "value": v} for k, v in flat.items()]


def answer_markdown(answer: dict[str, Any]) -> str:
    """The checked answer as the chat shows it: the short answer in bold, then the cited explanation (the
    streamed draft is replaced by this once the answer event arrives)."""
    short, expl = str(answer.get("short_answer") or ""), str(answer.get("answer") or "")
    return f"**{short}**\n\n{expl}".strip() if short else expl
