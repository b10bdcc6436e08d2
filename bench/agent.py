"""Agent benchmark on HotpotQA-100: answer EM/F1, citation precision, gold-passage recall of cited chunks,
steps and latency, with the experience memory off and then on (after a warm-up pass over other questions).

    .venv/bin/python bench/agent.py --base-url http://127.0.0.1:8031/v1 --n 30 --warmup 30

Indexes the passages of the evaluated + warm-up questions (each HotpotQA question's 10 context passages:
2 gold + 8 distractors) into a fresh workspace (dense MiniLM + BM25; no graph extraction, to keep set-up short),
retrieves with dense+sparse RRF and the cross-encoder reranker, and runs the real agent against an
OpenAI-compatible server (start one with `ragent llm serve` or app/serving/vllm_server.py). Writes
bench/results/agent.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import string
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents import Agent, AgentConfig, ExperienceMemory, store_from_url  # noqa: E402
from core.embedder import embedder_from_settings  # noqa: E402
from core.errors import LLMError  # noqa: E402
from core.llm import OpenAILLM  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import Chunk, content_id  # noqa: E402
from retrieval.index import QdrantIndex  # noqa: E402
from retrieval.registry import DocRecord, Registry  # noqa: E402
from retrieval.retriever import Retriever  # noqa: E402
from retrieval.writer import IndexWriter  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "multihop"
WS = "hotpot"


# ---- SQuAD-style answer metrics ---------------------------------------------------------------------------
def norm(s: str) -> str:
    s = re.sub(r"\[\d+\]", " ", s.lower())
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1(pred: str, gold: str) -> float:
    p, g = norm(pred).split(), norm(gold).split()
    common = Counter(p) & Counter(g)
    same = sum(common.values())
    if not same:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


# ---- index ------------------------------------------------------------------------------------------------
def build_index(settings: Settings, questions: list[dict[str, Any]], corpus: dict[str, list[str]]) -> tuple[
        QdrantIndex, Registry, Any, int]:
    index, registry = QdrantIndex(settings.index), Registry(settings.index.db_path)
    embedder = embedder_from_settings(settings.embed_model, settings.embed_batch_size, settings.embed_backend)
    titles = list(dict.fromkeys(t for q in questions for t, _ in q["context"]))
    if registry.done_doc_ids(WS) and len(registry.done_doc_ids(WS)) >= len(titles):
        return index, registry, embedder, len(titles)
    chunks = []
    for t in titles:
        text = "".join(corpus.get(t) or dict((c[0], c[1]) for q in questions for c in q["context"]).get(t, []))
        doc_id = content_id(WS, t)
        chunks.append(Chunk(id=content_id(doc_id, "0"), doc_id=doc_id, workspace=WS, text=f"{t}. {text.strip()}",
                            doc_title=t, source=t))
    t0 = time.time()
    IndexWriter(index, lambda ws: embedder, graph=False).write(WS, chunks)
    for c in chunks:
        registry.put(DocRecord(WS, c.doc_id, c.source, c.doc_title, c.doc_id, "done", chunk_ids=(c.id,)))
    print(f"indexed {len(chunks)} passages in {time.time() - t0:.0f}s", file=sys.stderr)
    return index, registry, embedder, len(chunks)


class NoLLM:
    """An LLM that always fails (not 'unavailable'): every LLM step takes its deterministic fallback."""

    async def chat(self, messages: list[dict[str, Any]], *, schema: dict[str, Any] | None = None,
                   max_tokens: int | None = None) -> str:
        raise LLMError("no LLM in this benchmark run")


# ---- one pass ---------------------------------------------------------------------------------------------
async def run_pass(agent: Agent, questions: list[dict[str, Any]], use_memory: bool, label: str,
                   partial: Path | None = None) -> list[dict]:
    rows: list[dict[str, Any]] = []
    for i, q in enumerate(questions, start=1):
        t0 = time.perf_counter()
        final: dict[str, Any] = {}
        async for ev in agent.astream(WS, q["question"], use_memory=use_memory):
            if ev["type"] == "answer":
                final = ev["answer"]
        dt = time.perf_counter() - t0
        gold_titles = {t for t, _ in q["supporting_facts"]}
        cites = final.get("citations", [])
        cited_titles = {c["doc"] for c in cites}
        stats = final.get("stats", {})
        text = final.get("answer", "")
        row = {
            "question": q["question"], "gold": q["answer"], "answer": text, "latency_s": round(dt, 2),
            "em": float(norm(text) == norm(q["answer"])), "f1": round(f1(text, q["answer"]), 4),
            "contains": float(norm(q["answer"]) in norm(text)),
            "citations": len(cites), "verified": sum(1 for c in cites if c["verified"]),
            "gold_recall": len(gold_titles & cited_titles) / len(gold_titles),
            "steps": stats.get("steps_run", 0), "plans": stats.get("plans_total", 0),
            "plans_llm_valid": stats.get("plans_llm_valid", 0), "plan_fallbacks": stats.get("plan_fallbacks", 0),
            "answer_source": stats.get("answer_source"), "replans": stats.get("replans", 0),
            "plan_valid": all(isinstance(p, dict) and p.get("tool") for p in final.get("plan", [])),
            "fallback_reasons": [e.get("fallback_reason", "")[:200] for e in final.get("trace", [])
                                 if e.get("type") == "plan" and e.get("source") == "fallback"],
        }
        rows.append(row)
        if partial is not None:  # a run cut short still leaves its rows
            with partial.open("a") as f:
                f.write(json.dumps({"pass": label, **row}) + "\n")
        print(f"[{label} {i}/{len(questions)}] {dt:5.1f}s f1={row['f1']:.2f} cites={row['verified']}/"
              f"{row['citations']} gold={row['gold_recall']:.1f} src={row['answer_source']} "
              f"fallback={row['plan_fallbacks']}", file=sys.stderr)
    return rows


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)
    cites = sum(r["citations"] for r in rows)
    plans = sum(r["plans"] for r in rows)
    return {
        "questions": n,
        "em": round(statistics.mean(r["em"] for r in rows), 3),
        "f1": round(statistics.mean(r["f1"] for r in rows), 3),
        "answer_contains_gold": round(statistics.mean(r["contains"] for r in rows), 3),
        "citation_precision": round(sum(r["verified"] for r in rows) / cites, 3) if cites else None,
        "gold_passage_recall_cited": round(statistics.mean(r["gold_recall"] for r in rows), 3),
        "steps_p50": statistics.median(r["steps"] for r in rows),
        "latency_p50_s": round(statistics.median(r["latency_s"] for r in rows), 2),
        "plan_validity": round(sum(r["plan_valid"] for r in rows) / n, 3),
        "plans": plans,
        "llm_plans_schema_valid": round(sum(r["plans_llm_valid"] for r in rows) / plans, 3) if plans else None,
        "plan_fallbacks": sum(r["plan_fallbacks"] for r in rows),
        "extractive_answers": sum(1 for r in rows if r["answer_source"] == "extractive"),
        "replans": sum(r["replans"] for r in rows),
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True,
                    help="OpenAI-compatible server, e.g. http://127.0.0.1:8031/v1; 'none' = no LLM (measures the "
                    "deterministic path: fallback plans, coverage reflector, extractive verified answers)")
    ap.add_argument("--served-name", default="ragent-llm")
    ap.add_argument("--n", type=int, default=30, help="evaluated questions (the first n)")
    ap.add_argument("--warmup", type=int, default=30, help="warm-up questions for the memory (the next ones)")
    ap.add_argument("--home", type=Path, default=Path("/tmp/ragent-bench-agent"))
    ap.add_argument("--llm-judge", action="store_true", help="let the reflector ask the LLM in the grey zone")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "agent.json")
    args = ap.parse_args()

    questions = json.loads((DATA / "hotpotqa_100.json").read_text())
    corpus = json.loads((DATA / "hotpotqa_corpus.json").read_text())
    evalq, warm = questions[: args.n], questions[args.n: args.n + args.warmup]
    base_url = None if args.base_url == "none" else args.base_url
    s = Settings(home=args.home, llm_base_url=base_url, llm_served_name=args.served_name, llm_timeout_s=600)
    index, registry, embedder, n_pass = build_index(s, evalq + warm, corpus)
    from retrieval.rerank import reranker_from_settings

    rcfg = replace(s.retrieval, paths=("dense", "sparse"), decompose="off", rerank_top_n=15)
    retriever = Retriever(index, embedder, registry, reranker=reranker_from_settings(rcfg.rerank_model,
                                                                                     rcfg.rerank_max_tokens),
                          config=rcfg)
    llm: Any = NoLLM() if args.base_url == "none" else OpenAILLM(replace(s.llm, max_tokens=160))
    cfg = AgentConfig(llm_judge=args.llm_judge, llm_experience=True, answer_tokens=80, plan_tokens=192,
                      time_budget_s=300, source_chars=500)
    mem_path = args.home / f"memory-{int(time.time())}.db"
    memory = ExperienceMemory(store_from_url(None, mem_path), embedder)
    agent = Agent(retriever, llm, memory, cfg)
    t0 = time.time()
    partial = args.out.with_suffix(".partial.jsonl")
    partial.unlink(missing_ok=True)
    off = await run_pass(agent, evalq, use_memory=False, label="memory off", partial=partial)
    warm_rows = await run_pass(agent, warm, use_memory=True, label="warm-up", partial=partial) if warm else []
    on = await run_pass(agent, evalq, use_memory=True, label="memory on", partial=partial)
    result = {
        "command": " ".join(sys.argv),
        "model": args.served_name, "base_url": args.base_url, "passages_indexed": n_pass,
        "retrieval": "dense MiniLM + BM25, RRF, cross-encoder rerank top 15 (no graph, no decomposition)",
        "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
        "memory_off": summary(off), "warmup": summary(warm_rows) if warm_rows else None,
        "memory_on": summary(on),
        "memory_items_after": {k: len(memory.list(k, WS)) for k in ("tips", "shortcuts")},
        "wall_s": round(time.time() - t0), "rows": {"memory_off": off, "warmup": warm_rows, "memory_on": on},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    keys = ["questions", "em", "f1", "answer_contains_gold", "citation_precision", "gold_passage_recall_cited",
            "steps_p50", "latency_p50_s", "plan_validity", "llm_plans_schema_valid", "plan_fallbacks",
            "extractive_answers"]
    print(f"\n| metric | memory off | memory on (after {len(warm_rows)} warm-up) |\n|---|---|---|")
    for k in keys:
        print(f"| {k} | {result['memory_off'][k]} | {result['memory_on'][k]} |")
    print(f"memory after: {result['memory_items_after']}; wrote {args.out}")
    index.close()
    registry.close()


if __name__ == "__main__":
    asyncio.run(main())
