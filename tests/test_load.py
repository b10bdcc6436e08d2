"""Load on loopback (issue 19's "Load" guarantee), through a live uvicorn with the REAL embedder (the packaged
MiniLM) and a FakeLLM: 50 concurrent streamed chats all end with an answer; 20 concurrent uploads of distinct
files and 20 of one identical file leave a consistent index (each distinct document searchable once, the
identical file one document with one version, no job failed, /v1/status = the registry = the index).
Latencies are printed, never asserted (performance targets live in bench/). Small markdown files keep each
test well under a minute on two cores."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api import create_app
from app.runtime import Runtime
from core.settings import Settings
from core.stats import percentile
from tests.api_live import auth, live_server, parse_sse
from tests.fakes import FakeLLM

pytestmark = pytest.mark.slow

CHATS = 50
UPLOADS = 20
ANSWER = "The NW-200 has a rated output of 5 kW [1]."
MANUAL = (b"# NW-200 generator\n\nThe NW-200 has a rated output of 5 kW at 230 V. It runs for 9 hours on one "
          b"tank.\n\n## Service\n\nChange the NW-200 oil filter every 250 hours; the torque of the drain plug "
          b"is 25 Nm.\n")


def scripted(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    return "{}" if schema is not None else ANSWER


@dataclass
class Live:
    url: str
    key: str
    runtime: Runtime


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    settings = Settings(home=tmp_path / "var", api_auth=True, split_mode="lexical", enrich=False,
                        llm_base_url="http://127.0.0.1:9/v1")
    rt = Runtime(settings, overrides={"llm": FakeLLM([scripted])})  # the real embedder and reranker
    app = create_app(rt)
    key = app.state.ragent.keys.create(["*"])
    try:
        with live_server(app) as url:
            yield Live(url, key, rt)
    finally:
        rt.close()


async def wait_jobs(c: httpx.AsyncClient, ids: list[str], timeout: float = 240) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    jobs: dict[str, dict[str, Any]] = {}
    while len(jobs) < len(ids) and time.monotonic() < deadline:
        for i in ids:
            if i not in jobs:
                job = (await c.get(f"/v1/jobs/{i}")).json()
                if job.get("state") in ("done", "failed"):
                    jobs[i] = job
        await asyncio.sleep(0.2)
    return [jobs.get(i) or (await c.get(f"/v1/jobs/{i}")).json() for i in ids]


async def upload(c: httpx.AsyncClient, ws: str, name: str, data: bytes) -> httpx.Response:
    return await c.post(f"/v1/workspaces/{ws}/documents", files=[("files", (name, data, "text/markdown"))])


# ---- 50 concurrent streamed chats ------------------------------------------------------------------------
async def one_chat(c: httpx.AsyncClient, i: int) -> dict[str, Any]:
    start = time.perf_counter()
    body = ""
    async with c.stream("POST", "/v1/workspaces/load/chat",
                        json={"question": f"What is the rated output of the NW-200? ({i})"}) as r:
        status = r.status_code
        async for piece in r.aiter_text():
            body += piece
    events = parse_sse(body) if status == 200 else []
    last = events[-1] if events else {}
    ok = (status == 200 and last.get("type") == "answer" and bool(last["answer"].get("answer"))
          and not any(e["type"] == "error" for e in events))
    return {"ok": ok, "status": status, "seconds": time.perf_counter() - start, "last": last.get("type"),
            "citations": len(last["answer"].get("citations", [])) if last.get("type") == "answer" else 0,
            "body": body[-300:] if not ok else ""}


def test_fifty_concurrent_streamed_chats_all_end_with_an_answer(live: Live) -> None:
    async def run() -> tuple[list[dict[str, Any]], float]:
        limits = httpx.Limits(max_connections=CHATS, max_keepalive_connections=CHATS)
        async with httpx.AsyncClient(base_url=live.url, headers=auth(live.key), timeout=300, limits=limits) as c:
            r = await upload(c, "load", "nw200.md", MANUAL)
            assert r.status_code == 202, r.text
            [job] = await wait_jobs(c, [r.json()["id"]])
            assert job["state"] == "done", job
            await c.post("/v1/workspaces/load/search", json={"query": "warm up"})  # load the reranker once
            t0 = time.perf_counter()
            res = await asyncio.gather(*(one_chat(c, i) for i in range(CHATS)), return_exceptions=True)
            wall = time.perf_counter() - t0
        return [x if isinstance(x, dict) else {"ok": False, "error": repr(x), "seconds": 0.0} for x in res], wall

    results, wall = asyncio.run(run())
    lat = [r["seconds"] for r in results if r["ok"]]
    failures = [r for r in results if not r["ok"]]
    p95 = percentile(lat, 0.95)
    print(f"\n{CHATS} concurrent streamed chats: failures={len(failures)} wall={wall:.2f}s "
          f"throughput={len(results) / wall:.2f}/s p50={statistics.median(lat) if lat else float('nan'):.2f}s "
          f"p95={float('nan') if p95 is None else p95:.2f}s max={max(lat, default=float('nan')):.2f}s")
    assert not failures, failures[:3]
    assert len(results) == CHATS and all(r["citations"] >= 1 for r in results), results[:3]


# ---- 20 concurrent distinct uploads + 20 concurrent identical ones ----------------------------------------
def distinct(i: int) -> bytes:
    return (f"# Part QX{i:03d}\n\nPart QX{i:03d} is the spare valve number {i} of the pump; "
            f"its code word is zq{i:03d}marker.\n").encode()


def test_concurrent_distinct_and_identical_uploads_stay_consistent(live: Live) -> None:
    same = b"# Shared sheet\n\nThe shared safety sheet says: wear gloves near the NW-200 exhaust.\n"

    async def run() -> tuple[list[httpx.Response], list[dict[str, Any]], float]:
        limits = httpx.Limits(max_connections=2 * UPLOADS)
        async with httpx.AsyncClient(base_url=live.url, headers=auth(live.key), timeout=300, limits=limits) as c:
            t0 = time.perf_counter()
            responses = await asyncio.gather(
                *(upload(c, "up", f"part-{i:03d}.md", distinct(i)) for i in range(UPLOADS)),
                *(upload(c, "up", "same.md", same) for _ in range(UPLOADS)))
            if any(r.status_code != 202 for r in responses):
                return list(responses), [], 0.0
            jobs = await wait_jobs(c, [r.json()["id"] for r in responses])
            return list(responses), jobs, time.perf_counter() - t0

    responses, jobs, wall = asyncio.run(run())
    assert [r.status_code for r in responses] == [202] * 2 * UPLOADS, [r.text[:200] for r in responses]
    print(f"\n{2 * UPLOADS} concurrent uploads: all jobs finished in {wall:.2f}s")
    assert [j["state"] for j in jobs] == ["done"] * 2 * UPLOADS, [j for j in jobs if j["state"] != "done"][:3]
    statuses = [j["results"][0]["status"] for j in jobs]
    assert statuses[:UPLOADS] == ["ingested"] * UPLOADS, statuses
    # the identical file: one upload ingests it, the others find it unchanged (the name is the document)
    assert sorted(statuses[UPLOADS:]) == ["ingested"] + ["unchanged"] * (UPLOADS - 1), statuses

    with httpx.Client(base_url=live.url, headers=auth(live.key), timeout=120) as c:
        docs = c.get("/v1/workspaces/up/documents").json()["documents"]
        by_title = {d["title"]: d for d in docs}
        assert len(docs) == UPLOADS + 1 and all(d["status"] == "done" for d in docs), docs
        [shared] = [d for d in docs if d["source"] == "same.md"]
        assert shared["version"] == 1 and shared["chunks"] >= 1
        for i in range(UPLOADS):  # every distinct document is searchable, once
            doc = by_title[f"Part QX{i:03d}"]
            hits = c.post("/v1/workspaces/up/search",
                          json={"query": f"zq{i:03d}marker", "k": 10, "rerank": False}).json()["hits"]
            mine = [h for h in hits if f"zq{i:03d}marker" in h["text"]]
            assert mine and {h["doc_id"] for h in mine} == {doc["doc_id"]}, (i, hits[:3])
            assert len({h["chunk_id"] for h in mine}) == len(mine) == doc["chunks"], (i, mine)
        status = c.get("/v1/status").json()["index"]["up"]
    registry_chunks = sum(d["chunks"] for d in docs)
    assert status == {"documents": UPLOADS + 1, "chunks": registry_chunks}, status
    assert live.runtime.index.count("up") == registry_chunks  # no point written twice
