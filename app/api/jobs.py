"""Background jobs on one worker thread: ingest (uploads saved under RAGENT_HOME/uploads) and finetune.

One worker means a fine-tuning run never overlaps an ingest of the same process (a swap must not race new
chunks). Jobs live in memory (lost on restart); the documents registry keeps each document's own status and
each finetune version its own folder, so a restart never leaves a half-ingested document visible.
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
JobKind = Literal["ingest", "finetune"]
IngestFn = Callable[[list[Path], str, Callable[[str, int], None]], list[Any]]
StageTick = Callable[[str, int, int], None]  # (stage, done, total)
TaskFn = Callable[[StageTick], dict[str, Any]]  # a staged job: reports progress, returns its result


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
    kind: JobKind = "ingest"
    stages: tuple[str, ...] = ()  # a staged job's stages, in order
    stage: str = ""
    stage_done: int = 0
    stage_total: int = 0
    result: dict[str, Any] | None = None

    @property
    def progress(self) -> float:
        if self.state == "done":
            return 1.0
        if self.stages:
            if self.stage not in self.stages:
                return 0.0
            part = self.stage_done / self.stage_total if self.stage_total else 0.0
            return round((self.stages.index(self.stage) + min(part, 1.0)) / len(self.stages), 4)
        return self.files_done / len(self.files) if self.files else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "workspace": self.workspace, "state": self.state,
                "progress": self.progress, "stage": self.stage, "stage_done": self.stage_done,
                "stage_total": self.stage_total, "files": self.files, "files_done": self.files_done,
                "pages": self.pages, "chunks": self.chunks, "results": self.results, "errors": self.errors,
                "result": self.result, "created": self.created, "finished": self.finished}


class JobManager:
    """Runs ``ingest(paths, workspace, progress)`` jobs and staged tasks (finetune) one at a time off the event
    loop."""

    def __init__(self, ingest: IngestFn, workers: int = 1, keep: int = 500) -> None:
        self._ingest = ingest
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ragent-ingest")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._keep = keep

    def submit(self, workspace: str, paths: list[Path]) -> Job:
        job = self._add(Job(id=uuid.uuid4().hex, workspace=workspace, files=[p.name for p in paths]))
        self._pool.submit(self._run, job, paths)
        return job

    def submit_task(self, workspace: str, kind: JobKind, stages: tuple[str, ...], task: TaskFn) -> Job:
        """Queue a staged job; ``task(tick)`` reports ``tick(stage, done, total)`` and returns its result."""
        job = self._add(Job(id=uuid.uuid4().hex, workspace=workspace, files=[], kind=kind, stages=stages))
        self._pool.submit(self._run_task, job, task)
        return job

    def _add(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > self._keep:  # forget the oldest finished jobs
                for old in [j.id for j in self._jobs.values() if j.finished][: len(self._jobs) - self._keep]:
                    del self._jobs[old]
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def active(self) -> int:
        return sum(j.state in ("queued", "running") for j in list(self._jobs.values()))

    def _run(self, job: Job, paths: list[Path]) -> None:
        def tick(event: str, n: int) -> None:
            if event == "file":
                job.files_done += n
            elif event == "pages":
                job.pages += n
            elif event == "chunks":
                job.chunks += n

        def body() -> None:
            results = self._ingest(paths, job.workspace, tick)
            job.results = [r.to_json() for r in results]
            job.errors = [{"file": Path(r.path).name, "error": r.error} for r in results if r.status == "failed"]
            job.state = "failed" if job.errors and len(job.errors) == len(results) else "done"

        self._execute(job, body)

    def _run_task(self, job: Job, task: TaskFn) -> None:
        def tick(stage: str, done: int, total: int) -> None:
            job.stage, job.stage_done, job.stage_total = stage, done, total

        def body() -> None:
            job.result = task(tick)
            job.state = "done"

        self._execute(job, body)

    @staticmethod
    def _execute(job: Job, body: Callable[[], None]) -> None:
        """Run a job's body on the worker: it sets the final state; an error fails the job with its message."""
        job.state = "running"
        try:
            body()
        except RagentError as e:
            job.errors.append({"file": "", "error": str(e)})
            job.state = "failed"
        except Exception as e:  # a worker must never die silently
            logger.exception("%s job %s crashed", job.kind, job.id)
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
