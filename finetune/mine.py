"""Filter synthetic pairs and mine hard negatives from ragent's own recall pool (dense + sparse paths).

The pool for a question is the union of the dense path (the workspace's stored vectors, queried with the
embedder the workspace uses now) and the sparse BM25 path (``VectorIndex.query_sparse``). A pair survives
only if its chunk ranks in the pool's top-k: a question its own chunk cannot be found for is usually a bad
question. Bridge pairs (``synth.BridgeGenerator``) are exempt: they name the chunk's document only through
another one, so the current model is not expected to find it; that is what they teach.
Negatives are the highest-ranked non-positives, minus likely false negatives, following the
positive-aware rule of NV-Retriever (Moreira et al. 2024, "TopK-PercPos"): drop a candidate whose dense score
is above 95% of the positive's, or whose words overlap the positive's by more than half; when a cross-encoder
``scorer`` is given, also drop candidates it scores within ``margin`` of the positive.

Example: positive score 0.62 -> candidates scoring above 0.589 are treated as possible positives and skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

import numpy as np

from core.embedder import Embedder
from finetune.corpus import Corpus, top_k
from finetune.types import Example, Pair
from retrieval.index import VectorIndex
from retrieval.sparse import bm25_query

logger = logging.getLogger(__name__)

Scorer = Callable[[str, list[str]], list[float]]  # cross-encoder: (query, passages) -> scores
Progress = Callable[[int, int], None]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def jaccard(a: str, b: str) -> float:
    wa, wb = _words(a), _words(b)
    return len(wa & wb) / max(1, len(wa | wb))


def mine(
    pairs: Sequence[Pair], corpus: Corpus, embedder: Embedder, index: VectorIndex, workspace: str, *,
    filter_k: int = 20, negatives: int = 1, pool_k: int = 30, perc_pos: float = 0.95, max_overlap: float = 0.5,
    scorer: Scorer | None = None, margin: float = 0.0, use_sparse: bool = True, progress: Progress | None = None,
) -> list[Example]:
    """Keep pairs whose chunk ranks in the top ``filter_k`` of the pool; attach ``negatives`` hard negatives."""
    if not pairs:
        return []
    pos_of = corpus.position()
    q_emb = embedder.embed_batch([p.query for p in pairs])
    idx, _ = top_k(q_emb, corpus.dense, pool_k)
    out: list[Example] = []
    for i, p in enumerate(pairs):
        if p.chunk_id not in pos_of:
            continue
        dense_rank = [int(j) for j in idx[i]]
        sparse_rank: list[int] = []
        if use_sparse:
            hits = index.query_sparse(workspace, bm25_query(p.query), pool_k)
            sparse_rank = [pos_of[c.id] for c, _ in hits if c.id in pos_of]
        pos = pos_of[p.chunk_id]
        if p.source != "bridge" and pos not in dense_rank[:filter_k] and pos not in sparse_rank[:filter_k]:
            continue
        pool: list[int] = []
        for a, b in zip(dense_rank, sparse_rank + [-1] * (len(dense_rank) - len(sparse_rank)), strict=False):
            pool.extend(j for j in (a, b) if j >= 0 and j not in pool)
        pos_score = float(q_emb[i] @ corpus.dense[pos])
        pos_text = corpus.chunks[pos].text
        cands = [j for j in pool if j != pos and corpus.chunks[j].text != pos_text
                 and float(q_emb[i] @ corpus.dense[j]) < perc_pos * pos_score
                 and jaccard(corpus.chunks[j].text, pos_text) <= max_overlap]
        if scorer is not None and cands:
            head = cands[: negatives * 4]
            scores = scorer(p.query, [pos_text] + [corpus.chunks[j].text for j in head])
            cands = [j for j, s in zip(head, scores[1:], strict=True) if s < scores[0] - margin]
        out.append(Example(p.query, p.chunk_id, p.doc_id, tuple(corpus.chunks[j].id for j in cands[:negatives])))
        if progress is not None:
            progress(i + 1, len(pairs))
    logger.info("mining kept %d of %d pairs", len(out), len(pairs))
    return out


def fill_negatives(examples: Sequence[Example], corpus: Corpus, negatives: int, seed: int) -> list[Example]:
    """Give every example exactly ``negatives`` negatives (random other chunks where mining found too few)."""
    rng = np.random.default_rng(seed)
    ids = corpus.ids
    out = []
    for e in examples:
        negs = list(e.negative_ids)
        while len(negs) < negatives and len(ids) > 1:
            cand = ids[int(rng.integers(len(ids)))]
            if cand != e.positive_id and cand not in negs:
                negs.append(cand)
        out.append(Example(e.query, e.positive_id, e.doc_id, tuple(negs[:negatives])))
    return out
