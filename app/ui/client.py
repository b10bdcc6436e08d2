"""The UI's only way to ragent: the REST API over HTTP (httpx). Errors become ``ApiError`` with the API's detail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from agents.events import EVENTS, Event


class ApiError(Exception):
    """The API answered with a problem (or could not be reached); ``str()`` is the message to show."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def _raise(r: httpx.Response) -> None:
    if r.is_success:
        return
    try:
        detail = r.json().get("detail") or r.text
    except ValueError:
        detail = r.text
    raise ApiError(f"HTTP {r.status_code}: {detail}", r.status_code)


def iter_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse a text/event-stream into the JSON ``data`` of each event."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line.strip() and data:
            payload = "\n".join(data)
            data = []
            if payload != "[DONE]":
                yield json.loads(payload)
    if data and data[0] != "[DONE]":
        yield json.loads("\n".join(data))


@dataclass
class ApiClient:
    base_url: str
    api_key: str | None = None
    timeout: float = 600.0
    _http: httpx.Client | None = field(default=None, repr=False)

    @property
    def http(self) -> httpx.Client:
        if self._http is None:
            headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
            self._http = httpx.Client(base_url=self.base_url.rstrip("/"), headers=headers,
                                      timeout=httpx.Timeout(self.timeout, connect=5.0))
        return self._http

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as e:
            raise ApiError(f"cannot reach the ragent API at {self.base_url} ({type(e).__name__}); start it with "
                           "`ragent api` or set RAGENT_API_URL") from e
        _raise(r)
        return r

    def get(self, path: str, **kw: Any) -> Any:
        return self._call("GET", path, **kw).json()

    # ---- workspaces, documents, jobs ----
    def workspaces(self) -> list[str]:
        return [m["id"].split(":", 1)[1] for m in self.get("/v1/models")["data"]]

    def documents(self, ws: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v1/workspaces/{ws}/documents")["documents"])

    def upload(self, ws: str, files: list[tuple[str, bytes, str]]) -> dict[str, Any]:
        parts = [("files", (name, data, mime or "application/octet-stream")) for name, data, mime in files]
        return dict(self._call("POST", f"/v1/workspaces/{ws}/documents", files=parts).json())

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.get(f"/v1/jobs/{job_id}"))

    def delete_document(self, ws: str, doc_id: str) -> None:
        self._call("DELETE", f"/v1/workspaces/{ws}/documents/{doc_id}")

    def page_png(self, ws: str, doc_id: str, page: int, dpi: int = 110) -> tuple[bytes, float]:
        """(the page as PNG, pixels per PDF point): the scale comes from X-Page-Scale, which is lower than
        dpi / 72 when the API's pixel cap shrank a large page."""
        r = self._call("GET", f"/v1/workspaces/{ws}/documents/{doc_id}/pages/{page}.png", params={"dpi": dpi})
        try:
            scale = float(r.headers.get("X-Page-Scale", ""))
        except ValueError:
            scale = dpi / 72
        return r.content, scale

    def image_png(self, ws: str, chunk_id: str) -> bytes:
        """The image of an image chunk (a hit or citation with ``image: true``)."""
        return self._call("GET", f"/v1/workspaces/{ws}/images/{chunk_id}").content

    def search(self, ws: str, query: str, k: int = 10) -> list[dict[str, Any]]:
        hits: list[dict[str, Any]] = self._call("POST", f"/v1/workspaces/{ws}/search",
                                                json={"query": query, "k": k}).json()["hits"]
        return hits

    # ---- chat ----
    def chat_stream(self, ws: str, question: str, thread_id: str | None = None,
                    use_memory: bool = True, images: list[str] | None = None) -> Iterator[Event]:
        """The chat's events, each checked against the event union (``agents.events``). ``images``: data URLs
        whose text (OCR, and the vision model's description) joins the question."""
        body = {"question": question, "thread_id": thread_id, "stream": True, "use_memory": use_memory,
                "images": images or []}
        try:
            with self.http.stream("POST", f"/v1/workspaces/{ws}/chat", json=body) as r:
                if not r.is_success:
                    r.read()
                    _raise(r)
                for data in iter_sse(r.iter_lines()):
                    try:
                        yield EVENTS.validate_python(data)
                    except ValidationError as e:
                        raise ApiError(f"the chat stream sent an event this UI does not know: {e}") from e
        except httpx.HTTPError as e:
            raise ApiError(f"the chat stream from {self.base_url} broke ({type(e).__name__}: {e})") from e

    # ---- memory ----
    def memory(self, ws: str, kind: str) -> list[dict[str, Any]]:
        return list(self.get(f"/v1/workspaces/{ws}/memory/{kind}")["items"])

    def add_memory(self, ws: str, kind: str, text: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/v1/workspaces/{ws}/memory/{kind}", json={"text": text}).json())

    def edit_memory(self, ws: str, kind: str, item_id: str, text: str) -> dict[str, Any]:
        return dict(self._call("PUT", f"/v1/workspaces/{ws}/memory/{kind}/{item_id}", json={"text": text}).json())

    def delete_memory(self, ws: str, kind: str, item_id: str) -> None:
        self._call("DELETE", f"/v1/workspaces/{ws}/memory/{kind}/{item_id}")

    # ---- status ----
    def status(self) -> dict[str, Any]:
        return dict(self.get("/v1/status"))

    def bench(self) -> list[dict[str, Any]]:
        return list(self.get("/v1/bench")["results"])
