"""Test inputs for OCR: image-only ("scanned") renders of real PDFs and PDFs with text inside images."""

from __future__ import annotations

from pathlib import Path


def image_only_pdf(src: Path, dst: Path, dpi: int = 200) -> Path:
    """Each page of ``src`` rendered at ``dpi`` and placed as the only content of a page of ``dst`` (no text layer)."""
    import pymupdf

    with pymupdf.open(src) as doc, pymupdf.open() as out:
        for page in doc:
            new = out.new_page(width=page.rect.width, height=page.rect.height)
            new.insert_image(new.rect, pixmap=page.get_pixmap(dpi=dpi))
        out.save(dst)
    return dst


def text_image_pdf(dst: Path, body: str, image_lines: list[str]) -> Path:
    """A one-page PDF: ``body`` as real text at the top, and a raster image (a 'screenshot') whose only copy of
    ``image_lines`` is in its pixels, below it."""
    import pymupdf

    with pymupdf.open() as shot:  # draw the screenshot's text on a page and rasterise it
        p = shot.new_page(width=360, height=30 + 22 * len(image_lines))
        p.draw_rect(p.rect, color=(0.2, 0.2, 0.2), fill=(0.95, 0.95, 1.0))
        for i, line in enumerate(image_lines):
            p.insert_text((14, 30 + 22 * i), line, fontsize=13, fontname="cour")
        png = p.get_pixmap(dpi=200).tobytes("png")
    with pymupdf.open() as out:
        page = out.new_page()
        page.insert_textbox(pymupdf.Rect(72, 72, 520, 300), body, fontsize=11)
        page.insert_image(pymupdf.Rect(72, 320, 432, 320 + (30 + 22 * len(image_lines))), stream=png)
        page.insert_text((72, 340 + 30 + 22 * len(image_lines)), "Figure 1: the console after start-up.",
                         fontsize=10)
        out.save(dst)
    return dst
