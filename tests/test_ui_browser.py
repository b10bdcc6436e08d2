"""The Streamlit UI in Debian's headless Chromium (Playwright, executable_path=/usr/bin/chromium), against a
live API on loopback: upload the example PDF, ask a question, see the streamed answer, click a citation and
find the cited page image. Screenshots go to /tmp/ragent_ui_*.png."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api import create_app
from app.runtime import Runtime
from core.settings import Settings
from tests.api_live import free_port, live_server
from tests.fakes import FakeLLM, HashEmbedder

CHROMIUM = Path("/usr/bin/chromium")
UI_MAIN = Path(__file__).resolve().parent.parent / "app" / "ui" / "main.py"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"]
ANSWER = "The NW-200 has a rated output of 5 kW and a peak efficiency of 97.6 percent [1]."

pytestmark = pytest.mark.slow


def scripted(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    return "{}" if schema is not None else ANSWER


@pytest.fixture
def ui_url(tmp_path: Path) -> Iterator[str]:
    if not CHROMIUM.exists():
        pytest.fail("Debian chromium is missing: `make browser-deps` (apt-get install chromium chromium-driver)",
                    pytrace=False)
    # hash embedder: the UI is under test here (tests/test_api.py runs the real MiniLM)
    rt = Runtime(Settings(home=tmp_path / "var", api_auth=True),
                 overrides={"llm": FakeLLM([scripted]), "embedder": HashEmbedder()})
    app = create_app(rt)
    key = app.state.ragent.keys.create(["demo"])
    with live_server(app) as api_url:
        port = free_port()
        env = {**os.environ, "RAGENT_API_URL": api_url, "RAGENT_API_KEY": key, "RAGENT_HOME": str(tmp_path / "ui")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(UI_MAIN), "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while True:
                try:
                    if httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline or proc.poll() is not None:
                    proc.kill()
                    pytest.fail(f"streamlit did not start:\n{proc.communicate()[0][-3000:]}")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    rt.close()


def upload_in_demo(page: Any, ui_url: str, path: Path) -> None:
    """Open the UI, choose workspace 'demo', upload ``path`` on the Documents page and wait until it is ingested."""
    from playwright.sync_api import expect

    page.goto(ui_url)
    page.get_by_placeholder("name, then Enter").fill("demo")
    page.get_by_placeholder("name, then Enter").press("Enter")
    page.get_by_role("link", name="Documents").click()
    # the uploader's input (the chat box has its own, for images)
    page.locator("[data-testid='stFileUploader'] input[type=file]").set_input_files(str(path))
    page.get_by_role("button", name="Upload and ingest").click()
    expect(page.get_by_text(f"Ingested {path.name}")).to_be_visible(timeout=180_000)


def test_upload_ask_stream_and_open_a_cited_page(ui_url: str, example_pdf: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 2000})
        page.set_default_timeout(60_000)
        try:
            upload_in_demo(page, ui_url, example_pdf)
            expect(page.get_by_role("button", name="Delete document")).to_be_visible()  # the list is shown
            page.screenshot(path="/tmp/ragent_ui_documents.png", full_page=True)

            page.get_by_role("link", name="Chat").click()
            box = page.get_by_placeholder("Ask about the documents in 'demo'")
            box.fill("What is the rated output of the NW-200 inverter?")
            box.press("Enter")
            expect(page.get_by_text("rated output of 5 kW").first).to_be_visible(timeout=120_000)
            expect(page.get_by_text("Agent trace")).to_be_visible()
            cite = page.get_by_role("button", name="[1]").first
            expect(cite).to_be_visible()
            cite.click()
            img = page.locator("[data-testid='stImage'] img").first
            expect(img).to_be_visible(timeout=60_000)
            expect(page.get_by_text("Page ").filter(has_text=" of ").first).to_be_visible()
            assert img.evaluate("i => i.naturalWidth") > 500
            img.screenshot(path="/tmp/ragent_ui_page.png")
            page.mouse.move(5, 5)  # away from the citation's tooltip
            page.get_by_text("Agent trace").first.click(timeout=10_000)
            expect(page.get_by_text("plan").first).to_be_visible()
            page.screenshot(path="/tmp/ragent_ui_chat.png", full_page=True)
        except Exception:
            page.screenshot(path="/tmp/ragent_ui_failure.png", full_page=True)
            raise
        finally:
            browser.close()


def test_search_shows_image_hits_and_chat_reads_an_attached_image(ui_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.scans import text_image_pdf

    pdf = text_image_pdf(tmp_path / "console.pdf", "The pump console shows its status after start-up.",
                         ["PUMP STATUS: FAULT 4711", "Reset with key F9"])
    shot = tmp_path / "shot.png"
    import pymupdf

    with pymupdf.open(pdf) as d:
        d[0].get_pixmap(dpi=150, clip=pymupdf.Rect(72, 320, 432, 404)).save(shot)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1300, "height": 2000})
        page.set_default_timeout(60_000)
        try:
            upload_in_demo(page, ui_url, pdf)

            page.get_by_role("link", name="Search").click()
            q = page.get_by_placeholder("words, a question, an error code")
            q.fill("FAULT 4711 reset")
            q.press("Enter")
            expect(page.get_by_text("image · OCR").first).to_be_visible()
            img = page.locator("[data-testid='stImage'] img").first
            expect(img).to_be_visible()
            assert img.evaluate("i => i.naturalWidth") > 200
            page.screenshot(path="/tmp/ragent_ui_search.png", full_page=True)

            page.get_by_role("link", name="Chat").click()
            page.locator("[data-testid='stChatInput'] input[type=file]").set_input_files(str(shot))
            box = page.get_by_placeholder("Ask about the documents in 'demo'")
            box.fill("How do I clear this fault?")
            box.press("Enter")
            expect(page.get_by_text("rated output of 5 kW").first).to_be_visible(timeout=120_000)
            page.screenshot(path="/tmp/ragent_ui_chat_image.png", full_page=True)
        except Exception:
            page.screenshot(path="/tmp/ragent_ui_failure.png", full_page=True)
            raise
        finally:
            browser.close()
