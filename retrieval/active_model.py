"""Which embedding model a workspace's collection was embedded with (finetune switches it; rollback undoes it).

One JSON file per workspace, ``<home>/finetune/<ws>/active.json``, holding the history of promoted model
versions (oldest first; the last one is active), the collection the workspace alias must point at
(``alias``), the model the graph's entity-name vectors were embedded with (``entity_model``: a model
folder, "" for the default embedder) and the base embedder's id (``embedder``: model + quantisation, recorded
where it is not plain fp32, checked by ``check_embedder`` so int8 vectors never meet fp32 ones). No file means the
default fp32 embedder everywhere. Writes are atomic
(temp file + ``os.replace``) so a reader in another thread or process never sees half a file.

The record is the truth: the finetune swap writes it first and then moves the alias and re-embeds the entity
names to match (``finetune.swap.recover`` finishes that after a crash).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.embedder import EmbedderId
from core.errors import ConfigError
from core.settings import IndexConfig
from core.workspace import check_workspace
from retrieval.index import VectorIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelVersion:
    """A fine-tuned embedding model promoted for a workspace, and the collection embedded with it."""

    workspace: str
    version: int
    model_dir: str
    collection: str
    previous_collection: str | None = None  # what the alias pointed at before (rollback goes back there)
    created: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ModelVersion:
        return cls(
            workspace=str(d["workspace"]), version=int(d["version"]), model_dir=str(d["model_dir"]),
            collection=str(d["collection"]), previous_collection=d.get("previous_collection"),
            created=float(d.get("created", 0.0)), metrics={k: float(v) for k, v in (d.get("metrics") or {}).items()},
        )


@dataclass(frozen=True)
class Record:
    """One workspace's file: the version history, the alias target and the entity vectors' model."""

    history: tuple[ModelVersion, ...] = ()
    alias: str | None = None  # the collection the workspace alias must point at (None: whatever it points at)
    entity_model: str | None = ""  # model folder of the entity-name vectors ("" default, None unknown)
    embedder: EmbedderId | None = None  # the base embedder of the vectors (None: fp32, model not recorded)


def model_key(version: ModelVersion | None) -> str:
    """What ``Record.entity_model`` holds for vectors embedded by ``version``'s model ("" for the default)."""
    return version.model_dir if version is not None else ""


class ActiveModels:
    """Per-workspace active model record with history (``get``/``set``/``pop``); thread-safe, no I/O at init."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[tuple[int, int, int], Record]] = {}  # ws -> (file stamp, record)

    @classmethod
    def for_index(cls, config: IndexConfig) -> ActiveModels:
        """The record next to the index's SQLite file: ``<home>/finetune``."""
        return cls(config.db_path.parent / "finetune")

    def _file(self, workspace: str) -> Path:
        return self.root / check_workspace(workspace) / "active.json"

    def record(self, workspace: str) -> Record:
        """The workspace's whole record (the default one when no file exists)."""
        path = self._file(workspace)
        with self._lock:
            try:
                st = path.stat()
            except FileNotFoundError:
                self._cache.pop(workspace, None)
                return Record()
            # each write is a new file (os.replace), so the inode tells two writes within one mtime tick apart
            mtime = (st.st_mtime_ns, st.st_ino, st.st_size)
            cached = self._cache.get(workspace)
            if cached is not None and cached[0] == mtime:
                return cached[1]
            data = json.loads(path.read_text(encoding="utf-8"))
            hist = tuple(ModelVersion.from_json(d) for d in data.get("history", []))
            # files written before these fields existed: the alias follows the active version, the entity
            # vectors' model is unknown (recover re-embeds them once)
            alias = data["alias"] if "alias" in data else (hist[-1].collection if hist else None)
            emb = data.get("embedder")
            rec = Record(hist, alias, data.get("entity_model"),
                         EmbedderId(str(emb["model"]), emb["quant"]) if emb else None)
            self._cache[workspace] = (mtime, rec)
            return rec

    def workspaces(self) -> list[str]:
        """Workspaces that have a record (a fine-tuned model now or before)."""
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/active.json"))

    def history(self, workspace: str) -> list[ModelVersion]:
        """Promoted versions, oldest first; the last one is active."""
        return list(self.record(workspace).history)

    def get(self, workspace: str) -> ModelVersion | None:
        hist = self.history(workspace)
        return hist[-1] if hist else None

    def set(self, workspace: str, version: ModelVersion) -> None:
        """Make ``version`` the active model (appended to the history); the alias must point at its collection."""
        with self._lock:
            rec = self.record(workspace)
            if not version.created:
                version = ModelVersion(**{**version.to_json(), "created": time.time()})
            self._write(workspace, replace(rec, history=(*rec.history, version), alias=version.collection))

    def pop(self, workspace: str) -> ModelVersion | None:
        """Drop the active version; return it (None when there was none). The previous one becomes active and
        the alias must point back at the popped version's ``previous_collection``."""
        with self._lock:
            rec = self.record(workspace)
            if not rec.history:
                return None
            top = rec.history[-1]
            self._write(workspace, replace(rec, history=rec.history[:-1], alias=top.previous_collection))
            return top

    def set_entity_model(self, workspace: str, key: str) -> None:
        """Record that the workspace's entity-name vectors are now embedded by ``key`` (see ``model_key``)."""
        with self._lock:
            self._write(workspace, replace(self.record(workspace), entity_model=key))

    def check_embedder(self, workspace: str, ident: EmbedderId, has_vectors: Callable[[], bool]) -> None:
        """Raise ConfigError when the workspace's vectors come from another embedder than ``ident`` (another
        model or quantisation) and it holds any (``has_vectors``); otherwise record ``ident`` if it differs. No
        record means fp32 vectors of an unrecorded model (every workspace before the record): any fp32 embedder
        passes and nothing is written, so only a non-fp32 embedder creates a record."""
        held = self.record(workspace).embedder
        if held == ident or (held is None and ident.quant == "none"):
            return
        with self._lock:
            if has_vectors():
                was = held or EmbedderId("an fp32 model")
                back = [f"RAGENT_EMBED_QUANT={was.quant}"] + (
                    [f"RAGENT_EMBED_MODEL={was.model}"] if held is not None and held.model != ident.model else [])
                raise ConfigError(
                    f"workspace {workspace!r} holds vectors of {was}, and the configured embedder is {ident}: its "
                    f"vectors cannot be searched with this one's. Set {' and '.join(back)} back, or re-ingest: "
                    "ingest into a new workspace, or delete this one's documents (ragent docs delete) and ingest "
                    "them again.")
            self._write(workspace, replace(self.record(workspace), embedder=ident))

    def _write(self, workspace: str, rec: Record) -> None:
        path = self._file(workspace)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".active.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"workspace": workspace, "history": [v.to_json() for v in rec.history], "alias": rec.alias,
                       "entity_model": rec.entity_model,
                       "embedder": asdict(rec.embedder) if rec.embedder else None}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._cache.pop(workspace, None)


# ---- collection helpers for the hot swap ----------------------------------------------------------------
def collections(index: VectorIndex, workspace: str) -> list[str]:
    """Physical collections of a workspace (``chunks_<ws>_v<N>``), oldest first."""
    prefix = f"{index.alias(workspace)}_v"
    names = index.collection_names()
    return sorted((n for n in names if n.startswith(prefix) and n[len(prefix):].isdigit()),
                  key=lambda n: int(n[len(prefix):]))


def next_collection(index: VectorIndex, workspace: str) -> str:
    """A fresh physical collection name: one past the highest ``v<N>`` that exists."""
    names = collections(index, workspace)
    prefix = f"{index.alias(workspace)}_v"
    top = max((int(n[len(prefix):]) for n in names), default=0)
    return f"{prefix}{top + 1}"


def drop_collection(index: VectorIndex, name: str) -> None:
    """Delete a physical collection (never the one an alias points at: callers re-point the alias first)."""
    index.drop_collection(name)
