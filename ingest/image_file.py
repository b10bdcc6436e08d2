"""Image files as documents (``ragent ingest photo.png``): PNG, JPEG, WebP, TIFF, GIF become a one-page document
(a multi-page TIFF: a page a frame).

- The file is opened with Pillow, which reads the size from the header without decoding: an image over
  ``MAX_PIXELS`` is refused before any pixel is decoded (a decompression bomb costs nothing), a file Pillow
  cannot identify or decode (corrupt, truncated, another format) is an ``IngestError`` that says so. A
  multi-page TIFF (a scanned document) is a page a frame, as PyMuPDF pages it (up to ``RAGENT_MAX_PAGES``); of
  an animated GIF/WebP the first frame is read, with a warning.
- The image is saved as ``image.png`` (``page<n>.png``) in the document's files folder: one image chunk a page
  (kind "image") that the images route serves and the vision model describes when ``RAGENT_VLM_BASE_URL`` is set
  (``describe_images`` in the pipeline adds its description after the chunk's first line).
- Tesseract reads it (``RAGENT_OCR`` not off) like a scanned page: its text blocks become text chunks on their page
  with bboxes in the page's points (the coordinates PyMuPDF gives the image file when it opens it as a document,
  so the page image the citation viewer renders lines up); a small image is enlarged 2x first (Tesseract wants
  ~300 dpi text). Text read with < 2 words or < 50% confidence is noise from a photo: dropped.
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import IngestError
from ingest.blocks import Block, ParsedDoc
from ingest.ocr import OcrConfig, OcrUnavailable, read_png

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".gif"})
MAX_PIXELS = 40_000_000  # the same bound as images inside documents (ingest.images) and OCR renders
UPSCALE_BELOW = 1200  # pixels on the longer side: enlarge 2x for OCR
DEFAULT_DPI = 96.0  # PyMuPDF's resolution for an image file that does not say


def _page_widths(path: Path) -> list[float]:
    """Width in points of each page PyMuPDF makes of the file (it honours the file's resolution; a multi-page
    TIFF is one page a frame); [] for the formats it cannot open (WebP)."""
    import pymupdf

    try:
        with pymupdf.open(path) as doc:
            return [page.rect.width for page in doc]
    except Exception:  # WebP and other formats MuPDF does not read: the page is the saved PNG's
        return []


def _dpi(info: dict[Any, Any]) -> float:
    dpi = info.get("dpi")
    x = float(dpi[0]) if isinstance(dpi, tuple) and dpi and dpi[0] else DEFAULT_DPI
    return x if 20 <= x <= 2400 else DEFAULT_DPI


def _flat(im: Any) -> Any:
    """The frame as RGB or grey, transparent pixels on white (as a viewer shows them)."""
    from PIL import Image

    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        flat = Image.new("RGB", im.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return im.convert("L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB")


def _frames(path: Path, max_pixels: int, max_pages: int, warnings: list[str]) -> Iterator[tuple[int, Any, float, int]]:
    """(page number, the frame as an RGB/grey Pillow image, its dpi, pages) a page: every frame of a TIFF (a
    scanned document's pages), the first frame of anything else (an animation: a warning says so)."""
    from PIL import Image, UnidentifiedImageError

    bad = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)
    widths: list[float] | None = None
    try:
        im = Image.open(path)
    except bad as e:
        raise IngestError(f"{path.name}: not a readable image (corrupt, truncated or another format): {e}; "
                          "open it in an image viewer and save it again") from e
    with im:
        frames = int(getattr(im, "n_frames", 1) or 1)
        pages = frames if im.format == "TIFF" else 1
        if pages > max_pages:
            raise IngestError(f"{path.name}: {pages} pages is over the limit of {max_pages}; raise RAGENT_MAX_PAGES "
                              "or split the file")
        if frames > pages:
            warnings.append(f"only the first of the image's {frames} frames was read (an animation)")
        for i in range(pages):
            try:
                im.seek(i)
                w, h = im.size
                if w * h > max_pixels:
                    where = f" (page {i + 1})" if frames > 1 else ""
                    raise IngestError(f"{path.name}{where}: {w}x{h} pixels ({w * h / 1e6:.0f} MP) is over the limit "
                                      f"of {max_pixels / 1e6:.0f} MP; downscale the image (e.g. to 4000 px on the "
                                      "long side)")
                if w < 1 or h < 1:
                    raise IngestError(f"{path.name}: the image has no pixels ({w}x{h})")
                im.load()  # decode now: a truncated or corrupt file fails here, not later
                frame = _flat(im)
                if widths is None:  # (only once the size is known to be within bounds: MuPDF decodes it)
                    widths = _page_widths(path)
            except IngestError:
                raise
            except bad as e:
                raise IngestError(f"{path.name}: not a readable image (corrupt, truncated or another format): {e}; "
                                  "open it in an image viewer and save it again") from e
            dpi = w / widths[i] * 72.0 if i < len(widths) and widths[i] > 0 else _dpi(dict(im.info))
            yield i + 1, frame, dpi, pages


def _png(im: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _ocr_blocks(im: Any, dpi: float, ocr: OcrConfig, warnings: list[str], name: str, pno: int
                ) -> list[Block]:
    """Text blocks Tesseract reads in the image, bboxes in page points; [] when it reads only noise."""
    from PIL import Image

    grey = im.convert("L")
    scale = 2 if max(grey.size) < UPSCALE_BELOW and grey.size[0] * grey.size[1] * 4 <= MAX_PIXELS else 1
    if scale > 1:
        grey = grey.resize((grey.size[0] * 2, grey.size[1] * 2), Image.Resampling.LANCZOS)
    try:
        page = read_png(_png(grey), ocr, max(1, round(dpi * scale)))
    except OcrUnavailable as e:
        warnings.append(str(e))
        return []
    except IngestError as e:  # Tesseract failed or timed out on this image: keep the image chunk
        logger.warning("%s: OCR failed (%s)", name, e)
        warnings.append(f"OCR failed ({e})")
        return []
    k = (dpi * scale) / round(dpi * scale)  # read_png's points assume the rounded dpi
    if len(page.text.split()) < 2 or page.confidence < 0.5:
        return []
    blocks = []
    for b in page.dict["blocks"]:
        text = re.sub(r"\s+", " ", " ".join(s["text"] for ln in b["lines"] for s in ln["spans"])).strip()
        if text:
            x0, y0, x1, y1 = (v / k for v in b["bbox"])
            blocks.append(Block(text=text, page=pno, bbox=(x0, y0, x1, y1), ocr_confidence=page.confidence))
    return blocks


def parse_image(path: Path, *, files_dir: Path | None = None, ocr: OcrConfig | None = None,
                max_pixels: int = MAX_PIXELS, max_pages: int = 3000) -> ParsedDoc:
    """An image file as a document, one page a TIFF frame (one page for other formats): per page an image chunk
    (saved as ``image.png``, or ``page<n>.png`` for a multi-page TIFF, under ``files_dir``) and the text
    Tesseract reads in it."""
    ocr = ocr or OcrConfig()
    warnings: list[str] = []
    blocks: list[Block] = []
    pages = read = 0
    for pno, im, dpi, pages in _frames(path, max_pixels, max_pages, warnings):
        saved = ""
        if files_dir is not None:
            files_dir.mkdir(parents=True, exist_ok=True)
            saved = "image.png" if pages == 1 else f"page{pno}.png"
            (files_dir / saved).write_bytes(_png(im))
        texts = _ocr_blocks(im, dpi, ocr, warnings, path.name, pno) if ocr.mode != "off" else []
        read += bool(texts)
        seen = " ".join(b.text for b in texts)
        page_box = (0.0, 0.0, im.size[0] * 72.0 / dpi, im.size[1] * 72.0 / dpi)
        head = f"Image: {path.name}" + (f", page {pno}" if pages > 1 else "")
        blocks.append(Block(text="\n".join(p for p in (head, seen[:300]) if p), page=pno, bbox=page_box,
                            kind="image", image_path=saved, ocr_confidence=texts[0].ocr_confidence if texts else None))
        blocks += texts
    if not read:
        warnings.append("no text was read in the image" + (" (RAGENT_OCR=off)" if ocr.mode == "off" else "")
                        + "; it is found by its name and, with RAGENT_VLM_BASE_URL set, the vision model's description")
    return ParsedDoc(title=path.stem[:200], pages=pages, blocks=blocks, images_seen=pages, ocr_pages=read,
                     warnings=tuple(dict.fromkeys(warnings)))
