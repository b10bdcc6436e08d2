"""Document registry (SQLite): one row per (workspace, document) with status, version and chunk ids.

Status moves pending -> processing -> done | failed. Search only ever sees chunks of documents whose row
is ``done`` (the retriever filters on that), so a crash mid-ingest leaves no half-document visible and the
next run redoes the document from scratch (chunk ids are content hashes: no duplicates).

A ``done`` row also has a ``graph`` state: ``pending`` while the deferred graph stage (entities, relations,
entity-name vectors) has not run for it yet, ``done`` once it has. Such a document is already searchable
(dense + sparse); its public status (``DocRecord.stage``, the ``status`` of ``to_json``) reads ``searchable``
until its graph is written. Files written before the column existed get it added with ``done``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Literal

from core.sqlite import SqliteStore

Status = Literal["pending", "processing", "done", "failed"]
GraphState = Literal["pending", "done"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    workspace TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    source TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    pages INTEGER NOT NULL DEFAULT 0,
    chunk_ids TEXT NOT NULL DEFAULT '[]',
    error TEXT NOT NULL DEFAULT '',
    meta TEXT NOT NULL DEFAULT '{}',
    updated REAL NOT NULL,
    graph TEXT NOT NULL DEFAULT 'done',
    PRIMARY KEY (workspace, doc_id)
);
CREATE INDEX IF NOT EXISTS documents_source ON documents (workspace, source);
CREATE INDEX IF NOT EXISTS documents_hash ON documents (workspace, content_hash);
"""
COLUMNS = ("workspace, doc_id, source, title, content_hash, status, version, pages, chunk_ids, error, meta, updated, "
           "graph")


@dataclass(frozen=True)
class DocRecord:
    workspace: str
    doc_id: str
    source: str
    title: str
    content_hash: str
    status: Status
    version: int = 1
    pages: int = 0
    chunk_ids: tuple[str, ...] = ()
    error: str = ""
    meta: dict[str, object] = field(default_factory=dict)
    updated: float = 0.0
    graph: GraphState = "done"  # pending: searchable, the deferred graph stage has not written its graph yet

    @property
    def stage(self) -> str:
        """The status a user sees: ``searchable`` for a ``done`` document whose graph is still pending."""
        return "searchable" if self.status == "done" and self.graph == "pending" else self.status

    def to_json(self) -> dict[str, object]:
        return {
            "doc_id": self.doc_id, "workspace": self.workspace, "source": self.source, "title": self.title,
            "content_hash": self.content_hash, "status": self.stage, "graph": self.graph, "version": self.version,
            "pages": self.pages, "chunks": len(self.chunk_ids), "error": self.error, "meta": self.meta,
            "updated": self.updated,
        }


class Registry(SqliteStore):
    """SQLite-backed registry; safe to share between threads of one process."""

    schema = SCHEMA

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = super().conn
            cols = {str(r[1]) for r in conn.execute("PRAGMA table_info(documents)")}
            if "graph" not in cols:  # a registry written before the deferred graph stage: every graph is built
                conn.execute("ALTER TABLE documents ADD COLUMN graph TEXT NOT NULL DEFAULT 'done'")
            return conn
        return self._conn

    @staticmethod
    def _row(r: tuple[object, ...]) -> DocRecord:
        return DocRecord(
            workspace=str(r[0]), doc_id=str(r[1]), source=str(r[2]), title=str(r[3]),
            content_hash=str(r[4]), status=r[5],  # type: ignore[arg-type]
            version=int(r[6]), pages=int(r[7]),  # type: ignore[call-overload]
            chunk_ids=tuple(json.loads(str(r[8]))), error=str(r[9]), meta=json.loads(str(r[10])),
            updated=float(r[11]), graph="pending" if r[12] == "pending" else "done",  # type: ignore[arg-type]
        )

    def _select(self, where: str, args: tuple[object, ...]) -> list[DocRecord]:
        with self._lock:
            rows = self.conn.execute(
                f"SELECT {COLUMNS} FROM documents WHERE {where} ORDER BY updated", args
            ).fetchall()
        return [self._row(r) for r in rows]

    def get(self, workspace: str, doc_id: str) -> DocRecord | None:
        rows = self._select("workspace = ? AND doc_id = ?", (workspace, doc_id))
        return rows[0] if rows else None

    def by_source(self, workspace: str, source: str) -> DocRecord | None:
        rows = self._select("workspace = ? AND source = ?", (workspace, source))
        return rows[-1] if rows else None

    def by_hash(self, workspace: str, content_hash: str) -> list[DocRecord]:
        return self._select("workspace = ? AND content_hash = ?", (workspace, content_hash))

    def graph_pending(self, workspace: str) -> list[DocRecord]:
        """Searchable documents whose deferred graph stage has not run (or was cut short by a crash)."""
        return self._select("workspace = ? AND status = 'done' AND graph = 'pending'", (workspace,))

    def graph_pending_workspaces(self) -> list[str]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT DISTINCT workspace FROM documents WHERE status = 'done' AND graph = 'pending'").fetchall()
        return sorted(str(r[0]) for r in rows)

    def set_graph(self, workspace: str, doc_id: str, content_hash: str, graph: GraphState) -> bool:
        """Record a document's graph state, only if the row still holds that content (False otherwise: it was
        deleted or replaced meanwhile)."""
        with self._lock:
            cur = self.conn.execute(
                "UPDATE documents SET graph = ?, updated = ? WHERE workspace = ? AND doc_id = ? AND content_hash = ? "
                "AND status = 'done'", (graph, time.time(), workspace, doc_id, content_hash))
        return cur.rowcount > 0

    def list(self, workspace: str, status: Status | None = None) -> list[DocRecord]:
        if status is None:
            return self._select("workspace = ?", (workspace,))
        return self._select("workspace = ? AND status = ?", (workspace, status))

    def done_doc_ids(self, workspace: str) -> set[str]:
        """Ids of the workspace's searchable documents: one narrow query, run on every search (decoding whole
        records cost 18 ms a query at 500 documents)."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT doc_id FROM documents WHERE workspace = ? AND status = 'done'", (workspace,)).fetchall()
        return {str(r[0]) for r in rows}

    def committed(self, workspace: str) -> tuple[int, int]:
        """(documents, chunks) that search can see: only ``done`` rows count, so a half-written version (its
        points already in the index, its row still ``processing``) is not counted."""
        with self._lock:
            row = self.conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(json_array_length(chunk_ids)), 0) FROM documents "
                "WHERE workspace = ? AND status = 'done'", (workspace,)).fetchone()
        return int(row[0]), int(row[1])

    def put(self, rec: DocRecord) -> DocRecord:
        rec = DocRecord(**{**rec.__dict__, "updated": time.time()})
        with self._lock:
            self.conn.execute(
                f"INSERT OR REPLACE INTO documents ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (rec.workspace, rec.doc_id, rec.source, rec.title, rec.content_hash, rec.status, rec.version,
                 rec.pages, json.dumps(list(rec.chunk_ids)), rec.error, json.dumps(rec.meta), rec.updated,
                 rec.graph),
            )
        return rec

    def delete(self, workspace: str, doc_id: str) -> None:
        with self._lock:
            self.conn.execute("DELETE FROM documents WHERE workspace = ? AND doc_id = ?", (workspace, doc_id))
