"""Speculative decoding on the vLLM CPU server: the same prompts with spec OFF and with ngram ON, one run.

Prompts are ragent-style extractive RAG answers: a HotpotQA question with its gold passages (plus two
distractors from the question's own context) as numbered context, and a system prompt asking to answer
from the context, quote it and cite [n]. Greedy decoding. For each server configuration it measures:
- batch 1: requests one after another, streamed: output tokens/s (all output tokens / all request time)
  and time to first token (TTFT);
- batch 8: requests with 8 in flight: aggregate output tokens/s;
- mean acceptance length and acceptance rate from /metrics deltas (ngram runs);
and whether every greedy batch-1 output is identical to the spec-OFF output.

    .venv/bin/python bench/spec_decode.py [--model qwen2.5-coder-1.5b] [--quick]
        [--ngram K:MIN:MAX ...]   # several ngram settings: each gets its own server start

Prints a table, writes bench/results/spec_decode_cpu.json and the "Speculative decoding (CPU)" section of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from app.serving import vllm_server as vs
from core.settings import PACKAGED_LLMS, ServeConfig, Settings

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "multihop"
RESULTS = ROOT / "bench" / "results" / "spec_decode_cpu.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Speculative decoding (CPU)"

SYSTEM = "Answer from the context; quote it; cite [n]."
INSTRUCTION = ("Write your answer in this form:\n"
               "Evidence: every context sentence needed to answer, copied word for word in double quotes, each "
               "followed by its passage number, e.g. \"...\" [2]\n"
               "Answer: the short answer, with its citation.")


DECODE = [0.0, 0.0]  # decode tokens, decode seconds of the batch-1 phase


@dataclass(frozen=True)
class RunConfig:
    label: str
    spec_method: str  # "off" | "ngram"
    spec_tokens: int = 5
    lookup_min: int = 2
    lookup_max: int = 4


@dataclass
class Result:
    label: str
    spec: dict[str, Any] | None
    startup_s: float
    b1_tok_s: float
    b1_ttft_ms_p50: float
    b1_ttft_ms_mean: float
    b1_tokens: int
    b1_seconds: float
    b1_decode_tok_s: float  # after the first token: (tokens - 1) / (time - TTFT), summed over requests
    b8_tok_s: float
    b8_tokens: int
    b8_seconds: float
    acceptance_rate: float | None
    mean_acceptance_length: float | None
    outputs: list[str]


# ---- prompts --------------------------------------------------------------------------------------------
def build_prompts(n: int, seed: int = 0) -> list[list[dict[str, str]]]:
    questions = json.loads((DATA / "hotpotqa_100.json").read_text())
    corpus: dict[str, list[str]] = json.loads((DATA / "hotpotqa_corpus.json").read_text())
    rng = random.Random(seed)
    prompts = []
    for q in questions[:n]:
        gold = list(dict.fromkeys(t for t, _ in q["supporting_facts"]))
        distractors = [t for t, _ in q["context"] if t not in gold][:2]
        titles = gold + distractors
        rng.shuffle(titles)
        ctx = "\n\n".join(f"[{i}] {t}: {''.join(corpus.get(t, []) or dict(q['context']).get(t, [])).strip()}"
                          for i, t in enumerate(titles, start=1))
        prompts.append([
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Context:\n{ctx}\n\nQuestion: {q['question']}\n\n{INSTRUCTION}"},
        ])
    return prompts


# ---- requests -------------------------------------------------------------------------------------------
# vLLM's min_tokens (allowed with speculative decoding). Default 0: forcing length past the model's EOS made
# the 1.5B emit "[4] [5] [6] ..." continuations that flatter ngram drafting; --min-tokens 160 forces it anyway.
MIN_TOKENS = 0


async def one_request(client: httpx.AsyncClient, url: str, model: str, messages: list[dict[str, str]],
                      max_tokens: int) -> tuple[str, int, float, float]:
    """Stream one greedy completion. Returns (text, output tokens, ttft seconds, total seconds)."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": 0.0, "seed": 0,
            "min_tokens": min(MIN_TOKENS, max_tokens), "stream": True, "stream_options": {"include_usage": True}}
    t0 = time.perf_counter()
    ttft = 0.0
    parts: list[str] = []
    tokens = 0
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread()).decode()[:300]}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            ev = json.loads(line[6:])
            if ev.get("choices") and ev["choices"][0].get("delta", {}).get("content"):
                if not parts:
                    ttft = time.perf_counter() - t0
                parts.append(ev["choices"][0]["delta"]["content"])
            if ev.get("usage"):
                tokens = ev["usage"]["completion_tokens"]
    return "".join(parts), tokens, ttft, time.perf_counter() - t0


async def run_batch1(url: str, model: str, prompts: list[list[dict[str, str]]], max_tokens: int,
                     ) -> tuple[list[str], list[int], list[float], float]:
    texts, toks, ttfts, total = [], [], [], 0.0
    async with httpx.AsyncClient(timeout=1800) as client:
        for i, p in enumerate(prompts, start=1):
            text, n, ttft, dt = await one_request(client, url, model, p, max_tokens)
            texts.append(text)
            toks.append(n)
            ttfts.append(ttft)
            DECODE[0] += n - 1
            DECODE[1] += dt - ttft
            total += dt
            print(f"    b1 {i}/{len(prompts)}: {n} tokens in {dt:.1f}s ({n / dt:.1f} tok/s)", flush=True)
    return texts, toks, ttfts, total


async def run_batched(url: str, model: str, prompts: list[list[dict[str, str]]], max_tokens: int,
                      concurrency: int) -> tuple[int, float]:
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=1800, limits=httpx.Limits(max_connections=concurrency + 2)) as client:

        async def go(p: list[dict[str, str]]) -> int:
            async with sem:
                return (await one_request(client, url, model, p, max_tokens))[1]

        t0 = time.perf_counter()
        counts = await asyncio.gather(*(go(p) for p in prompts))
        return sum(counts), time.perf_counter() - t0


def run_config(base: ServeConfig, rc: RunConfig, prompts: list[list[dict[str, str]]], b8_prompts: list[
               list[dict[str, str]]], max_tokens: int) -> Result:
    cfg = replace(base, spec_method=rc.spec_method, spec_tokens=rc.spec_tokens,  # type: ignore[arg-type]
                  spec_lookup_min=rc.lookup_min, spec_lookup_max=rc.lookup_max)
    print(f"== {rc.label}: starting {cfg.model_dir.name}", flush=True)
    t0 = time.perf_counter()
    vs.start(cfg, progress=lambda m: print(f"   {m}", flush=True))
    startup = time.perf_counter() - t0
    url = vs.local_url(cfg)
    try:
        asyncio.run(run_batch1(url, cfg.served_name, prompts[:1], 16))  # warm-up (not counted)
        m0 = vs.fetch_metrics(url)
        DECODE[:] = [0.0, 0.0]
        texts, toks, ttfts, b1_s = asyncio.run(run_batch1(url, cfg.served_name, prompts, max_tokens))
        m1 = vs.fetch_metrics(url)
        b8_tokens, b8_s = asyncio.run(run_batched(url, cfg.served_name, b8_prompts, max_tokens, 8))
        print(f"    b8: {b8_tokens} tokens in {b8_s:.1f}s ({b8_tokens / b8_s:.1f} tok/s)", flush=True)
    finally:
        vs.stop(cfg)
    d = vs.metrics_delta(m0, m1)
    ttft_sorted = sorted(ttfts)
    return Result(
        label=rc.label, spec=vs.speculative_config(cfg), startup_s=round(startup, 1),
        b1_tok_s=round(sum(toks) / b1_s, 2), b1_ttft_ms_p50=round(1000 * ttft_sorted[len(ttfts) // 2], 1),
        b1_ttft_ms_mean=round(1000 * sum(ttfts) / len(ttfts), 1), b1_tokens=sum(toks), b1_seconds=round(b1_s, 1),
        b1_decode_tok_s=round(DECODE[0] / DECODE[1], 2) if DECODE[1] else 0.0,
        b8_tok_s=round(b8_tokens / b8_s, 2), b8_tokens=b8_tokens, b8_seconds=round(b8_s, 1),
        acceptance_rate=None if d["acceptance_rate"] is None else round(d["acceptance_rate"], 3),
        mean_acceptance_length=None if d["mean_acceptance_length"] is None
        else round(d["mean_acceptance_length"], 2),
        outputs=texts,
    )


# ---- report ---------------------------------------------------------------------------------------------
def table(results: list[Result]) -> str:
    base = results[0]
    head = ("| config | tok/s b=1 (end to end) | speed-up | decode tok/s b=1 | decode speed-up | tok/s b=8 | "
            "speed-up b=8 | TTFT p50 ms | accept. len | accept. rate | same greedy output |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for r in results:
        same = sum(a == b for a, b in zip(r.outputs, base.outputs, strict=True))
        rows.append(
            f"| {r.label} | {r.b1_tok_s:.1f} | {r.b1_tok_s / base.b1_tok_s:.2f}x | {r.b1_decode_tok_s:.1f} | "
            f"{r.b1_decode_tok_s / base.b1_decode_tok_s:.2f}x | {r.b8_tok_s:.1f} | "
            f"{r.b8_tok_s / base.b8_tok_s:.2f}x | {r.b1_ttft_ms_p50:.0f} | "
            f"{'-' if r.mean_acceptance_length is None else f'{r.mean_acceptance_length:.2f}'} | "
            f"{'-' if r.acceptance_rate is None else f'{r.acceptance_rate:.2f}'} | {same}/{len(base.outputs)} |"
        )
    return "\n".join(rows)


def write_doc(md_table: str, meta: dict[str, Any]) -> None:
    body = (
        f"{SECTION}\n\n"
        f"`{meta['command']}` on {meta['machine']}, {meta['date']}; model {meta['model']}, "
        f"{meta['prompts']} extractive RAG prompts (HotpotQA questions with gold + distractor passages), "
        f"greedy, at most {meta['max_tokens']} new tokens (min_tokens {MIN_TOKENS}); "
        f"batch 8 = {meta['b8_prompts']} requests, 8 in flight. "
        f"Raw numbers: `bench/results/spec_decode_cpu.json`.\n\n{md_table}\n\n"
        "tok/s b=1 (end to end) = all output tokens / all request time, so it includes the prompt prefill (TTFT, "
        "which speculative decoding does not change); decode tok/s = tokens after the first / time after the "
        "first token, the phase speculative decoding accelerates.\n"
    )
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if SECTION in text:
        start = text.index(SECTION)
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + (text[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def parse_ngram(spec: str) -> RunConfig:
    k, lo, hi = (int(x) for x in spec.split(":"))
    return RunConfig(f"ngram k={k} lookup {lo}-{hi}", "ngram", k, lo, hi)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="spec decoding OFF vs ngram ON on the vLLM CPU server")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b", choices=sorted(PACKAGED_LLMS))
    ap.add_argument("--home", type=Path, default=ROOT / "var")
    ap.add_argument("--quick", action="store_true", help="4 prompts at batch 1, 8 at batch 8")
    ap.add_argument("--prompts", type=int, default=12, help="batch-1 prompts")
    ap.add_argument("--b8-prompts", type=int, default=16, help="batch-8 prompts")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--ngram", action="append", metavar="K:MIN:MAX",
                    help="ngram setting(s) to measure (default: the Settings defaults)")
    ap.add_argument("--port", type=int, default=8014)
    ap.add_argument("--memory-fraction", type=float, default=0.2)
    ap.add_argument("--startup-timeout", type=float, default=2400.0, help="seconds to wait for each server")
    ap.add_argument("--cpu-bind", default=None,
                    help="VLLM_CPU_OMP_THREADS_BIND for the servers (e.g. 1: keep off cores other servers use)")
    ap.add_argument("--min-tokens", type=int, default=0, help="vLLM min_tokens per answer")
    ap.add_argument("--no-write", action="store_true", help="print only; write no JSON/doc")
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: rebuild the table, JSON summary and doc from the (partial) JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    global MIN_TOKENS
    MIN_TOKENS = args.min_tokens
    n1, n8 = (4, 8) if args.quick else (args.prompts, args.b8_prompts)
    meta = {
        "command": "python bench/spec_decode.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (vllm-cpu 0.32.0)",
        "cpu_bind": args.cpu_bind or "auto",
        "date": time.strftime("%Y-%m-%d"), "model": args.model, "prompts": n1, "b8_prompts": n8,
        "max_tokens": args.max_tokens,
    }
    if args.report_only:
        saved = json.loads(RESULTS.read_text())
        meta = {**meta, **{k: v for k, v in saved.items() if k in meta}}
        report([Result(**r) for r in saved["results"]], meta, write=not args.no_write)
        return 0

    s = Settings(home=args.home, llm_model=args.model, llm_port=args.port, llm_venv=ROOT / ".venv-llm",
                 llm_memory_fraction=args.memory_fraction, llm_startup_timeout_s=args.startup_timeout)
    if args.cpu_bind:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = args.cpu_bind  # inherited by the servers
    base = replace(s.serve, run_dir=args.home / "run" / "bench")
    prompts = build_prompts(max(n1, n8))
    configs = [RunConfig("spec off", "off")]
    configs += ([parse_ngram(x) for x in args.ngram] if args.ngram else
                [RunConfig(f"ngram k={s.llm_spec_tokens} lookup {s.llm_spec_lookup_min}-{s.llm_spec_lookup_max}",
                           "ngram", s.llm_spec_tokens, s.llm_spec_lookup_min, s.llm_spec_lookup_max)])
    results: list[Result] = []
    for rc in configs:
        results.append(run_config(base, rc, prompts[:n1], prompts[:n8], args.max_tokens))
        if not args.no_write:  # keep what was measured even if a later server start fails
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps({**meta, "partial": True, "results": [asdict(r) for r in results]},
                                          indent=1) + "\n")
    report(results, meta, write=not args.no_write)
    return 0


def report(results: list[Result], meta: dict[str, Any], write: bool) -> None:
    md = table(results)
    print(md)
    if len(results) < 2:
        return
    best = max(results[1:], key=lambda r: r.b1_tok_s)
    summary = {"best": best.label, "speedup_b1": round(best.b1_tok_s / results[0].b1_tok_s, 2),
               "speedup_b1_decode": round(best.b1_decode_tok_s / results[0].b1_decode_tok_s, 2),
               "ttft_ratio": round(best.b1_ttft_ms_mean / results[0].b1_ttft_ms_mean, 2),
               "speedup_b8": round(best.b8_tok_s / results[0].b8_tok_s, 2),
               "identical_outputs": sum(a == b for a, b in zip(best.outputs, results[0].outputs, strict=True))}
    print(f"best: {summary}")
    if write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({**meta, "summary": summary, "results": [asdict(r) for r in results]},
                                      indent=1) + "\n")
        write_doc(md, meta)
        print(f"wrote {RESULTS.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
