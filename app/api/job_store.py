"""Where the API's background jobs are kept, so a job outlives the process that ran it.

One table, ``ragent_jobs``: a row per job (id, owner, workspace, kind, state, attempts, the files it reads, and
its public JSON). ``owner`` names the API that runs it (its RAGENT_HOME): a job is only ever resumed by the API
of its own home, so two deployments sharing one Postgres never take over each other's jobs. SQLite under
RAGENT_HOME by default (``api.db``), Postgres on the server stack (``RAGENT_JOBS_URL``, else a postgresql://
``RAGENT_MEMORY_URL``). The same SQL runs on both (``ON CONFLICT ... DO UPDATE`` upserts); only the placeholder
differs. ``JobManager`` writes a job on every state change and reads the unfinished ones back on start-up to
resume or fail them.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from core.errors import ConfigError
from core.sqlite import SqliteStore

SCHEMA = """
CREATE TABLE IF NOT EXISTS ragent_jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL DEFAULT '',
    workspace TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    paths TEXT NOT NULL DEFAULT '[]',
    data TEXT NOT NULL DEFAULT '{}',
    created DOUBLE PRECISION NOT NULL,
    updated DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS ragent_jobs_owner_state ON ragent_jobs (owner, state, created);
"""
_COLS = "id, owner, workspace, kind, state, attempts, paths, data, created, updated"
_UPSERT = (f"INSERT INTO ragent_jobs ({_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
           "state = excluded.state, attempts = excluded.attempts, paths = excluded.paths, data = excluded.data, "
           "updated = excluded.updated")
_PRUNE = ("DELETE FROM ragent_jobs WHERE owner = ? AND state IN ('done', 'failed') AND id NOT IN (SELECT id FROM "
          "ragent_jobs WHERE owner = ? AND state IN ('done', 'failed') ORDER BY created DESC LIMIT ?)")
UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class StoredJob:
    """A job as stored: ``data`` is its public JSON (``Job.to_json()`` plus its stages); ``paths`` the files
    an ingest job reads (absolute), so a restarted API can run it again."""

    id: str
    workspace: str
    kind: str
    state: str
    attempts: int = 0
    paths: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0
    owner: str = ""


class JobStore(Protocol):
    def put(self, job: StoredJob) -> None: ...
    def get(self, job_id: str) -> StoredJob | None: ...
    def unfinished(self, owner: str = "") -> list[StoredJob]: ...
    def prune(self, keep: int, owner: str = "") -> None: ...
    def close(self) -> None: ...


class _SqlJobs:
    """The queries, over ``_run(sql, args) -> rows`` that each backend implements."""

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def put(self, job: StoredJob) -> None:
        self._run(_UPSERT, (job.id, job.owner, job.workspace, job.kind, job.state, job.attempts,
                            json.dumps(list(job.paths)), json.dumps(job.data, default=str), job.created,
                            time.time()))

    def get(self, job_id: str) -> StoredJob | None:
        rows = self._run(f"SELECT {_COLS} FROM ragent_jobs WHERE id = ?", (job_id,))
        return _row(rows[0]) if rows else None

    def unfinished(self, owner: str = "") -> list[StoredJob]:
        """``owner``'s jobs that a stopped process left queued or running, oldest first."""
        rows = self._run(f"SELECT {_COLS} FROM ragent_jobs WHERE owner = ? AND state IN (?, ?) ORDER BY created",
                         (owner, *UNFINISHED))
        return [_row(r) for r in rows]

    def prune(self, keep: int, owner: str = "") -> None:
        """Forget all but ``owner``'s newest ``keep`` finished jobs."""
        self._run(_PRUNE, (owner, owner, keep))


def _row(r: tuple[Any, ...]) -> StoredJob:
    return StoredJob(id=str(r[0]), owner=str(r[1]), workspace=str(r[2]), kind=str(r[3]), state=str(r[4]),
                     attempts=int(r[5]), paths=tuple(json.loads(r[6])), data=json.loads(r[7]), created=float(r[8]))


class SqliteJobs(_SqlJobs, SqliteStore):
    """Jobs in a SQLite file (the API's ``api.db``); safe to share between the threads of one process."""

    schema = SCHEMA

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self.conn.execute(sql, args).fetchall()


class PostgresJobs(_SqlJobs):
    """Jobs in Postgres: a small pool (autocommit), opened and the table created on first use; each connection
    is checked on checkout, so a Postgres restart costs no more than a reconnect."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: Any = None
        self._lock = threading.Lock()

    @property
    def pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                import psycopg
                from psycopg_pool import ConnectionPool

                try:  # one plain connection first: its error names the cause (the pool's timeout would not)
                    with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
                        for stmt in filter(str.strip, SCHEMA.split(";")):
                            conn.execute(stmt)
                except psycopg.OperationalError as e:
                    why = " ".join(str(e).split())  # psycopg's message, on one line
                    raise ConfigError(f"cannot reach the jobs database at {redact(self.url)} ({why}); "
                                      "start Postgres or fix RAGENT_JOBS_URL, or unset it (and a postgresql:// "
                                      "RAGENT_MEMORY_URL) to keep jobs in SQLite under RAGENT_HOME") from e
                pool = ConnectionPool(self.url, min_size=1, max_size=2, open=False, name="ragent-jobs",
                                      check=ConnectionPool.check_connection, kwargs={"autocommit": True})
                pool.open(wait=True, timeout=30)
                self._pool = pool
            return self._pool

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.pool.connection() as conn:
            cur = conn.execute(sql.replace("?", "%s"), args)
            return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def is_postgres(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgres://", "postgresql://"))


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def job_store(jobs_url: str | None, memory_url: str | None, sqlite_path: Path) -> JobStore:
    """The jobs backend: Postgres for a postgresql:// ``jobs_url`` (or, when that is unset, ``memory_url``: the
    server stack's database), SQLite at ``sqlite_path`` otherwise."""
    url = jobs_url or (memory_url if is_postgres(memory_url) else None)
    if url and url != "sqlite":
        if not is_postgres(url):
            raise ConfigError(f"unsupported RAGENT_JOBS_URL {redact(url)!r}; use postgresql://... or leave it unset "
                              "(SQLite under RAGENT_HOME)")
        return PostgresJobs(url)
    return SqliteJobs(sqlite_path)
