"""A real PostgreSQL for tests: Debian's server binaries (``make postgres-deps``) on a temporary data directory
and a free loopback port, started once per session; ``pg_url`` gives each test its own fresh database.

initdb and postgres refuse to run as root: as root they run as the ``postgres`` user (``subprocess``'s
``user=``/``group=``, so signals reach postgres itself), in a temporary folder that user owns (the Unix socket
goes there too). Skipped, with the reason, only when the binaries are absent. Import the fixtures into a test
module::

    from tests.pg_fixture import pg_server, pg_url  # noqa: F401
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api_live import free_port

PG_USER = "ragent"


def pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with initdb and postgres, or None."""
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found = [d for d in found if (d / "postgres").is_file()]
    return max(found, key=lambda d: float(d.parent.name) if d.parent.name.replace(".", "").isdigit() else 0.0,
               default=None)


def _as_postgres() -> dict[str, Any]:
    """Popen keywords that run a command as the unprivileged ``postgres`` user when we are root."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root, but there is no 'postgres' user to run PostgreSQL as: install Debian's "
                    "postgresql package (`make postgres-deps`), which creates it")
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": [],
            "env": {**os.environ, "HOME": pw.pw_dir, "USER": "postgres", "LOGNAME": "postgres"}}


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A running PostgreSQL for the session; yields the URL of its ``postgres`` database (superuser ``ragent``,
    trust auth on loopback)."""
    bindir = pg_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: run `make postgres-deps` "
                    "(apt-get install postgresql)")
    as_pg = _as_postgres()
    root = Path(tempfile.mkdtemp(prefix="ragent-pg-"))
    if as_pg:
        os.chown(root, as_pg["user"], as_pg["group"])
    data, log = root / "data", root / "postgres.log"
    init = subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8",
                           "--locale=C", "--no-sync"], capture_output=True, text=True, timeout=300, cwd=root, **as_pg)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed ({init.returncode}): {init.stderr[-2000:]}")
    port = free_port()
    opts = ["-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(root), "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=50",
            "-c", "shared_buffers=32MB"]
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(bindir / "postgres"), *opts], stdout=out, stderr=subprocess.STDOUT, cwd=root,
                                **as_pg)
    url = f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres"
    try:
        _wait_ready(url, proc, log)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    import psycopg

    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            pytest.fail(f"postgres exited ({proc.returncode}): {log.read_text(errors='replace')[-2000:]}")
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.time() > deadline:
                pytest.fail(f"postgres did not accept connections in {timeout:.0f} s: "
                            f"{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.1)


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the session's server; dropped after the test."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    yield pg_server.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
