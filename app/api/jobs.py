"""Background jobs on one worker thread: ingest (uploads saved under RAGENT_HOME/uploads) and finetune.

One worker means a fine-tuning run never overlaps an ingest of the same process (a swap must not race new
chunks). Each job is written to a ``JobStore`` (app.api.job_store: SQLite by default, Postgres on the server
stack) on every state change. When the API stops mid-job (a crash, ``kill -9``), ``recover()`` on the next
start-up runs every unfinished ingest job again from its saved uploads (chunk ids are content hashes and the
pipeline deletes a half-written version first: nothing is duplicated), and fails a finetune job, or an ingest
job that already stopped the API ``MAX_ATTEMPTS`` times, with a message saying what to do; its documents are
marked ``failed`` through the ``settle`` hook, so none stays ``processing``.

An ingest job has two stages: ``vectors`` (each file parsed, embedded and searchable; ``stage_done`` counts
files) and ``graph`` (the deferred graph stage over the workspace's documents whose graph is pending;
``stage_done`` counts chunks). A job the API stopped in its graph stage is run again like any other: its files
are unchanged, so only the pending graphs are written.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from app.api import uploads
from app.api.job_store import JobStore, StoredJob
from app.api.redact import no_paths
from core.errors import RagentError

logger = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]
JobKind = Literal["ingest", "finetune"]
IngestFn = Callable[[list[Path], str, Callable[[str, int], None]], list[Any]]
StageTick = Callable[[str, int, int], None]  # (stage, done, total)
TaskFn = Callable[[StageTick], dict[str, Any]]  # a staged job: reports progress, returns its result
SettleFn = Callable[[list[Path], str, str], None]  # (paths, workspace, why): mark their unfinished documents failed
INGEST_STAGES = ("vectors", "graph")  # searchable first, then the deferred graph stage
MAX_ATTEMPTS = 2  # an ingest job that stopped the API this many times is failed, not run again


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
    paths: list[str] = field(default_factory=list)  # absolute paths of an ingest job's uploads (document names)
    holds: list[str] = field(default_factory=list)  # the job's own links to their bytes (app.api.uploads)
    attempts: int = 0  # how often a worker started it (more than once: the API stopped while it ran)
    owner: str = ""  # the API (its RAGENT_HOME) that runs it; only that API resumes it

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

    def public(self, value: Any) -> Any:
        """``value`` as a client may see it: the job's uploads named by their upload names, every other server
        path cut to its file name."""
        names = {p: Path(p).name for p in self.paths} | dict(zip(self.holds, self.files, strict=False))
        return no_paths(value, names)

    def stored(self) -> StoredJob:
        return StoredJob(id=self.id, workspace=self.workspace, kind=self.kind, state=self.state,
                         attempts=self.attempts, paths=tuple(self.paths),
                         data={**self.to_json(), "stages": list(self.stages), "holds": self.holds},
                         created=self.created,
                         owner=self.owner)

    @classmethod
    def from_stored(cls, s: StoredJob) -> Job:
        d = s.data
        return cls(id=s.id, workspace=s.workspace, files=list(d.get("files", [])), state=s.state,  # type: ignore[arg-type]
                   files_done=int(d.get("files_done", 0)), pages=int(d.get("pages", 0)),
                   chunks=int(d.get("chunks", 0)), results=list(d.get("results", [])),
                   errors=list(d.get("errors", [])), created=s.created, finished=d.get("finished"),
                   kind=s.kind, stages=tuple(d.get("stages", ())), stage=str(d.get("stage", "")),  # type: ignore[arg-type]
                   stage_done=int(d.get("stage_done", 0)), stage_total=int(d.get("stage_total", 0)),
                   result=d.get("result"), paths=list(s.paths), holds=list(d.get("holds", [])),
                   attempts=s.attempts, owner=s.owner)


class JobManager:
    """Runs ``ingest(paths, workspace, progress)`` jobs and staged tasks (finetune) one at a time off the event
    loop; with a ``store``, every job is persisted and ``recover()`` resumes what a stopped process left."""

    def __init__(self, ingest: IngestFn, workers: int = 1, keep: int = 500, store: JobStore | None = None,
                 settle: SettleFn | None = None, owner: str = "") -> None:
        self._ingest = ingest
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ragent-ingest")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._keep = keep
        self._store = store
        self._settle = settle
        self._owner = owner

    def submit(self, workspace: str, paths: list[Path], holds: list[Path] | None = None) -> Job:
        """Queue an ingest of ``paths``. With ``holds`` (one per path: the uploaded bytes, app.api.uploads), the
        worker writes each path from its hold right before it ingests, so the job ingests what was uploaded for
        it even when a later upload of the same name arrives while it waits."""
        if holds is not None and len(holds) != len(paths):
            raise ValueError("one hold per path")
        job = Job(id=uuid.uuid4().hex, workspace=workspace, files=[p.name for p in paths],
                  paths=[str(p.resolve()) for p in paths], holds=[str(h.resolve()) for h in holds or []],
                  owner=self._owner, stages=INGEST_STAGES)
        return self._queue(job)

    def submit_task(self, workspace: str, kind: JobKind, stages: tuple[str, ...], task: TaskFn) -> Job:
        """Queue a staged job; ``task(tick)`` reports ``tick(stage, done, total)`` and returns its result."""
        job = self._add(Job(id=uuid.uuid4().hex, workspace=workspace, files=[], kind=kind, stages=stages,
                            owner=self._owner))
        self._save(job)
        self._pool.submit(self._run_task, job, task)
        return job

    def _queue(self, job: Job) -> Job:
        self._add(job)
        self._save(job)
        self._pool.submit(self._run, job, [Path(p) for p in job.paths])
        return job

    def _add(self, job: Job) -> Job:
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > self._keep:  # forget the oldest finished jobs (the store keeps them)
                for old in [j.id for j in self._jobs.values() if j.finished][: len(self._jobs) - self._keep]:
                    del self._jobs[old]
        return job

    def _save(self, job: Job) -> None:
        if self._store is not None:
            self._store.put(job.stored())

    def get(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None and self._store is not None:
            stored = self._store.get(job_id)
            job = Job.from_stored(stored) if stored else None
        return job

    def active(self) -> int:
        return sum(j.state in ("queued", "running") for j in list(self._jobs.values()))

    def recover(self) -> list[Job]:
        """Start-up: every job a stopped process left queued or running is run again (an ingest job, from its
        saved uploads) or failed with a message saying what to do. Returns those jobs."""
        if self._store is None:
            return []
        out = []
        for stored in self._store.unfinished(self._owner):
            job = Job.from_stored(stored)
            if job.kind == "ingest" and job.attempts < MAX_ATTEMPTS:
                logger.warning("resuming ingest job %s (%s) that the API left %s", job.id, ", ".join(job.files),
                               job.state)
                job.state, job.files_done, job.pages, job.chunks, job.results, job.errors = "queued", 0, 0, 0, [], []
                job.stages, job.stage, job.stage_done, job.stage_total = INGEST_STAGES, "", 0, 0
                out.append(self._queue(job))
                continue
            if job.kind == "ingest":
                why = (f"the API stopped {job.attempts} times while running this ingest job, so it is not run "
                       "again: one of its files may be what stops it (see the API log); re-upload the files to "
                       "try again, or ingest them one by one")
                if self._settle is not None:
                    self._settle([Path(p) for p in job.paths], job.workspace, why)
            else:  # a staged task is a closure of the process that queued it: it cannot be run again
                when = f"while this {job.kind} job ran" if job.state == "running" else f"before this {job.kind} job ran"
                stage = f" (stage {job.stage})" if job.stage else ""
                why = (f"the API stopped {when}{stage}; GET /v1/workspaces/{job.workspace}/{job.kind} shows what is "
                       f"in use; start it again with POST /v1/workspaces/{job.workspace}/{job.kind}")
            logger.warning("failing %s job %s: %s", job.kind, job.id, why)
            uploads.release([Path(h) for h in job.holds])
            job.errors.append({"file": "", "error": why})
            job.state, job.finished = "failed", time.time()
            self._add(job)
            self._save(job)
            out.append(job)
        self._store.prune(self._keep, self._owner)
        return out

    def _run(self, job: Job, paths: list[Path]) -> None:
        job.stage, job.stage_done, job.stage_total = "vectors", 0, len(paths)

        def tick(event: str, n: int) -> None:
            if event == "file":
                job.files_done += n
                job.stage_done = job.files_done
                self._save_quietly(job)
            elif event == "pages":
                job.pages += n
            elif event == "chunks":
                job.chunks += n
            elif event == "graph_chunks":  # the deferred graph stage starts: every file is searchable
                job.stage, job.stage_done, job.stage_total = "graph", 0, n
                self._save_quietly(job)
            elif event == "graphed":
                job.stage_done += n

        def body() -> None:
            for path, hold in zip(paths, [Path(h) for h in job.holds], strict=False):
                if hold.is_file():  # the bytes uploaded for this job (a recovered job may have published them)
                    uploads.publish(hold, path)
            results = self._ingest(paths, job.workspace, tick)
            job.results = [job.public(r.to_json()) for r in results]
            job.errors = [{"file": Path(r.path).name, "error": job.public(r.error)} for r in results
                          if r.status == "failed"]
            job.state = "failed" if job.errors and len(job.errors) == len(results) else "done"

        self._execute(job, body)
        uploads.release([Path(h) for h in job.holds])

    def _run_task(self, job: Job, task: TaskFn) -> None:
        def tick(stage: str, done: int, total: int) -> None:
            new_stage = stage != job.stage
            job.stage, job.stage_done, job.stage_total = stage, done, total
            if new_stage:
                self._save_quietly(job)

        def body() -> None:
            job.result = task(tick)
            job.state = "done"

        self._execute(job, body)

    def _save_quietly(self, job: Job) -> None:
        """Persist from the worker: a store that fails there is logged, and the job goes on."""
        try:
            self._save(job)
        except Exception:
            logger.exception("could not save %s job %s to the job store", job.kind, job.id)

    def _execute(self, job: Job, body: Callable[[], None]) -> None:
        """Run a job's body on the worker: it sets the final state; an error fails the job with its message."""
        job.state = "running"
        job.attempts += 1
        self._save_quietly(job)
        try:
            body()
        except RagentError as e:
            job.errors.append({"file": "", "error": job.public(str(e))})
            job.state = "failed"
        except Exception as e:  # a worker must never die silently
            logger.exception("%s job %s crashed", job.kind, job.id)
            job.errors.append({"file": "", "error": job.public(f"internal error ({type(e).__name__}: {e})")})
            job.state = "failed"
        finished = time.time()
        self._save_quietly(replace(job, finished=finished))  # stored before a waiter or poller sees the job end
        job.finished = finished

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
        if self._store is not None:
            self._store.close()

