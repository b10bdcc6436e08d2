"""Split parsed blocks into pieces (future chunks).

Structure first: a heading closes the section before it and opens a heading path carried by every piece
under it; a piece never spans two pages (so a citation has one page); a table is its own piece and is split
only between rows, repeating its header row; an image is its own piece. A text section longer than
``chunk_chars`` is cut at semantic breakpoints (``SemanticSplitter``) or, without one, packed by sentences.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.embedder import Embedder
from core.types import BBox, ChunkKind
from ingest.blocks import Block

CAPTION_CHARS = 400  # of a table's caption, repeated at the top of each of its pieces
SENT_RE = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


@dataclass(frozen=True)
class Piece:
    text: str
    page: int | None
    bbox: BBox | None
    kind: ChunkKind
    heading_path: tuple[str, ...]
    image: str = ""  # image pieces: the saved image file (relative to the files folder)
    ocr_confidence: float | None = None  # lowest OCR confidence of its blocks; None = no OCR text in it


def _union(a: BBox | None, b: BBox | None) -> BBox | None:
    if a is None:
        return b
    if b is None:
        return a
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def sentences(text: str, limit: int) -> list[str]:
    """Sentence split; a sentence longer than ``limit`` is cut at spaces, then hard."""
    out: list[str] = []
    for s in SENT_RE.split(text):
        s = s.strip()
        while len(s) > limit:
            cut = s.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            out.append(s[:cut].strip())
            s = s[cut:].strip()
        if s:
            out.append(s)
    return out


def pack(units: Sequence[str], limit: int, sep: str = " ") -> list[list[int]]:
    """Greedy packing of unit indices into groups of at most ``limit`` characters."""
    groups: list[list[int]] = []
    size = 0
    for i, u in enumerate(units):
        if groups and size + len(sep) + len(u) <= limit:
            groups[-1].append(i)
            size += len(sep) + len(u)
        else:
            groups.append([i])
            size = len(u)
    return groups


class LexicalEmbedder:
    """Free sentence vectors for the splitter: hashed, log-scaled term counts of BM25 tokens (stemmed,
    stopwords dropped), L2-normalised. Breakpoints on these are TextTiling (Hearst 1997) with the semantic
    splitter's percentile rule; no model runs, so it costs ~nothing next to the chunk embedding."""

    def __init__(self, dim: int = 2048) -> None:
        self.dim = dim

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        from retrieval.sparse import tokenize

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in tokenize(t):
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        out = np.log1p(out)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


class SemanticSplitter:
    """Embedding-similarity breakpoints, after Greg Kamradt's "semantic chunking" (as in llama-index's
    ``SemanticSplitterNodeParser``), made cheaper for a CPU: each sentence is embedded ONCE and the
    windowed embedding is the mean of a sentence and its neighbours (llama-index embeds the joined window
    text, ~3x the tokens). A breakpoint goes where the cosine distance between consecutive windows is
    above the ``percentile`` of the section's distances; groups are then kept between ``limit // 4`` and
    ``limit`` characters (merged or packed).

    Example: sentences about pumps, pumps, pumps, then tax, tax -> distances low, low, HIGH, low ->
    [pumps x3] [tax x2].
    """

    def __init__(self, embedder: Embedder, percentile: float = 90.0, window: int = 1) -> None:
        self.embedder = embedder
        self.percentile = percentile
        self.window = window

    def groups(self, sents: list[str], limit: int) -> list[list[int]]:
        if len(sents) < 3:
            return pack(sents, limit)
        emb = np.asarray(self.embedder.embed_batch(sents), dtype=np.float32)
        w = self.window
        win = np.stack([emb[max(0, i - w) : i + w + 1].mean(axis=0) for i in range(len(sents))])
        win /= np.linalg.norm(win, axis=1, keepdims=True) + 1e-9
        dist = 1.0 - np.sum(win[:-1] * win[1:], axis=1)  # dist[i]: between sentence i and i+1
        cut = float(np.percentile(dist, self.percentile))
        raw: list[list[int]] = [[0]]
        for i in range(1, len(sents)):
            if dist[i - 1] > cut:
                raw.append([i])
            else:
                raw[-1].append(i)
        out: list[list[int]] = []
        for g in raw:  # enforce the size limit inside a group
            for sub in pack([sents[i] for i in g], limit):
                out.append([g[j] for j in sub])
        merged: list[list[int]] = []
        for g in out:  # merge tiny groups into their predecessor when it fits
            size = sum(len(sents[i]) + 1 for i in g)
            if merged and (size < limit // 4 or sum(len(sents[i]) + 1 for i in merged[-1]) < limit // 4) and (
                    sum(len(sents[i]) + 1 for i in merged[-1]) + size <= limit):
                merged[-1] += g
            else:
                merged.append(g)
        return merged


def _ocr(blocks: Sequence[Block]) -> float | None:
    confs = [b.ocr_confidence for b in blocks if b.ocr_confidence is not None]
    return min(confs) if confs else None


def _table_pieces(b: Block, limit: int, path: tuple[str, ...]) -> list[Piece]:
    """One piece per table, or several split between rows, each repeating the caption and the header row."""
    cap = [b.caption[:CAPTION_CHARS]] if b.caption else []
    if len(b.text) <= limit * 1.5:
        return [Piece("\n".join([*cap, b.text]), b.page, b.bbox, "table", path, ocr_confidence=b.ocr_confidence)]
    lines = b.text.split("\n")
    head, rows = cap + lines[:2], lines[2:]
    head_len = sum(len(x) + 1 for x in head)
    groups = pack(rows, max(limit - head_len, 1), sep="\n")
    return [Piece("\n".join(head + [rows[i] for i in g]), b.page, b.bbox, "table", path,
                  ocr_confidence=b.ocr_confidence) for g in groups]


def split_blocks(blocks: Sequence[Block], chunk_chars: int = 1200,
                 semantic: SemanticSplitter | None = None) -> list[Piece]:
    pieces: list[Piece] = []
    headings: list[str] = []
    section: list[Block] = []

    def flush() -> None:
        if not section:
            return
        path = tuple(h for h in headings if h)
        page = section[0].page
        total = sum(len(b.text) + 1 for b in section)
        if total <= chunk_chars:
            bbox: BBox | None = None
            for b in section:
                bbox = _union(bbox, b.bbox)
            pieces.append(Piece("\n".join(b.text for b in section), page, bbox, "text", path,
                                ocr_confidence=_ocr(section)))
        else:
            sents: list[str] = []
            owner: list[int] = []
            for bi, b in enumerate(section):
                for s in sentences(b.text, chunk_chars):
                    sents.append(s)
                    owner.append(bi)
            groups = semantic.groups(sents, chunk_chars) if semantic else pack(sents, chunk_chars)
            for g in groups:
                bbox = None
                parts: list[str] = []
                for j, i in enumerate(g):  # a new source block starts a new line
                    new_block = j > 0 and owner[i] != owner[g[j - 1]]
                    parts.append(("\n" if new_block else " ") + sents[i] if j else sents[i])
                    bbox = _union(bbox, section[owner[i]].bbox)
                pieces.append(Piece("".join(parts), page, bbox, "text", path,
                                    ocr_confidence=_ocr([section[owner[i]] for i in g])))
        section.clear()

    for b in blocks:
        if section and b.page != section[0].page:
            flush()
        if b.heading_level:
            flush()
            del headings[b.heading_level - 1 :]
            headings += [""] * (b.heading_level - 1 - len(headings))
            headings.append(b.text[:160])
            continue
        if b.kind == "table":
            flush()
            pieces += _table_pieces(b, chunk_chars, tuple(h for h in headings if h))
        elif b.kind == "image":
            flush()
            pieces.append(Piece(b.text, b.page, b.bbox, "image", tuple(h for h in headings if h), b.image_path,
                                b.ocr_confidence))
        else:
            section.append(b)
    flush()
    return pieces
