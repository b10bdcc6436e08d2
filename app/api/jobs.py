"""Background ingest jobs: uploads are saved under RAGENT_HOME/uploads and ingested by one worker thread.

Jobs live in memory (lost on restart); the documents registry keeps each document's own status, so a
restart never leaves a half-ingested document visible.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import RagentError

logger = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]
IngestFn = Callable[[list[Path], str, Callable[[str, int], None]], list[Any]]


@dataclass
class Job:
    id: str
    workspace: str
    files: list[str]
    state: JobState = "queued"
    files_done: int = 0
    pages: int = 0
    chunks: int = 0
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    finished: float | None = None

    @property
    def progress(self) -> float:
        if self.state == "done":
            return 1.0
        return self.files_done / len(self.files) if self.files else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "workspace": self.workspace, "state": self.state, "progress": self.progress,
                "files": self.files, "files_done": self.files_done, "pages": self.pages, "chunks": self.chunks,
                "results": self.results, "errors": self.errors, "created": self.created, "finished": self.finished}


class JobManager:
    """Runs ``ingest(paths, workspace, progress)`` jobs one at a time off the event loop."""

    def __init__(self, ingest: IngestFn, workers: int = 1, keep: int = 500) -> None:
        self._ingest = ingest
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ragent-ingest")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._keep = keep

    def submit(self, workspace: str, paths: list[Path]) -> Job:
        job = Job(id=uuid.uuid4().hex, workspace=workspace, files=[p.name for p in paths])
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > self._keep:  # forget the oldest finished jobs
                for old in [j.id for j in self._jobs.values() if j.finished][: len(self._jobs) - self._keep]:
                    del self._jobs[old]
        self._pool.submit(self._run, job, paths)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def active(self) -> int:
        return sum(j.state in ("queued", "running") for j in list(self._jobs.values()))

    def _run(self, job: Job, paths: list[Path]) -> None:
        job.state = "running"

        def tick(event: str, n: int) -> None:
            if event == "file":
                job.files_done += n
            elif event == "pages":
                job.pages += n
            elif event == "chunks":
                job.chunks += n

        try:
            results = self._ingest(paths, job.workspace, tick)
            job.results = [r.to_json() for r in results]
            job.errors = [{"file": Path(r.path).name, "error": r.error} for r in results if r.status == "failed"]
            job.state = "failed" if job.errors and len(job.errors) == len(results) else "done"
        except RagentError as e:
            job.errors.append({"file": "", "error": str(e)})
            job.state = "failed"
        except Exception as e:  # a worker must never die silently
            logger.exception("ingest job %s crashed", job.id)
            job.errors.append({"file": "", "error": f"internal error ({type(e).__name__}: {e})"})
            job.state = "failed"
        job.finished = time.time()

    def wait(self, job_id: str, timeout: float = 120.0) -> Job | None:
        """Block until the job finishes (tests, CLI)."""
        end = time.time() + timeout
        while time.time() < end:
            job = self.get(job_id)
            if job is None or job.finished:
                return job
            time.sleep(0.05)
        return self.get(job_id)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
