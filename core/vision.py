"""The vision-model path: any OpenAI-compatible multimodal server (vLLM serving a Qwen2.5-VL-class model on the
GPU stack, ``RAGENT_VLM_BASE_URL`` / ``RAGENT_VLM_MODEL``) describes an image and transcribes its visible text.

``VisionModel.describe(png)`` sends one chat message with a text part (the instruction) and an ``image_url`` part
(the PNG as a base64 data URL), and keeps the reply in a SQLite cache keyed by model + image hash, so
re-ingesting a document never pays for the same image twice.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import LLMUnavailableError
from core.sqlite import SqliteStore

PROMPT = ("Describe this image for a search index. Say what it is (chart, diagram, photo, table, screenshot, "
          "map), its title, axes, labels, values and what it shows, then transcribe all visible text. Be factual "
          "and concise; do not guess what is not visible.")
MAX_DESCRIPTION = 2000


class DescriptionCache(SqliteStore):
    schema = "CREATE TABLE IF NOT EXISTS descriptions (key TEXT PRIMARY KEY, text TEXT NOT NULL)"

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT text FROM descriptions WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, text: str) -> None:
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO descriptions VALUES (?, ?)", (key, text))


def data_url(png: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(png).decode('ascii')}"


@dataclass
class VisionModel:
    """An OpenAI-compatible multimodal model. ``cache``: replies by image hash (None = no cache)."""

    base_url: str
    model: str
    api_key: str = "EMPTY"
    timeout_s: float = 120.0
    max_tokens: int = 320
    cache: DescriptionCache | None = None
    _client: Any = field(default=None, repr=False)

    @property
    def client(self) -> Any:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(base_url=self.base_url.rstrip("/"), api_key=self.api_key, timeout=self.timeout_s,
                                  max_retries=1)
        return self._client

    def describe(self, png: bytes, instruction: str = PROMPT) -> str:
        """What the model sees in the image (cached); raises ``LLMUnavailableError`` saying what to check."""
        key = hashlib.sha256(f"{self.model}\x1f{instruction}\x1f".encode() + png).hexdigest()
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            return hit
        import openai

        try:
            r = self.client.chat.completions.create(
                model=self.model, max_tokens=self.max_tokens, temperature=0.0,
                messages=[{"role": "user", "content": [
                    {"type": "text", "text": instruction},
                    {"type": "image_url", "image_url": {"url": data_url(png)}},
                ]}],
            )
        except (openai.APIConnectionError, openai.APITimeoutError, openai.APIStatusError) as e:
            raise LLMUnavailableError(f"the vision model at {self.base_url} failed ({type(e).__name__}: {e}); "
                                      "check RAGENT_VLM_BASE_URL / RAGENT_VLM_MODEL, or unset them") from e
        text = " ".join(str(r.choices[0].message.content or "").split())[:MAX_DESCRIPTION]
        if self.cache is not None and text:
            self.cache.put(key, text)
        return text

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()


FIGURE_PROMPT = ("A user asks: {question}\nAnswer from this image if it shows the answer, quoting the labels and "
                 "values you read; then describe what the image shows in one or two sentences.")


@dataclass
class FigureReader:
    """Reads a cited figure for a question about it: the image chunk's saved PNG, sent to the vision model with
    the question (``agents`` call it when a question is about a figure, chart or diagram)."""

    vision: VisionModel
    files: Path  # RAGENT_HOME/files: <doc_id>/<image>

    def __call__(self, doc_id: str, image: str, question: str) -> str:
        folder = (self.files / doc_id).resolve()
        path = (folder / image).resolve()
        if path.parent != folder or not path.is_file():
            return ""
        return self.vision.describe(path.read_bytes(), FIGURE_PROMPT.format(question=question[:1000]))


def vision_model(base_url: str | None, model: str, api_key: str, timeout_s: float,
                 cache_path: Path | None) -> VisionModel | None:
    """The configured vision model, or None when ``RAGENT_VLM_BASE_URL`` is unset."""
    if not base_url:
        return None
    return VisionModel(base_url, model, api_key, timeout_s,
                       cache=DescriptionCache(cache_path) if cache_path is not None else None)
