"""The Retriever: what agents, the API and finetune call.

Public API (stable; other packages code against it):
    await search(workspace, query, k=10, *, paths=None, rerank=True) -> list[Hit]
    await recall(path, workspace, query, k) -> list[Hit]          # one recall path alone
    await neighbourhood(workspace, entities, hops=1) -> Neighbourhood
    get_chunks(workspace, ids) -> list[Chunk]; page_chunks(workspace, doc_id, page) -> list[Chunk]
    paths -> tuple of recall path names available
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.embedder import Embedder, SentenceTransformerEmbedder
from core.types import Chunk, Hit
from retrieval.active_model import ActiveModels
from retrieval.index import QdrantIndex
from retrieval.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Neighbourhood:
    """Entities around the seeds, the relations between them, and the chunks that mention them."""

    entities: tuple[str, ...] = ()
    relations: tuple[tuple[str, str, str], ...] = ()  # (source, relation, target)
    chunk_ids: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


class Retriever:
    """Recall over the workspace's collection, restricted to documents whose ingest is done."""

    paths: tuple[str, ...] = ("dense",)

    def __init__(
        self, index: QdrantIndex, embedder: Embedder, registry: Registry, active_models: ActiveModels | None = None
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.registry = registry
        self.active_models = active_models or ActiveModels.for_index(index.config)  # finetune's record
        self._tuned: dict[str, Embedder] = {}  # fine-tuned model dir -> its embedder (loaded lazily)

    def embedder_for(self, workspace: str) -> Embedder:
        """The embedder whose vectors the workspace's collection holds: its active fine-tuned model, if any."""
        active = self.active_models.get(workspace)
        if active is None:
            return self.embedder
        emb = self._tuned.get(active.model_dir)
        if emb is None:
            emb = self._tuned.setdefault(active.model_dir, SentenceTransformerEmbedder(active.model_dir))
        return emb

    async def recall(self, path: str, workspace: str, query: str, k: int) -> list[Hit]:
        if path != "dense":
            raise ValueError(f"unknown recall path {path!r}; available: {', '.join(self.paths)}")
        vec = (await asyncio.to_thread(self.embedder_for(workspace).embed_batch, [query]))[0]
        done = self.registry.done_doc_ids(workspace)
        scored = await asyncio.to_thread(self.index.query_dense, workspace, vec, k * 3)
        hits = [Hit(chunk=c, score=s) for c, s in scored if c.doc_id in done][:k]
        return [Hit(chunk=h.chunk, score=h.score, paths={path: r}) for r, h in enumerate(hits, start=1)]

    async def search(
        self, workspace: str, query: str, k: int = 10, *, paths: Sequence[str] | None = None, rerank: bool = True
    ) -> list[Hit]:
        return await self.recall("dense", workspace, query, k)

    async def neighbourhood(self, workspace: str, entities: Sequence[str], hops: int = 1) -> Neighbourhood:
        return Neighbourhood()

    def get_chunks(self, workspace: str, ids: Sequence[str]) -> list[Chunk]:
        return self.index.get(workspace, ids)

    def page_chunks(self, workspace: str, doc_id: str, page: int) -> list[Chunk]:
        recs = self.index.scroll(workspace, doc_id)
        chunks = [Chunk.from_payload(r.payload) for r in recs]
        return sorted((c for c in chunks if c.page == page), key=lambda c: c.order)
