"""OCR with Tesseract (Debian's ``tesseract-ocr`` + ``tesseract-ocr-<lang>``), run on PyMuPDF renders.

- ``needs_ocr``: a page without a usable text layer (a scan, a photographed page, a text layer of garbage)
  that shows an image; blank pages are not OCRed.
- ``ocr_page``: the page rendered at ``dpi`` and read by Tesseract into the same shape as PyMuPDF's
  ``get_text("dict")`` (blocks, lines, spans with bboxes in page points) plus its words, so the parser reads
  OCR text, headings and borderless tables exactly like a native text layer.
- ``ocr_pixmap``: the text inside one image (screenshots, diagrams, scanned tables).

Tesseract runs as its CLI with TSV output, one thread per call (``OMP_THREAD_LIMIT=1``: 0.5 s a 200-dpi page
here against 2.1 s with OpenMP's threads on 2 cores). PyMuPDF's own ``Page.get_textpage_ocr`` was measured
first and dropped every cell of a ruled table on a clean 200-dpi render of examples/' manual (the CLI reads
them all), and it gives no word confidences; the TSV gives both words and Tesseract's confidence per word.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from core.config import OcrMode, OcrSettings
from core.errors import IngestError
from ingest.scan_rules import scan_rules

logger = logging.getLogger(__name__)

MIN_TEXT_CHARS = 25  # fewer non-space characters on a page (with an image on it) = no usable text layer
BAR_RE = re.compile(r"^[|\u2502\u00a6]+$")  # what Tesseract reads off a vertical rule
_WORD = re.compile(r"^[(\[\"'“‘]*([A-Za-z][a-z]*(['’-][A-Za-z]+)*|[A-Z]+s?|[$€£]?\d+([.,:/-]\d+)*%?|[A-Za-z]+\d+"
                   r"|\d+[A-Za-z]{1,3})[)\]\"'”’.,;:!?]*$")
_LANG = re.compile(r"^[A-Za-z_]+(\+[A-Za-z_]+)*$")


@dataclass(frozen=True)
class OcrConfig(OcrSettings):
    """How PDFs and images are OCRed: ``core.config.OcrSettings`` (``RAGENT_OCR``, ``RAGENT_OCR_LANGUAGES``,
    ``RAGENT_OCR_DPI``, the one copy of their defaults) plus what only the reader needs."""

    min_image_px: int = 100  # images smaller than this on both sides are not read (icons, bullets)

    @classmethod
    def of(cls, s: OcrSettings) -> OcrConfig:
        return cls(mode=s.mode, languages=s.languages, dpi=s.dpi)


class OcrUnavailable(IngestError):
    """Tesseract's language data is missing: says which Debian packages to install."""


@lru_cache(maxsize=8)
def tessdata(languages: str) -> str:
    """The tessdata folder holding every requested language; raises ``OcrUnavailable`` saying what to install."""
    if not _LANG.match(languages):
        raise OcrUnavailable(f"RAGENT_OCR_LANGUAGES={languages!r} is not a '+'-joined list of Tesseract "
                             "language codes (e.g. eng or eng+deu)")
    found = [os.environ.get("TESSDATA_PREFIX", "")]
    try:
        import pymupdf

        found.append(pymupdf.get_tessdata() or "")
    except Exception:  # get_tessdata raises when it finds nothing
        pass
    found += sorted(str(p) for p in Path("/usr/share/tesseract-ocr").glob("*/tessdata"))
    langs = languages.split("+")
    for d in (Path(p) for p in found if p):
        if all((d / f"{lang}.traineddata").is_file() for lang in langs):
            return str(d)
    pkgs = " ".join(f"tesseract-ocr-{lang}" for lang in langs)
    raise OcrUnavailable(f"OCR needs Tesseract with the language data for {languages}: install Debian's "
                         f"`tesseract-ocr {pkgs}` (`make ocr-deps`) or set TESSDATA_PREFIX to a folder with "
                         f"{', '.join(f'{lang}.traineddata' for lang in langs)}; or set RAGENT_OCR=off to skip OCR")


def quality(text: str) -> float:
    """Share of the words that are well-formed (0..1); 0 for no words."""
    words = text.split()
    if not words:
        return 0.0
    return sum(bool(_WORD.match(w)) for w in words) / len(words)


def usable(text: str) -> bool:
    """True when a text layer has enough readable characters to index as is."""
    chars = sum(1 for c in text if not c.isspace())
    bad = text.count("\ufffd") + sum(1 for c in text if 0xE000 <= ord(c) <= 0xF8FF)  # unmapped glyphs
    return chars >= MIN_TEXT_CHARS and bad <= 0.2 * chars


def image_cover(page: Any) -> float:
    """Share of the page area covered by its largest image (0..1)."""
    area = page.rect.width * page.rect.height or 1.0
    best = 0.0
    for info in page.get_image_info():
        x0, y0, x1, y1 = info["bbox"]
        best = max(best, max(0.0, x1 - x0) * max(0.0, y1 - y0) / area)
    return min(best, 1.0)


def needs_ocr(page: Any, native_text: str, mode: OcrMode) -> bool:
    """Whether a page is OCRed: always (force), never (off), or when it shows an image but has no usable text."""
    if mode == "off":
        return False
    if mode == "force":
        return True
    return not usable(native_text) and image_cover(page) >= 0.1


@lru_cache(maxsize=1)
def tesseract_bin() -> str:
    """The tesseract executable; raises ``OcrUnavailable`` saying what to install."""
    exe = shutil.which("tesseract")
    if exe is None:
        raise OcrUnavailable("OCR needs Tesseract: install Debian's `tesseract-ocr tesseract-ocr-eng` "
                             "(`make ocr-deps`), or set RAGENT_OCR=off to skip OCR (scanned pages are then refused)")
    return exe


@dataclass(frozen=True)
class OcrWord:
    bbox: tuple[float, float, float, float]  # page points
    text: str
    conf: float  # Tesseract's confidence, 0..100
    block: tuple[int, int]  # (block, paragraph)
    line: tuple[int, int, int]  # (block, paragraph, line)


def tesseract(png: bytes, cfg: OcrConfig, dpi: int, timeout_s: float = 120.0) -> list[OcrWord]:
    """Words Tesseract reads in a PNG, bboxes in points at ``dpi`` (pixels / dpi * 72)."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1", "TESSDATA_PREFIX": tessdata(cfg.languages)}
    try:
        out = subprocess.run([tesseract_bin(), "stdin", "stdout", "-l", cfg.languages, "--dpi", str(dpi), "tsv"],
                             input=png, capture_output=True, timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired as e:
        raise IngestError(f"Tesseract took over {timeout_s:.0f} s on one image") from e
    if out.returncode != 0:
        raise IngestError(f"Tesseract failed: {out.stderr.decode(errors='replace').strip()[-300:]}")
    k = 72.0 / dpi
    words = []
    for row in csv.DictReader(io.StringIO(out.stdout.decode("utf-8", errors="replace")), delimiter="\t",
                              quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        if row.get("level") != "5" or not text:
            continue
        x, y, w, h = (float(row[c]) for c in ("left", "top", "width", "height"))
        b, p, ln = int(row["block_num"]), int(row["par_num"]), int(row["line_num"])
        words.append(OcrWord((x * k, y * k, (x + w) * k, (y + h) * k), text, float(row["conf"]), (b, p), (b, p, ln)))
    return words


@dataclass(frozen=True)
class OcrPage:
    """One OCRed page: ``dict`` is shaped like ``page.get_text("dict")``; ``words`` like its "words"."""

    dict: dict[str, Any]
    words: list[tuple[float, float, float, float, str]]
    confidence: float  # mean word confidence, 0..1
    text: str
    rules: list[tuple[float, float, float, float]] = field(default_factory=list)  # table rules in the pixels
    verticals: list[tuple[float, float, float, float]] = field(default_factory=list)  # (ingest.scan_rules)


def _union(boxes: Iterator[tuple[float, float, float, float]]) -> tuple[float, float, float, float]:
    xs0, ys0, xs1, ys1 = zip(*boxes, strict=True)
    return min(xs0), min(ys0), max(xs1), max(ys1)


def _as_dict(words: list[OcrWord]) -> dict[str, Any]:
    """Tesseract's blocks/paragraphs/lines as PyMuPDF dict blocks; a span's size is its line's x-height-free
    height (the words' median box height), so heading detection compares OCR lines like native ones."""
    blocks: dict[tuple[int, int], dict[tuple[int, int, int], list[OcrWord]]] = {}
    for w in words:
        blocks.setdefault(w.block, {}).setdefault(w.line, []).append(w)
    out: list[dict[str, Any]] = []
    for lines in blocks.values():
        dlines: list[dict[str, Any]] = []
        for ws in lines.values():
            heights = sorted(w.bbox[3] - w.bbox[1] for w in ws)
            bbox = _union(w.bbox for w in ws)
            size = heights[len(heights) // 2]
            if dlines and not 1 / 1.15 <= size / max(dlines[-1]["spans"][0]["size"], 0.1) <= 1.15:
                # a heading Tesseract put in its paragraph's block: a line of another size starts a new block
                out.append({"type": 0, "bbox": _union(ln["bbox"] for ln in dlines), "lines": dlines})
                dlines = []
            span = {"text": " ".join(w.text for w in ws), "size": size, "flags": 0, "font": "OCR", "bbox": bbox}
            dlines.append({"bbox": bbox, "dir": (1.0, 0.0), "spans": [span]})
        out.append({"type": 0, "bbox": _union(ln["bbox"] for ln in dlines), "lines": dlines})
    return {"blocks": out}


def render_png(page: Any, dpi: int, max_pixels: int = 40_000_000) -> tuple[bytes, int]:
    """(grayscale PNG of the page, the dpi used): ``dpi`` lowered so the render stays under ``max_pixels``."""
    import pymupdf

    area_in = page.rect.width * page.rect.height / 72.0 / 72.0
    dpi = max(36, min(dpi, int((max_pixels / max(area_in, 1e-6)) ** 0.5)))
    return page.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY).tobytes("png"), dpi


def ocr_page(page: Any, cfg: OcrConfig) -> OcrPage:
    """The page rendered at ``cfg.dpi`` and read by Tesseract."""
    png, dpi = render_png(page, cfg.dpi)
    return read_png(png, cfg, dpi)


def read_png(png: bytes, cfg: OcrConfig, dpi: int) -> OcrPage:
    """A rendered page read by Tesseract (thread-safe: the work is a subprocess, so pages run in parallel), with
    the table rules drawn in its pixels (``ingest.scan_rules``); a "|" Tesseract read off a vertical rule is a
    rule, not a word."""
    import numpy as np
    import pymupdf

    words = [w for w in tesseract(png, cfg, dpi) if w.conf >= 0]
    pix = pymupdf.Pixmap(png)
    if pix.n != 1:
        pix = pymupdf.Pixmap(pymupdf.csGRAY, pix)
    rules, verticals = scan_rules(np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.stride)
                                  [:, : pix.width], dpi)
    words = [w for w in words if not (BAR_RE.match(w.text) and any(
        v[0] - 3 <= (w.bbox[0] + w.bbox[2]) / 2 <= v[0] + 3 and v[1] - 3 <= w.bbox[1] and w.bbox[3] <= v[3] + 3
        for v in verticals))]
    if verticals:  # a rule touching a word comes out glued to it: "(X)|", "|Margin"
        words = [replace(w, text=w.text.strip("|")) if "|" in (w.text[0], w.text[-1]) else w for w in words]
        words = [w for w in words if w.text]
    conf = sum(w.conf for w in words) / len(words) / 100.0 if words else 0.0
    d = _as_dict(words) if words else {"blocks": []}
    text = "\n".join(s["text"] for b in d["blocks"] for ln in b["lines"] for s in ln["spans"])
    return OcrPage(d, [(*w.bbox, w.text) for w in words], round(conf, 3), text, rules, verticals)


def image_text(pix: Any, cfg: OcrConfig, warnings: list[str], where: str) -> tuple[str, float | None]:
    """(text OCR reads in an image of a document, its confidence); ('', None) when there is none worth indexing:
    OCR off, an image too small, photos and drawings read as noise. A missing Tesseract is said once in
    ``warnings``; any other failure is logged (``where``: "page 3", "image x.png") and never stops the document."""
    if pix is None or cfg.mode == "off" or max(pix.width, pix.height) < cfg.min_image_px:
        return "", None
    try:
        text, conf = ocr_pixmap(pix, cfg)
    except OcrUnavailable as e:
        if str(e) not in warnings:
            warnings.append(str(e))
        return "", None
    except Exception as e:  # a corrupt image must not stop the document
        logger.warning("%s: OCR of an image failed (%s)", where, e)
        return "", None
    if len(text.split()) < 2 or conf < 0.5:  # noise: keep the caption, not the noise
        return "", None
    return text[:2000], conf


# In a figure (diagram, chart, photo) Tesseract reads labels well and invents words from strokes, arrows and
# shading at low confidence ("rropepaes" at 18, "&" at 0 in the Transformer's Figure 1): only words it is
# fairly sure of, holding a letter or digit, are indexed. A scanned page keeps every word (``read_png``): its
# text is the document, and its bboxes place citations.
MIN_WORD_CONF = 60.0
_WORDLIKE = re.compile(r"\w")


def ocr_pixmap(pix: Any, cfg: OcrConfig) -> tuple[str, float]:
    """(the words Tesseract reads in one image with confidence >= ``MIN_WORD_CONF``, the mean confidence 0..1
    of all it reads); ('', 0.0) when it reads none."""
    import pymupdf

    if pix.alpha or pix.colorspace is None or pix.colorspace.n not in (1, 3):
        pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
        if pix.alpha:
            pix = pymupdf.Pixmap(pix, 0)
    if pix.width * pix.height > 40_000_000:
        return "", 0.0
    words = [w for w in tesseract(pix.tobytes("png"), cfg, 300) if w.conf >= 0]
    if not words:
        return "", 0.0
    kept = " ".join(w.text for w in words if w.conf >= MIN_WORD_CONF and _WORDLIKE.search(w.text))
    return kept, round(sum(w.conf for w in words) / len(words) / 100.0, 3)
