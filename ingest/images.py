"""Image blocks for formats without pages (DOCX ``word/media``, HTML ``<img>``): the image decoded with PyMuPDF,
saved as PNG in the document's files folder, its text read by OCR, and its caption (alt text / description)
plus the paragraph before it as context. Tiny (decorative) and undecodable images are skipped, never fatal."""

from __future__ import annotations

import logging
from pathlib import Path

from ingest.blocks import Block
from ingest.ocr import OcrConfig, image_text

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 20 * 2**20
MAX_PIXELS = 40_000_000
MIN_PX = 64  # smaller on either side: an icon or a bullet


def image_block(data: bytes, name: str, caption: str, nearby: str, files_dir: Path | None, ocr: OcrConfig,
                warnings: list[str]) -> Block | None:
    """An image block, or None for an image that is tiny, too large or not an image PyMuPDF can decode."""
    import pymupdf

    if len(data) > MAX_IMAGE_BYTES:
        warnings.append(f"image {name} skipped: over {MAX_IMAGE_BYTES // 2**20} MB")
        return None
    try:
        pix = pymupdf.Pixmap(data)
        if pix.width < MIN_PX or pix.height < MIN_PX:
            return None
        if pix.width * pix.height > MAX_PIXELS:
            warnings.append(f"image {name} skipped: {pix.width}x{pix.height} pixels")
            return None
        if pix.alpha or pix.colorspace is None or pix.colorspace.n not in (1, 3):
            pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
            if pix.alpha:
                pix = pymupdf.Pixmap(pix, 0)
    except Exception as e:  # EMF/WMF, SVG, corrupt data: keep the caption, drop the image
        logger.info("image %s not decodable (%s)", name, e)
        return Block(text=f"Image: {caption}", kind="image") if caption else None
    saved = ""
    if files_dir is not None:
        files_dir.mkdir(parents=True, exist_ok=True)
        dest = files_dir / f"{name}.png"
        pix.save(dest)
        saved = dest.name
    seen, conf = image_text(pix, ocr, warnings, f"image {name}")
    head = f"Image: {caption}" if caption else "Image"
    text = "\n".join(p for p in (head, seen, nearby[:400]) if p)
    return Block(text=text, kind="image", image_path=saved, ocr_confidence=conf)
