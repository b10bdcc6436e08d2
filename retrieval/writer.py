"""IndexWriter: the one write path into the index for a workspace's chunks (ingest and finetune use it).

``write`` embeds (dense with the workspace's embedder, sparse BM25) and upserts; graph extraction hooks in
here too, so every writer of chunks keeps vectors and graph in step. ``delete_doc`` removes a document's
vectors (and graph mentions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from core.embedder import Embedder
from core.types import Chunk
from retrieval.index import QdrantIndex
from retrieval.sparse import bm25_document

logger = logging.getLogger(__name__)


class IndexWriter:
    def __init__(self, index: QdrantIndex, embedder_for: Callable[[str], Embedder], batch: int = 64) -> None:
        self.index = index
        self.embedder_for = embedder_for
        self.batch = batch

    def write(self, workspace: str, chunks: Sequence[Chunk], progress: Callable[[int], None] | None = None) -> None:
        embedder = self.embedder_for(workspace)
        for i in range(0, len(chunks), self.batch):
            part = list(chunks[i : i + self.batch])
            texts = [c.index_text for c in part]
            dense = embedder.embed_batch(texts)
            sparse = [bm25_document(t) for t in texts]
            self.index.upsert(workspace, part, dense, sparse)
            if progress is not None:
                progress(len(part))

    def delete_doc(self, workspace: str, doc_id: str) -> None:
        self.index.delete_doc(workspace, doc_id)
