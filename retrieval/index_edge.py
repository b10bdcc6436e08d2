"""``VectorIndex`` on Qdrant Edge (qdrant-edge-py): the Qdrant engine inside this process, no server.

Layout under ``config.edge_path``: one EdgeShard directory per physical collection (``chunks_<ws>_v<N>``),
``aliases.json`` (alias -> collection, replaced atomically) and ``.lock``, held with ``flock`` while the index is
open so that a second process fails with a clear message. Shards open lazily and stay cached until ``close``.
Writes go through each shard's write-ahead log (replayed on load after a crash); ``close`` flushes.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from core.errors import RetrievalError
from core.settings import IndexConfig
from core.types import Chunk
from retrieval.index import CHUNK_ID_RE, DENSE, SPARSE, AliasedIndex, Scored, check_batch, point_id
from retrieval.sparse import SparseVec

if TYPE_CHECKING:
    from qdrant_edge import EdgeShard, Filter

COLLECTION_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_-]{0,127}\Z")  # \Z: "$" would accept a trailing newline
ALIASES = "aliases.json"


class EdgeIndex(AliasedIndex):
    """``VectorIndex`` on qdrant-edge-py. Like Qdrant local mode, one process owns the folder at a time."""

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self.root = config.edge_path
        self._lock = threading.RLock()
        self._lock_file: IO[str] | None = None
        self._aliases: dict[str, str] | None = None
        self._shards: dict[str, EdgeShard] = {}

    # ---- plumbing --------------------------------------------------------------------------------
    def _open(self) -> dict[str, str]:
        """Take the folder lock and read the aliases (first use after construction or ``close``)."""
        with self._lock:
            if self._aliases is None:
                self.root.mkdir(parents=True, exist_ok=True)
                f = (self.root / ".lock").open("a+", encoding="utf-8")
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as e:
                    f.seek(0)
                    holder = f.read().strip() or "?"
                    f.close()
                    raise RetrievalError(
                        f"the Qdrant Edge store at {self.root} is in use by another process (pid {holder}). "
                        "Stop the other ragent process (e.g. `ragent api`) or use RAGENT_VECTOR_BACKEND=qdrant "
                        "with RAGENT_QDRANT_URL set to a server."
                    ) from e
                f.seek(0)
                f.truncate()
                f.write(str(os.getpid()))
                f.flush()
                self._lock_file = f
                path = self.root / ALIASES
                self._aliases = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
            return self._aliases

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".aliases.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(aliases, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.root / ALIASES)
        self._aliases = aliases

    def _dir(self, name: str) -> Path:
        if not COLLECTION_RE.match(name):
            raise RetrievalError(f"invalid collection name {name!r}")
        return self.root / name

    def _shard(self, name: str) -> EdgeShard:
        """The open shard of a physical collection (loaded on first use)."""
        from qdrant_edge import EdgeShard

        with self._lock:
            self._open()
            shard = self._shards.get(name)
            if shard is None:
                path = self._dir(name)
                if not path.is_dir():
                    raise RetrievalError(f"collection {name} does not exist under {self.root}")
                try:
                    shard = EdgeShard.load(str(path))
                except Exception as e:  # qdrant_edge raises plain Exception ("Service runtime error: ...")
                    raise RetrievalError(f"cannot open the Qdrant Edge collection {path}: {e}") from e
                self._shards[name] = shard
            return shard

    def _target(self, workspace: str) -> EdgeShard | None:
        """The shard the workspace alias points at (None: no index yet). Call with ``_lock`` held."""
        name = self.physical(workspace)
        return None if name is None else self._shard(name)

    def close(self) -> None:
        with self._lock:
            shards, self._shards = self._shards, {}
            for shard in shards.values():
                shard.flush()
                shard.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None
            self._aliases = None

    def physical(self, workspace: str) -> str | None:
        """The collection the workspace alias points at, or None when the workspace has no index yet."""
        name = self.alias(workspace)
        with self._lock:
            return self._open().get(name)

    def create_collection(self, name: str, dim: int) -> None:
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeShard,
            EdgeSparseVectorParams,
            EdgeVectorParams,
            Modifier,
            PayloadSchemaType,
            UpdateOperation,
        )

        with self._lock:
            self._open()
            path = self._dir(name)
            if path.is_dir():
                return
            config = EdgeConfig(
                vectors={DENSE: EdgeVectorParams(size=dim, distance=Distance.Cosine)},
                sparse_vectors={SPARSE: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            )
            try:
                shard = EdgeShard.create(str(path), config)
            except Exception as e:
                shutil.rmtree(path, ignore_errors=True)
                raise RetrievalError(f"cannot create the Qdrant Edge collection {path}: {e}") from e
            for field in ("doc_id", "workspace"):
                shard.update(UpdateOperation.create_field_index(field, PayloadSchemaType.Keyword))
            self._shards[name] = shard

    def point_alias(self, workspace: str, collection: str) -> None:
        """Atomically (re)point the workspace alias at ``collection`` (one ``os.replace`` of aliases.json)."""
        self.set_aliases({self.alias(workspace): collection})

    def set_aliases(self, aliases: dict[str, str]) -> None:
        """Point several aliases (alias name -> collection) at once, in one atomic write of aliases.json.

        >>> idx.set_aliases({"chunks_a": "chunks_a_v1", "chunks_b": "chunks_b_v3"})  # doctest: +SKIP
        """
        with self._lock:
            current = self._open()
            for collection in aliases.values():
                if not self._dir(collection).is_dir():
                    raise RetrievalError(f"collection {collection} does not exist under {self.root}")
            self._write_aliases({**current, **aliases})

    def collection_names(self) -> list[str]:
        """Every physical collection, sorted."""
        with self._lock:
            self._open()
            return sorted(p.name for p in self.root.iterdir() if p.is_dir() and COLLECTION_RE.match(p.name))

    def drop_collection(self, name: str) -> None:
        """Delete a physical collection if it exists, and any alias pointing at it (as Qdrant does)."""
        with self._lock:
            aliases = self._open()
            path = self._dir(name)
            shard = self._shards.pop(name, None)
            if shard is not None:
                shard.close()
            if any(c == name for c in aliases.values()):
                self._write_aliases({a: c for a, c in aliases.items() if c != name})
            shutil.rmtree(path, ignore_errors=True)

    def _alias_names(self) -> list[str]:
        with self._lock:
            return list(self._open())

    @staticmethod
    def _ws_filter(workspace: str, doc_id: str | None = None) -> Filter:
        from qdrant_edge import FieldCondition, Filter, MatchValue

        must: list[Any] = [FieldCondition(key="workspace", match=MatchValue(workspace))]
        if doc_id is not None:
            must.append(FieldCondition(key="doc_id", match=MatchValue(doc_id)))
        return Filter(must=must)

    # ---- writes ----------------------------------------------------------------------------------
    def upsert(
        self, workspace: str, chunks: Sequence[Chunk], dense: np.ndarray, sparse: Sequence[SparseVec],
        collection: str | None = None,
    ) -> None:
        from qdrant_edge import Point, SparseVector, UpdateOperation

        if not chunks:
            return
        check_batch(chunks, dense, sparse)
        points = [
            Point(point_id(c.id), {DENSE: d.tolist(), SPARSE: SparseVector(s[0], s[1])}, c.to_payload())
            for c, d, s in zip(chunks, dense, sparse, strict=True)
        ]
        with self._lock:
            if collection is None:
                self.ensure(workspace, dense.shape[1])
                shard = self._target(workspace)
            else:
                shard = self._shard(collection)
            if shard is None:
                raise RetrievalError(f"workspace {workspace!r} has no collection")
            for i in range(0, len(points), 256):
                shard.update(UpdateOperation.upsert_points(points[i : i + 256]))

    def delete_doc(self, workspace: str, doc_id: str, collection: str | None = None) -> None:
        """Delete a document's points from the workspace's collection (or the physical ``collection``)."""
        from qdrant_edge import UpdateOperation

        with self._lock:
            shard = self._target(workspace) if collection is None else self._shard(collection)
            if shard is not None:
                shard.update(UpdateOperation.delete_points_by_filter(self._ws_filter(workspace, doc_id)))

    def optimize(self, workspace: str, collection: str | None = None) -> None:
        """Run the shard's optimizers now: Qdrant Edge has no background optimizer, so until this runs new
        points are searched brute force (HNSW is built for segments over Qdrant's indexing threshold)."""
        with self._lock:
            shard = self._target(workspace) if collection is None else self._shard(collection)
            if shard is not None:
                shard.optimize()

    # ---- reads -----------------------------------------------------------------------------------
    def _query(self, workspace: str, query: Any, using: str, k: int) -> Scored:
        from qdrant_edge import Query, QueryRequest

        with self._lock:
            shard = self._target(workspace)
            if shard is None:
                return []
            res = shard.query(QueryRequest(limit=k, query=Query.Nearest(query, using=using),
                                           filter=self._ws_filter(workspace), with_payload=True))
        return [(Chunk.from_payload(p.payload), float(p.score)) for p in res if p.payload]

    def query_dense(self, workspace: str, vector: np.ndarray, k: int) -> Scored:
        return self._query(workspace, np.asarray(vector, dtype=np.float32).tolist(), DENSE, k)

    def query_sparse(self, workspace: str, vector: SparseVec, k: int) -> Scored:
        from qdrant_edge import SparseVector

        if not vector[0]:
            return []
        return self._query(workspace, SparseVector(vector[0], vector[1]), SPARSE, k)

    def get(self, workspace: str, chunk_ids: Sequence[str]) -> list[Chunk]:
        """Chunks by id, in the order asked; unknown or malformed ids (e.g. made up by an LLM) are skipped."""
        chunk_ids = [i for i in chunk_ids if CHUNK_ID_RE.match(i)]
        if not chunk_ids:
            return []
        with self._lock:
            shard = self._target(workspace)
            if shard is None:
                return []
            recs = shard.retrieve([point_id(i) for i in chunk_ids], with_payload=True, with_vector=False)
        by_id = {r.payload["id"]: Chunk.from_payload(r.payload) for r in recs
                 if r.payload and r.payload.get("workspace") == workspace}
        return [by_id[i] for i in chunk_ids if i in by_id]

    def scroll(
        self, workspace: str, doc_id: str | None = None, with_vectors: bool = False, collection: str | None = None,
    ) -> list[Any]:
        """All points of a workspace (or one document): Edge records with ``.payload`` (and ``.vector``); from
        the physical ``collection`` instead of the one the alias points at when given."""
        from qdrant_edge import ScrollRequest

        out: list[Any] = []
        offset: Any = None
        while True:
            with self._lock:
                shard = self._target(workspace) if collection is None else self._shard(collection)
                if shard is None:
                    return []
                recs, offset = shard.scroll(ScrollRequest(
                    offset=offset, limit=512, filter=self._ws_filter(workspace, doc_id), with_payload=True,
                    with_vector=with_vectors,
                ))
            out.extend(recs)
            if offset is None:
                return out

    def count(self, workspace: str, collection: str | None = None) -> int:
        """Points of the workspace in its collection (or in the physical ``collection``)."""
        from qdrant_edge import CountRequest

        with self._lock:
            shard = self._target(workspace) if collection is None else self._shard(collection)
            if shard is None:
                return 0
            return int(shard.count(CountRequest(exact=True, filter=self._ws_filter(workspace))))
