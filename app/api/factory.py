"""``create_app(runtime)``: the REST API over one Runtime (the process that owns the embedded Qdrant store)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from app.api import problems, uploads
from app.api.auth import KeyStore
from app.api.deps import ApiState
from app.api.engine import ChatEngine, StraightEngine, engine_for
from app.api.job_store import job_store
from app.api.jobs import JobManager
from app.api.telemetry import Telemetry
from app.api.threads import ThreadStore
from app.runtime import Runtime

logger = logging.getLogger(__name__)

DESCRIPTION = """Documents in, cited answers out. Authenticate with `Authorization: Bearer <key>` (keys come from
`ragent keys create --workspace WS`); every route under `/v1/workspaces/{ws}` is scoped to that workspace.
Errors are RFC 9457 problem details (`application/problem+json`)."""


API_DB = "api.db"  # API keys and conversation threads, under RAGENT_HOME


def api_db(runtime: Runtime) -> Path:
    return runtime.settings.home / API_DB


def make_settle(runtime: Runtime) -> Any:
    """``settle(paths, workspace, why)``: the documents of ``paths`` still ``pending`` or ``processing`` become
    ``failed`` with ``why`` (a job that ended, or will never run again, leaves no document in between). A
    ``processing`` one also loses the points it had written: the pipeline deletes the old version's points before
    it writes the new ones, so every point of that document is part of the half-written version."""
    def settle(paths: list[Path], workspace: str, why: str) -> None:
        from core.types import content_id

        reg = runtime.registry
        for p in paths:
            rec = reg.get(workspace, content_id(workspace, str(p.resolve())))
            if rec is None or rec.status not in ("pending", "processing"):
                continue
            logger.warning("document %s (%s) left %s: marked failed", rec.doc_id, p.name, rec.status)
            if rec.status == "processing":
                runtime.ingestor(enrich=False).writer.delete_doc(workspace, rec.doc_id)
            reg.put(dataclasses.replace(rec, status="failed", error=why, chunk_ids=()))
    return settle


def make_ingest(runtime: Runtime) -> Any:
    settle = make_settle(runtime)

    def ingest(paths: list[Path], workspace: str, progress: Any) -> list[Any]:
        ing = runtime.ingestor(enrich=runtime.settings.ingest.enrich, progress=progress)  # as `ragent ingest`
        try:
            return ing.ingest(paths, workspace)  # type: ignore[no-any-return]
        finally:  # a version's uploaded source is kept until a newer version is done, then dropped
            if ing.enricher is not None:
                ing.enricher.cache.close()  # this job's enrichment cache (the runtime's parts stay open)
            settle(paths, workspace, "the ingest job stopped before this document was done (see the job's errors "
                   "and the API log); upload it again")
            uploads.prune(runtime.settings.home, workspace, runtime.registry)
    return ingest


def make_jobs(runtime: Runtime) -> JobManager:
    """The job runner over the configured job store (RAGENT_JOBS_URL; SQLite in api.db by default)."""
    s = runtime.settings
    return JobManager(make_ingest(runtime), store=job_store(s.jobs_url, s.memory_url, api_db(runtime)),
                      settle=make_settle(runtime), owner=str(s.home.resolve()))


def graph_stage_task(runtime: Runtime, workspace: str) -> Any:
    """A job body that finishes the deferred graph stage a stopped process (a killed CLI ingest) left pending."""

    def task(tick: Any) -> dict[str, Any]:
        done, total = [0], [0]

        def progress(event: str, n: int) -> None:
            if event == "graph_chunks":
                total[0] = n
            elif event == "graphed":
                done[0] += n
            tick("graph", done[0], total[0])

        return {"documents": runtime.ingestor(progress=progress).graph_stage_run(workspace)}

    return task


def create_app(runtime: Runtime, *, auth: bool | None = None, engine: ChatEngine | None = None) -> FastAPI:
    """The API app. ``auth`` defaults to ``RAGENT_API_AUTH``; ``engine`` to the runtime's agent (else the straight
    adapter). The caller owns (and closes) ``runtime``."""
    from app.api.routes_chat import router as chat_router
    from app.api.routes_docs import router as docs_router
    from app.api.routes_finetune import router as finetune_router
    from app.api.routes_keys import router as keys_router
    from app.api.routes_ops import router as ops_router

    engine = engine or engine_for(runtime)
    state = ApiState(
        runtime=runtime, settings=runtime.settings,
        auth=runtime.settings.api_auth if auth is None else auth,
        keys=KeyStore(api_db(runtime)), jobs=make_jobs(runtime), threads=ThreadStore(api_db(runtime)),
        engine=engine, engine_name="straight" if isinstance(engine, StraightEngine) else "agent",
        telemetry=Telemetry(),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logger.info("ragent API up: engine=%s auth=%s", state.engine_name, state.auth)
        from finetune.swap import recover_all

        # a fine-tune swap or rollback a stopped process left half done is finished first (#19 item 9)
        fixed = await asyncio.to_thread(recover_all, runtime.retriever)
        if fixed:
            logger.info("fine-tune state checked for: %s", ", ".join(fixed))
        recovered = state.jobs.recover()  # what a stopped API left: ingest jobs run again, the rest fail cleanly
        # documents a killed CLI ingest left searchable get their graph stage, one job per workspace
        for ws in await asyncio.to_thread(runtime.registry.graph_pending_workspaces):
            job = state.jobs.submit_task(ws, "ingest", ("graph",), graph_stage_task(runtime, ws))
            logger.info("workspace %s: finishing the graph stage a stopped ingest left (job %s)", ws, job.id)
        if recovered:
            logger.warning("%d unfinished job(s) from a previous run: %s", len(recovered),
                           ", ".join(f"{j.id} ({j.kind}: {j.state})" for j in recovered))
        yield
        state.jobs.shutdown()
        state.keys.close()
        state.threads.close()

    app = FastAPI(title="ragent", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.ragent = state
    problems.install(app)
    state.telemetry.install(app)
    app.include_router(ops_router)
    app.include_router(docs_router)
    app.include_router(chat_router)
    app.include_router(finetune_router)
    app.include_router(keys_router)
    return app
