"""Experience memory: tips (lessons) and shortcuts (reusable step lists) on a LangGraph ``BaseStore``.

Namespaces are ``("tips", workspace)`` and ``("shortcuts", workspace)`` (plus ``("sequences", workspace)``
where the shortcuts reflector counts successful tool sequences before promoting one). Each item is a dict::

    {"id", "kind", "text", "uses", "successes", "failures", "weight", "provenance": [run ids],
     "created", "updated", ...}   # shortcuts add "name", "description", "params", "steps"

Search ranks by cosine similarity of ``text`` under the given embedder (vectors cached in the item), or by word
overlap without one: it works the same over every BaseStore backend (SqliteStore, InMemoryStore, PostgresStore)
without the sqlite-vec extension.
"""

from __future__ import annotations

import builtins
import logging
import random
import re
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from core.embedder import Embedder
from core.errors import ConfigError

logger = logging.getLogger(__name__)

KINDS = ("tips", "shortcuts")
_WORD = re.compile(r"\w+")


def _norm(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def signature(item: dict[str, Any]) -> str:
    """What makes two items duplicates: the normalised text of a tip, the tool sequence of a shortcut."""
    if item.get("steps"):
        return "|".join(f"{s['tool']}:{sorted(s.get('input', {}))}" for s in item["steps"])
    return _norm(str(item.get("text", "")))


class ExperienceMemory:
    """CRUD + search over tips and shortcuts, with usage/success counters, merging and decay."""

    learns = True  # the experience reflectors write to it (the placebo below reads only)

    def __init__(self, store: Any, embedder: Embedder | None = None) -> None:
        self.store = store  # a langgraph BaseStore
        self.embedder = embedder

    # ---- CRUD -------------------------------------------------------------------------------------------
    def list(self, kind: str, workspace: str) -> list[dict[str, Any]]:
        items = self.store.search((_kind(kind), workspace), limit=1000)
        out = [self._public(i.value) for i in items]
        return sorted(out, key=lambda d: (-float(d.get("weight", 1.0)), d.get("created", 0)))

    def get(self, kind: str, workspace: str, item_id: str) -> dict[str, Any] | None:
        it = self.store.get((_kind(kind), workspace), item_id)
        return self._public(it.value) if it else None

    def put(self, kind: str, workspace: str, item: dict[str, Any]) -> str:
        """Add ``item`` or merge it into a duplicate (same signature); returns the stored id."""
        kind = _kind(kind)
        ns = (kind, workspace)
        now = time.time()
        sig = signature(item)
        if "id" not in item:
            for it in self.store.search(ns, limit=1000):
                if signature(it.value) == sig:
                    merged = _merge(it.value, item, now)
                    self._write(ns, merged)
                    return str(merged["id"])
        value = {"uses": 0, "successes": 0, "failures": 0, "weight": 1.0, "provenance": [], "created": now,
                 **item, "kind": kind, "updated": now}
        value.setdefault("id", uuid.uuid4().hex[:12])
        value.setdefault("text", item.get("description", ""))
        self._write(ns, value)
        return str(value["id"])

    def delete(self, kind: str, workspace: str, item_id: str) -> bool:
        ns = (_kind(kind), workspace)
        if self.store.get(ns, item_id) is None:
            return False
        self.store.delete(ns, item_id)
        return True

    def search(self, kind: str, workspace: str, query: str, limit: int = 5) -> builtins.list[dict[str, Any]]:
        """Items most similar to ``query``, each with a ``score`` (cosine, or word overlap)."""
        items = [i.value for i in self.store.search((_kind(kind), workspace), limit=1000)]
        if not items or not query.strip():
            return []
        if self.embedder is not None:
            qv = self.embedder.embed_batch([query])[0]
            mat = np.array([self._vector(kind, workspace, it) for it in items], dtype=np.float32)
            scores = (mat @ qv).tolist()
        else:
            qw = set(_WORD.findall(query.lower()))
            scores = [len(qw & set(_WORD.findall(str(it.get("text", "")).lower()))) / (len(qw) or 1)
                      for it in items]
        ranked = sorted(zip(scores, items, strict=True), key=lambda p: -p[0] * (0.5 + 0.5 * p[1].get("weight", 1)))
        return [{**self._public(it), "score": round(float(s), 4)} for s, it in ranked[:limit]]

    # ---- counters and decay -----------------------------------------------------------------------------
    def record(self, kind: str, workspace: str, item_id: str, *, success: bool, run_id: str) -> None:
        ns = (_kind(kind), workspace)
        it = self.store.get(ns, item_id)
        if it is None:
            return
        v = dict(it.value)
        v["uses"] = int(v.get("uses", 0)) + 1
        v["successes" if success else "failures"] = int(v.get("successes" if success else "failures", 0)) + 1
        v["weight"] = min(1.0, float(v.get("weight", 1.0)) + (0.2 if success else -0.2))
        v["provenance"] = _prov(v.get("provenance", []), run_id)
        v["updated"] = time.time()
        self._write(ns, v)

    def decay(self, workspace: str, used: set[str], factor: float, min_weight: float) -> builtins.list[str]:
        """Lower the weight of items not used this run; drop low-weight items with a poor record."""
        dropped = []
        for kind in KINDS:
            ns = (kind, workspace)
            for it in self.store.search(ns, limit=1000):
                v = dict(it.value)
                if v["id"] in used:
                    continue
                v["weight"] = round(float(v.get("weight", 1.0)) * factor, 4)
                rate = (v.get("successes", 0) + 1) / (v.get("uses", 0) + 2)
                if v["weight"] < min_weight and rate < 0.5:
                    self.store.delete(ns, v["id"])
                    dropped.append(v["id"])
                else:
                    self.store.put(ns, v["id"], v)
        return dropped

    # ---- private ----------------------------------------------------------------------------------------
    def _write(self, ns: tuple[str, str], value: dict[str, Any]) -> None:
        value.pop("_vec", None)
        self.store.put(ns, str(value["id"]), value)

    def _vector(self, kind: str, workspace: str, item: dict[str, Any]) -> np.ndarray:
        vec = item.get("_vec")
        if vec is None or item.get("_vec_text") != item.get("text"):
            assert self.embedder is not None
            vec = self.embedder.embed_batch([str(item.get("text", ""))])[0].tolist()
            self.store.put((_kind(kind), workspace), str(item["id"]), {**item, "_vec": vec,
                                                                       "_vec_text": item.get("text")})
        return np.asarray(vec, dtype=np.float32)

    @staticmethod
    def _public(value: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in value.items() if not k.startswith("_")}


class PlaceboMemory(ExperienceMemory):
    """The control of the memory experiment (``ragent eval answers --systems agent-placebo``): it retrieves what
    the real memory would, with each tip's text replaced by random words of the same length drawn from the
    stored tips' own words (seeded by the tip id, so a rerun reads the same placebo), no shortcuts, and learns
    nothing. A gain of the real memory over this is the content of the tips, not their presence or length."""

    learns = False

    def __init__(self, real: ExperienceMemory) -> None:
        super().__init__(real.store, real.embedder)

    def search(self, kind: str, workspace: str, query: str, limit: int = 5) -> builtins.list[dict[str, Any]]:
        if _kind(kind) != "tips":
            return []
        found = super().search(kind, workspace, query, limit)
        vocab = sorted({w for it in self.list("tips", workspace) for w in _WORD.findall(str(it.get("text", "")))})
        out = []
        for it in found:
            n = len(_WORD.findall(str(it.get("text", ""))))
            rng = random.Random(str(it.get("id", "")))
            words = [rng.choice(vocab) for _ in range(n)] if vocab else []
            out.append({**it, "text": " ".join(words).capitalize() + "."})
        return out

    def put(self, kind: str, workspace: str, item: dict[str, Any]) -> str:
        return ""

    def record(self, kind: str, workspace: str, item_id: str, *, success: bool, run_id: str) -> None:
        return None

    def decay(self, workspace: str, used: set[str], factor: float, min_weight: float) -> builtins.list[str]:
        return []


def _kind(kind: str) -> str:
    k = kind if kind in (*KINDS, "sequences") else kind.rstrip("s") + "s"
    if k not in (*KINDS, "sequences"):
        raise ConfigError(f"unknown memory kind {kind!r}; use one of: {', '.join(KINDS)}")
    return k


def _prov(prov: list[str], run_id: str, keep: int = 20) -> list[str]:
    return [*[p for p in prov if p != run_id], run_id][-keep:]


def _merge(old: dict[str, Any], new: dict[str, Any], now: float) -> dict[str, Any]:
    v = dict(old)
    for key in ("uses", "successes", "failures"):
        v[key] = int(v.get(key, 0)) + int(new.get(key, 0))
    for run in new.get("provenance", []):
        v["provenance"] = _prov(v.get("provenance", []), run)
    v["weight"] = min(1.0, float(v.get("weight", 1.0)) + 0.1)
    v["merged"] = int(v.get("merged", 0)) + 1
    v["updated"] = now
    return v


def _redact(url: str) -> str:
    """``url`` without its password, for messages."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")).geturl()


def _pg_pool(url: str) -> Any:
    """A small psycopg pool for PostgresStore (autocommit, dict rows, no prepared statements), checked on
    checkout so a dropped connection (Postgres restarted, idle timeout) is replaced instead of failing every
    later call. An unreachable server is a ConfigError that says what to do."""
    from psycopg import Connection, OperationalError
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool

    try:  # one plain connection first: its error names the cause (the pool's timeout would not)
        Connection.connect(url, connect_timeout=10).close()
    except OperationalError as e:
        why = " ".join(str(e).split())  # psycopg's message, on one line
        raise ConfigError(f"cannot reach the memory database at {_redact(url)} ({why}); start "
                          "Postgres or fix RAGENT_MEMORY_URL, or unset it to keep memory in SQLite under "
                          "RAGENT_HOME") from e
    pool: Any = ConnectionPool(url, min_size=1, max_size=4, open=False, name="ragent-memory",
                               check=ConnectionPool.check_connection,
                               kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row})
    pool.open(wait=True, timeout=30)
    return pool


def store_from_url(url: str | None, sqlite_path: Path) -> Any:
    """The memory backend: SqliteStore at ``sqlite_path`` by default, PostgresStore for a postgres:// URL."""
    if url and url.startswith(("postgres://", "postgresql://")):
        try:
            from langgraph.store.postgres import PostgresStore
        except ImportError as e:
            raise ConfigError("RAGENT_MEMORY_URL points at Postgres: pip install langgraph-checkpoint-postgres") from e
        pg = PostgresStore(_pg_pool(url))  # a pool that checks each connection: survives a Postgres restart
        pg.setup()
        return pg
    if url and url != "sqlite":
        if url.startswith("memory"):
            from langgraph.store.memory import InMemoryStore

            return InMemoryStore()
        raise ConfigError(f"unsupported RAGENT_MEMORY_URL {_redact(url)!r}; use postgresql://..., memory:, or leave "
                          "it unset")
    import sqlite3

    from langgraph.store.sqlite import SqliteStore

    sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(sqlite3.connect(str(sqlite_path), check_same_thread=False, isolation_level=None))
    store.setup()
    return store
