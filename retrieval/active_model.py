"""Which embedding model a workspace's collection was embedded with (finetune switches it; rollback undoes it).

One JSON file per workspace, ``<home>/finetune/<ws>/active.json``, holding the history of promoted model
versions (oldest first; the last one is active). No entry means the default embedder. Writes are atomic
(temp file + ``os.replace``) so a reader in another thread or process never sees half a file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

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


class ActiveModels:
    """Per-workspace active model record with history (``get``/``set``/``pop``); thread-safe, no I/O at init."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.RLock()
        self._cache: dict[str, tuple[float, list[ModelVersion]]] = {}  # ws -> (mtime, history)

    @classmethod
    def for_index(cls, config: IndexConfig) -> ActiveModels:
        """The record next to the index's SQLite file: ``<home>/finetune``."""
        return cls(config.db_path.parent / "finetune")

    def _file(self, workspace: str) -> Path:
        return self.root / check_workspace(workspace) / "active.json"

    def history(self, workspace: str) -> list[ModelVersion]:
        """Promoted versions, oldest first; the last one is active."""
        path = self._file(workspace)
        with self._lock:
            try:
                mtime = path.stat().st_mtime_ns
            except FileNotFoundError:
                self._cache.pop(workspace, None)
                return []
            cached = self._cache.get(workspace)
            if cached is not None and cached[0] == mtime:
                return list(cached[1])
            data = json.loads(path.read_text(encoding="utf-8"))
            hist = [ModelVersion.from_json(d) for d in data.get("history", [])]
            self._cache[workspace] = (mtime, hist)
            return list(hist)

    def get(self, workspace: str) -> ModelVersion | None:
        hist = self.history(workspace)
        return hist[-1] if hist else None

    def set(self, workspace: str, version: ModelVersion) -> None:
        """Make ``version`` the active model (appended to the history)."""
        with self._lock:
            hist = self.history(workspace)
            if not version.created:
                version = ModelVersion(**{**version.to_json(), "created": time.time()})
            self._write(workspace, [*hist, version])

    def pop(self, workspace: str) -> ModelVersion | None:
        """Drop the active version; return it (None when there was none). The previous one becomes active."""
        with self._lock:
            hist = self.history(workspace)
            if not hist:
                return None
            self._write(workspace, hist[:-1])
            return hist[-1]

    def _write(self, workspace: str, hist: list[ModelVersion]) -> None:
        path = self._file(workspace)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".active.", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"workspace": workspace, "history": [v.to_json() for v in hist]}, f, indent=1)
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
