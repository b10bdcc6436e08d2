"""A REAL crash: `ragent ingest` (real MiniLM, the embedded default index: Qdrant Edge) is killed with SIGKILL
mid-batch, then re-run; the second run resumes: no duplicates, every document done, vectors == registry chunk ids."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.settings import Settings
from retrieval.factory import build_index
from retrieval.registry import Registry

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("pump valve motor gear shaft seal bearing filter sensor relay fuse cable panel meter switch coil "
         "rotor stator brake clutch spring piston nozzle tank hose clamp bolt gasket").split()


def _corpus(folder: Path, n_files: int = 4, sections: int = 4) -> list[Path]:
    folder.mkdir()
    files = []
    for f in range(n_files):
        parts = [f"# Manual {f}"]
        for s in range(sections):
            w = WORDS[(f * 7 + s) % len(WORDS)]
            sent = [f"Step {s}.{i} of manual {f}: check the {w} and the {WORDS[(i + f) % len(WORDS)]} twice."
                    for i in range(18)]
            parts += [f"## Section {s} about the {w}", " ".join(sent)]
        p = folder / f"manual_{f}.md"
        p.write_text("\n\n".join(parts))
        files.append(p)
    return files


def _statuses(db: Path) -> dict[str, str]:
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as c:
            return dict(c.execute("SELECT source, status FROM documents").fetchall())
    except sqlite3.Error:
        return {}


@pytest.mark.slow
def test_kill_9_mid_batch_then_resume(tmp_path: Path) -> None:
    files = _corpus(tmp_path / "docs")
    home = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGENT_")}
    env.update(RAGENT_HOME=str(home), RAGENT_SPLIT_MODE="lexical", HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "app.cli", "ingest", str(tmp_path / "docs"), "-w", "crash", "--json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    db = home / "ragent.db"
    deadline = time.time() + 300
    killed_at: dict[str, str] = {}
    while time.time() < deadline and proc.poll() is None:
        st = _statuses(db)
        if 1 <= sum(s == "done" for s in st.values()) < len(files):
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed_at = _statuses(db)
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail(f"ingest finished or hung before it could be killed: {proc.communicate()[1].decode()[-2000:]}")
    assert proc.returncode == -signal.SIGKILL
    assert len(killed_at) == len(files)  # the batch was registered up front
    assert set(killed_at.values()) - {"done"} <= {"pending", "processing"} and "done" in killed_at.values()
    done_before = {s for s, v in killed_at.items() if v == "done"}

    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    out = {Path(f["path"]).resolve().as_posix(): f["status"] for f in json.loads(r.stdout)["files"]}
    for f in files:
        src = f.resolve().as_posix()
        assert out[src] == ("unchanged" if src in done_before else "ingested")

    s = Settings(home=home)
    index, reg = build_index(s.index), Registry(s.index.db_path)
    try:
        recs = reg.list("crash")
        assert len(recs) == len(files) and {r.status for r in recs} == {"done"}
        ids = [p.payload["id"] for p in index.scroll("crash")]
        assert len(ids) == len(set(ids)) == sum(len(r.chunk_ids) for r in recs) == index.count("crash")
        for rec in recs:
            assert sorted(p.payload["id"] for p in index.scroll("crash", rec.doc_id)) == sorted(rec.chunk_ids)
    finally:
        index.close()
        reg.close()
