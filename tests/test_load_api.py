"""Load on loopback: 20 concurrent streamed chats against a live uvicorn (real app, real Qdrant local,
FakeLLM + hash embedder) must all succeed. Figures are printed and written to /tmp/ragent_api_load.json;
they are reported, never asserted (performance targets live in bench/)."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api import create_app
from app.runtime import Runtime
from core.settings import Settings
from tests.api_live import auth, live_server, parse_sse, wait_job
from tests.fakes import FakeLLM, HashEmbedder

CONCURRENCY = 20
ANSWER = "The NW-200 has a rated output of 5 kW [1]."

pytestmark = pytest.mark.slow


def scripted(messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> str:
    return "{}" if schema is not None else ANSWER


async def one_chat(client: httpx.AsyncClient, i: int) -> dict[str, Any]:
    start = time.perf_counter()
    first: float | None = None
    body = ""
    async with client.stream("POST", "/v1/workspaces/load/chat",
                             json={"question": f"What is the rated output of the NW-200? ({i})"}) as r:
        status = r.status_code
        async for piece in r.aiter_text():
            if first is None and '"type": "token"' in piece:
                first = time.perf_counter() - start
            body += piece
    events = parse_sse(body) if status == 200 else []
    ok = status == 200 and bool(events) and events[-1]["type"] == "answer" and bool(events[-1]["answer"]["citations"])
    return {"ok": ok, "status": status, "seconds": time.perf_counter() - start, "first_token_s": first,
            "events": len(events)}


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def test_twenty_concurrent_streamed_chats_all_succeed(tmp_path: Path, example_pdf: Path) -> None:
    rt = Runtime(Settings(home=tmp_path / "var", api_auth=True),
                 overrides={"llm": FakeLLM([scripted]), "embedder": HashEmbedder()})
    app = create_app(rt)
    key = app.state.ragent.keys.create(["load"])
    try:
        with live_server(app) as url:
            with httpx.Client(base_url=url, headers=auth(key), timeout=120) as c:
                r = c.post("/v1/workspaces/load/documents",
                           files=[("files", (example_pdf.name, example_pdf.read_bytes(), "application/pdf"))])
                assert wait_job(c, r.json()["id"])["state"] == "done"
                c.post("/v1/workspaces/load/search", json={"query": "warm up"})  # load the reranker once

            async def run() -> tuple[list[dict[str, Any]], float]:
                limits = httpx.Limits(max_connections=CONCURRENCY)
                async with httpx.AsyncClient(base_url=url, headers=auth(key), timeout=300, limits=limits) as ac:
                    t0 = time.perf_counter()
                    res = await asyncio.gather(*(one_chat(ac, i) for i in range(CONCURRENCY)),
                                               return_exceptions=True)
                    wall = time.perf_counter() - t0
                out = [x if isinstance(x, dict) else {"ok": False, "error": repr(x), "seconds": 0.0,
                                                      "first_token_s": None} for x in res]
                return out, wall

            results, wall = asyncio.run(run())
            metrics = httpx.get(f"{url}/metrics").text
    finally:
        rt.close()
    lat = [r["seconds"] for r in results if r["ok"]]
    ttft = [r["first_token_s"] for r in results if r.get("first_token_s") is not None]
    failures = [r for r in results if not r["ok"]]
    figures = {
        "concurrency": CONCURRENCY, "requests": len(results), "failures": len(failures), "wall_s": round(wall, 2),
        "throughput_rps": round(len(results) / wall, 2),
        "latency_p50_s": round(statistics.median(lat), 2) if lat else None,
        "latency_p95_s": round(pct(lat, 0.95), 2) if lat else None,
        "latency_max_s": round(max(lat), 2) if lat else None,
        "first_token_p50_s": round(statistics.median(ttft), 2) if ttft else None,
    }
    print("api load:", json.dumps(figures))
    Path("/tmp/ragent_api_load.json").write_text(json.dumps(figures, indent=2))
    assert not failures, failures[:3]
    assert 'ragent_chats_total{api="chat",outcome="ok"} 20.0' in metrics
