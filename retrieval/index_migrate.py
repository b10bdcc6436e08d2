"""Move a home's vectors from a Qdrant local-mode store (``<home>/qdrant``) to Qdrant Edge (``<home>/qdrant_edge``):
what ``ragent index migrate --to edge`` runs, and what the ``auto`` backend reads to choose between them.

The copy: every physical collection (``chunks_<ws>_v<N>``, the finetune swap's earlier ones included) with its
points, ids, dense + sparse vectors and payloads; then the counts are checked after the Edge store is closed and
reopened; only then the switch, ONE atomic write of Edge's ``aliases.json`` with every local-mode alias. Until that
write the ``auto`` backend keeps reading local mode (``local_mode_only``), so a run killed part-way loses nothing, and
running it again drops the half-copied Edge collections and copies afresh. After the switch a rerun does nothing.
The local-mode folder is only read, and left where it is.

    >>> report = migrate_to_edge(Settings.from_env().index)  # doctest: +SKIP
    >>> report.points, report.source                          # doctest: +SKIP
    (1234, PosixPath('var/qdrant'))
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from core.config import IndexConfig
from core.errors import ConfigError, RetrievalError
from core.types import Chunk
from retrieval.index import DENSE, SPARSE, QdrantIndex
from retrieval.index_edge import ALIASES, EdgeIndex
from retrieval.sparse import SparseVec

logger = logging.getLogger(__name__)

BATCH = 256
Progress = Callable[[str, int, int], None]  # (collection, points copied so far, points in it)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def local_mode_collections(path: Path) -> list[str]:
    """The collections a Qdrant local-mode folder holds, read from its ``meta.json`` (no lock taken)."""
    return sorted(_read_json(path / "meta.json").get("collections") or {})


def edge_aliases(path: Path) -> dict[str, str]:
    """The aliases of a Qdrant Edge folder (alias -> collection); empty before anything was switched to it."""
    return {str(a): str(c) for a, c in _read_json(path / ALIASES).items()}


def local_mode_only(config: IndexConfig) -> bool:
    """True when the home's vectors are in Qdrant local mode and Qdrant Edge holds none (no alias yet)."""
    return bool(local_mode_collections(config.qdrant_path)) and not edge_aliases(config.edge_path)


@dataclass(frozen=True)
class CollectionCopy:
    """One copied collection: its name and the points in it (the same in both stores)."""

    name: str
    points: int


@dataclass(frozen=True)
class Migration:
    """What ``migrate_to_edge`` did. ``switched`` is False when Qdrant Edge was already in use (nothing done)."""

    source: Path
    target: Path
    collections: tuple[CollectionCopy, ...]
    aliases: tuple[tuple[str, str], ...]
    switched: bool

    @property
    def points(self) -> int:
        return sum(c.points for c in self.collections)


def _records(src: QdrantIndex, name: str) -> Iterator[list[Any]]:
    """The raw local-mode records of a collection, ``BATCH`` at a time, with payloads and vectors."""
    offset = None
    while True:
        recs, offset = src.client.scroll(name, limit=BATCH, offset=offset, with_payload=True, with_vectors=True)
        yield recs
        if offset is None:
            return


def _copy(src: QdrantIndex, dst: EdgeIndex, name: str, progress: Progress | None) -> set[str]:
    """Copy one collection into a fresh Edge collection; returns the workspaces its points belong to."""
    info = src.client.get_collection(name)
    vectors = info.config.params.vectors
    if not isinstance(vectors, dict) or DENSE not in vectors:
        raise RetrievalError(f"collection {name} has no named {DENSE!r} vector: not one of ragent's, not migrated")
    dst.drop_collection(name)  # a half-copied one from a run that was killed
    dst.create_collection(name, int(vectors[DENSE].size))
    total = int(src.client.count(name, exact=True).count)
    workspaces: set[str] = set()
    done = 0
    for recs in _records(src, name):
        by_ws: dict[str, list[Any]] = {}
        for r in recs:
            by_ws.setdefault(str(r.payload["workspace"]), []).append(r)
        for ws, part in by_ws.items():
            chunks = [Chunk.from_payload(r.payload) for r in part]
            dense = np.asarray([r.vector[DENSE] for r in part], dtype=np.float32)
            sparse: list[SparseVec] = [
                (list(r.vector[SPARSE].indices), list(r.vector[SPARSE].values)) if SPARSE in r.vector else ([], [])
                for r in part
            ]
            dst.upsert(ws, chunks, dense, sparse, collection=name)
            workspaces.add(ws)
        done += len(recs)
        if progress is not None:
            progress(name, done, total)
    dst.optimize("", collection=name)
    return workspaces


def migrate_to_edge(config: IndexConfig, progress: Progress | None = None) -> Migration:
    """Copy the local-mode store of ``config`` into Qdrant Edge, check the counts, then switch (see the module).

    Raises ``ConfigError`` with a Qdrant server configured (nothing embedded to move), ``RetrievalError`` when
    there is no local-mode store, another process holds either store, or a count differs after the copy.
    """
    if config.qdrant_url:
        raise ConfigError("RAGENT_QDRANT_URL is set: the vectors live on the Qdrant server, there is no embedded "
                          "local-mode store to migrate. Unset it to migrate the store under RAGENT_HOME.")
    if edge_aliases(config.edge_path):
        return Migration(config.qdrant_path, config.edge_path, (), (), switched=False)
    if not local_mode_collections(config.qdrant_path):
        raise RetrievalError(f"no Qdrant local-mode collections under {config.qdrant_path}: nothing to migrate")
    src = QdrantIndex(replace(config, backend="qdrant"))
    dst = EdgeIndex(replace(config, backend="edge"))
    try:
        names = src.collection_names()
        aliases = {str(a.alias_name): str(a.collection_name) for a in src.client.get_aliases().aliases}
        copied = {name: _copy(src, dst, name, progress) for name in names}
        dst.close()  # flush every shard; the counts below are read back from disk
        copies = []
        for name, workspaces in copied.items():
            want = int(src.client.count(name, exact=True).count)
            got = sum(dst.count(ws, collection=name) for ws in workspaces)
            if got != want:
                raise RetrievalError(f"migration check failed: {name} has {want} points in local mode, {got} in "
                                     "Qdrant Edge. Nothing was switched; run the migration again.")
            copies.append(CollectionCopy(name, got))
        dst.set_aliases(aliases)  # the switch
        logger.info("migrated %d collections to Qdrant Edge at %s", len(copies), config.edge_path)
        return Migration(config.qdrant_path, config.edge_path, tuple(copies), tuple(sorted(aliases.items())),
                         switched=True)
    finally:
        src.close()
        dst.close()
