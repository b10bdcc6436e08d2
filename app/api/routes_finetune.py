"""Fine-tuning as a background job: ``POST /v1/workspaces/{ws}/finetune`` (progress via ``GET /v1/jobs/{id}``)
and ``GET /v1/workspaces/{ws}/finetune`` (versions with their metrics)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from fastapi import APIRouter

from app.api.deps import State, Workspace
from app.api.schemas import FinetuneRequest, FinetuneVersions, JobOut
from app.runtime import Runtime

router = APIRouter(prefix="/v1", tags=["finetune"])


def finetune_task(runtime: Runtime, workspace: str, req: FinetuneRequest) -> Any:
    """The job body: the same loop as ``ragent finetune run``, on the API's runtime (its retriever swaps)."""
    def task(tick: Any) -> dict[str, Any]:
        from finetune import run_finetune

        cfg = runtime.settings.finetune
        if req.generator:
            cfg = dataclasses.replace(cfg, generator=req.generator)
        llm = runtime.llm if cfg.generator != "keyphrase" else None
        res = asyncio.run(run_finetune(
            runtime.retriever, workspace, cfg, llm=llm, max_pairs=req.max_pairs, epochs=req.epochs,
            max_steps=req.max_steps, promote=not req.dry_run, force=req.force, progress=tick))
        return res.to_json()
    return task


@router.post("/workspaces/{ws}/finetune", status_code=202, response_model=JobOut,
             summary="Fine-tune the workspace's embedding model in the background (poll GET /v1/jobs/{id})")
def start_finetune(st: State, ws: Workspace, req: FinetuneRequest | None = None) -> JobOut:
    """Synthesise pairs from the workspace's chunks, mine hard negatives, train, evaluate, and swap the new model
    in only if it wins. The job runs on the API's one worker, after any queued ingest; a workspace with no
    ingested documents fails the job with a message saying so."""
    from finetune import STAGES

    task = finetune_task(st.runtime, ws, req or FinetuneRequest.model_validate({}))
    job = st.jobs.submit_task(ws, "finetune", STAGES, task)
    st.telemetry.jobs.inc()
    return JobOut(**job.to_json())


@router.get("/workspaces/{ws}/finetune", response_model=FinetuneVersions,
            summary="Trained versions of the workspace's embedding model, with metrics; `active` marks the one in use")
def list_finetune(st: State, ws: Workspace) -> FinetuneVersions:
    from finetune import list_versions

    rows = list_versions(st.runtime.retriever, st.settings.finetune.root, ws)
    return FinetuneVersions(workspace=ws, versions=rows)
