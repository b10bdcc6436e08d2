"""One way to open ragent's SQLite files: parent folder created, shared across threads, WAL, schema applied;
and ``SqliteStore``, the base of every store kept in one such file."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import ClassVar


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(schema)
    return conn


class SqliteStore:
    """A store in one SQLite file: the constructor does no I/O, ``conn`` opens the file (and applies the
    subclass's ``schema``) on first use, ``_lock`` (re-entrant) serialises the statements of one process's
    threads, ``close()`` closes the file (the next use opens it again).

    Example::

        class Notes(SqliteStore):
            schema = "CREATE TABLE IF NOT EXISTS notes (k TEXT PRIMARY KEY, v TEXT)"

            def put(self, k: str, v: str) -> None:
                with self._lock:
                    self.conn.execute("INSERT OR REPLACE INTO notes VALUES (?, ?)", (k, v))
    """

    schema: ClassVar[str] = ""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_db(self.path, self.schema)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
