"""Retrieval evaluation on multi-hop QA sets (HotpotQA, MuSiQue): recall@2/5/10, MRR, nDCG@10 per recall
path, for the fused pool, after rerank, and drop-one ablations.

The corpus is indexed through ``IndexWriter`` (dense + BM25 + graph extraction) into its own workspace, keyed
by dataset and embedder, and registered ``done`` in the registry, so a second run re-embeds nothing.
Passage text = title + newline + text. Gold passages: MuSiQue ``paragraphs[*].is_supporting`` (matched by
title + text), HotpotQA the titles in ``supporting_facts``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.types import Chunk, Hit, content_id
from retrieval.bridge import bridge_hop
from retrieval.fusion import blend, rrf
from retrieval.registry import DocRecord, Registry
from retrieval.retriever import ALL_PATHS, Retriever
from retrieval.writer import IndexWriter

logger = logging.getLogger(__name__)

KS = (2, 5, 10)
# Reference rows, from ../shared/data/README.md (recall@2 / @5 / @10; None = not reported).
REFERENCE: dict[str, list[tuple[str, tuple[float | None, float | None, float | None]]]] = {
    "musique": [
        ("ref: BM25 (bm25s), 100q", (42.3, 50.9, 58.6)),
        ("ref: dense all-MiniLM-L6-v2, 100q", (47.2, 62.2, 70.3)),
        ("ref: RRF(dense, BM25) k=60, 100q", (45.3, 58.2, 68.0)),
        ("ref: NV-Embed-v2 7B, 1000q (HippoRAG 2 paper)", (None, 69.7, None)),
        ("ref: HippoRAG 2, 1000q (paper)", (None, 74.7, None)),
    ],
    "hotpotqa": [
        ("ref: BM25 (bm25s), 100q", (60.0, 76.0, 88.0)),
        ("ref: dense all-MiniLM-L6-v2, 100q", (62.5, 78.5, 85.0)),
        ("ref: RRF(dense, BM25) k=60, 100q", (61.5, 81.0, 89.0)),
        ("ref: NV-Embed-v2 7B, 1000q (HippoRAG 2 paper)", (None, 94.5, None)),
        ("ref: HippoRAG 2, 1000q (paper)", (None, 96.3, None)),
    ],
}


@dataclass(frozen=True)
class Passage:
    pid: str
    title: str
    text: str


@dataclass(frozen=True)
class EvalQuestion:
    qid: str
    question: str
    gold: frozenset[str]


@dataclass(frozen=True)
class Dataset:
    name: str
    passages: tuple[Passage, ...]
    questions: tuple[EvalQuestion, ...]
    source: str = ""


def _pid(title: str, text: str) -> str:
    return content_id("passage", title, text)


def load_dataset(name_or_path: str, data_dir: Path, limit: int | None = None) -> Dataset:
    """``hotpotqa`` / ``musique`` from ``data_dir`` (``<name>_100.json`` + ``<name>_corpus.json``), or a path
    to a questions file in either format with its ``*_corpus.json`` beside it."""
    if name_or_path in ("hotpotqa", "musique"):
        qfile = data_dir / f"{name_or_path}_100.json"
        name = name_or_path
    else:
        qfile = Path(name_or_path)
        name = qfile.stem.replace("_100", "")
    cfile = qfile.with_name(qfile.stem.rsplit("_", 1)[0] + "_corpus.json")
    if not qfile.exists() or not cfile.exists():
        raise ConfigError(f"dataset files not found: {qfile} and {cfile} (see ../shared/data/README.md)")
    qs = json.loads(qfile.read_text(encoding="utf-8"))
    corpus = json.loads(cfile.read_text(encoding="utf-8"))
    if isinstance(corpus, dict):  # HotpotQA: title -> list of sentences
        passages = [Passage(_pid(t, "".join(s)), t, "".join(s)) for t, s in corpus.items()]
    else:  # MuSiQue: list of {title, text}
        passages = [Passage(_pid(p["title"], p["text"]), p["title"], p["text"]) for p in corpus]
    passages = list({p.pid: p for p in passages}.values())
    by_title: dict[str, list[str]] = {}
    for p in passages:
        by_title.setdefault(p.title, []).append(p.pid)
    pids = {p.pid for p in passages}
    questions = []
    for i, q in enumerate(qs[:limit] if limit else qs):
        if "paragraphs" in q:
            gold = {_pid(p["title"], p["paragraph_text"]) for p in q["paragraphs"] if p.get("is_supporting")}
        else:
            gold = {pid for t, _ in q["supporting_facts"] for pid in by_title.get(t, [])}
        missing = gold - pids
        if missing:
            logger.warning("question %s: %d gold passages are not in the corpus", q.get("id", i), len(missing))
        questions.append(EvalQuestion(str(q.get("id", q.get("_id", i))), q["question"], frozenset(gold & pids)))
    return Dataset(name, tuple(passages), tuple(questions), str(qfile))


def workspace_for(ds: Dataset, embedder_key: str) -> str:
    h = hashlib.sha256(f"{ds.name}|{len(ds.passages)}|{embedder_key}".encode()).hexdigest()[:8]
    return f"eval-{ds.name}-{h}"[:64]


def index_corpus(ds: Dataset, workspace: str, writer: IndexWriter, registry: Registry,
                 progress: Callable[[int], None] | None = None, batch: int = 64) -> int:
    """Write the passages not yet ``done`` in ``workspace``; return how many were written."""
    done = registry.done_doc_ids(workspace)
    todo = [p for p in ds.passages if p.pid not in done]
    for i in range(0, len(todo), batch):
        part = todo[i : i + batch]
        chunks = [Chunk(id=p.pid, doc_id=p.pid, workspace=workspace, text=f"{p.title}\n{p.text}", doc_title=p.title,
                        source=ds.name) for p in part]
        writer.write(workspace, chunks)
        for p, c in zip(part, chunks, strict=True):
            registry.put(DocRecord(workspace=workspace, doc_id=p.pid, source=f"{ds.name}:{p.title}", title=p.title,
                                   content_hash=p.pid, status="done", chunk_ids=(c.id,)))
        if progress is not None:
            progress(len(part))
    if todo:
        writer.index.optimize(workspace)
    return len(todo)


# ---- metrics -------------------------------------------------------------------------------------
def metrics(ranked: Sequence[str], gold: frozenset[str]) -> dict[str, float]:
    if not gold:
        return {}
    out = {f"recall@{k}": len(gold & set(ranked[:k])) / len(gold) for k in KS}
    first = next((i for i, pid in enumerate(ranked, start=1) if pid in gold), None)
    out["mrr"] = 1.0 / first if first else 0.0
    dcg = sum(1 / math.log2(i + 1) for i, pid in enumerate(ranked[:10], start=1) if pid in gold)
    idcg = sum(1 / math.log2(i + 1) for i in range(1, min(len(gold), 10) + 1))
    out["ndcg@10"] = dcg / idcg
    return out


@dataclass
class Row:
    name: str
    values: list[dict[str, float]] = field(default_factory=list)
    note: str = ""

    def summary(self) -> dict[str, Any]:
        keys = [f"recall@{k}" for k in KS] + ["mrr", "ndcg@10"]
        n = len(self.values)
        d: dict[str, Any] = {"name": self.name, "n": n, "note": self.note}
        for key in keys:
            d[key] = round(100 * sum(v[key] for v in self.values) / n, 1) if n else None
        return d


def _p(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    s = sorted(xs)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1)


class ScoreCache:
    """Cross-encoder scores by (question, chunk id), persisted as JSON, so re-runs (tuning fusion) rerank nothing
    they have scored before. Key the file by reranker model and max tokens."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, float] = {}
        if path is not None and path.exists():
            self.data = json.loads(path.read_text(encoding="utf-8"))

    @staticmethod
    def key(question: str, chunk_id: str) -> str:
        return hashlib.sha1(question.encode()).hexdigest()[:12] + "|" + chunk_id

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data), encoding="utf-8")


async def evaluate(retriever: Retriever, ds: Dataset, workspace: str, *, pool: int = 50, rerank_n: int = 30,
                   paths: Sequence[str] | None = None, progress: Callable[[int], None] | None = None,
                   cache_file: Path | None = None, blends: Sequence[float] = (0.5, 1.0),
                   extra: Mapping[str, Callable[[str], Awaitable[Sequence[Hit]]]] | None = None) -> dict[str, Any]:
    """Run every question; return the report (rows of metrics in %, per-path timings, settings). ``blends``:
    rank-blend weights (``RAGENT_RERANK_BLEND``) to report "fused + rerank" rows for, from the same scores.
    ``extra``: more rows, each a function from the question to its ranked hits (e.g. the evidence the agent's
    multi-hop chain gathers, built by the app layer)."""
    store = ScoreCache(cache_file)
    paths = [p for p in (paths or ALL_PATHS) if p in retriever.paths]
    cfg = retriever.config
    weights = dict(cfg.weights)
    rows: dict[str, Row] = {}

    def add(name: str, ranked: Sequence[Hit], gold: frozenset[str]) -> None:
        rows.setdefault(name, Row(name)).values.append(metrics([h.chunk.id for h in ranked], gold))

    timings: dict[str, list[float]] = {p: [] for p in paths}
    timings["rerank"] = []
    skipped: dict[str, dict[str, int]] = {p: {} for p in paths}
    for q in ds.questions:
        if not q.gold:
            continue
        res = await retriever.run(workspace, q.question, pool, paths=paths, rerank=False, pool=pool)
        lists = {p: list(r.hits) for p, r in res.runs.items() if r.hits}
        for p, r in res.runs.items():
            timings[p].append(r.ms)
            if r.skipped:
                skipped[p][r.skipped] = skipped[p].get(r.skipped, 0) + 1
            if not r.skipped:  # rows for a path cover the questions where it ran
                add(p, r.hits, q.gold)
        async def reranked(fused: list[Hit], question: str = q.question, blend_w: float = 0.0,
                           bridge: int = cfg.rerank_bridge) -> list[Hit]:
            head = fused[:rerank_n]
            need = [h for h in head if store.key(question, h.chunk.id) not in store.data]
            if need and retriever.reranker is not None:
                t = time.perf_counter()
                got = await retriever.rerank(question, need, len(need))
                if len(need) == len(head):  # a full top-N rescoring: the latency the row reports
                    timings["rerank"].append((time.perf_counter() - t) * 1000)
                store.data.update({store.key(question, h.chunk.id): h.rerank_score or 0.0 for h in got})
            scored = [Hit(h.chunk, h.score, h.paths, store.data.get(store.key(question, h.chunk.id), -1e9))
                      for h in head]
            return bridge_hop(blend(scored, blend_w, k=cfg.rrf_k), bridge) + fused[rerank_n:]

        fused = rrf(lists, k=cfg.rrf_k, weights=weights)
        add("fused (RRF, all paths)", fused, q.gold)
        add("fused dense+sparse (RRF)", rrf({p: h for p, h in lists.items() if p in ("dense", "sparse")},
                                             k=cfg.rrf_k, weights=weights), q.gold)
        if retriever.reranker is not None:
            add(f"fused + rerank top-{rerank_n}", await reranked(fused), q.gold)
            if cfg.rerank_bridge:
                add(f"fused + rerank top-{rerank_n}, no bridge hop", await reranked(fused, bridge=0), q.gold)
            add(f"dense + rerank top-{rerank_n}", await reranked(lists.get("dense", [])), q.gold)
            for w in blends:
                add(f"fused + rerank top-{rerank_n}, rank blend {w:g}", await reranked(fused, blend_w=w), q.gold)
        for drop in paths:
            rest = {p: h for p, h in lists.items() if p != drop}
            add(f"fused without {drop}", rrf(rest, k=cfg.rrf_k, weights=weights), q.gold)
        for name, ranked_by in (extra or {}).items():
            add(name, await ranked_by(q.question), q.gold)
        if progress is not None:
            progress(1)
        if len(rows.get("dense", Row("")).values) % 10 == 0:
            store.save()
    store.save()
    for p in paths:
        if p in skipped and skipped[p] and p not in rows:
            rows[p] = Row(p, note="not measured: " + ", ".join(f"{why} ({n})" for why, n in skipped[p].items()))
        elif p in rows and skipped[p]:
            rows[p].note = "skipped on " + ", ".join(f"{n}: {why}" for why, n in skipped[p].items())
    return {
        "dataset": ds.name,
        "source": ds.source,
        "questions": sum(1 for q in ds.questions if q.gold),
        "passages": len(ds.passages),
        "workspace": workspace,
        "settings": {**asdict(cfg), "pool": pool, "rerank_n": rerank_n, "paths": list(paths)},
        "rows": [r.summary() for r in rows.values()],
        "latency_ms": {p: {"p50": _p(v, 0.5), "p95": _p(v, 0.95)} for p, v in timings.items() if v},
        "reference": [{"name": n, **dict(zip([f"recall@{k}" for k in KS], v, strict=True))}
                      for n, v in REFERENCE.get(ds.name, [])],
    }


# ---- reporting ----------------------------------------------------------------------------------
def table_rows(report: dict[str, Any]) -> list[list[str]]:
    def f(x: Any) -> str:
        return "" if x is None else f"{x:.1f}"

    out = [[r["name"], f(r["recall@2"]), f(r["recall@5"]), f(r["recall@10"]), f(r["mrr"]), f(r["ndcg@10"]),
            r.get("note", "")] for r in report["rows"]]
    out += [[r["name"], f(r["recall@2"]), f(r["recall@5"]), f(r["recall@10"]), "", "", ""]
            for r in report["reference"]]
    return out


HEADER = ["method", "R@2", "R@5", "R@10", "MRR", "nDCG@10", "note"]


def markdown(reports: Sequence[dict[str, Any]]) -> str:
    parts = []
    for rep in reports:
        parts.append(f"### {rep['dataset']} ({rep['questions']} questions, {rep['passages']} passages)\n")
        if rep.get("command"):
            parts.append(f"Command: `{rep['command']}` ({rep.get('date', '')})\n")
        parts.append("| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER))
        parts.extend("| " + " | ".join(r) + " |" for r in table_rows(rep))
        lat = ", ".join(f"{p} p50 {v['p50']} ms / p95 {v['p95']} ms" for p, v in rep["latency_ms"].items())
        parts.append(f"\nPer-path latency on this 2-core box (shared, noisy): {lat}.\n")
    return "\n".join(parts)
