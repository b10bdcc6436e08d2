"""The UI's pure helpers: bbox highlight on a page PNG, SSE parsing, bench JSON -> plottable rows."""

from __future__ import annotations

import io

from PIL import Image

from app.ui.client import ApiClient, ApiError, iter_sse
from app.ui.render import highlight, numeric_rows


def _png(w: int = 200, h: int = 300) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "white").save(buf, "PNG")
    return buf.getvalue()


def test_highlight_outlines_the_bbox_scaled_to_pixels() -> None:
    img = highlight(_png(), (10, 20, 50, 40), scale=2.0)  # PDF points -> pixels at 144 dpi
    assert img.size == (200, 300)
    assert img.getpixel((19, 60)) != (255, 255, 255)  # left edge of the box (x0*2 - pad .. )
    inside = img.getpixel((60, 60))
    assert inside != (255, 255, 255) and inside[2] < inside[0]  # tinted yellow
    assert img.getpixel((150, 200)) == (255, 255, 255)  # far away: untouched
    assert highlight(_png(), None, 1.0).getpixel((5, 5)) == (255, 255, 255)


def test_iter_sse_parses_events_and_stops_at_done() -> None:
    lines = ["id: 1", "event: token", 'data: {"type": "token", "text": "Hi"}', "",
             'data: {"type": "answer", "answer": {}}', "", "data: [DONE]", ""]
    assert [e["type"] for e in iter_sse(iter(lines))] == ["token", "answer"]


def test_numeric_rows_from_tables_or_flat_metrics() -> None:
    assert numeric_rows({"rows": [{"path": "dense", "recall@10": 0.8}, {"path": "note"}]}) == [
        {"path": "dense", "recall@10": 0.8}]
    assert numeric_rows({"tok_s": 15.9, "name": "x", "ok": True}) == [{"metric": "tok_s", "value": 15.9}]
    assert numeric_rows({"meta": {}, "by_k": [{"k": 5, "hit": 0.9}]}) == [{"k": 5, "hit": 0.9}]


def test_client_reports_an_unreachable_api_with_a_hint() -> None:
    c = ApiClient("http://127.0.0.1:9", timeout=2)
    try:
        c.documents("demo")
    except ApiError as e:
        assert "ragent api" in str(e) and "RAGENT_API_URL" in str(e)
    else:
        raise AssertionError("expected ApiError")


def test_chat_shows_the_short_answer_then_the_checked_explanation() -> None:
    from app.ui.render import answer_markdown

    assert answer_markdown({"short_answer": "5 kW", "answer": "It has 5 kW [1]."}) == "**5 kW**\n\nIt has 5 kW [1]."
    assert answer_markdown({"answer": "old-style answer [1]."}) == "old-style answer [1]."
