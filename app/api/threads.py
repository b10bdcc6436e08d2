"""Conversation threads (SQLite): the turns of each thread, so a client can show and continue a conversation."""

from __future__ import annotations

import json
import time
from typing import Any

from core.sqlite import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS thread_messages (
    thread_id TEXT NOT NULL,
    workspace TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    citations TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS thread_messages_id ON thread_messages (thread_id, created);
"""


class ThreadStore(SqliteStore):
    schema = SCHEMA

    def workspace_of(self, thread_id: str) -> str | None:
        with self._lock:
            row = self.conn.execute("SELECT workspace FROM thread_messages WHERE thread_id = ? LIMIT 1",
                                    (thread_id,)).fetchone()
        return str(row[0]) if row else None

    def add(self, thread_id: str, workspace: str, role: str, content: str,
            citations: list[dict[str, Any]] | None = None) -> None:
        with self._lock:
            self.conn.execute(
                "INSERT INTO thread_messages (thread_id, workspace, role, content, citations, created) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (thread_id, workspace, role, content, json.dumps(citations or []), time.time()),
            )

    def messages(self, thread_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT role, content, citations, created FROM thread_messages WHERE thread_id = ? "
                "ORDER BY created, rowid", (thread_id,)).fetchall()
        return [{"role": r[0], "content": r[1], "citations": json.loads(r[2]), "created": r[3]} for r in rows]

    def list(self, workspace: str, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT thread_id, COUNT(*), MIN(created), MAX(created) FROM thread_messages WHERE workspace = ? "
                "GROUP BY thread_id ORDER BY MAX(created) DESC LIMIT ?", (workspace, limit)).fetchall()
        return [{"thread_id": r[0], "messages": r[1], "created": r[2], "updated": r[3]} for r in rows]
