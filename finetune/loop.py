"""The finetune loop for one workspace: synthesise -> mine -> train -> evaluate -> (maybe) swap.

Each run is a version under ``<home>/finetune/<ws>/v<N>/`` (``examples.jsonl``, ``model/``, ``result.json``).
A run killed part-way resumes in the same version folder: the examples are reloaded and training continues
from its last checkpoint.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.embedder import Embedder, SentenceTransformerEmbedder, packaged_minilm_path, tuned_embedder
from core.llm import LLM
from core.settings import FinetuneConfig
from core.workspace import check_workspace
from finetune.corpus import Corpus, load_corpus
from finetune.evaluate import ir_metrics
from finetune.mine import Scorer, fill_negatives, mine
from finetune.swap import recover, swap_in
from finetune.synth import BridgeGenerator, KeyphraseGenerator, LLMGenerator, dedupe, sample_chunks, split_by_doc
from finetune.train import train_model
from finetune.tunable import Tunable
from finetune.types import EvalQuestion, Example, FinetuneResult, Metrics, Pair

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)
STAGES = ("synthesise", "mine", "train", "embed", "swap")  # the stages ``progress`` reports, in order
PER_CHUNK = 2


def version_dirs(root: Path, workspace: str) -> list[tuple[int, Path]]:
    base = root / check_workspace(workspace)
    if not base.is_dir():
        return []
    found = [(int(p.name[1:]), p) for p in base.iterdir() if p.is_dir() and p.name[:1] == "v" and p.name[1:].isdigit()]
    return sorted(found)


def _version_dir(root: Path, workspace: str) -> tuple[int, Path]:
    """The unfinished version to resume, or a fresh ``v<N+1>``."""
    dirs = version_dirs(root, workspace)
    if dirs and not (dirs[-1][1] / "result.json").exists():
        return dirs[-1]
    n = dirs[-1][0] + 1 if dirs else 1
    return n, root / workspace / f"v{n}"


def _save_examples(path: Path, train: Sequence[Example], val: Sequence[Example]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for split, rows in (("train", train), ("validation", val)):
            for e in rows:
                f.write(json.dumps({"split": split, **dataclasses.asdict(e)}) + "\n")


def _load_examples(path: Path) -> tuple[list[Example], list[Example]]:
    train: list[Example] = []
    val: list[Example] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        e = Example(d["query"], d["positive_id"], d["doc_id"], tuple(d["negative_ids"]))
        (train if d["split"] == "train" else val).append(e)
    return train, val


def base_model_of(retriever: Tunable, workspace: str) -> str:
    """The model the workspace uses now, as a sentence-transformers folder (training starts from it)."""
    active = retriever.active_models.get(workspace)
    if active is not None:
        return active.model_dir
    emb = retriever.embedder
    if isinstance(emb, SentenceTransformerEmbedder) and emb.model_name != "minilm":
        return emb.model_name
    return str(packaged_minilm_path())


async def synthesise(
    corpus: Corpus, cfg: FinetuneConfig, max_pairs: int, llm: LLM | None, progress: Progress | None,
) -> list[Pair]:
    """Questions for a reproducible sample of chunks, from the configured generator(s), deduplicated; with
    ``cfg.bridge``, two-hop pairs from the same chunks' title links (at most half of ``max_pairs``)."""
    chunks = sample_chunks(corpus.chunks, max(1, max_pairs // PER_CHUNK), cfg.seed)
    tick = (lambda d, t: progress("synthesise", d, t)) if progress else None
    pairs: list[Pair] = []
    if cfg.generator in ("llm", "both"):
        if llm is None:
            raise ValueError("the llm question generator needs an LLM")
        pairs += await LLMGenerator(llm, per_chunk=PER_CHUNK).generate(chunks, tick)
    if cfg.generator in ("keyphrase", "both"):
        pairs += await asyncio.to_thread(KeyphraseGenerator(per_chunk=PER_CHUNK).generate, chunks, tick)
    bridge: list[Pair] = []
    if cfg.bridge:
        bridge = dedupe(await asyncio.to_thread(BridgeGenerator().generate, corpus.chunks, chunks, 1, tick))
        bridge = bridge[: max_pairs // 2]
    return dedupe(dedupe(pairs)[: max_pairs - len(bridge)] + bridge)


def _metrics(embedder: Embedder, corpus_vecs: np.ndarray, corpus: Corpus, queries: Sequence[str],
             relevant: Sequence[frozenset[str]]) -> Metrics:
    q = embedder.embed_batch(list(queries)) if queries else np.zeros((0, corpus_vecs.shape[1]), np.float32)
    return ir_metrics(q, corpus_vecs, corpus.ids, relevant)


def ir_evaluator_scores(val: Sequence[Example], texts: dict[str, str], models: dict[str, Any]) -> dict[str, Any]:
    """sentence-transformers' ``InformationRetrievalEvaluator`` on the validation pairs (positives + negatives)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    if not val:
        return {}
    val = val[:100]  # a cross-check of the workspace-level metrics: 100 queries are enough
    ids = {e.positive_id for e in val} | {n for e in val for n in e.negative_ids}
    ev = InformationRetrievalEvaluator(
        queries={str(i): e.query for i, e in enumerate(val)}, corpus={c: texts[c] for c in ids},
        relevant_docs={str(i): {e.positive_id} for i, e in enumerate(val)}, name="validation",
        mrr_at_k=[10], ndcg_at_k=[10], accuracy_at_k=[1, 10], precision_recall_at_k=[10], map_at_k=[10],
        show_progress_bar=False,
    )
    out: dict[str, Any] = {}
    for label, model in models.items():  # a loaded SentenceTransformer, or a folder to load
        scores = ev(SentenceTransformer(model, device="cpu") if isinstance(model, str) else model)
        out[label] = {k.removeprefix("validation_"): round(float(v), 4) for k, v in scores.items()
                      if "ndcg@10" in k or "recall@10" in k or "mrr@10" in k}
    return out


async def run_finetune(
    retriever: Tunable, workspace: str, cfg: FinetuneConfig, *, llm: LLM | None = None,
    questions: Sequence[EvalQuestion] = (), max_pairs: int | None = None, epochs: int | None = None,
    max_steps: int = -1, scorer: Scorer | None = None, promote: bool = True, force: bool = False,
    progress: Progress | None = None, show_progress: bool = False,
) -> FinetuneResult:
    """Run the whole loop for ``workspace``; swap the new model in if it beats the current one.

    ``promote=False`` only trains and evaluates; ``force=True`` swaps even when the metric did not improve.
    ``scorer`` (a cross-encoder) filters false negatives; by default the retriever's reranker when
    ``cfg.rerank_negatives`` is on.
    """
    if scorer is None and cfg.rerank_negatives and retriever.reranker is not None:
        scorer = retriever.reranker.score
    timings: dict[str, float] = {}
    t = time.perf_counter()
    await asyncio.to_thread(recover, retriever, workspace)  # a swap/rollback a crash interrupted comes first
    corpus = await asyncio.to_thread(load_corpus, retriever, workspace)  # an empty workspace fails here, no folder
    version, vdir = _version_dir(cfg.root, workspace)
    vdir.mkdir(parents=True, exist_ok=True)
    texts = dict(zip(corpus.ids, corpus.texts(), strict=True))
    current = retriever.embedder_for(workspace)
    timings["load"] = time.perf_counter() - t

    t = time.perf_counter()
    ex_path = vdir / "examples.jsonl"
    if ex_path.exists():
        train, val = _load_examples(ex_path)
        n_pairs = len(train) + len(val)
        logger.info("resuming v%d with %d saved examples", version, n_pairs)
    else:
        pairs = await synthesise(corpus, cfg, max_pairs or cfg.max_pairs, llm, progress)
        n_pairs = len(pairs)
        timings["synthesise"] = time.perf_counter() - t
        t = time.perf_counter()
        tick = (lambda d, n: progress("mine", d, n)) if progress else None
        examples = await asyncio.to_thread(
            mine, pairs, corpus, current, retriever.index, workspace, filter_k=cfg.filter_k,
            negatives=cfg.negatives, scorer=scorer, progress=tick)
        examples = fill_negatives(examples, corpus, cfg.negatives, cfg.seed)
        by_query = {e.query: e for e in examples}
        tr_p, va_p = split_by_doc([p for p in pairs if p.query in by_query], cfg.val_fraction, cfg.seed)
        train, val = [by_query[p.query] for p in tr_p], [by_query[p.query] for p in va_p]
        _save_examples(ex_path, train, val)
        timings["mine"] = time.perf_counter() - t

    t = time.perf_counter()
    val_q, val_rel = [e.query for e in val], [frozenset({e.positive_id}) for e in val]
    real_q, real_rel = [q.query for q in questions], [q.relevant_ids for q in questions]
    before = {"validation": await asyncio.to_thread(_metrics, current, corpus.dense, corpus, val_q, val_rel)}
    if questions:
        before["questions"] = await asyncio.to_thread(_metrics, current, corpus.dense, corpus, real_q, real_rel)
    timings["eval_before"] = time.perf_counter() - t

    base = base_model_of(retriever, workspace)
    tick = (lambda d, n: progress("train", d, n)) if progress else None
    model_dir, train_s = await asyncio.to_thread(
        train_model, train, texts, base, vdir, epochs=epochs or cfg.epochs, batch_size=cfg.batch_size,
        lr=cfg.lr, seed=cfg.seed, negatives=cfg.negatives, max_steps=max_steps, progress=tick,
        show_progress=show_progress)
    timings["train"] = train_s

    t = time.perf_counter()
    tuned = tuned_embedder(str(model_dir), current, batch_size=64)
    all_texts = corpus.texts()

    def embed_corpus() -> np.ndarray:
        parts = []
        for i in range(0, len(all_texts), 256):
            parts.append(tuned.embed_batch(all_texts[i : i + 256]))
            if progress is not None:
                progress("embed", min(i + 256, len(all_texts)), len(all_texts))
        return np.concatenate(parts)

    new_dense = await asyncio.to_thread(embed_corpus)
    timings["embed"] = time.perf_counter() - t
    t = time.perf_counter()
    after = {"validation": await asyncio.to_thread(_metrics, tuned, new_dense, corpus, val_q, val_rel)}
    if questions:
        after["questions"] = await asyncio.to_thread(_metrics, tuned, new_dense, corpus, real_q, real_rel)
    loaded = current.model if isinstance(current, SentenceTransformerEmbedder) and current._model is not None else base
    ir = await asyncio.to_thread(ir_evaluator_scores, val, texts, {"before": loaded, "after": tuned.model})
    timings["eval_after"] = time.perf_counter() - t

    key = "questions" if questions else "validation"
    gain = after[key].ndcg_at_10 - before[key].ndcg_at_10
    wins = gain > cfg.min_gain and bool(after[key].n)
    reason = f"{key} nDCG@10 {before[key].ndcg_at_10:.3f} -> {after[key].ndcg_at_10:.3f} ({gain:+.3f})"
    collection = None
    if (wins or force) and promote:
        t = time.perf_counter()
        tick = (lambda d, n: progress("swap", d, n)) if progress else None
        mv = await asyncio.to_thread(
            swap_in, retriever, workspace, corpus, new_dense, version=version, model_dir=model_dir,
            metrics={f"{k}_{m}": v for k, met in after.items() for m, v in met.to_json().items()},
            embedder=tuned, progress=tick)
        collection = mv.collection
        timings["swap"] = time.perf_counter() - t
    result = FinetuneResult(
        workspace=workspace, version=version, model_dir=str(model_dir), pairs=n_pairs, train_examples=len(train),
        val_examples=len(val), train_seconds=train_s, before=before, after=after, promoted=collection is not None,
        collection=collection, reason=reason + ("" if wins else f": not better by > {cfg.min_gain}"),
        timings=timings, ir_evaluator=ir,
    )
    (vdir / "result.json").write_text(json.dumps(result.to_json(), indent=1), encoding="utf-8")
    shutil.rmtree(vdir / "checkpoints", ignore_errors=True)
    return result


def list_versions(retriever: Tunable, root: Path, workspace: str) -> list[dict[str, Any]]:
    """Every trained version of the workspace with its metrics and whether it is the active one."""
    active = retriever.active_models.get(workspace)
    rows = []
    for n, d in version_dirs(root, workspace):
        f = d / "result.json"
        res = json.loads(f.read_text(encoding="utf-8")) if f.exists() else {"version": n, "reason": "unfinished"}
        res["active"] = active is not None and active.version == n
        rows.append(res)
    return rows
