"""The ingest pipeline: file -> blocks -> pieces -> chunks -> dense + sparse vectors -> Qdrant + registry.

A document is visible to search only once its registry row is ``done``; an unchanged file is a no-op, a
changed one replaces its chunks, and a failure in one file never aborts the batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.embedder import Embedder
from core.errors import IngestError
from core.types import Chunk, content_id
from ingest.parse import SUPPORTED, parse_file
from ingest.split import split_blocks
from retrieval.index import QdrantIndex
from retrieval.registry import DocRecord, Registry
from retrieval.writer import IndexWriter

logger = logging.getLogger(__name__)

FileStatus = Literal["ingested", "unchanged", "updated", "duplicate", "failed"]
Progress = Callable[[str, int], None]  # (event, amount)


@dataclass(frozen=True)
class FileResult:
    path: str
    status: FileStatus
    doc_id: str = ""
    pages: int = 0
    chunks: int = 0
    error: str = ""

    def to_json(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Ingestor:
    index: QdrantIndex
    registry: Registry
    embedder: Embedder
    chunk_chars: int = 1200
    max_file_mb: float = 200.0
    max_pages: int = 3000
    progress: Progress | None = field(default=None)

    def _tick(self, event: str, n: int = 1) -> None:
        if self.progress is not None:
            self.progress(event, n)

    def ingest(self, paths: Iterable[Path], workspace: str) -> list[FileResult]:
        results = []
        for p in paths:
            try:
                results.append(self.ingest_file(p, workspace))
            except IngestError as e:
                logger.warning("%s", e)
                results.append(FileResult(path=str(p), status="failed", error=str(e)))
            self._tick("file")
        return results

    def _check(self, path: Path) -> bytes:
        if not path.exists():
            raise IngestError(f"{path}: no such file")
        if not path.is_file():
            raise IngestError(f"{path}: not a file (use --recursive for folders)")
        if path.suffix.lower() not in SUPPORTED:
            raise IngestError(
                f"{path.name}: unsupported file type {path.suffix or '(none)'}; "
                f"supported: {', '.join(sorted(SUPPORTED))}"
            )
        size = path.stat().st_size
        if size == 0:
            raise IngestError(f"{path.name}: the file is empty")
        if size > self.max_file_mb * 1024 * 1024:
            raise IngestError(
                f"{path.name}: {size / 1e6:.0f} MB is over the limit of {self.max_file_mb:.0f} MB; "
                "raise RAGENT_MAX_FILE_MB or split the file"
            )
        return path.read_bytes()

    def ingest_file(self, path: Path, workspace: str) -> FileResult:
        data = self._check(path)
        source = str(path.resolve())
        digest = hashlib.sha256(data).hexdigest()
        doc_id = content_id(workspace, source)
        prev = self.registry.get(workspace, doc_id)
        if prev and prev.status == "done" and prev.content_hash == digest:
            return FileResult(str(path), "unchanged", doc_id, prev.pages, len(prev.chunk_ids))
        twins = [r for r in self.registry.by_hash(workspace, digest) if r.doc_id != doc_id and r.status == "done"]
        if twins:
            return FileResult(str(path), "duplicate", twins[0].doc_id, twins[0].pages, len(twins[0].chunk_ids),
                              error=f"same content as {twins[0].source}")
        version = (prev.version + 1) if prev else 1
        rec = DocRecord(workspace, doc_id, source, path.stem, digest, "processing", version)
        self.registry.put(rec)
        try:
            parsed = parse_file(path, max_pages=self.max_pages)
            self._tick("pages", parsed.pages)
            chunks = self.build_chunks(parsed.title, parsed.blocks, workspace, doc_id, source)
            if prev:  # replace the old version's chunks (also cleans up after a crash mid-ingest)
                self.writer.delete_doc(workspace, doc_id)
            self.write(workspace, chunks)
        except IngestError as e:
            self.registry.put(DocRecord(**{**rec.__dict__, "status": "failed", "error": str(e)}))
            raise
        done = DocRecord(**{**rec.__dict__, "status": "done", "title": parsed.title, "pages": parsed.pages,
                            "chunk_ids": tuple(c.id for c in chunks)})
        self.registry.put(done)
        return FileResult(str(path), "updated" if prev and prev.status == "done" else "ingested", doc_id,
                          parsed.pages, len(chunks))

    def build_chunks(self, title: str, blocks: list, workspace: str, doc_id: str, source: str) -> list[Chunk]:
        pieces = split_blocks(blocks, self.chunk_chars)
        return [
            Chunk(id=content_id(doc_id, str(i), p.text), doc_id=doc_id, workspace=workspace, text=p.text,
                  page=p.page, kind=p.kind, doc_title=title, source=source, bbox=p.bbox,
                  heading_path=p.heading_path, order=i)
            for i, p in enumerate(pieces)
        ]

    @property
    def writer(self) -> IndexWriter:
        return IndexWriter(self.index, lambda _ws: self.embedder)

    def write(self, workspace: str, chunks: list[Chunk]) -> None:
        self.writer.write(workspace, chunks, progress=lambda n: self._tick("chunks", n))

    def delete(self, workspace: str, doc_id: str) -> bool:
        """Remove a document's vectors and registry row. Returns False when it was not there."""
        if self.registry.get(workspace, doc_id) is None:
            return False
        self.writer.delete_doc(workspace, doc_id)
        self.registry.delete(workspace, doc_id)
        return True
