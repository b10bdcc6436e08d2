"""Finetune benchmark: dense recall@10 / nDCG@10 on the multi-hop dev sets before and after fine-tuning.

For each set the corpus (passage = title + text) is indexed into its own workspace (``build_index``: the
configured default vector backend, Qdrant Edge), pairs are synthesised from the corpus only (keyphrase/cloze
generator), hard negatives are mined, MiniLM is trained on this CPU, and the 100 real questions (never trained on)
are scored on the dense path before and after. After the swap the questions are run again through the live index
(``Retriever.recall("dense")``) as a check.

    .venv/bin/python bench/finetune.py [--sets musique hotpotqa] [--max-pairs 2000] [--epochs 1]

Writes bench/results/finetune.json. Base-model corpus embeddings are cached under --cache.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.embedder import SentenceTransformerEmbedder  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.types import Chunk, content_id  # noqa: E402
from finetune import EvalQuestion, run_finetune  # noqa: E402
from retrieval.factory import build_index  # noqa: E402
from retrieval.registry import DocRecord, Registry  # noqa: E402
from retrieval.retriever import Retriever  # noqa: E402
from retrieval.sparse import bm25_document  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "multihop"


def load_set(name: str, ws: str) -> tuple[list[Chunk], list[EvalQuestion]]:
    raw = json.loads((DATA / f"{name}_corpus.json").read_text())
    items = [(t, "".join(s).strip()) for t, s in raw.items()] if isinstance(raw, dict) else [
        (p["title"], p["text"]) for p in raw]
    chunks, by_key, by_title = [], {}, {}
    for title, text in items:
        doc_id = content_id(ws, title, text)
        c = Chunk(id=content_id(doc_id, "0", text), doc_id=doc_id, workspace=ws, text=f"{title}\n{text}",
                  doc_title=title, source=title)
        if c.id in by_key.values():
            continue
        chunks.append(c)
        by_key[(title, text)] = c.id
        by_title.setdefault(title, set()).add(c.id)
    qs = []
    for q in json.loads((DATA / f"{name}_100.json").read_text()):
        if name == "musique":
            rel = {by_key[(p["title"], p["paragraph_text"])] for p in q["paragraphs"]
                   if p["is_supporting"] and (p["title"], p["paragraph_text"]) in by_key}
        else:
            rel = set().union(*(by_title.get(t, set()) for t, _ in q["supporting_facts"]))
        if rel:
            qs.append(EvalQuestion(q["question"], frozenset(rel)))
    return chunks, qs


def cached_embeddings(chunks: list[Chunk], cache: Path, embedder: SentenceTransformerEmbedder) -> np.ndarray:
    key = hashlib.sha256("\x1f".join(c.index_text for c in chunks).encode()).hexdigest()[:16]
    f = cache / f"minilm_{key}.npy"
    if f.exists():
        return np.load(f)
    cache.mkdir(parents=True, exist_ok=True)
    vecs = embedder.embed_batch([c.index_text for c in chunks])
    np.save(f, vecs)
    return vecs


def index_set(retriever: Retriever, ws: str, chunks: list[Chunk], dense: np.ndarray) -> None:
    retriever.index.upsert(ws, chunks, dense, [bm25_document(c.index_text) for c in chunks])
    for c in chunks:
        retriever.registry.put(DocRecord(workspace=ws, doc_id=c.doc_id, source=c.source, title=c.doc_title,
                                         content_hash=c.doc_id, status="done", chunk_ids=(c.id,)))


async def live_recall(retriever: Retriever, ws: str, qs: list[EvalQuestion]) -> float:
    total = 0.0
    for q in qs:
        hits = await retriever.recall("dense", ws, q.query, 10)
        total += len({h.chunk.id for h in hits} & q.relevant_ids) / len(q.relevant_ids)
    return total / len(qs)


def run_set(name: str, args: argparse.Namespace) -> dict[str, object]:
    home = Path(args.home) / name
    if args.fresh:
        shutil.rmtree(home, ignore_errors=True)
    else:  # keep the indexed workspace and an unfinished version's examples; retrain from scratch
        for d in (home / "finetune" / name).glob("v*"):
            if (d / "result.json").exists():
                shutil.rmtree(d)
        (home / "finetune" / name / "active.json").unlink(missing_ok=True)
    s = Settings(home=home, finetune_max_pairs=args.max_pairs, finetune_epochs=args.epochs,
                 finetune_min_gain=0.0)
    index, registry = build_index(s.index), Registry(s.index.db_path)
    retriever = Retriever(index, SentenceTransformerEmbedder("minilm"), registry)
    ws = name
    chunks, qs = load_set(name, ws)
    t = time.perf_counter()
    dense = cached_embeddings(chunks, Path(args.cache), retriever.embedder)  # type: ignore[arg-type]
    if index.physical(ws) not in (None, f"chunks_{ws}_v1"):  # a previous run swapped the alias: start over
        index.point_alias(ws, f"chunks_{ws}_v1")
    if index.count(ws) != len(chunks):
        index_set(retriever, ws, chunks, dense)
    t_index = time.perf_counter() - t
    live_before = asyncio.run(live_recall(retriever, ws, qs))
    stage_t: dict[str, float] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in stage_t:
            stage_t[stage] = time.perf_counter()
            print(f"  [{name}] {stage} ({total})", file=sys.stderr, flush=True)

    t = time.perf_counter()
    res = asyncio.run(run_finetune(retriever, ws, s.finetune, questions=qs, progress=progress,
                                   max_steps=args.max_steps, show_progress=False))
    total = time.perf_counter() - t
    live_after = asyncio.run(live_recall(retriever, ws, qs)) if res.promoted else None
    index.close()
    registry.close()
    out = res.to_json()
    out.update({"set": name, "passages": len(chunks), "questions": len(qs), "index_seconds": round(t_index, 1),
                "loop_seconds": round(total, 1), "live_dense_recall_at_10_before": round(live_before, 4),
                "live_dense_recall_at_10_after": None if live_after is None else round(live_after, 4)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["musique", "hotpotqa"])
    ap.add_argument("--max-pairs", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--home", default="/tmp/ragent_bench_finetune")
    ap.add_argument("--cache", default="/tmp/ragent_bench_cache")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "finetune.json"))
    ap.add_argument("--fresh", action="store_true", help="Re-index and re-synthesise from scratch.")
    ap.add_argument("--max-steps", type=int, default=-1, help="Stop training after N steps (-1: full epochs).")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = [run_set(n, args) for n in args.sets]
    print(f"{'set':9} {'pairs':>5} {'train s':>7} | {'R@10 before':>11} {'R@10 after':>10} {'Δ':>6} | "
          f"{'nDCG@10 before':>14} {'after':>6} | {'val nDCG b/a':>12} | promoted")
    for r in rows:
        b, a = r["before"]["questions"], r["after"]["questions"]  # type: ignore[index]
        vb, va = r["before"]["validation"], r["after"]["validation"]  # type: ignore[index]
        print(f"{r['set']:9} {r['train_examples']:>5} {r['train_seconds']:>7} | {b['recall_at_10']:>11.3f} "
              f"{a['recall_at_10']:>10.3f} {100 * (a['recall_at_10'] - b['recall_at_10']):>+6.1f} | "
              f"{b['ndcg_at_10']:>14.3f} {a['ndcg_at_10']:>6.3f} | {vb['ndcg_at_10']:.3f}/{va['ndcg_at_10']:.3f} | "
              f"{r['promoted']}")
    meta = {"command": "python bench/finetune.py " + " ".join(sys.argv[1:]), "max_pairs": args.max_pairs,
            "epochs": args.epochs, "cpu": f"{os.cpu_count()} cores",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    old = json.loads(out.read_text()).get("sets", []) if out.exists() else []
    for r in rows:  # each set keeps the command and date that produced it (sets may come from separate runs)
        r.update({"command": meta["command"], "date": meta["date"]})
    merged = [r for r in old if r.get("set") not in args.sets] + rows  # one set per process is fine
    out.write_text(json.dumps({"meta": meta, "sets": merged}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
