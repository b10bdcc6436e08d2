"""The VectorIndex seam and its Qdrant implementation (local mode by path, or a server by URL).
The embedded Qdrant Edge implementation is ``retrieval.index_edge.EdgeIndex``; ``retrieval.factory.build_index``
picks one from settings.

Each workspace has its own collection, reached through an alias ``chunks_<ws>`` that points at a physical
collection ``chunks_<ws>_v<N>``; the finetune hot swap builds ``v<N+1>`` and moves the alias atomically.
Points carry two named vectors: ``dense`` (cosine) and ``bm25`` (sparse, IDF modifier).
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from core.errors import RetrievalError
from core.settings import IndexConfig
from core.types import Chunk
from core.workspace import check_workspace
from retrieval.sparse import SparseVec

logger = logging.getLogger(__name__)

DENSE, SPARSE = "dense", "bm25"
CHUNK_ID_RE = re.compile(r"\A[0-9a-f]{32}\Z")
Scored = list[tuple[Chunk, float]]
ALIAS_PREFIX = "chunks_"


def point_id(chunk_id: str) -> str:
    """Qdrant wants UUIDs; chunk ids are 32 hex chars of a content hash, i.e. a UUID already."""
    return str(uuid.UUID(hex=chunk_id[:32].ljust(32, "0")))


class VectorIndex(Protocol):
    """What callers may use of an index: ``QdrantIndex`` (qdrant-client) or ``EdgeIndex`` (Qdrant Edge)."""

    config: IndexConfig

    def close(self) -> None: ...
    def alias(self, workspace: str) -> str: ...
    def physical(self, workspace: str) -> str | None: ...
    def create_collection(self, name: str, dim: int) -> None: ...
    def point_alias(self, workspace: str, collection: str) -> None: ...
    def collection_names(self) -> list[str]: ...
    def drop_collection(self, name: str) -> None: ...
    def ensure(self, workspace: str, dim: int | None = None) -> str: ...
    def exists(self, workspace: str) -> bool: ...
    def workspaces(self) -> list[str]: ...
    def upsert(
        self, workspace: str, chunks: Sequence[Chunk], dense: np.ndarray, sparse: Sequence[SparseVec],
        collection: str | None = None,
    ) -> None: ...
    def delete_doc(self, workspace: str, doc_id: str, collection: str | None = None) -> None: ...
    def query_dense(self, workspace: str, vector: np.ndarray, k: int) -> Scored: ...
    def query_sparse(self, workspace: str, vector: SparseVec, k: int) -> Scored: ...
    def get(self, workspace: str, chunk_ids: Sequence[str]) -> list[Chunk]: ...
    def scroll(
        self, workspace: str, doc_id: str | None = None, with_vectors: bool = False, collection: str | None = None,
    ) -> list[Any]: ...
    def count(self, workspace: str, collection: str | None = None) -> int: ...
    def optimize(self, workspace: str, collection: str | None = None) -> None: ...


class AliasedIndex:
    """What both backends share: workspace ``ws`` -> alias ``chunks_<ws>`` -> a physical ``chunks_<ws>_v<N>``.

    Subclasses provide ``physical``, ``create_collection``, ``point_alias`` and ``_alias_names``.
    """

    config: IndexConfig
    _lock: threading.RLock

    @staticmethod
    def alias(workspace: str) -> str:
        return f"{ALIAS_PREFIX}{check_workspace(workspace)}"

    def physical(self, workspace: str) -> str | None:
        raise NotImplementedError

    def create_collection(self, name: str, dim: int) -> None:
        raise NotImplementedError

    def point_alias(self, workspace: str, collection: str) -> None:
        raise NotImplementedError

    def _alias_names(self) -> list[str]:
        raise NotImplementedError

    def ensure(self, workspace: str, dim: int | None = None) -> str:
        """Create the workspace's first collection and alias if missing; return the alias name."""
        with self._lock:
            if self.physical(workspace) is None:
                name = f"{self.alias(workspace)}_v1"
                self.create_collection(name, dim or self.config.dense_dim)
                self.point_alias(workspace, name)
        return self.alias(workspace)

    def exists(self, workspace: str) -> bool:
        return self.physical(workspace) is not None

    def workspaces(self) -> list[str]:
        with self._lock:
            return sorted(a[len(ALIAS_PREFIX):] for a in self._alias_names() if a.startswith(ALIAS_PREFIX))

    def optimize(self, workspace: str, collection: str | None = None) -> None:
        """Build search indexes after a bulk write into the workspace's collection (or ``collection``).

        A no-op here: Qdrant server optimises in the background and local mode searches brute force."""


def check_batch(chunks: Sequence[Chunk], dense: np.ndarray, sparse: Sequence[SparseVec]) -> None:
    if len(chunks) != len(dense) or len(chunks) != len(sparse):
        raise RetrievalError("upsert: chunks, dense and sparse vectors differ in length")


class QdrantIndex(AliasedIndex):
    """``VectorIndex`` on qdrant-client. Local mode locks its folder to one process (the API owns it)."""

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self._client: Any = None
        self._lock = threading.RLock()  # local mode is not safe under concurrent threads

    # ---- plumbing --------------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            from qdrant_client import QdrantClient

            try:
                if self.config.qdrant_url:
                    self._client = QdrantClient(url=self.config.qdrant_url, api_key=self.config.qdrant_api_key)
                else:
                    self.config.qdrant_path.mkdir(parents=True, exist_ok=True)
                    self._client = QdrantClient(path=str(self.config.qdrant_path))
            except RuntimeError as e:  # "Storage folder ... is already accessed by another instance"
                raise RetrievalError(
                    f"the Qdrant store at {self.config.qdrant_path} is in use by another process ({e}). "
                    "Stop the other ragent process (e.g. `ragent api`) or set RAGENT_QDRANT_URL to a server."
                ) from e
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def physical(self, workspace: str) -> str | None:
        """The collection the workspace alias points at, or None when the workspace has no index yet."""
        name = self.alias(workspace)
        with self._lock:
            for a in self.client.get_aliases().aliases:
                if a.alias_name == name:
                    return str(a.collection_name)
        return None

    def create_collection(self, name: str, dim: int) -> None:
        from qdrant_client import models

        with self._lock:
            if self.client.collection_exists(name):
                return
            self.client.create_collection(
                name,
                vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            )
            if self.config.qdrant_url:  # payload indexes are a server feature; local mode ignores them
                for field in ("doc_id", "workspace"):
                    self.client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)

    def point_alias(self, workspace: str, collection: str) -> None:
        """Atomically (re)point the workspace alias at ``collection``."""
        from qdrant_client import models

        alias = self.alias(workspace)
        ops: list[Any] = []
        if self.physical(workspace) is not None:
            ops.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
        ops.append(models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)))
        with self._lock:
            self.client.update_collection_aliases(change_aliases_operations=ops)

    def collection_names(self) -> list[str]:
        """Every physical collection, sorted."""
        with self._lock:
            return sorted(str(c.name) for c in self.client.get_collections().collections)

    def drop_collection(self, name: str) -> None:
        """Delete a physical collection if it exists (callers re-point any alias to it first)."""
        with self._lock:
            if self.client.collection_exists(name):
                self.client.delete_collection(name)

    def _alias_names(self) -> list[str]:
        with self._lock:
            return [str(a.alias_name) for a in self.client.get_aliases().aliases]

    @staticmethod
    def _ws_filter(workspace: str, doc_id: str | None = None) -> Any:
        from qdrant_client import models

        must: list[Any] = [models.FieldCondition(key="workspace", match=models.MatchValue(value=workspace))]
        if doc_id is not None:
            must.append(models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id)))
        return models.Filter(must=must)

    # ---- writes ----------------------------------------------------------------------------------
    def upsert(
        self, workspace: str, chunks: Sequence[Chunk], dense: np.ndarray, sparse: Sequence[SparseVec],
        collection: str | None = None,
    ) -> None:
        from qdrant_client import models

        if not chunks:
            return
        check_batch(chunks, dense, sparse)
        target = collection or self.ensure(workspace, dense.shape[1])
        points = [
            models.PointStruct(
                id=point_id(c.id),
                vector={DENSE: d.tolist(), SPARSE: models.SparseVector(indices=s[0], values=s[1])},
                payload=c.to_payload(),
            )
            for c, d, s in zip(chunks, dense, sparse, strict=True)
        ]
        with self._lock:
            for i in range(0, len(points), 256):
                self.client.upsert(target, points=points[i : i + 256], wait=True)

    def delete_doc(self, workspace: str, doc_id: str, collection: str | None = None) -> None:
        """Delete a document's points from the workspace's collection (or the physical ``collection``)."""
        from qdrant_client import models

        if collection is None and not self.exists(workspace):
            return
        with self._lock:
            self.client.delete(
                collection or self.alias(workspace),
                points_selector=models.FilterSelector(filter=self._ws_filter(workspace, doc_id)),
                wait=True,
            )

    # ---- reads -----------------------------------------------------------------------------------
    def _points(self, res: Any) -> Scored:
        return [(Chunk.from_payload(p.payload), float(p.score)) for p in res.points]

    def query_dense(self, workspace: str, vector: np.ndarray, k: int) -> Scored:
        if not self.exists(workspace):
            return []
        with self._lock:
            res = self.client.query_points(
                self.alias(workspace), query=np.asarray(vector, dtype=np.float32).tolist(), using=DENSE,
                limit=k, query_filter=self._ws_filter(workspace), with_payload=True,
            )
        return self._points(res)

    def query_sparse(self, workspace: str, vector: SparseVec, k: int) -> Scored:
        from qdrant_client import models

        if not self.exists(workspace) or not vector[0]:
            return []
        with self._lock:
            res = self.client.query_points(
                self.alias(workspace), query=models.SparseVector(indices=vector[0], values=vector[1]),
                using=SPARSE, limit=k, query_filter=self._ws_filter(workspace), with_payload=True,
            )
        return self._points(res)

    def get(self, workspace: str, chunk_ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked; unknown or malformed ids (e.g. made up by an LLM) are skipped."""
        chunk_ids = [i for i in chunk_ids if CHUNK_ID_RE.match(i)]
        if not chunk_ids or not self.exists(workspace):
            return []
        with self._lock:
            recs = self.client.retrieve(self.alias(workspace), ids=[point_id(i) for i in chunk_ids],
                                        with_payload=True)
        by_id = {r.payload["id"]: Chunk.from_payload(r.payload) for r in recs
                 if r.payload and r.payload.get("workspace") == workspace}
        return [by_id[i] for i in chunk_ids if i in by_id]

    def scroll(
        self, workspace: str, doc_id: str | None = None, with_vectors: bool = False, collection: str | None = None,
    ) -> list[Any]:
        """All points of a workspace (or one document): Qdrant records with payload (and vectors); from the
        physical ``collection`` instead of the one the alias points at when given."""
        if collection is None and not self.exists(workspace):
            return []
        out: list[Any] = []
        offset = None
        while True:
            with self._lock:
                recs, offset = self.client.scroll(
                    collection or self.alias(workspace), scroll_filter=self._ws_filter(workspace, doc_id), limit=512,
                    offset=offset, with_payload=True, with_vectors=with_vectors,
                )
            out.extend(recs)
            if offset is None:
                return out

    def count(self, workspace: str, collection: str | None = None) -> int:
        """Points of the workspace in its collection (or in the physical ``collection``)."""
        if collection is None and not self.exists(workspace):
            return 0
        with self._lock:
            return int(self.client.count(collection or self.alias(workspace), count_filter=self._ws_filter(workspace),
                                         exact=True).count)
