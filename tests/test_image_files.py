"""Image files as documents (#16): a PNG/JPEG/WebP/TIFF/GIF becomes a one-page document with an image chunk and
the text Tesseract reads in it; corrupt and oversized images are refused with a clear error, and nothing the
index held before is lost."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pymupdf
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.api import create_app
from app.runtime import Runtime
from core.errors import IngestError
from core.settings import Settings
from ingest.image_file import parse_image
from ingest.parse import SUPPORTED, parse_file
from tests.api_live import wait_job
from tests.fakes import FakeLLM, HashEmbedder

LINES = ["Turbine inspection report", "Gearbox oil temperature stayed below 71 degrees"]


def _text_png(path: Path, lines: list[str] = LINES, dpi: int = 150) -> Path:
    """A PNG of a page with ``lines`` of text, rendered by PyMuPDF."""
    doc = pymupdf.open()
    page = doc.new_page(width=520, height=60 + 40 * len(lines))
    for i, line in enumerate(lines):
        page.insert_text((30, 50 + 40 * i), line, fontsize=20 if i == 0 else 15)
    page.get_pixmap(dpi=dpi).save(path)
    return path


def test_a_png_becomes_a_one_page_document_with_an_image_chunk(tmp_path: Path) -> None:
    png = _text_png(tmp_path / "inspection.png")
    doc = parse_file(png, files_dir=tmp_path / "files")
    assert (doc.title, doc.pages, doc.ocr_pages) == ("inspection", 1, 1)
    image, *texts = doc.blocks
    assert image.kind == "image" and image.image_path == "image.png" and image.page == 1
    assert (tmp_path / "files" / "image.png").read_bytes().startswith(b"\x89PNG")
    assert image.text.startswith("Image: inspection.png") and "71 degrees" in image.text
    assert [t.text for t in texts] == LINES and all(t.ocr_confidence and t.ocr_confidence > 0.8 for t in texts)
    # the bboxes are in the points of the page PyMuPDF makes of the file (what the page route renders)
    with pymupdf.open(png) as d:
        rect = d[0].rect
    assert image.bbox == pytest.approx((0, 0, rect.width, rect.height), abs=0.5)
    assert texts[0].bbox is not None and 25 <= texts[0].bbox[0] <= 40 and 30 <= texts[0].bbox[3] <= 60  # drawn at x 30


@pytest.mark.parametrize("fmt,suffix", [("JPEG", ".jpg"), ("WEBP", ".webp"), ("TIFF", ".tiff"), ("GIF", ".gif")])
def test_other_formats_are_read(tmp_path: Path, fmt: str, suffix: str) -> None:
    assert suffix in SUPPORTED
    with Image.open(_text_png(tmp_path / "x.png")) as im:
        im.convert("RGB" if fmt != "GIF" else "P").save(tmp_path / f"shot{suffix}", format=fmt, quality=95)
    doc = parse_file(tmp_path / f"shot{suffix}")
    assert "71 degrees" in doc.text, doc.text


def test_transparent_multi_frame_gif_reads_the_first_frame_on_white(tmp_path: Path) -> None:
    with Image.open(_text_png(tmp_path / "x.png")) as im:
        rgba = im.convert("RGBA")
    clear = Image.new("RGBA", rgba.size, (0, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    (tmp_path / "alpha.png").write_bytes(buf.getvalue())
    rgba.save(tmp_path / "anim.gif", save_all=True, append_images=[clear])
    assert "Turbine" in parse_file(tmp_path / "alpha.png").text
    doc = parse_file(tmp_path / "anim.gif")
    assert "Turbine" in doc.text and any("first of the image's 2 frames" in w for w in doc.warnings)


def test_a_multi_page_tiff_is_a_page_a_frame(tmp_path: Path) -> None:
    frames = []
    for i, line in enumerate(["Cover sheet of the fax", "Second page lists the spare parts"]):
        with Image.open(_text_png(tmp_path / f"{i}.png", [line])) as im:
            frames.append(im.convert("L"))
    frames[0].save(tmp_path / "fax.tiff", save_all=True, append_images=frames[1:])
    doc = parse_file(tmp_path / "fax.tiff", files_dir=tmp_path / "files")
    assert doc.pages == 2 and doc.ocr_pages == 2
    assert [(b.kind, b.page, b.image_path) for b in doc.blocks if b.kind == "image"] == [
        ("image", 1, "page1.png"), ("image", 2, "page2.png")]
    assert [b.text for b in doc.blocks if b.kind == "text"] == ["Cover sheet of the fax",
                                                                "Second page lists the spare parts"]
    assert [b.page for b in doc.blocks if b.kind == "text"] == [1, 2]
    with pytest.raises(IngestError, match="2 pages is over the limit of 1; raise RAGENT_MAX_PAGES"):
        parse_file(tmp_path / "fax.tiff", max_pages=1)


def test_corrupt_and_oversized_images_are_refused_clearly(tmp_path: Path) -> None:
    png = _text_png(tmp_path / "a.png")
    (tmp_path / "cut.png").write_bytes(png.read_bytes()[:400])
    with pytest.raises(IngestError, match=r"cut.png: not a readable image \(corrupt, truncated"):
        parse_file(tmp_path / "cut.png")
    (tmp_path / "text.jpg").write_bytes(b"this is not a JPEG " * 20)
    with pytest.raises(IngestError, match=r"text\.jpg: not a readable image"):
        parse_file(tmp_path / "text.jpg")
    with pytest.raises(IngestError, match=r"a.png: \d+x\d+ pixels .* over the limit of 0 MP; downscale"):
        parse_image(png, max_pixels=10_000)


def test_a_huge_image_is_refused_before_it_is_decoded(tmp_path: Path) -> None:
    Image.new("1", (9000, 5000)).save(tmp_path / "bomb.png")  # 45 MP, a few KB on disk
    with pytest.raises(IngestError, match="9000x5000 pixels"):
        parse_file(tmp_path / "bomb.png")


def test_an_image_is_ingested_found_by_search_and_a_corrupt_update_loses_nothing(
    tmp_path: Path, fake_runtime: Runtime
) -> None:
    png = _text_png(tmp_path / "inspection.png")
    (res,) = fake_runtime.ingestor().ingest([png], "img")
    assert res.status == "ingested" and res.pages == 1 and res.images == 1, res
    hits = asyncio.run(fake_runtime.retriever.search("img", "gearbox oil temperature 71 degrees", k=3))
    assert hits and "71 degrees" in hits[0].chunk.text and hits[0].chunk.page == 1
    image = next(h.chunk for h in hits if h.chunk.kind == "image")
    assert (fake_runtime.settings.home / "files" / image.doc_id / image.image).is_file()
    png.write_bytes(png.read_bytes()[:300])  # the file goes bad: the good version stays
    (bad,) = fake_runtime.ingestor().ingest([png], "img")
    assert bad.status == "failed" and "not a readable image" in bad.error
    assert "previous version stays searchable" in bad.error
    again = asyncio.run(fake_runtime.retriever.search("img", "gearbox oil temperature", k=3))
    assert again and "71 degrees" in again[0].chunk.text
    assert (fake_runtime.settings.home / "files" / image.doc_id / image.image).is_file()


class _Vision:
    """A vision model that describes every image the same way (records what it was sent)."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def describe(self, png: bytes, instruction: str = "") -> str:
        self.seen.append(png)
        return "A photo of a wind turbine nacelle with an open gearbox housing."

    def close(self) -> None:
        pass


def test_the_vision_model_describes_an_image_file(tmp_path: Path) -> None:
    vision = _Vision()
    rt = Runtime(Settings(home=tmp_path / "var"),
                 overrides={"llm": FakeLLM(), "embedder": HashEmbedder(), "vision": vision})
    try:
        (res,) = rt.ingestor().ingest([_text_png(tmp_path / "nacelle.png")], "vis")
        assert res.status == "ingested" and len(vision.seen) == 1 and vision.seen[0].startswith(b"\x89PNG")
        hits = asyncio.run(rt.retriever.search("vis", "wind turbine nacelle open gearbox housing", k=3))
        top = next(h.chunk for h in hits if h.chunk.kind == "image")
        assert "Image description: A photo of a wind turbine nacelle" in top.text
    finally:
        rt.close()


def test_upload_an_image_and_see_its_page_and_image(tmp_path: Path) -> None:
    rt = Runtime(Settings(home=tmp_path / "var", api_auth=False, llm_base_url="http://127.0.0.1:9/v1"),
                 overrides={"llm": FakeLLM(), "embedder": HashEmbedder()})
    try:
        with TestClient(create_app(rt)) as client:
            png = _text_png(tmp_path / "inspection.png").read_bytes()
            r = client.post("/v1/workspaces/up/documents", files=[("files", ("inspection.png", png, "image/png"))])
            assert r.status_code == 202, r.text
            job = wait_job(client, r.json()["id"], {})
            assert job["state"] == "done", job
            doc_id = job["results"][0]["doc_id"]
            page = client.get(f"/v1/workspaces/up/documents/{doc_id}/pages/1.png")
            assert page.status_code == 200 and page.content.startswith(b"\x89PNG"), page.text
            assert float(page.headers["X-Page-Scale"]) > 0
            hits = client.post("/v1/workspaces/up/search", json={"query": "turbine inspection report", "k": 5})
            image_hit = next(h for h in hits.json()["hits"] if h["image"])
            served = client.get(f"/v1/workspaces/up/images/{image_hit['chunk_id']}")
            assert served.status_code == 200 and served.content.startswith(b"\x89PNG")
    finally:
        rt.close()
