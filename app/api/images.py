"""Images sent with a chat question ("what does this error screenshot mean?"): decoded from base64 data URLs,
read by OCR (and described by the vision model when one is configured), and joined to the question the agent
searches with. Bounded: at most ``MAX_IMAGES`` images of ``MAX_IMAGE_BYTES`` and ``MAX_PIXELS`` each."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from app.api.problems import Problem
from core.errors import IngestError, LLMUnavailableError
from core.settings import Settings
from core.vision import VisionModel

MAX_IMAGES = 4
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_IMAGE_TEXT = 1500  # characters of one image's text that join the question
DATA_URL = re.compile(r"\Adata:image/(png|jpe?g|gif|bmp|tiff?|webp);base64,", re.I)
SUPPORTED_PARTS = ("text", "image_url")


def decode(url: str) -> bytes:
    """The bytes of a ``data:image/...;base64,`` URL; a 400 saying what is accepted otherwise."""
    m = DATA_URL.match(url or "")
    if m is None:
        kind = "a remote URL" if url.startswith(("http://", "https://")) else "not a base64 image data URL"
        raise Problem(400, f"image_url is {kind}: send the image inline as data:image/png;base64,... (PNG, JPEG, "
                           "GIF, BMP, TIFF or WebP); ragent does not fetch images from the network")
    b64 = url[m.end():]
    if len(b64) > MAX_IMAGE_BYTES * 4 // 3 + 4:
        raise Problem(413, f"an image is over {MAX_IMAGE_BYTES // 2**20} MB; send a smaller one")
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise Problem(400, f"the image's base64 data is corrupt ({e})") from e


def png_of(data: bytes) -> Any:
    """A PyMuPDF pixmap of the image; a 400 when it cannot be decoded or is too large."""
    import pymupdf

    try:
        pix = pymupdf.Pixmap(data)
    except Exception as e:  # MuPDF raises RuntimeError/ValueError/FzError on bad image data
        raise Problem(400, f"the image could not be decoded ({e}); send a PNG or JPEG") from e
    if pix.width * pix.height > MAX_PIXELS:
        raise Problem(413, f"the image is {pix.width}x{pix.height} pixels, over the limit of {MAX_PIXELS:,}; "
                           "send a smaller one")
    return pix


def read_image(data: bytes, settings: Settings, vision: VisionModel | None) -> str:
    """What an attached image says: its OCR text, and the vision model's description when one is set."""
    from ingest.ocr import OcrConfig, ocr_pixmap

    pix = png_of(data)
    parts: list[str] = []
    if vision is not None:
        import pymupdf

        if pix.alpha or pix.colorspace is None or pix.colorspace.n not in (1, 3):
            pix = pymupdf.Pixmap(pymupdf.csRGB, pix)
        try:
            parts.append(vision.describe(pix.tobytes("png")))
        except LLMUnavailableError as e:
            raise Problem(503, str(e)) from e
    if settings.ocr != "off":
        try:
            text, conf = ocr_pixmap(pix, OcrConfig.of(settings.ingest.ocr))
        except IngestError as e:
            raise Problem(503, f"cannot read the attached image: {e}") from e
        if text and conf >= 0.3:
            parts.append(text)
    if not parts:
        raise Problem(400, "the attached image has no text ragent can read, and no vision model is configured "
                           "(RAGENT_VLM_BASE_URL); ask in words, or attach a clearer image")
    return " ".join(" ".join(parts).split())[:MAX_IMAGE_TEXT]


def with_images(question: str, texts: list[str]) -> str:
    """The question the agent answers: the user's words, then what each attached image says."""
    extra = [f'[Attached image {i}: "{t}"]' for i, t in enumerate(texts, start=1)]
    return "\n".join([question or "What does the attached image show, and what should I do about it?", *extra])


def parts_of(content: str | list[dict[str, Any]] | None) -> tuple[str, list[str]]:
    """(text, image data URLs) of an OpenAI message's content; a 400 for a part type ragent does not read."""
    if content is None or isinstance(content, str):
        return (content or "").strip(), []
    texts: list[str] = []
    urls: list[str] = []
    for p in content:
        kind = p.get("type")
        if kind == "text":
            texts.append(str(p.get("text", "")))
        elif kind == "image_url":
            img = p.get("image_url")
            url = img.get("url") if isinstance(img, dict) else img
            if not isinstance(url, str):
                raise Problem(400, "an image_url part needs {'image_url': {'url': 'data:image/png;base64,...'}}")
            urls.append(url)
        else:
            raise Problem(400, f"content part type {kind!r} is not supported; supported: "
                               f"{', '.join(SUPPORTED_PARTS)} (images as base64 data URLs)")
    return " ".join(texts).strip(), urls
