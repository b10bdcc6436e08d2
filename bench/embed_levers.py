"""Cheaper embedding levers, measured in one run on this machine (issue #18 item 3).

``--levers sort``: the chunk texts of ../shared/data/pdfs (parsed and split as ``ragent ingest`` does, lexical
split, ``Chunk.index_text``) embedded in calls of 64 as ``IndexWriter`` makes them (batch 32), three ways:
``unsorted`` (each call's batches in document order), ``char-sorted`` (longest first by characters: the encoder
before 2026-12-07) and ``token-sorted`` (longest first by tokens, tokenised once: the encoder now). Rounds
alternate the arms so load drifts hit them alike; texts/s (wall) and texts per CPU second (this process: less hurt
by other processes' load) are each arm's median; ``padded_tokens`` counts the positions each order makes the model
compute, on the sample and on all chunks (``all_chunks``). The vectors are compared to the unsorted ones.

``--levers int8``: fp32 vs dynamic int8 (per-channel) ONNX, texts/s on the same chunks and rounds; cosine of the
int8 vectors to the fp32 ones; dense recall@2/5/10, MRR, nDCG@10 on the HotpotQA and MuSiQue dev sets (each
corpus embedded by both, the questions' top-10 by exact cosine: what Qdrant's dense path returns, without the
other recall paths), scored like ``ragent eval retrieval``.

Run: .venv/bin/python bench/embed_levers.py [--levers sort,int8] [--rounds 2] [--datasets hotpotqa,musique]
                                            [--sample N (time every k-th chunk, ~N of them)]
Writes each lever's section of bench/results/embed_levers.json (the other keeps its figures) and prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PDFS = ROOT.parent / "shared" / "data" / "pdfs"
MULTIHOP = ROOT.parent / "shared" / "data" / "multihop"
CALL = 64  # texts per embed call, as IndexWriter.batch


def chunk_texts(cache: Path) -> list[str]:
    """``index_text`` of every chunk ``ragent ingest`` makes of the shared PDFs (cached in ``cache``)."""
    if cache.exists():
        return list(json.loads(cache.read_text()))
    from core.types import Chunk
    from ingest.parse import parse_file
    from ingest.split import LexicalEmbedder, SemanticSplitter, split_blocks

    texts = []
    with tempfile.TemporaryDirectory() as tmp:
        for pdf in sorted(PDFS.rglob("*.pdf")):
            try:
                parsed = parse_file(pdf, files_dir=Path(tmp) / pdf.stem)
            except Exception as e:  # a file ragent refuses is not part of the corpus
                print(f"skipped {pdf.name}: {e}", file=sys.stderr)
                continue
            for p in split_blocks(parsed.blocks, 1200, SemanticSplitter(LexicalEmbedder())):
                texts.append(Chunk(id="x", doc_id="x", workspace="x", text=p.text,
                                   heading_path=p.heading_path).index_text)
    cache.write_text(json.dumps(texts))
    return texts


def in_calls(encode: Callable[[list[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    return np.concatenate([encode(texts[i : i + CALL]) for i in range(0, len(texts), CALL)])


def timed_rounds(arms: dict[str, Callable[[list[str]], np.ndarray]], texts: list[str],
                 rounds: int) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Each arm embeds every text in calls of 64, ``rounds`` times, the arms' order rotating each round."""
    secs: dict[str, list[float]] = {a: [] for a in arms}
    cpu: dict[str, list[float]] = {a: [] for a in arms}  # process CPU seconds: less hurt by other processes' load
    vecs: dict[str, np.ndarray] = {}
    names = list(arms)
    for r in range(rounds):
        for a in names[r % len(names):] + names[: r % len(names)]:
            t, c = time.perf_counter(), time.process_time()
            vecs[a] = in_calls(arms[a], texts)
            secs[a].append(time.perf_counter() - t)
            cpu[a].append(time.process_time() - c)
            print(f"  round {r + 1} {a}: {secs[a][-1]:.1f} s ({cpu[a][-1]:.1f} CPU s)", file=sys.stderr)
    out = {a: {"seconds": [round(s, 2) for s in v], "texts_per_s": round(len(texts) / statistics.median(v), 1),
               "cpu_seconds": [round(s, 2) for s in cpu[a]],
               "texts_per_cpu_s": round(len(texts) / statistics.median(cpu[a]), 1)} for a, v in secs.items()}
    return out, vecs


def padded_tokens(lengths: list[int], order: str, chars: list[int]) -> int:
    """Token positions the model computes (rows x the longest row, per batch of 32) over calls of 64."""
    total = 0
    for i in range(0, len(lengths), CALL):
        ln, ch = lengths[i : i + CALL], chars[i : i + CALL]
        key = {"unsorted": list(range(len(ln))), "char-sorted": sorted(range(len(ln)), key=lambda j: -ch[j]),
               "token-sorted": sorted(range(len(ln)), key=lambda j: -ln[j])}[order]
        for b in range(0, len(key), 32):
            batch = [ln[j] for j in key[b : b + 32]]
            total += len(batch) * max(batch)
    return total


def lever_sort(texts: list[str], rounds: int, cache: Path, corpus: list[str]) -> dict[str, Any]:
    from core.embedder import SentenceTransformerEmbedder

    enc = SentenceTransformerEmbedder(onnx_cache=cache)._encoder()
    assert enc is not None
    enc.encode(["warm up"])

    def by_chars(part: list[str]) -> np.ndarray:  # the old order: longest first by characters
        order = np.argsort([-len(t) for t in part], kind="stable")
        out = np.zeros((len(part), 384), dtype=np.float32)
        out[order] = enc.encode([part[i] for i in order], sort=False)
        return out

    arms = {"unsorted": lambda p: enc.encode(p, sort=False), "char-sorted": by_chars,
            "token-sorted": lambda p: enc.encode(p)}
    res, vecs = timed_rounds(arms, texts, rounds)
    ref = vecs["unsorted"]
    lengths = [len(e.ids) for e in enc.tokenizer.encode_batch(texts)]
    for a, v in vecs.items():
        res[a]["tokens"] = sum(lengths)
        res[a]["padded_tokens"] = padded_tokens(lengths, a, [len(t) for t in texts])
        res[a]["max_abs_diff_to_unsorted"] = float(np.abs(v - ref).max())
        res[a]["min_cos_to_unsorted"] = round(float((v * ref).sum(1).min()), 7)
    every = [len(e.ids) for e in enc.tokenizer.encode_batch(corpus)]  # the work of each order on every chunk
    return {"arms": res, "all_chunks": {"chunks": len(corpus), "tokens": sum(every), "padded_tokens": {
        a: padded_tokens(every, a, [len(t) for t in corpus]) for a in arms}}}


def dense_recall(vecs_p: np.ndarray, vecs_q: np.ndarray, pids: list[str],
                 golds: list[frozenset[str]]) -> dict[str, float]:
    from retrieval.eval import metrics

    top = np.argsort(-(vecs_q @ vecs_p.T), axis=1, kind="stable")[:, :10]
    rows = [metrics([pids[j] for j in t], g) for t, g in zip(top, golds, strict=True)]
    return {k: round(100 * statistics.mean(r[k] for r in rows), 1) for k in rows[0]}


def lever_int8(texts: list[str], rounds: int, cache: Path, datasets: list[str]) -> dict[str, Any]:
    from core.embedder import SentenceTransformerEmbedder
    from retrieval.eval import load_dataset

    fp32 = SentenceTransformerEmbedder(onnx_cache=cache)
    int8 = SentenceTransformerEmbedder(onnx_cache=cache, quant="int8")
    for e in (fp32, int8):
        e.embed_batch(["warm up"])  # export / quantise outside the timed region
    res, vecs = timed_rounds({"fp32": fp32.embed_batch, "int8": int8.embed_batch}, texts, rounds)
    cos = (vecs["fp32"] * vecs["int8"]).sum(1)
    out: dict[str, Any] = {"throughput": res, "cos_int8_to_fp32_chunks": {
        "mean": round(float(cos.mean()), 4), "p5": round(float(np.percentile(cos, 5)), 4),
        "min": round(float(cos.min()), 4)}, "recall": {}}
    for name in datasets:
        ds = load_dataset(name, MULTIHOP)
        qs = [q for q in ds.questions if q.gold]
        pids = [p.pid for p in ds.passages]
        ptexts = [f"{p.title}\n{p.text}" for p in ds.passages]  # as retrieval.eval.index_corpus writes them
        rec: dict[str, Any] = {"questions": len(qs), "passages": len(pids)}
        top: dict[str, np.ndarray] = {}
        for arm, emb in (("fp32", fp32), ("int8", int8)):
            vp = in_calls(emb.embed_batch, ptexts)
            vq = emb.embed_batch([q.question for q in qs])
            rec[arm] = dense_recall(vp, vq, pids, [q.gold for q in qs])
            top[arm] = np.argsort(-(vq @ vp.T), axis=1, kind="stable")[:, :10]
        rec["same_top10_share"] = round(float(np.mean([len(set(a) & set(b)) / 10 for a, b in
                                                       zip(top["fp32"], top["int8"], strict=True)])), 3)
        out["recall"][name] = rec
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levers", default="sort,int8")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--datasets", default="hotpotqa,musique")
    ap.add_argument("--sample", type=int, default=0, help="Time only every k-th chunk, ~this many (0 = all)")
    ap.add_argument("--texts-cache", type=Path, default=Path(tempfile.gettempdir()) / "ragent_embed_levers_texts.json")
    ap.add_argument("--onnx-cache", type=Path, default=None, help="ONNX files (default: the embedder's cache)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embed_levers.json")
    a = ap.parse_args()
    from core.embedder import default_onnx_cache

    cache = a.onnx_cache or default_onnx_cache()
    t = time.perf_counter()
    corpus = texts = chunk_texts(a.texts_cache)
    if a.sample and a.sample < len(texts):
        texts = texts[:: -(-len(texts) // a.sample)]  # every k-th: the corpus' mix of lengths, in document order
    print(f"{len(texts)} chunk texts of {PDFS} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)
    report: dict[str, Any] = json.loads(a.out.read_text()) if a.out.exists() else {}
    for lever in a.levers.split(","):  # each lever's section says when, where and on what it ran
        meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
                "machine": platform.processor() or platform.machine(), "load_avg_start": list(os.getloadavg()),
                "chunks": len(texts), "mean_chars": round(statistics.mean(map(len, texts))),
                "command": ".venv/bin/python bench/embed_levers.py " + " ".join(sys.argv[1:])}
        if lever == "sort":
            report["sort"] = {**meta, **lever_sort(texts, a.rounds, cache, corpus)}
        elif lever == "int8":
            report["int8"] = {**meta, **lever_int8(texts, a.rounds, cache, [d for d in a.datasets.split(",") if d])}
        report[lever]["load_avg_end"] = list(os.getloadavg())
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    for lever in ("sort", "int8"):
        if lever in report:
            print(lever, json.dumps(report[lever], indent=1))


if __name__ == "__main__":
    main()
