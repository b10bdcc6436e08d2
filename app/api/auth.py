"""API keys: random tokens, stored only as salted scrypt hashes in SQLite, each scoped to workspaces.

A key looks like ``rk_<id>_<secret>``; ``id`` finds the row, the scrypt hash of ``secret`` checks it. A key
scoped to ``*`` is an admin key and sees every workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.sqlite import SqliteStore

ADMIN = "*"
SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    workspaces TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    revoked REAL
);
"""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a key id (or ``anonymous`` when auth is off) and the workspaces it may touch."""

    key_id: str
    workspaces: tuple[str, ...]

    @property
    def admin(self) -> bool:
        return ADMIN in self.workspaces

    def can(self, workspace: str) -> bool:
        return self.admin or workspace in self.workspaces


ANONYMOUS = Principal("anonymous", (ADMIN,))


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    workspaces: tuple[str, ...]
    name: str
    created: float
    revoked: float | None

    def to_json(self) -> dict[str, object]:
        return {"key_id": self.key_id, "workspaces": list(self.workspaces), "name": self.name,
                "created": self.created, "revoked": self.revoked}


def _hash(secret: str, salt: bytes) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


class KeyStore(SqliteStore):
    """SQLite table of hashed keys; safe to share between threads. Verified keys skip scrypt via an in-memory
    cache, but their row is re-read on every request, so revocation (from any process) is immediate."""

    schema = SCHEMA

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._cache: dict[str, tuple[bytes, Principal]] = {}  # token -> (stored hash, principal)

    def create(self, workspaces: list[str], name: str = "") -> str:
        """Make a key for ``workspaces`` (``["*"]`` = admin). Returns the token; only its hash is kept."""
        from core.workspace import check_workspace

        if not workspaces:
            raise ConfigError("a key needs at least one workspace: --workspace WS (or --workspace '*' for admin)")
        for ws in workspaces:
            if ws != ADMIN:
                check_workspace(ws)
        key_id, secret, salt = secrets.token_hex(6), secrets.token_urlsafe(24), secrets.token_bytes(16)
        with self._lock:
            self.conn.execute(
                "INSERT INTO api_keys (key_id, salt, hash, workspaces, name, created) VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, salt, _hash(secret, salt), json.dumps(sorted(set(workspaces))), name, time.time()),
            )
        return f"rk_{key_id}_{secret}"

    def list(self) -> list[KeyInfo]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT key_id, workspaces, name, created, revoked FROM api_keys ORDER BY created").fetchall()
        return [KeyInfo(r[0], tuple(json.loads(r[1])), r[2], r[3], r[4]) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self._lock:
            cur = self.conn.execute("UPDATE api_keys SET revoked = ? WHERE key_id = ? AND revoked IS NULL",
                                    (time.time(), key_id))
            self._cache = {t: c for t, c in self._cache.items() if c[1].key_id != key_id}
        return cur.rowcount > 0

    def verify(self, token: str) -> Principal | None:
        """The key's principal, or None when the token is malformed, unknown, wrong or revoked.

        The cache only saves the scrypt check: every call still reads the key's row (a primary-key lookup,
        microseconds), so a revocation by another process (``ragent keys revoke``) holds from the next request.
        """
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "rk":
            return None
        _, key_id, secret = parts
        with self._lock:
            row = self.conn.execute("SELECT salt, hash, workspaces FROM api_keys WHERE key_id = ? AND revoked IS NULL",
                                    (key_id,)).fetchone()
        if row is None:
            with self._lock:
                self._cache.pop(token, None)
            return None
        cached = self._cache.get(token)
        if cached is not None and hmac.compare_digest(cached[0], row[1]):
            return cached[1]
        if not hmac.compare_digest(_hash(secret, row[0]), row[1]):
            return None
        p = Principal(key_id, tuple(json.loads(row[2])))
        with self._lock:
            self._cache[token] = (bytes(row[1]), p)
        return p
