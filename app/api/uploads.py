"""Uploaded files on disk, under RAGENT_HOME/uploads/<ws>/.

Each upload is staged under a unique temporary name and stored once under its content hash
(``.objects/<sha256><ext>``); its job holds its own hard link to those bytes (``.holds/<uuid><ext>``). The
document name (``<name>``, which the ingest pipeline reads and the registry's ``source`` names) is written only
by the job worker, from the job's hold, right before it ingests (``publish``: an atomic rename of a hard link).
There is one worker, so nothing changes a name while a job reads it: a later upload of the same name can never
change what an earlier job ingests, and concurrent uploads of one name never share a file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi import UploadFile

from app.api.problems import Problem
from retrieval.registry import DocRecord, Registry

OBJECTS = ".objects"
HOLDS = ".holds"  # each queued job's own link to its uploads' bytes


def objects_dir(home: Path, workspace: str) -> Path:
    return home / "uploads" / workspace / OBJECTS


@dataclass(frozen=True)
class Staged:
    """One saved upload: ``path`` is the document's name (what the job ingests), ``hold`` the job's own link to
    the uploaded bytes (``publish`` copies it to ``path`` when the job runs)."""

    path: Path
    hold: Path


async def save(f: UploadFile, folder: Path, name: str, limit_mb: float) -> Staged:
    """Stream ``f`` into ``folder`` (at most ``limit_mb``, not empty): its bytes are stored under their hash, and
    held for the job that will ingest them as ``folder/name``."""
    objects, holds = folder / OBJECTS, folder / HOLDS
    objects.mkdir(parents=True, exist_ok=True)
    holds.mkdir(parents=True, exist_ok=True)
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
        hold = holds / f"{uuid.uuid4().hex}{dest.suffix.lower()}"
        _link(tmp, hold)
        os.replace(tmp, objects / f"{digest.hexdigest()}{dest.suffix.lower()}")  # the same bytes if it exists
        return Staged(dest, hold)
    finally:
        tmp.unlink(missing_ok=True)


def _link(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:  # a file system without hard links: a copy
        shutil.copyfile(src, dest)


def publish(hold: Path, dest: Path) -> None:
    """``dest`` becomes the bytes of ``hold`` (one inode, two names) by an atomic rename: a reader of ``dest``
    sees the old file or the new one, never a mix. Only the job worker calls it."""
    link = hold.with_name(f".{uuid.uuid4().hex}.link")
    try:
        _link(hold, link)
        os.replace(link, dest)
    finally:
        link.unlink(missing_ok=True)


def release(holds: list[Path]) -> None:
    """A finished job lets go of its uploads (``prune`` may then drop bytes no document version references)."""
    for h in holds:
        h.unlink(missing_ok=True)


def source_of(home: Path, rec: DocRecord) -> Path:
    """The bytes a registry record was ingested from: its version's stored object when there is one (the name
    may already hold a newer upload, still queued or one that failed), else its ``source``."""
    src = Path(rec.source)
    obj = objects_dir(home, rec.workspace) / f"{rec.content_hash}{src.suffix.lower()}"
    return obj if obj.is_file() else src


def prune(home: Path, workspace: str, registry: Registry) -> int:
    """Drop stored objects no document version references and no upload name or queued job holds (a job keeps
    its objects through its hard links under ``.holds``). Call after an ingest job and after a delete. Returns
    how many."""
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
