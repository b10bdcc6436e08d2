"""One way to open ragent's SQLite files: parent folder created, shared across threads, WAL, schema applied."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(schema)
    return conn
