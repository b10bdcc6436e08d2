"""Uploaded files on disk, under RAGENT_HOME/uploads/<ws>/.

Each upload is staged under a unique temporary name, stored once under its content hash
(``.objects/<sha256><ext>``) and published under its document name (``<name>``, which the ingest job reads and
the registry's ``source`` names) by an atomic rename of a hard link. Concurrent uploads of one name never share a
file: each name always holds one whole upload (the last to finish).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from fastapi import UploadFile

from app.api.problems import Problem
from retrieval.registry import DocRecord, Registry

OBJECTS = ".objects"


def objects_dir(home: Path, workspace: str) -> Path:
    return home / "uploads" / workspace / OBJECTS


async def save(f: UploadFile, folder: Path, name: str, limit_mb: float) -> Path:
    """Stream ``f`` to ``folder/name`` (at most ``limit_mb``, not empty); its bytes also stay under their hash."""
    objects = folder / OBJECTS
    objects.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{uuid.uuid4().hex}.part"
    limit, size, digest = int(limit_mb * 1024 * 1024), 0, hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            while chunk := await f.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise Problem(413, f"{name} is over the upload limit of {limit_mb:g} MB; "
                                  "raise RAGENT_API_MAX_UPLOAD_MB or ingest it with `ragent ingest`")
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise Problem(422, f"{name}: the file is empty")
        dest = folder / name
        _publish(tmp, dest, objects / f"{digest.hexdigest()}{dest.suffix.lower()}")
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _publish(tmp: Path, dest: Path, obj: Path) -> None:
    """``tmp`` becomes ``obj`` and ``dest`` (one inode, two names); every step is an atomic rename."""
    link = tmp.with_name(f".{uuid.uuid4().hex}.link")
    try:
        os.link(tmp, link)
    except OSError:  # a file system without hard links: a copy
        shutil.copyfile(tmp, link)
    try:
        os.replace(tmp, obj)  # the same bytes when obj exists already
        os.replace(link, dest)
    finally:
        link.unlink(missing_ok=True)


def source_of(home: Path, rec: DocRecord) -> Path:
    """The bytes a registry record was ingested from: its version's stored object when there is one (the name
    may already hold a newer upload, still queued or one that failed), else its ``source``."""
    src = Path(rec.source)
    obj = objects_dir(home, rec.workspace) / f"{rec.content_hash}{src.suffix.lower()}"
    return obj if obj.is_file() else src


def prune(home: Path, workspace: str, registry: Registry) -> int:
    """Drop stored objects no document version references and no upload name holds (a queued upload keeps its
    object through the name's hard link). Call after an ingest job and after a delete. Returns how many."""
    objects = objects_dir(home, workspace)
    if not objects.is_dir():
        return 0
    keep = {r.content_hash for r in registry.list(workspace)}
    dropped = 0
    for p in objects.iterdir():
        try:
            if p.name.split(".", 1)[0] in keep or p.stat().st_nlink > 1:
                continue
            p.unlink()
            dropped += 1
        except OSError:
            continue
    return dropped
