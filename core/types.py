"""Frozen records passed between stages. Payload dicts exist only at the Qdrant boundary."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ChunkKind = Literal["text", "table", "image"]
BBox = tuple[float, float, float, float]


def content_id(*parts: str) -> str:
    """A stable content hash (hex, 32 chars) so re-ingesting the same content upserts, never duplicates."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode("utf-8"))
        h.update(b"\x1f")
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class Chunk:
    """One retrievable unit. ``text`` is what gets cited; ``context`` is prepended only for indexing."""

    id: str
    doc_id: str
    workspace: str
    text: str
    page: int | None = None  # 1-based page number for PDFs
    kind: ChunkKind = "text"
    doc_title: str = ""
    source: str = ""  # file path or name it came from
    bbox: BBox | None = None
    heading_path: tuple[str, ...] = ()
    context: str = ""
    order: int = 0  # position within its document
    image: str = ""  # image chunks: the image file's name in the document's files folder
    ocr_confidence: float | None = None  # text read by OCR: estimated confidence 0..1; None = not OCR

    @property
    def ocr(self) -> bool:
        return self.ocr_confidence is not None

    @property
    def index_text(self) -> str:
        """The text embedded and BM25-indexed: enrichment context + heading path + the chunk."""
        head = " > ".join(self.heading_path)
        return "\n".join(p for p in (self.context, head, self.text) if p)

    def to_payload(self) -> dict[str, Any]:
        d = asdict(self)
        d["heading_path"] = list(self.heading_path)
        d["bbox"] = list(self.bbox) if self.bbox else None
        return d

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> Chunk:
        bbox = p.get("bbox")
        return cls(
            id=p["id"],
            doc_id=p["doc_id"],
            workspace=p["workspace"],
            text=p["text"],
            page=p.get("page"),
            kind=p.get("kind", "text"),
            doc_title=p.get("doc_title", ""),
            source=p.get("source", ""),
            bbox=tuple(bbox) if bbox else None,  # type: ignore[arg-type]
            heading_path=tuple(p.get("heading_path") or ()),
            context=p.get("context", ""),
            order=p.get("order", 0),
            image=p.get("image") or "",
            ocr_confidence=p.get("ocr_confidence"),
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score, the recall paths that found it (path -> 1-based rank)."""

    chunk: Chunk
    score: float
    paths: dict[str, int] = field(default_factory=dict)
    rerank_score: float | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "chunk_id": c.id,
            "doc": c.doc_title or c.source,
            "doc_id": c.doc_id,
            "page": c.page,
            "kind": c.kind,
            "bbox": list(c.bbox) if c.bbox else None,
            "score": self.score,
            "rerank_score": self.rerank_score,
            "paths": self.paths,
            "text": c.text,
            "image": bool(c.image),
            "ocr_confidence": c.ocr_confidence,
        }


@dataclass(frozen=True)
class Citation:
    """A numbered citation: ``quote`` must occur in the cited chunk's text (``verified`` says if it does)."""

    n: int
    chunk_id: str
    doc: str
    page: int | None
    quote: str
    verified: bool = False
    doc_id: str = ""
    bbox: BBox | None = None
    image: bool = False  # an image chunk: GET /v1/workspaces/{ws}/images/{chunk_id} returns the image

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["bbox"] = list(self.bbox) if self.bbox else None
        return d


@dataclass(frozen=True)
class Answer:
    """What ``ask`` returns: ``short_answer`` (a few words, a number, yes/no, or "not found") and ``answer``, the
    explanation whose sentences carry ``[n]`` markers into ``citations``. ``dropped`` names the draft sentences
    the claim check removed; ``faithfulness`` is the share of cited sentences whose claim passes that check."""

    question: str
    answer: str
    citations: tuple[Citation, ...] = ()
    trace: tuple[dict[str, Any], ...] = ()
    plan: tuple[dict[str, Any], ...] = ()
    short_answer: str = ""
    dropped: tuple[str, ...] = ()
    faithfulness: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "short_answer": self.short_answer,
            "answer": self.answer,
            "citations": [c.to_json() for c in self.citations],
            "dropped": list(self.dropped),
            "faithfulness": self.faithfulness,
            "trace": list(self.trace),
            "plan": list(self.plan),
        }
