"""Fakes for fast unit tests: a scripted LLM that records its calls, a deterministic hash embedder, a stub
HTTP server."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

Reply = str | Callable[[list[dict[str, Any]], dict[str, Any] | None], str]


class FakeLLM:
    """Returns scripted replies in order (the last one repeats); ``calls`` records every request."""

    def __init__(self, replies: list[Reply] | None = None) -> None:
        self.replies = list(replies or ["I could not find it."])
        self.calls: list[dict[str, Any]] = []

    async def chat(
        self, messages: list[dict[str, Any]], *, schema: dict[str, Any] | None = None, max_tokens: int | None = None
    ) -> str:
        self.calls.append({"messages": messages, "schema": schema, "max_tokens": max_tokens})
        reply = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        return reply(messages, schema) if callable(reply) else reply

    async def stream(self, messages: list[dict[str, Any]], *, max_tokens: int | None = None) -> AsyncIterator[str]:
        text = await self.chat(messages, max_tokens=max_tokens)
        for piece in re.findall(r"\S+\s*", text):
            yield piece


class HashEmbedder:
    """Bag-of-words hashed into ``dim`` buckets, L2-normalised: texts sharing words are similar."""

    def __init__(self, dim: int = 384) -> None:
        self.dim = dim

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int.from_bytes(hashlib.md5(w.encode()).digest()[:4], "little")
                out[i, h % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else out[i]
            if not n:
                out[i, 0] = 1.0
        return out


class QuietHandler(BaseHTTPRequestHandler):
    """A stub server's request handler that logs nothing."""

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def http_stub(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """``handler`` served on a free local port in a daemon thread; yields ``http://127.0.0.1:PORT``."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
