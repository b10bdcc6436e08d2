"""The embedded ``GraphStore``: SQLite tables (WAL) under RAGENT_HOME, NetworkX for the neighbourhood."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import numpy as np

from core.sqlite import SqliteStore
from retrieval.graph import ChunkGraph, GraphView

SCHEMA = """
CREATE TABLE IF NOT EXISTS entities (ws TEXT, key TEXT, name TEXT, label TEXT, PRIMARY KEY (ws, key));
CREATE TABLE IF NOT EXISTS mentions (ws TEXT, key TEXT, chunk_id TEXT, doc_id TEXT,
    PRIMARY KEY (ws, key, chunk_id));
CREATE INDEX IF NOT EXISTS mentions_doc ON mentions (ws, doc_id);
CREATE INDEX IF NOT EXISTS mentions_chunk ON mentions (ws, chunk_id);
CREATE TABLE IF NOT EXISTS relations (ws TEXT, src TEXT, rel TEXT, dst TEXT, chunk_id TEXT, doc_id TEXT,
    PRIMARY KEY (ws, src, rel, dst, chunk_id));
CREATE INDEX IF NOT EXISTS relations_doc ON relations (ws, doc_id);
CREATE INDEX IF NOT EXISTS relations_chunk ON relations (ws, chunk_id);
CREATE TABLE IF NOT EXISTS entity_vecs (ws TEXT, key TEXT, vec BLOB, PRIMARY KEY (ws, key));
CREATE TABLE IF NOT EXISTS versions (ws TEXT PRIMARY KEY, v INTEGER);
"""


class SqliteGraphStore(SqliteStore):
    """Embedded ``GraphStore``: SQLite file (WAL) under RAGENT_HOME; safe across threads of one process."""

    schema = SCHEMA

    def _bump(self, ws: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO versions VALUES (?, ?)", (ws, time.time_ns()))

    def version(self, workspace: str) -> int:
        with self._lock:
            row = self.conn.execute("SELECT v FROM versions WHERE ws = ?", (workspace,)).fetchone()
        return int(row[0]) if row else 0

    def upsert(self, workspace: str, graphs: Sequence[ChunkGraph]) -> None:
        if not graphs:
            return
        ids = [g.chunk_id for g in graphs]
        with self._lock:
            c = self.conn
            c.execute("BEGIN")
            try:
                self._delete_where(workspace, "chunk_id", ids, prune=False)
                c.executemany("INSERT OR IGNORE INTO entities VALUES (?,?,?,?)",
                              [(workspace, e.key, e.name, e.label) for g in graphs for e in g.entities])
                c.executemany("INSERT OR IGNORE INTO mentions VALUES (?,?,?,?)",
                              [(workspace, e.key, g.chunk_id, g.doc_id) for g in graphs for e in g.entities])
                c.executemany("INSERT OR IGNORE INTO relations VALUES (?,?,?,?,?,?)",
                              [(workspace, r.src, r.rel, r.dst, g.chunk_id, g.doc_id)
                               for g in graphs for r in g.relations])
                self._bump(workspace)
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def _delete_where(self, ws: str, col: str, values: Sequence[str], prune: bool = True) -> None:
        c = self.conn
        for i in range(0, len(values), 500):
            part = list(values[i : i + 500])
            marks = ",".join("?" * len(part))
            c.execute(f"DELETE FROM mentions WHERE ws = ? AND {col} IN ({marks})", (ws, *part))
            c.execute(f"DELETE FROM relations WHERE ws = ? AND {col} IN ({marks})", (ws, *part))
        if prune:
            c.execute("DELETE FROM entities WHERE ws = ? AND key NOT IN (SELECT key FROM mentions WHERE ws = ?)",
                      (ws, ws))
            c.execute("DELETE FROM entity_vecs WHERE ws = ? AND key NOT IN (SELECT key FROM entities WHERE ws = ?)",
                      (ws, ws))
        self._bump(ws)

    def delete_doc(self, workspace: str, doc_id: str) -> None:
        with self._lock:
            self._delete_where(workspace, "doc_id", [doc_id])

    def delete_chunks(self, workspace: str, chunk_ids: Sequence[str]) -> None:
        with self._lock:
            self._delete_where(workspace, "chunk_id", chunk_ids)

    def view(self, workspace: str) -> GraphView:
        with self._lock:
            c = self.conn
            mentions = c.execute("SELECT key, chunk_id FROM mentions WHERE ws = ?", (workspace,)).fetchall()
            rels = c.execute("SELECT DISTINCT src, rel, dst FROM relations WHERE ws = ?", (workspace,)).fetchall()
            names = dict(c.execute("SELECT key, name FROM entities WHERE ws = ?", (workspace,)).fetchall())
        return GraphView(tuple(map(tuple, mentions)), tuple(map(tuple, rels)), names)  # type: ignore[arg-type]

    def neighbourhood(self, workspace: str, seeds: Sequence[str], hops: int = 1) -> GraphView:
        """Entities within ``hops`` relation steps of the seeds, their relations and the chunks naming them."""
        import networkx as nx

        v = self.view(workspace)
        g = nx.MultiGraph()
        for s, r, d in v.relations:
            g.add_edge(s, d, rel=r)
        keep = {s for s in seeds if s in v.names}
        frontier = set(keep)
        for _ in range(max(hops, 0)):
            frontier = {n for f in frontier if f in g for n in g.neighbors(f)} - keep
            keep |= frontier
        return GraphView(
            mentions=tuple(m for m in v.mentions if m[0] in keep),
            relations=tuple(r for r in v.relations if r[0] in keep and r[2] in keep),
            names={k: v.names[k] for k in keep},
        )

    # ---- entity name embeddings (for linking query mentions to nodes) ---------------------------------
    def missing_vectors(self, workspace: str, keys: Iterable[str]) -> list[str]:
        want = sorted(set(keys))
        if not want:
            return []
        with self._lock:
            have: set[str] = set()
            for i in range(0, len(want), 500):
                part = want[i : i + 500]
                have |= {r[0] for r in self.conn.execute(
                    f"SELECT key FROM entity_vecs WHERE ws = ? AND key IN ({','.join('?' * len(part))})",
                    (workspace, *part))}
        return [k for k in want if k not in have]

    def add_entity_vectors(self, workspace: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        vecs = np.asarray(vectors, dtype=np.float32)
        with self._lock:
            self.conn.executemany("INSERT OR REPLACE INTO entity_vecs VALUES (?,?,?)",
                                  [(workspace, k, v.tobytes()) for k, v in zip(keys, vecs, strict=True)])
            self._bump(workspace)

    def entity_vectors(self, workspace: str) -> tuple[list[str], np.ndarray]:
        with self._lock:
            rows = self.conn.execute("SELECT key, vec FROM entity_vecs WHERE ws = ?", (workspace,)).fetchall()
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [r[0] for r in rows], np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
