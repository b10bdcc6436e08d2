"""Image files as documents (``ragent ingest photo.png``): PNG, JPEG, WebP, TIFF, GIF become a one-page document.

- The file is opened with Pillow, which reads the size from the header without decoding: an image over
  ``MAX_PIXELS`` is refused before any pixel is decoded (a decompression bomb costs nothing), a file Pillow
  cannot identify or decode (corrupt, truncated, another format) is an ``IngestError`` that says so. Multi-frame
  GIF/TIFF: the first frame is read, with a warning.
- The image is saved as ``image.png`` in the document's files folder: one image chunk (kind "image") that the
  images route serves and the vision model describes when ``RAGENT_VLM_BASE_URL`` is set (``describe_images`` in
  the pipeline adds its description after the chunk's first line).
- Tesseract reads it (``RAGENT_OCR`` not off) like a scanned page: its text blocks become text chunks on page 1
  with bboxes in the page's points (the coordinates PyMuPDF gives the image file when it opens it as a document,
  so the page image the citation viewer renders lines up); a small image is enlarged 2x first (Tesseract wants
  ~300 dpi text). Text read with < 2 words or < 50% confidence is noise from a photo: dropped.
"""

from __future__ import annotations

import io
import logging
import re
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


def _page_dpi(path: Path, width_px: int, info: dict[Any, Any]) -> float:
    """Pixels per inch of the page PyMuPDF makes of the file (it honours the file's resolution); Pillow's
    ``dpi`` info for the formats PyMuPDF cannot open (WebP)."""
    import pymupdf

    try:
        with pymupdf.open(path) as doc:
            return width_px / doc[0].rect.width * 72.0
    except Exception:  # WebP and other formats MuPDF does not read: the page is the saved PNG's
        dpi = info.get("dpi")
        x = float(dpi[0]) if isinstance(dpi, tuple) and dpi and dpi[0] else DEFAULT_DPI
        return x if 20 <= x <= 2400 else DEFAULT_DPI


def _load(path: Path, max_pixels: int) -> tuple[Any, float, int]:
    """(the first frame as an RGB/grey Pillow image, its page dpi, frames in the file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise IngestError(f"{path.name}: {w}x{h} pixels ({w * h / 1e6:.0f} MP) is over the limit of "
                                  f"{max_pixels / 1e6:.0f} MP; downscale the image (e.g. to 4000 px on the long side)")
            frames = int(getattr(im, "n_frames", 1) or 1)
            im.seek(0)
            im.load()  # decode now: a truncated or corrupt file fails here, not later
            info = dict(im.info)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                flat = Image.new("RGB", im.size, "white")  # transparent pixels on white, as a viewer shows them
                flat.paste(rgba, mask=rgba.getchannel("A"))
                out = flat
            else:
                out = im.convert("L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB")
    except IngestError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise IngestError(f"{path.name}: not a readable image (corrupt, truncated or another format): {e}; "
                          "open it in an image viewer and save it again") from e
    if w < 1 or h < 1:
        raise IngestError(f"{path.name}: the image has no pixels ({w}x{h})")
    return out, _page_dpi(path, w, info), frames


def _png(im: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _ocr_blocks(im: Any, dpi: float, ocr: OcrConfig, warnings: list[str], name: str) -> list[Block]:
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
            blocks.append(Block(text=text, page=1, bbox=(x0, y0, x1, y1), ocr_confidence=page.confidence))
    return blocks


def parse_image(path: Path, *, files_dir: Path | None = None, ocr: OcrConfig | None = None,
                max_pixels: int = MAX_PIXELS) -> ParsedDoc:
    """One image file as a one-page document: an image chunk (saved as ``image.png`` under ``files_dir``) and
    the text Tesseract reads in it."""
    ocr = ocr or OcrConfig()
    im, dpi, frames = _load(path, max_pixels)
    warnings: list[str] = []
    if frames > 1:
        warnings.append(f"only the first of {frames} frames/pages of the image was read")
    saved = ""
    if files_dir is not None:
        files_dir.mkdir(parents=True, exist_ok=True)
        (files_dir / "image.png").write_bytes(_png(im))
        saved = "image.png"
    texts = _ocr_blocks(im, dpi, ocr, warnings, path.name) if ocr.mode != "off" else []
    if not texts:
        warnings.append("no text was read in the image" + (" (RAGENT_OCR=off)" if ocr.mode == "off" else "")
                        + "; it is found by its name and, with RAGENT_VLM_BASE_URL set, the vision model's description")
    conf = texts[0].ocr_confidence if texts else None
    seen = " ".join(b.text for b in texts)
    page_box = (0.0, 0.0, im.size[0] * 72.0 / dpi, im.size[1] * 72.0 / dpi)
    head = f"Image: {path.name}"
    image = Block(text="\n".join(p for p in (head, seen[:300]) if p), page=1, bbox=page_box, kind="image",
                  image_path=saved, ocr_confidence=conf)
    return ParsedDoc(title=path.stem[:200], pages=1, blocks=[image, *texts], images_seen=1,
                     ocr_pages=1 if texts else 0, warnings=tuple(warnings))
