"""Health, readiness, Prometheus metrics, LLM/index status, and the experience memory (tips, shortcuts)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.api.deps import ApiState, Caller, State, Workspace
from app.api.problems import Problem
from app.api.redact import no_paths
from app.api.routes_chat import workspaces_visible
from app.api.schemas import MemoryItemIn, MemoryKind, MemoryList, check_kind

router = APIRouter(tags=["ops"])
ItemId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def llm_status(st: ApiState, timeout: float = 2.0) -> dict[str, Any]:
    from app.serving import vllm_server

    cfg = st.settings.llm
    s: dict[str, Any] = dict(await asyncio.to_thread(vllm_server.status, cfg.base_url, cfg.api_key, timeout))
    metrics = s.get("metrics") or {}
    s["tokens_per_s"] = st.tokens_per_s(float(metrics["generation_tokens"])) if metrics else None
    s["acceptance_rate"] = metrics.get("acceptance_rate") if metrics else None
    s["mean_acceptance_length"] = metrics.get("mean_acceptance_length") if metrics else None
    s["served_name"] = cfg.model
    return s


@router.get("/readyz", summary="Readiness: Qdrant answers and the LLM server is reachable (503 otherwise)")
async def readyz(st: State) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        await asyncio.to_thread(st.runtime.index.workspaces)
        checks["qdrant"] = {"ok": True}
    except Exception as e:
        checks["qdrant"] = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    llm = await llm_status(st)
    checks["llm"] = {"ok": bool(llm["reachable"]), "base_url": llm["base_url"], "error": llm["error"]}
    ok = all(c["ok"] for c in checks.values())
    return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics", response_class=Response, summary="Prometheus metrics",
            responses={200: {"content": {"text/plain": {}}}})
def metrics(st: State) -> Response:
    st.telemetry.jobs_active.set(st.jobs.active())
    return Response(generate_latest(st.telemetry.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/status", summary="LLM server (acceptance rate, tokens/s), index sizes, jobs, engine")
async def status(st: State, caller: Caller) -> dict[str, Any]:
    rt = st.runtime

    def sizes() -> dict[str, Any]:  # committed only: a job still writing (or killed mid-write) adds nothing
        out = {}
        for ws in workspaces_visible(st, caller):
            docs, chunks = rt.registry.committed(ws)
            out[ws] = {"chunks": chunks, "documents": docs}
        return out

    return {"llm": await llm_status(st), "index": await asyncio.to_thread(sizes), "jobs_active": st.jobs.active(),
            "engine": st.engine_name, "auth": st.auth}


# ---- memory ---------------------------------------------------------------------------------------------
def _checked(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """``item`` when it is a valid ``kind`` (a shortcut has name and steps, a tip text), else a 422."""
    if errors := check_kind(kind, item):
        raise RequestValidationError(errors)
    return item


@router.get("/v1/workspaces/{ws}/memory/{kind}", response_model=MemoryList, tags=["memory"])
async def list_memory(st: State, ws: Workspace, kind: MemoryKind) -> MemoryList:
    items = await asyncio.to_thread(st.memory.list, kind, ws)
    return MemoryList(workspace=ws, kind=kind, items=items)


@router.get("/v1/workspaces/{ws}/memory/{kind}/{item_id}", tags=["memory"])
async def get_memory(st: State, ws: Workspace, kind: MemoryKind, item_id: ItemId) -> dict[str, Any]:
    item = await asyncio.to_thread(st.memory.get, kind, ws, item_id)
    if item is None:
        raise Problem(404, f"no {kind} item {item_id!r} in workspace {ws!r}")
    return item  # type: ignore[no-any-return]


@router.post("/v1/workspaces/{ws}/memory/{kind}", status_code=201, tags=["memory"],
             summary="Add a tip or shortcut (a duplicate merges into the existing item)")
async def add_memory(st: State, ws: Workspace, kind: MemoryKind, item: MemoryItemIn) -> dict[str, Any]:
    mem = st.memory
    value = _checked(kind, item.fields())
    item_id = await asyncio.to_thread(mem.put, kind, ws, value)
    return await asyncio.to_thread(lambda: mem.get(kind, ws, item_id) or {})  # just written: never empty


@router.put("/v1/workspaces/{ws}/memory/{kind}/{item_id}", tags=["memory"], summary="Edit a tip or shortcut")
async def edit_memory(st: State, ws: Workspace, kind: MemoryKind, item_id: ItemId,
                      item: MemoryItemIn) -> dict[str, Any]:
    mem = st.memory
    old = await asyncio.to_thread(mem.get, kind, ws, item_id)
    if old is None:
        raise Problem(404, f"no {kind} item {item_id!r} in workspace {ws!r}")
    await asyncio.to_thread(mem.put, kind, ws, _checked(kind, {**old, **item.fields(), "id": item_id}))
    return await asyncio.to_thread(lambda: mem.get(kind, ws, item_id) or {})  # just written: never empty


@router.delete("/v1/workspaces/{ws}/memory/{kind}/{item_id}", status_code=204, tags=["memory"])
async def delete_memory(st: State, ws: Workspace, kind: MemoryKind, item_id: ItemId) -> Response:
    if not await asyncio.to_thread(st.memory.delete, kind, ws, item_id):
        raise Problem(404, f"no {kind} item {item_id!r} in workspace {ws!r}")
    return Response(status_code=204)


# ---- benchmarks ------------------------------------------------------------------------------------------
BENCH_DIR = Path(__file__).resolve().parents[2] / "bench" / "results"


@router.get("/v1/bench", summary="The latest benchmark results (bench/results/*.json), newest first")
def bench(caller: Caller, limit: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
    files = sorted(BENCH_DIR.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if BENCH_DIR.is_dir() \
        else []
    results = []
    for p in files[:limit]:
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        results.append({"name": p.stem, "modified": p.stat().st_mtime,
                        "data": no_paths(data if isinstance(data, dict) else {"rows": data})})
    return {"dir": "bench/results", "results": results}
