"""The Retriever: what agents, the API and finetune call. ``search(workspace, query, k) -> list[Hit]``."""

from __future__ import annotations

import asyncio
import logging

from core.embedder import Embedder
from core.types import Hit
from retrieval.index import QdrantIndex
from retrieval.registry import Registry

logger = logging.getLogger(__name__)


class Retriever:
    """Dense recall over the workspace's collection, restricted to documents whose ingest is done."""

    def __init__(self, index: QdrantIndex, embedder: Embedder, registry: Registry) -> None:
        self.index = index
        self.embedder = embedder
        self.registry = registry

    async def search(self, workspace: str, query: str, k: int = 10) -> list[Hit]:
        vec = (await asyncio.to_thread(self.embedder.embed_batch, [query]))[0]
        done = self.registry.done_doc_ids(workspace)
        scored = await asyncio.to_thread(self.index.query_dense, workspace, vec, k * 3)
        hits = [
            Hit(chunk=c, score=s, paths={"dense": r})
            for r, (c, s) in enumerate(scored, start=1)
            if c.doc_id in done
        ]
        return hits[:k]
