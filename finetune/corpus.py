"""The workspace as finetune sees it: its searchable chunks with their stored dense and sparse vectors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ConfigError
from core.types import Chunk
from finetune.tunable import Tunable
from retrieval.sparse import SparseVec


@dataclass(frozen=True)
class Corpus:
    """Chunks (in a fixed order), their stored dense matrix (rows L2-normalised) and sparse vectors."""

    chunks: tuple[Chunk, ...]
    dense: np.ndarray
    sparse: tuple[SparseVec, ...]

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.chunks]

    def position(self) -> dict[str, int]:
        return {c.id: i for i, c in enumerate(self.chunks)}

    def texts(self) -> list[str]:
        return [c.index_text for c in self.chunks]


def _sparse(rec: Any) -> SparseVec:
    v = (rec.vector or {}).get("bm25")
    if v is None:
        return ([], [])
    return (list(v.indices), list(v.values))


def load_corpus(retriever: Tunable, workspace: str) -> Corpus:
    """Every chunk of the workspace's done documents, read once with its vectors (``VectorIndex.scroll``)."""
    done = retriever.registry.done_doc_ids(workspace)
    recs = [r for r in retriever.index.scroll(workspace, with_vectors=True)
            if r.payload and r.payload.get("doc_id") in done]
    if not recs:
        raise ConfigError(f"workspace {workspace!r} has no ingested documents: run `ragent ingest` first")
    recs.sort(key=lambda r: (r.payload["doc_id"], r.payload.get("order", 0), r.payload["id"]))
    dense = np.asarray([r.vector["dense"] for r in recs], dtype=np.float32)
    dense /= np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
    return Corpus(tuple(Chunk.from_payload(r.payload) for r in recs), dense, tuple(_sparse(r) for r in recs))


def top_k(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine scores of each query's top-k corpus rows (exact; vectors L2-normalised)."""
    sims = queries @ corpus.T
    k = min(k, corpus.shape[0])
    idx = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    part = np.take_along_axis(sims, idx, axis=1)
    order = np.argsort(-part, axis=1)
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(part, order, axis=1)
