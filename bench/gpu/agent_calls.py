"""The agent's LLM calls, recorded here and replayed against a GPU server: end-to-end agent latency on a GPU.

The GPU machine has no network and none of ragent's retrieval stack (Qdrant, the index, spaCy, the embedder), so
the agent cannot run there whole. Instead:

1. ``record`` (here, with the CPU vLLM serving the SAME model the GPU will serve) runs the agent on N questions of
   a dev set, exactly as ``ragent eval answers --systems agent`` does, and saves every LLM request it sent (the
   OpenAI body, streamed or not, start and end relative to the question's start) and what came back::

       .venv/bin/python bench/gpu/agent_calls.py record --set hotpotqa --limit 30 \\
           --out bench/gpu/calls_hotpotqa_qwen05.json.gz        # RAGENT_LLM_MODEL=qwen2.5-coder-0.5b

   Then, with the server idle, it runs the same questions again with every LLM call answered at once from the
   recording (``instant``): that run's time per question is the agent's time outside LLM calls (retrieval,
   rerank, graph, verification), measured without the CPU vLLM server competing for the same cores. ``nonllm``
   adds that pass to an existing recording.

2. ``replay`` (there; needs only httpx) sends the same requests to the GPU server in the same order, calls that
   overlapped here sent together, and estimates each question's latency as
   ``(its time outside LLM calls, from the instant pass) + (its LLM time there)``; the estimate from the recorded
   run's own gaps (``total - time in LLM calls``, which on 2 cores includes the CPU server's interference) is
   reported beside it. Greedy decoding of the same model should give the same outputs; the share that does is
   reported (a different output means the real agent would have sent a different next prompt there, so that
   question's estimate is approximate).

The non-LLM part is this CPU's time: on a GPU server whose api container runs the embedder and reranker on CPU, as
docker-compose's does, that is about the time it would take (less with more cores).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from core.stats import percentile  # noqa: E402

CALLS: ContextVar[list[dict[str, Any]] | None] = ContextVar("agent_calls", default=None)


# ---- record (here) ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _patched(chat: Any, stream: Any) -> Iterator[None]:
    """``OpenAILLM.chat`` / ``.stream`` replaced by ``chat`` / ``stream`` inside the block."""
    from core.llm import OpenAILLM

    saved = OpenAILLM.chat, OpenAILLM.stream
    OpenAILLM.chat, OpenAILLM.stream = chat, stream  # type: ignore[method-assign]
    try:
        yield
    finally:
        OpenAILLM.chat, OpenAILLM.stream = saved  # type: ignore[method-assign]


def recording() -> contextlib.AbstractContextManager[None]:
    """Wrap ``OpenAILLM.chat`` / ``.stream`` so every call lands in ``CALLS`` (when set) with its body."""
    from core.llm import OpenAILLM

    chat0, stream0 = OpenAILLM.chat, OpenAILLM.stream

    async def chat(self: OpenAILLM, messages: Any, *, schema: dict[str, Any] | None = None,
                   max_tokens: int | None = None) -> str:
        t0 = time.perf_counter()
        text = await chat0(self, messages, schema=schema, max_tokens=max_tokens)
        log = CALLS.get()
        if log is not None:  # the body OpenAILLM.chat sent
            log.append({"body": self._params(messages, max_tokens, schema), "stream": False, "start": t0,
                        "end": time.perf_counter(), "output": text})
        return text

    async def stream(self: OpenAILLM, messages: Any, *, max_tokens: int | None = None) -> AsyncIterator[str]:
        t0 = time.perf_counter()
        parts: list[str] = []
        async for piece in stream0(self, messages, max_tokens=max_tokens):
            parts.append(piece)
            yield piece
        log = CALLS.get()
        if log is not None:
            log.append({"body": self._params(messages, max_tokens), "stream": True, "start": t0,
                        "end": time.perf_counter(), "output": "".join(parts)})

    return _patched(chat, stream)


def _key(messages: Any) -> str:
    return hashlib.sha1(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def instant(table: dict[str, str], misses: list[str]) -> contextlib.AbstractContextManager[None]:
    """``OpenAILLM.chat`` / ``.stream`` answer at once with the recorded output for the same messages (a message
    list that was not recorded answers "not found" and is counted in ``misses``)."""

    def lookup(messages: Any) -> str | None:
        key = _key(messages)
        out = table.get(key)
        if out is None:
            misses.append(key)
        return out

    async def chat(self: Any, messages: Any, *, schema: dict[str, Any] | None = None,
                   max_tokens: int | None = None) -> str:
        out = lookup(messages)
        return out if out is not None else ("{}" if schema is not None else "Answer: not found")

    async def stream(self: Any, messages: Any, *, max_tokens: int | None = None) -> AsyncIterator[str]:
        out = lookup(messages)
        yield out if out is not None else "Answer: not found"

    return _patched(chat, stream)


def _runtime() -> Any:
    from app.runtime import Runtime
    from core.settings import Settings

    return Runtime(Settings.from_env(env_file=".env"))


def nonllm(path: Path, warmup: int = 3) -> dict[str, Any]:
    """Add ``nonllm_s`` to every question of a recording: the agent run again with instant LLM answers (after
    ``warmup`` unscored questions), so only the time outside LLM calls is left."""
    from app.cli.eval import DEFAULT_DATA
    from app.eval_answers import load_set, run_one

    data = load(path)
    table = {_key(c["body"]["messages"]): c["output"] for q in data["questions"] for c in q["calls"]}
    rt = _runtime()
    qset = load_set(data["dataset"], DEFAULT_DATA, limit=len(data["questions"]))
    by_id = {q["qid"]: q for q in data["questions"]}
    misses: list[str] = []

    async def go(ws: str) -> None:
        for q in qset.questions[:warmup]:
            await run_one(rt, "agent", ws, q)
        for q in qset.questions:
            t0 = time.perf_counter()
            before = len(misses)
            await run_one(rt, "agent", ws, q)
            if q.qid in by_id:
                by_id[q.qid]["nonllm_s"] = round(time.perf_counter() - t0, 3)
                by_id[q.qid]["nonllm_misses"] = len(misses) - before

    with instant(table, misses):
        ws = qset.workspace if qset.prepare is None else qset.prepare(rt)
        asyncio.run(go(ws))
    data["nonllm_misses"] = len(misses)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    return data


def record(dataset: str, limit: int, out: Path) -> dict[str, Any]:
    from app.cli.eval import DEFAULT_DATA
    from app.eval_answers import cpu_info, load_set, run_config, run_one

    rt = _runtime()
    s = rt.settings
    qset = load_set(dataset, DEFAULT_DATA, limit=limit)
    questions: list[dict[str, Any]] = []

    async def go(ws: str) -> None:
        for i, q in enumerate(qset.questions, start=1):
            log: list[dict[str, Any]] = []
            CALLS.set(log)
            t0 = time.perf_counter()
            row = await run_one(rt, "agent", ws, q)
            CALLS.set(None)
            calls = [{**c, "start": round(c["start"] - t0, 4), "end": round(c["end"] - t0, 4)}
                     for c in sorted(log, key=lambda c: c["start"])]
            calls = [c for c in calls if c["start"] < row["total_s"]]  # nothing after the answer (memory off)
            questions.append({"qid": q.qid, "question": q.question, "total_s": row["total_s"], "f1": row["f1"],
                              "route": row.get("route"), "calls": calls})
            print(f"  {i}/{len(qset.questions)} {row['total_s']:.1f}s, {len(calls)} LLM calls, f1 {row['f1']:.2f}",
                  flush=True)

    with recording():
        ws = qset.workspace if qset.prepare is None else qset.prepare(rt)
        asyncio.run(go(ws))
    data = {"dataset": qset.name, "model": s.llm_model, "served_name": s.llm_served_name, "cpu": cpu_info(),
            "date": time.strftime("%Y-%m-%d"), "config": run_config(s, "agent"), "questions": questions}
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False)
    return nonllm(out)


# ---- replay (there) ---------------------------------------------------------------------------------------
def load(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


def groups(calls: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Calls that overlapped in time, together (sent concurrently on replay), in start order."""
    out: list[list[dict[str, Any]]] = []
    end = float("-inf")
    for c in sorted(calls, key=lambda c: c["start"]):
        if out and c["start"] < end:
            out[-1].append(c)
            end = max(end, c["end"])
        else:
            out.append([c])
            end = c["end"]
    return out


def busy(calls: list[dict[str, Any]]) -> float:
    """Seconds during which at least one LLM call was in flight (the union of the calls' intervals)."""
    return sum(max(c["end"] for c in g) - min(c["start"] for c in g) for g in groups(calls))


async def send(client: httpx.AsyncClient, url: str, model: str, call: dict[str, Any]) -> str:
    body = {**call["body"], "model": model}
    if not call["stream"]:
        r = await client.post(f"{url}/v1/chat/completions", json=body)
        r.raise_for_status()
        return str(r.json()["choices"][0]["message"]["content"] or "")
    parts: list[str] = []
    body |= {"stream": True, "stream_options": {"include_usage": True}}
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                ev = json.loads(line[6:])
                if ev.get("choices") and ev["choices"][0].get("delta", {}).get("content"):
                    parts.append(ev["choices"][0]["delta"]["content"])
    return "".join(parts)


def pct(xs: list[float], p: float) -> float:
    v = percentile(xs, p)
    return round(v, 3) if v is not None else float("nan")


async def replay(url: str, model: str, path: Path, limit: int | None = None) -> dict[str, Any]:
    """Replay the recorded calls at ``url``; per-question estimated latency and its p50 / p95."""
    data = load(path)
    rows = []
    async with httpx.AsyncClient(timeout=600) as client:
        for q in data["questions"][:limit]:
            gpu_llm, same = 0.0, 0
            for g in groups(q["calls"]):
                t0 = time.perf_counter()
                outs = await asyncio.gather(*(send(client, url, model, c) for c in g))
                gpu_llm += time.perf_counter() - t0
                same += sum(o == c["output"] for o, c in zip(outs, g, strict=True))
            here_llm = busy(q["calls"])
            gaps = q["total_s"] - here_llm  # the recorded run's time outside LLM calls (CPU server beside it)
            non_llm = q.get("nonllm_s", gaps)  # the instant pass, where recorded
            rows.append({"qid": q["qid"], "calls": len(q["calls"]), "cpu_total_s": q["total_s"],
                         "cpu_llm_s": round(here_llm, 3), "non_llm_s": round(non_llm, 3), "gaps_s": round(gaps, 3),
                         "gpu_llm_s": round(gpu_llm, 3), "est_total_s": round(non_llm + gpu_llm, 3),
                         "est_gaps_total_s": round(gaps + gpu_llm, 3), "same_outputs": same})
    n_calls = sum(r["calls"] for r in rows)
    return {
        "file": path.name, "dataset": data["dataset"], "recorded_model": data["model"], "recorded_on": data["cpu"],
        "n": len(rows), "llm_calls": n_calls,
        "identical_outputs": round(sum(r["same_outputs"] for r in rows) / n_calls, 3) if n_calls else None,
        "cpu_total_p50_s": pct([r["cpu_total_s"] for r in rows], 0.5),
        "cpu_llm_p50_s": pct([r["cpu_llm_s"] for r in rows], 0.5),
        "non_llm_p50_s": pct([r["non_llm_s"] for r in rows], 0.5),
        "gpu_llm_p50_s": pct([r["gpu_llm_s"] for r in rows], 0.5),
        "est_total_p50_s": pct([r["est_total_s"] for r in rows], 0.5),
        "est_total_p95_s": pct([r["est_total_s"] for r in rows], 0.95),
        "est_total_mean_s": round(statistics.fmean(r["est_total_s"] for r in rows), 3) if rows else None,
        "non_llm_source": "instant pass" if all("nonllm_s" in q for q in data["questions"]) else "recorded gaps",
        "est_gaps_total_p50_s": pct([r["est_gaps_total_s"] for r in rows], 0.5),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="run the agent here and save its LLM calls")
    rec.add_argument("--set", default="hotpotqa")
    rec.add_argument("--limit", type=int, default=30)
    rec.add_argument("--out", type=Path, required=True)
    non = sub.add_parser("nonllm", help="add the instant pass (time outside LLM calls) to a recording")
    non.add_argument("file", type=Path)
    rep = sub.add_parser("replay", help="replay saved calls against a server and print the estimate")
    rep.add_argument("file", type=Path)
    rep.add_argument("--url", default="http://127.0.0.1:8000")
    rep.add_argument("--model", default="ragent-llm")
    rep.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)
    if args.cmd == "record":
        data = record(args.set, args.limit, args.out)
        lat = [q["total_s"] for q in data["questions"]]
        print(f"recorded {len(lat)} questions, p50 {pct(lat, 0.5)} s, "
              f"{sum(len(q['calls']) for q in data['questions'])} LLM calls -> {args.out}")
    elif args.cmd == "nonllm":
        data = nonllm(args.file)
        print(f"instant pass: non-LLM p50 {pct([q['nonllm_s'] for q in data['questions']], 0.5)} s, "
              f"{data['nonllm_misses']} unrecorded LLM calls -> {args.file}")
    else:
        res = asyncio.run(replay(args.url.rstrip("/").removesuffix("/v1"), args.model, args.file, args.limit))
        print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
