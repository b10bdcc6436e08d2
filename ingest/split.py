"""Split parsed blocks into chunks: blocks are packed up to ``chunk_chars``, never across pages, and a
heading stays with the text that follows it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.types import BBox, ChunkKind
from ingest.parse import Block


@dataclass(frozen=True)
class Piece:
    text: str
    page: int | None
    bbox: BBox | None
    kind: ChunkKind
    heading_path: tuple[str, ...]


def _union(a: BBox | None, b: BBox | None) -> BBox | None:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _split_long(text: str, limit: int) -> list[str]:
    """Split an over-long block at sentence ends, then hard, so no piece exceeds ``limit``."""
    if len(text) <= limit:
        return [text]
    out, cur = [], ""
    for sent in re.split(r"(?<=[.!?])\s+", text):
        while len(sent) > limit:
            out.append(sent[:limit])
            sent = sent[limit:]
        if cur and len(cur) + 1 + len(sent) > limit:
            out.append(cur)
            cur = sent
        else:
            cur = f"{cur} {sent}".strip()
    if cur:
        out.append(cur)
    return out


def split_blocks(blocks: list[Block], chunk_chars: int = 1200) -> list[Piece]:
    pieces: list[Piece] = []
    headings: list[str] = []
    buf: list[str] = []
    bbox: BBox | None = None
    page: int | None = None

    def flush() -> None:
        nonlocal buf, bbox
        if buf:
            pieces.append(Piece("\n".join(buf), page, bbox, "text", tuple(headings)))
        buf, bbox = [], None

    for b in blocks:
        if b.page != page:
            flush()
            page = b.page
        if b.heading_level:
            flush()
            headings[b.heading_level - 1 :] = [b.text[:120]]
            continue
        for part in _split_long(b.text, chunk_chars):
            if buf and sum(len(x) for x in buf) + len(part) > chunk_chars:
                flush()
            buf.append(part)
            bbox = _union(bbox, b.bbox)
    flush()
    return pieces
