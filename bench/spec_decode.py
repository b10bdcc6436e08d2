"""Speculative decoding on ragent's vLLM server (CPU, or GPU): the same prompts with spec OFF and ON, one run.

Prompts are ragent-style extractive RAG answers: a HotpotQA question with its gold passages (plus two
distractors from the question's own context) as numbered context, and a system prompt asking to answer
from the context, quote it and cite [n]. Greedy decoding. Every server is started by ragent's one command
builder (app/serving/vllm_server.py). For each server configuration it measures:
- batch 1: requests one after another, streamed: output tokens/s (all output tokens / all request time)
  and time to first token (TTFT);
- batch N (8 on CPU, 32 on GPU): requests with N in flight: aggregate output tokens/s;
- mean acceptance length and acceptance rate from /metrics deltas;
and whether every greedy batch-1 output is identical to the spec-OFF output.

    .venv/bin/python bench/spec_decode.py [--model qwen2.5-coder-1.5b] [--quick]
        [--ngram K:MIN:MAX ...]   # several ngram settings: each gets its own server start

Prints a table, writes bench/results/spec_decode_cpu.json and the "Speculative decoding (CPU)" section of
docs/BENCHMARKS.md. On a GPU host (bench/gpu/device.sh runs it there):

    python3 bench/spec_decode.py --gpu --model-dir /tmp/models/qwen05_hf --draft-dir ... \
        --methods off,ngram,ngram_gpu,draft_model --prompts-file bench/gpu/prompts.json.gz --out $OUT/x.json \
        [--replay bench/gpu/calls_hotpotqa_qwen05.json.gz]   # the agent's recorded LLM calls, under ngram

and here afterwards ``--gpu --report-only --from FILE`` writes bench/results/spec_decode_gpu.json and the
"Speculative decoding (GPU)" section.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import logging
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from app.serving import vllm_server as vs
from core.settings import PACKAGED_LLMS, ServeConfig, Settings

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/spec_decode.py` puts bench/ first; bench.gpu lives under ROOT
    sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "multihop"
RESULTS = ROOT / "bench" / "results" / "spec_decode_cpu.json"
GPU_RESULTS = ROOT / "bench" / "results" / "spec_decode_gpu.json"
DOC = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "## Speculative decoding (CPU)"
GPU_SECTION = "## Speculative decoding (GPU)"

SYSTEM = "Answer from the context; quote it; cite [n]."
INSTRUCTION = ("Write your answer in this form:\n"
               "Evidence: every context sentence needed to answer, copied word for word in double quotes, each "
               "followed by its passage number, e.g. \"...\" [2]\n"
               "Answer: the short answer, with its citation.")


DECODE = [0.0, 0.0]  # decode tokens, decode seconds of the batch-1 phase


@dataclass(frozen=True)
class RunConfig:
    label: str
    spec_method: str  # "off" | "ngram" | "ngram_gpu" | "draft_model" | "eagle3"
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
    batch_tok_s: float  # batch N (meta["batch"]) aggregate output tokens/s
    batch_tokens: int
    batch_seconds: float
    acceptance_rate: float | None
    mean_acceptance_length: float | None
    outputs: list[str]


# ---- prompts --------------------------------------------------------------------------------------------
def load_prompts(path: Path) -> list[list[dict[str, str]]]:
    """Prompts written by ``--write-prompts`` (the GPU host has no ../shared/data)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)  # type: ignore[no-any-return]


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


def run_config(base: ServeConfig, rc: RunConfig, prompts: list[list[dict[str, str]]],
               batch_prompts: list[list[dict[str, str]]], max_tokens: int, batch: int,
               save: Callable[[Result | None, dict[str, Any] | None], None],
               during: Callable[[str, str], dict[str, Any]] | None = None) -> None:
    """Start the server for ``rc``, measure, ``save`` the result, then run ``during(url, model)`` while the
    server is still up and ``save`` again with what it returned; stop the server."""
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
        bn_tokens, bn_s = asyncio.run(run_batched(url, cfg.served_name, batch_prompts, max_tokens, batch))
        print(f"    b{batch}: {bn_tokens} tokens in {bn_s:.1f}s ({bn_tokens / bn_s:.1f} tok/s)", flush=True)
        d = vs.metrics_delta(m0, m1)
        ttft_sorted = sorted(ttfts)
        result = Result(
            label=rc.label, spec=vs.speculative_config(cfg), startup_s=round(startup, 1),
            b1_tok_s=round(sum(toks) / b1_s, 2), b1_ttft_ms_p50=round(1000 * ttft_sorted[len(ttfts) // 2], 1),
            b1_ttft_ms_mean=round(1000 * sum(ttfts) / len(ttfts), 1), b1_tokens=sum(toks),
            b1_seconds=round(b1_s, 1), b1_decode_tok_s=round(DECODE[0] / DECODE[1], 2) if DECODE[1] else 0.0,
            batch_tok_s=round(bn_tokens / bn_s, 2), batch_tokens=bn_tokens, batch_seconds=round(bn_s, 1),
            acceptance_rate=None if d["acceptance_rate"] is None else round(d["acceptance_rate"], 3),
            mean_acceptance_length=None if d["mean_acceptance_length"] is None
            else round(d["mean_acceptance_length"], 2),
            outputs=texts,
        )
        save(result, None)  # kept even if what follows is cut off by a time limit
        if during is not None:
            try:  # its failure must not cost the measurements above
                extra = during(url, cfg.served_name)
            except Exception as e:
                print(f"!! {rc.label}: the run during the server failed: {type(e).__name__}: {e}", flush=True)
                extra = {"error": f"{type(e).__name__}: {e}"[-2000:]}
            save(result, extra)
    finally:
        vs.stop(cfg)


# ---- report ---------------------------------------------------------------------------------------------
def table(results: list[Result], batch: int) -> str:
    base = results[0]
    head = (f"| config | tok/s b=1 (end to end) | speed-up | decode tok/s b=1 | decode speed-up | tok/s b={batch} | "
            f"speed-up b={batch} | TTFT p50 ms | accept. len | accept. rate | same greedy output |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for r in results:
        same = sum(a == b for a, b in zip(r.outputs, base.outputs, strict=True))
        rows.append(
            f"| {r.label} | {r.b1_tok_s:.1f} | {r.b1_tok_s / base.b1_tok_s:.2f}x | {r.b1_decode_tok_s:.1f} | "
            f"{r.b1_decode_tok_s / base.b1_decode_tok_s:.2f}x | {r.batch_tok_s:.1f} | "
            f"{r.batch_tok_s / base.batch_tok_s:.2f}x | {r.b1_ttft_ms_p50:.0f} | "
            f"{'-' if r.mean_acceptance_length is None else f'{r.mean_acceptance_length:.2f}'} | "
            f"{'-' if r.acceptance_rate is None else f'{r.acceptance_rate:.2f}'} | {same}/{len(base.outputs)} |"
        )
    return "\n".join(rows)


def agent_table(agent: dict[str, Any]) -> str:
    rows = ["| agent on | questions | LLM calls | identical outputs | p50 on the CPU | LLM p50 on the CPU | "
            "non-LLM p50 | LLM p50 on the GPU | **est. p50** | est. p95 | est. p50 from recorded gaps |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    rows += [f"| {a['dataset']} ({a['recorded_model']}) | {a['n']} | {a['llm_calls']} | {a['identical_outputs']} | "
             f"{a['cpu_total_p50_s']} s | {a['cpu_llm_p50_s']} s | {a['non_llm_p50_s']} s ({a.get('non_llm_source')}) "
             f"| {a['gpu_llm_p50_s']} s | **{a['est_total_p50_s']} s** | {a['est_total_p95_s']} s | "
             f"{a.get('est_gaps_total_p50_s', '-')} s |" for a in agent["runs"]]
    return "\n".join(rows)


def write_doc(md_table: str, meta: dict[str, Any], gpu: bool) -> None:
    section, results = (GPU_SECTION, GPU_RESULTS) if gpu else (SECTION, RESULTS)
    body = (
        f"{section}\n\n"
        f"`{meta['command']}` on {meta['machine']}, {meta['date']}; model {meta['model']}, "
        f"{meta['prompts']} extractive RAG prompts (HotpotQA questions with gold + distractor passages), "
        f"greedy, at most {meta['max_tokens']} new tokens (min_tokens {meta.get('min_tokens', 0)}); "
        f"batch {meta['batch']} = {meta['batch_prompts']} requests, {meta['batch']} in flight. "
        f"Raw numbers: `{results.relative_to(ROOT)}`.\n\n{md_table}\n\n"
        "tok/s b=1 (end to end) = all output tokens / all request time, so it includes the prompt prefill (TTFT, "
        "which speculative decoding does not change); decode tok/s = tokens after the first / time after the "
        "first token, the phase speculative decoding accelerates.\n"
    )
    if meta.get("failed"):
        body += "\nConfigurations that did not run: " + "; ".join(
            f"{f['label']}: {f['error'][:200]}" for f in meta["failed"]) + "\n"
    if meta.get("agent", {}).get("error"):
        body += f"\nThe agent replay failed: {meta['agent']['error'][:300]}\n"
    elif meta.get("agent"):
        body += ("\nThe agent end to end (bench/gpu/agent_calls.py: its LLM calls recorded on the CPU, replayed "
                 f"on this server under {meta['agent'].get('config', '?')}; estimate = time outside LLM calls here "
                 f"+ LLM time there):\n\n{agent_table(meta['agent'])}\n")
    text = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    if section in text:
        start = text.index(section)
        nxt = text.find("\n## ", start + len(section))
        text = text[:start] + body + (text[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


def parse_ngram(spec: str) -> RunConfig:
    k, lo, hi = (int(x) for x in spec.split(":"))
    return RunConfig(f"ngram k={k} lookup {lo}-{hi}", "ngram", k, lo, hi)


def method_config(method: str, s: Settings, draft_tokens: int) -> RunConfig:
    """One ``--methods`` entry: ngram / ngram_gpu with the Settings defaults, draft_model / eagle3 with
    ``draft_tokens`` speculative tokens, or off."""
    if method == "off":
        return RunConfig("spec off", "off")
    if method in ("ngram", "ngram_gpu"):
        return RunConfig(f"{method} k={s.llm_spec_tokens} lookup {s.llm_spec_lookup_min}-{s.llm_spec_lookup_max}",
                         method, s.llm_spec_tokens, s.llm_spec_lookup_min, s.llm_spec_lookup_max)
    if method in ("draft_model", "eagle3"):
        return RunConfig(f"{method} k={draft_tokens}", method, draft_tokens)
    raise SystemExit(f"unknown method {method!r}: off, ngram, ngram_gpu, draft_model, eagle3")


def gpu_name() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "GPU (nvidia-smi unavailable)"
    return out.splitlines()[0] if out else "GPU"


def vllm_version(python: str) -> str:
    try:
        return subprocess.run([python, "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True,
                              timeout=300, check=True).stdout.strip().splitlines()[-1]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "?"


def load_saved(path: Path) -> tuple[list[Result], dict[str, Any]]:
    """A saved JSON; files from before the batch size was a parameter say b8_* for batch 8."""
    saved = json.loads(path.read_text())
    saved.setdefault("batch", 8)
    if "b8_prompts" in saved:
        saved["batch_prompts"] = saved.pop("b8_prompts")
    rows = []
    for r in saved["results"]:
        for old in ("tok_s", "tokens", "seconds"):
            if f"b8_{old}" in r:
                r[f"batch_{old}"] = r.pop(f"b8_{old}")
        rows.append(Result(**r))
    return rows, saved


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="spec decoding OFF vs ON on ragent's vLLM server (CPU or GPU)")
    ap.add_argument("--model", default="qwen2.5-coder-1.5b", choices=sorted(PACKAGED_LLMS))
    ap.add_argument("--model-dir", type=Path, default=None, help="serve this HF folder instead of --model")
    ap.add_argument("--home", type=Path, default=ROOT / "var")
    ap.add_argument("--quick", action="store_true", help="4 prompts at batch 1, 8 at batch N")
    ap.add_argument("--prompts", type=int, default=12, help="batch-1 prompts")
    ap.add_argument("--batch", type=int, default=None, help="requests in flight in the batch phase (8 CPU, 32 GPU)")
    ap.add_argument("--batch-prompts", "--b8-prompts", type=int, default=None,
                    help="requests in the batch phase (default 2 x --batch)")
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--ngram", action="append", metavar="K:MIN:MAX",
                    help="ngram setting(s) to measure (default: the Settings defaults)")
    ap.add_argument("--methods", default=None,
                    help="comma list of off,ngram,ngram_gpu,draft_model,eagle3 (default off + --ngram settings)")
    ap.add_argument("--draft-dir", type=Path, default=None, help="draft model / EAGLE-3 head folder")
    ap.add_argument("--draft-tokens", type=int, default=4, help="num_speculative_tokens for draft_model / eagle3")
    ap.add_argument("--gpu", action="store_true", help="run vLLM on the GPU (a CUDA vLLM importable by this python)")
    ap.add_argument("--max-num-seqs", type=int, default=0, help="--max-num-seqs (0 = vLLM's default)")
    ap.add_argument("--prompts-file", type=Path, default=None, help="prompts from --write-prompts (no ../shared)")
    ap.add_argument("--write-prompts", type=Path, default=None, help="write N prompts (gzip JSON) and exit")
    ap.add_argument("--replay", type=Path, action="append", default=[],
                    help="bench/gpu/agent_calls.py recording(s): replayed under the first spec method's server")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/spec_decode_*.json)")
    ap.add_argument("--from", dest="from_file", type=Path, default=None, help="with --report-only: read this JSON")
    ap.add_argument("--port", type=int, default=8014)
    ap.add_argument("--memory-fraction", type=float, default=None, help="CPU: RAM share (0.2); GPU: memory (0.5)")
    ap.add_argument("--startup-timeout", type=float, default=2400.0, help="seconds to wait for each server")
    ap.add_argument("--cpu-bind", default=None,
                    help="VLLM_CPU_OMP_THREADS_BIND for the servers (e.g. 1: keep off cores other servers use)")
    ap.add_argument("--min-tokens", type=int, default=0, help="vLLM min_tokens per answer")
    ap.add_argument("--no-write", action="store_true", help="print only; write no JSON/doc")
    ap.add_argument("--report-only", action="store_true",
                    help="measure nothing: rebuild the table, JSON summary and doc from the (partial) JSON")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # `timeout` sends SIGTERM: exit through the finally blocks, so the running server is stopped too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(124))
    global MIN_TOKENS
    MIN_TOKENS = args.min_tokens
    batch = args.batch or (32 if args.gpu else 8)
    n1, nb = (4, 8) if args.quick else (args.prompts, args.batch_prompts or 2 * batch)
    if args.write_prompts:
        args.write_prompts.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(args.write_prompts, "wt", encoding="utf-8") as f:
            json.dump(build_prompts(max(n1, nb)), f, ensure_ascii=False)
        print(f"wrote {max(n1, nb)} prompts to {args.write_prompts}")
        return 0
    out = args.out or (GPU_RESULTS if args.gpu else RESULTS)
    model = str(args.model_dir) if args.model_dir else args.model
    meta: dict[str, Any] = {
        "command": "python bench/spec_decode.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (vllm-cpu 0.32.0)",
        "cpu_bind": args.cpu_bind or "auto",
        "date": time.strftime("%Y-%m-%d"), "model": Path(model).name, "prompts": n1, "batch": batch,
        "batch_prompts": nb, "max_tokens": args.max_tokens, "min_tokens": MIN_TOKENS,
    }
    if args.report_only:
        saved_results, saved = load_saved(args.from_file or out)
        meta = {**meta, **{k: v for k, v in saved.items() if k not in ("results", "summary")}}
        report(saved_results, meta, write=not args.no_write, gpu=args.gpu, out=out)
        return 0

    memory = args.memory_fraction or (0.5 if args.gpu else 0.2)
    s = Settings(home=args.home, llm_model=model, llm_port=args.port, llm_venv=ROOT / ".venv-llm",
                 llm_memory_fraction=memory, llm_gpu_memory_fraction=memory, llm_startup_timeout_s=args.startup_timeout,
                 llm_device="gpu" if args.gpu else "cpu", llm_max_num_seqs=args.max_num_seqs,
                 llm_python=sys.executable if args.gpu else None,
                 llm_spec_draft_model=str(args.draft_dir.absolute()) if args.draft_dir else None)
    if args.gpu:
        meta["machine"] = f"{gpu_name()} (vLLM {vllm_version(sys.executable)})"
        meta.pop("cpu_bind")
    if args.cpu_bind:
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = args.cpu_bind  # inherited by the servers
    base = replace(s.serve, run_dir=args.home / "run" / "bench")
    prompts = load_prompts(args.prompts_file) if args.prompts_file else build_prompts(max(n1, nb))
    if args.methods:
        configs = [method_config(m.strip(), s, args.draft_tokens) for m in args.methods.split(",") if m.strip()]
    else:
        configs = [RunConfig("spec off", "off")]
        configs += ([parse_ngram(x) for x in args.ngram] if args.ngram else [method_config("ngram", s, 0)])
    replay_on = next((c.label for c in configs if c.spec_method != "off"), configs[0].label)

    def agent(url: str, served: str) -> dict[str, Any]:
        from bench.gpu.agent_calls import replay

        runs = []
        for path in args.replay:
            print(f"    agent replay of {path.name}", flush=True)
            res = asyncio.run(replay(url, served, path))
            print(f"    agent est. p50 {res['est_total_p50_s']} s, p95 {res['est_total_p95_s']} s "
                  f"(identical outputs {res['identical_outputs']})", flush=True)
            runs.append(res)
        return {"config": replay_on, "runs": runs}

    results: list[Result] = []
    meta["failed"] = []

    def save(result: Result | None, extra: dict[str, Any] | None) -> None:
        if result is not None and result not in results:
            results.append(result)
            results.sort(key=lambda r: r.spec is not None)  # spec off first: the baseline of every ratio
        if extra is not None:
            meta["agent"] = extra
        if not args.no_write:  # keep what was measured even if a later step fails or runs out of time
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({**meta, "partial": True, "results": [asdict(r) for r in results]},
                                      indent=1) + "\n")

    for rc in configs:
        try:
            run_config(base, rc, prompts[:n1], prompts[:nb], args.max_tokens, batch, save,
                       agent if args.replay and rc.label == replay_on else None)
        except Exception as e:  # a method this vLLM rejects must not cost the other measurements
            print(f"!! {rc.label} failed: {type(e).__name__}: {e}", flush=True)
            meta["failed"].append({"label": rc.label, "error": f"{type(e).__name__}: {e}"[-2000:]})
            save(None, None)
    report(results, meta, write=not args.no_write, gpu=args.gpu, out=out)
    return 0


def report(results: list[Result], meta: dict[str, Any], write: bool, gpu: bool = False,
           out: Path = RESULTS) -> None:
    if not results or results[0].spec is not None:
        print("no spec-off baseline was measured: no ratios (the partial JSON keeps what was measured)")
        return
    md = table(results, meta["batch"])
    print(md)
    if len(results) < 2:
        return
    best = max(results[1:], key=lambda r: r.b1_tok_s)
    best_decode = max(results[1:], key=lambda r: r.b1_decode_tok_s)
    summary = {"best": best.label, "best_decode": best_decode.label,
               "best_decode_speedup_b1": round(best_decode.b1_decode_tok_s / results[0].b1_decode_tok_s, 2),
               "speedup_b1": round(best.b1_tok_s / results[0].b1_tok_s, 2),
               "speedup_b1_decode": round(best.b1_decode_tok_s / results[0].b1_decode_tok_s, 2),
               "ttft_ratio": round(best.b1_ttft_ms_mean / results[0].b1_ttft_ms_mean, 2),
               f"speedup_b{meta['batch']}": round(best.batch_tok_s / results[0].batch_tok_s, 2),
               "min_speedup_batch": round(min(r.batch_tok_s for r in results[1:]) / results[0].batch_tok_s, 2),
               "identical_outputs": sum(a == b for a, b in zip(best.outputs, results[0].outputs, strict=True))}
    print(f"best: {summary}")
    if write:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({**meta, "summary": summary, "results": [asdict(r) for r in results]},
                                  indent=1) + "\n")
        if out.resolve() in (RESULTS.resolve(), GPU_RESULTS.resolve()):
            write_doc(md, meta, gpu)
            print(f"wrote {out.relative_to(ROOT)} and {DOC.relative_to(ROOT)}")
        else:
            print(f"wrote {out}")


if __name__ == "__main__":
    sys.exit(main())
