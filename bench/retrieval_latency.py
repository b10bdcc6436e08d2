"""Retrieval latency at synthetic scale: fused recall (dense + BM25 + graph PPR, RRF) and rerank(top-30) p50/p95.

Synthetic corpus: N chunks of Zipf-distributed words (real BM25 vectors), random unit dense vectors, and a graph
with ~8 Zipf-distributed entities per chunk, written straight into the vector index (``--backend qdrant``: Qdrant
local mode unless RAGENT_QDRANT_URL; ``--backend edge``: Qdrant Edge in-process, ``retrieval/index_edge.py``) and
the SQLite graph store. Queries embed with a cheap hashing embedder so the numbers are the index's, not the
embedding model's (MiniLM adds ~10-30 ms per query on this CPU). Rerank uses the real packaged ONNX model on
real HotpotQA passages (``--rerank-queries 0`` skips it). The ``qdrant_edge`` rows time the bare qdrant-edge-py
engine (no Retriever) on the same data. Prints a table and writes bench/results/retrieval_latency.json
(``retrieval_latency_edge.json`` for ``--backend edge``).

``--backend both`` measures Qdrant local mode and Qdrant Edge side by side in one run on the same data (the
embedded-default question, issue #18): write speed (points/s of ``VectorIndex.upsert`` in ingest's batches of 64
chunks, dense + BM25 vectors precomputed, then ``optimize``) and query latency p50/p95 of the hybrid query (dense +
BM25, RRF, through the Retriever) and of the fused one (+ graph PPR). Each (backend, size) cell stops querying after
``--query-budget-s`` (at least 5 queries), so slow local mode at 50k stays bounded; the query count is recorded.
Writes bench/results/retrieval_latency_backends.json.

    python bench/retrieval_latency.py --sizes 2000,10000 --queries 30
    python bench/retrieval_latency.py --sizes 2000,10000 --queries 30 --backend edge
    python bench/retrieval_latency.py --backend both --sizes 2000,10000,50000 --queries 30 --rerank-queries 0
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import Settings, VectorBackend  # noqa: E402
from core.stats import percentile  # noqa: E402
from core.types import Chunk, content_id  # noqa: E402
from retrieval.factory import build_index  # noqa: E402
from retrieval.graph import ChunkGraph, Entity, Relation  # noqa: E402
from retrieval.graph_sqlite import SqliteGraphStore  # noqa: E402
from retrieval.index import VectorIndex  # noqa: E402
from retrieval.registry import DocRecord, Registry  # noqa: E402
from retrieval.rerank import OnnxCrossEncoder  # noqa: E402
from retrieval.retriever import Retriever  # noqa: E402
from retrieval.sparse import SparseVec, bm25_document  # noqa: E402

VOCAB = [f"w{i}" for i in range(20000)]


class HashEmbedder:
    dim = 384

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, int(hashlib.md5(w.encode()).hexdigest()[:6], 16) % self.dim] += 1
            out[i] /= max(float(np.linalg.norm(out[i])), 1e-9)
        return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def pct(xs: list[float], q: float) -> float | None:
    v = percentile(xs, q)
    return None if v is None else round(v, 1)


def build(n: int, home: Path, ws: str, rng: np.random.Generator,
          backend: VectorBackend = "qdrant") -> tuple[VectorIndex, Registry, SqliteGraphStore]:
    s = Settings(home=home, vector_backend=backend)
    index, registry, graph = build_index(s.index), Registry(s.index.db_path), SqliteGraphStore(home / "graph.db")
    ranks = np.minimum(rng.zipf(1.3, size=(n, 60)), len(VOCAB)) - 1
    ents = np.minimum(rng.zipf(1.5, size=(n, 8)), 50000) - 1
    batch = 512
    for i in range(0, n, batch):
        ids = range(i, min(n, i + batch))
        chunks = [Chunk(id=content_id(ws, str(j)), doc_id=f"doc{j // 100}", workspace=ws,
                        text=" ".join(VOCAB[r] for r in ranks[j])) for j in ids]
        dense = rng.normal(size=(len(chunks), 384)).astype(np.float32)
        dense /= np.linalg.norm(dense, axis=1, keepdims=True)
        index.upsert(ws, chunks, dense, [bm25_document(c.text) for c in chunks])
        graphs = []
        for j, c in zip(ids, chunks, strict=True):
            keys = sorted({f"ent{e}" for e in ents[j]})
            graphs.append(ChunkGraph(c.id, c.doc_id, tuple(Entity(k, k, "X") for k in keys),
                                     tuple(Relation(a, "co_occurs", b) for a, b in itertools.pairwise(keys))))
        graph.upsert(ws, graphs)
    for d in range((n + 99) // 100):
        registry.put(DocRecord(ws, f"doc{d}", f"doc{d}", "", f"h{d}", "done"))
    index.optimize(ws)  # what ingest does after a batch (Qdrant Edge builds HNSW here)
    return index, registry, graph


def synthetic(n: int, ws: str, rng: np.random.Generator) -> tuple[list[Chunk], np.ndarray, list[SparseVec],
                                                                    list[ChunkGraph]]:
    """``n`` chunks with their dense and BM25 vectors and chunk graphs, as ``build`` makes them."""
    ranks = np.minimum(rng.zipf(1.3, size=(n, 60)), len(VOCAB)) - 1
    ents = np.minimum(rng.zipf(1.5, size=(n, 8)), 50000) - 1
    chunks = [Chunk(id=content_id(ws, str(j)), doc_id=f"doc{j // 100}", workspace=ws,
                    text=" ".join(VOCAB[r] for r in ranks[j])) for j in range(n)]
    dense = rng.normal(size=(n, 384)).astype(np.float32)
    dense /= np.linalg.norm(dense, axis=1, keepdims=True)
    graphs = []
    for j, c in enumerate(chunks):
        keys = sorted({f"ent{e}" for e in ents[j]})
        graphs.append(ChunkGraph(c.id, c.doc_id, tuple(Entity(k, k, "X") for k in keys),
                                 tuple(Relation(a, "co_occurs", b) for a, b in itertools.pairwise(keys))))
    return chunks, dense, [bm25_document(c.text) for c in chunks], graphs


async def timed_queries(retriever: Retriever, ws: str, queries: list[str], paths: tuple[str, ...],
                        budget_s: float) -> list[float]:
    """Latencies (ms) of ``retriever.run`` over ``queries`` (one warm-up first), stopping after ``budget_s``
    once 5 have run."""
    await retriever.run(ws, queries[0], 10, paths=paths, rerank=False)
    lat: list[float] = []
    start = time.perf_counter()
    for q in queries:
        t = time.perf_counter()
        await retriever.run(ws, q, 10, paths=paths, rerank=False)
        lat.append((time.perf_counter() - t) * 1000)
        if len(lat) >= 5 and time.perf_counter() - start > budget_s:
            break
    return lat


def compare_backends(sizes: list[int], queries: int, budget_s: float, rng: np.random.Generator) -> list[dict]:
    """Local mode and Edge on the same synthetic data at each size: write speed and query latency."""
    rows: list[dict] = []
    backends: tuple[VectorBackend, ...] = ("qdrant", "edge")
    for n in sizes:
        chunks, dense, sparse, graphs = synthetic(n, "lat", rng)
        qs = [" ".join(VOCAB[int(x)] for x in np.minimum(rng.zipf(1.3, 6), len(VOCAB)) - 1) + " ent1 ent17"
              for _ in range(queries)]
        with tempfile.TemporaryDirectory(prefix="ragent-cmp-") as tmp:
            registry, graph = Registry(Path(tmp) / "ragent.db"), SqliteGraphStore(Path(tmp) / "graph.db")
            graph.upsert("lat", graphs)
            for d in range((n + 99) // 100):
                registry.put(DocRecord("lat", f"doc{d}", f"doc{d}", "", f"h{d}", "done"))
            for backend in backends:
                index = build_index(Settings(home=Path(tmp) / backend, vector_backend=backend).index)
                index.ensure("lat", 384)
                t = time.perf_counter()
                for i in range(0, n, 64):  # IndexWriter's batch
                    index.upsert("lat", chunks[i : i + 64], dense[i : i + 64], sparse[i : i + 64])
                upsert_s = time.perf_counter() - t
                t = time.perf_counter()
                index.optimize("lat")
                optimize_s = time.perf_counter() - t
                r = Retriever(index, HashEmbedder(), registry, graph=graph)
                hybrid = asyncio.run(timed_queries(r, "lat", qs, ("dense", "sparse"), budget_s))
                fused = asyncio.run(timed_queries(r, "lat", qs, ("dense", "sparse", "graph"), budget_s))
                rows.append({"backend": backend, "chunks": n, "upsert_s": round(upsert_s, 2),
                             "upsert_points_per_s": round(n / upsert_s), "optimize_s": round(optimize_s, 2),
                             "hybrid_p50_ms": pct(hybrid, 0.5), "hybrid_p95_ms": pct(hybrid, 0.95),
                             "hybrid_queries": len(hybrid), "fused_p50_ms": pct(fused, 0.5),
                             "fused_p95_ms": pct(fused, 0.95), "fused_queries": len(fused)})
                print(rows[-1], flush=True)
                index.close()
            registry.close()
            graph.close()
    return rows


def main_backends(args: argparse.Namespace) -> None:
    sizes = [int(x) for x in args.sizes.split(",") if x]
    rows = compare_backends(sizes, args.queries, args.query_budget_s, np.random.default_rng(7))
    names = {"qdrant": "Qdrant local mode", "edge": "Qdrant Edge"}
    rep = {
        "machine": f"{platform.machine()} {cpu_model()}, {os.cpu_count()} cores",
        "rows": rows,
        "write": "VectorIndex.upsert in batches of 64 chunks (384-d dense + BM25, precomputed), then optimize",
        "hybrid": "Retriever.run, paths dense + sparse, RRF, no rerank (hashing query embedder)",
        "fused": "Retriever.run, paths dense + sparse + graph PPR, RRF, no rerank",
        "command": "python bench/retrieval_latency.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(f"{'backend':<18} {'chunks':>7} {'write pts/s':>11} {'optimize s':>10} {'hybrid p50':>10} "
          f"{'hybrid p95':>10} {'fused p50':>9} {'fused p95':>9} {'queries':>7}")
    for row in rows:
        print(f"{names[row['backend']]:<18} {row['chunks']:>7} {row['upsert_points_per_s']:>11} "
              f"{row['optimize_s']:>10} {row['hybrid_p50_ms']:>10} {row['hybrid_p95_ms']:>10} "
              f"{row['fused_p50_ms']:>9} {row['fused_p95_ms']:>9} {row['hybrid_queries']:>7}")
    out = Path(args.out or ROOT / "bench" / "results" / "retrieval_latency_backends.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rep, indent=1) + "\n")


async def measure(retriever: Retriever, ws: str, queries: list[str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"fused": [], "dense": [], "sparse": [], "graph": []}
    await retriever.run(ws, queries[0], 10, paths=("dense", "sparse", "graph"), rerank=False)  # warm caches
    for q in queries:
        t = time.perf_counter()
        res = await retriever.run(ws, q, 10, paths=("dense", "sparse", "graph"), rerank=False)
        out["fused"].append((time.perf_counter() - t) * 1000)
        for p, r in res.runs.items():
            out[p].append(r.ms)
    return out


def measure_edge(n: int, queries: int, rng: np.random.Generator) -> dict[str, object]:
    """Dense + BM25 query latency on qdrant-edge-py (in-process Qdrant engine) with the same synthetic data."""
    try:
        import qdrant_edge as qe  # type: ignore[import-not-found]
    except ImportError:
        return {"chunks": n, "note": "qdrant-edge-py not installed (pip install qdrant-edge-py); not measured"}
    ranks = np.minimum(rng.zipf(1.3, size=(n, 60)), len(VOCAB)) - 1
    with tempfile.TemporaryDirectory(prefix="ragent-edge-") as tmp:
        cfg = qe.EdgeConfig(vectors={"dense": qe.EdgeVectorParams(size=384, distance=qe.Distance.Cosine)},
                            sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)})
        shard = qe.EdgeShard.create(tmp, cfg)
        t = time.perf_counter()
        for i in range(0, n, 512):
            pts = []
            for j in range(i, min(n, i + 512)):
                text = " ".join(VOCAB[r] for r in ranks[j])
                d = rng.normal(size=384).astype(np.float32)
                d /= np.linalg.norm(d)
                si, sv = bm25_document(text)
                pts.append(qe.Point(j, {"dense": d.tolist(), "bm25": qe.SparseVector(si, sv)},
                                    {"doc_id": f"doc{j // 100}", "text": text}))
            shard.update(qe.UpdateOperation.upsert_points(pts))
        shard.optimize()
        shard.flush()
        build_s = time.perf_counter() - t
        emb = HashEmbedder()
        lat: list[float] = []
        for _ in range(queries):
            q = " ".join(VOCAB[int(x)] for x in np.minimum(rng.zipf(1.3, 6), len(VOCAB)) - 1)
            t = time.perf_counter()
            shard.query(qe.QueryRequest(limit=50, query=qe.Query.Nearest(emb.embed_batch([q])[0].tolist(),
                                                                        using="dense"), with_payload=True))
            qi, _ = bm25_document(q)
            if qi:
                shard.query(qe.QueryRequest(limit=50, query=qe.Query.Nearest(qe.SparseVector(qi, [1.0] * len(qi)),
                                                                            using="bm25"), with_payload=True))
            lat.append((time.perf_counter() - t) * 1000)
        shard.close()
    return {"chunks": n, "build_s": round(build_s, 1), "dense_sparse_p50_ms": pct(lat, 0.5),
            "dense_sparse_p95_ms": pct(lat, 0.95)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2000,10000")
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--rerank-queries", type=int, default=10, help="0 skips the rerank timing")
    ap.add_argument("--backend", choices=("qdrant", "edge", "both"), default="qdrant",
                    help="vector index the Retriever reads: qdrant (qdrant-client) or edge (Qdrant Edge in-process); "
                    "both = local mode and Edge side by side (write speed and query latency)")
    ap.add_argument("--query-budget-s", type=float, default=60.0,
                    help="--backend both: seconds of queries per backend, size and query kind (at least 5 queries)")
    ap.add_argument("--out", default=None,
                    help="default bench/results/retrieval_latency[_edge|_backends].json")
    args = ap.parse_args()
    if args.backend == "both":
        main_backends(args)
        return
    out = Path(args.out or ROOT / "bench" / "results" /
               ("retrieval_latency_edge.json" if args.backend == "edge" else "retrieval_latency.json"))
    rng = np.random.default_rng(7)
    rows = []
    for n in [int(x) for x in args.sizes.split(",") if x]:
        with tempfile.TemporaryDirectory(prefix="ragent-lat-") as tmp:
            t = time.perf_counter()
            index, registry, graph = build(n, Path(tmp), "lat", rng, args.backend)
            build_s = time.perf_counter() - t
            r = Retriever(index, HashEmbedder(), registry, graph=graph)
            qs = [" ".join(VOCAB[int(x)] for x in np.minimum(rng.zipf(1.3, 6), len(VOCAB)) - 1) + " ent1 ent17"
                  for _ in range(args.queries)]
            m = asyncio.run(measure(r, "lat", qs))
            rows.append({"backend": args.backend, "chunks": n, "build_s": round(build_s, 1),
                         **{f"{k}_p50_ms": pct(v, 0.5) for k, v in m.items()},
                         **{f"{k}_p95_ms": pct(v, 0.95) for k, v in m.items()}})
            index.close()
            registry.close()
            graph.close()
    edge = [measure_edge(n, args.queries, rng) for n in [int(x) for x in args.sizes.split(",") if x]]
    times = []
    if args.rerank_queries > 0:
        corpus = json.loads((ROOT.parent / "shared/data/multihop/hotpotqa_corpus.json").read_text())
        passages = [t + "\n" + "".join(s) for t, s in list(corpus.items())[:300]]
        rr = OnnxCrossEncoder()
        rr.score("warm up", passages[:2])
        for i in range(args.rerank_queries):
            t = time.perf_counter()
            rr.score("Which film director was born first?", passages[i * 30 : i * 30 + 30])
            times.append((time.perf_counter() - t) * 1000)
    rerank: dict[str, object] = {"queries": 0, "note": "not measured (--rerank-queries 0)"}
    if times:
        rerank = {"p50_ms": pct(times, 0.5), "p95_ms": pct(times, 0.95), "queries": len(times),
                  "model": "ms-marco-MiniLM-L-12-v2 int8 ONNX, max 256 tokens"}
    rep = {
        "machine": f"{platform.machine()} {cpu_model()}, {os.cpu_count()} cores",
        "backend": ("Qdrant Edge (qdrant-edge-py, in-process)" if args.backend == "edge"
                    else "Qdrant server" if os.environ.get("RAGENT_QDRANT_URL") else "Qdrant local mode"),
        "vector_backend": args.backend,
        "recall": rows,
        "rerank_top30": rerank,
        "qdrant_edge": edge,
        "command": "python bench/retrieval_latency.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(f"backend: {rep['backend']}")
    print(f"{'chunks':>8} {'build s':>8} {'fused p50':>10} {'fused p95':>10} {'dense':>7} {'sparse':>7} {'graph':>7}")
    for row in rows:
        print(f"{row['chunks']:>8} {row['build_s']:>8} {row['fused_p50_ms']:>10} {row['fused_p95_ms']:>10} "
              f"{row['dense_p50_ms']:>7} {row['sparse_p50_ms']:>7} {row['graph_p50_ms']:>7}")
    if times:
        print(f"rerank top-30: p50 {rerank['p50_ms']} ms, p95 {rerank['p95_ms']} ms")
    for e in edge:
        print("qdrant-edge-py:", e)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rep, indent=1) + "\n")


if __name__ == "__main__":
    main()
