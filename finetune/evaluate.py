"""Retrieval metrics of the dense path over the whole workspace: recall@5/@10, nDCG@10, MRR@10.

Binary relevance; nDCG@10 = DCG / ideal DCG with DCG = sum over relevant ranks r of 1 / log2(r + 1)
(Järvelin & Kekäläinen 2002). Example: one relevant chunk at rank 3 -> nDCG@10 = 1 / log2(4) = 0.5,
recall@10 = 1, MRR@10 = 1/3.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from finetune.corpus import top_k
from finetune.types import Metrics


def ir_metrics(q_emb: np.ndarray, corpus: np.ndarray, ids: Sequence[str],
               relevant: Sequence[frozenset[str]]) -> Metrics:
    """Rank all ``corpus`` rows for each query and score against ``relevant`` chunk-id sets."""
    if len(relevant) == 0:
        return Metrics(0.0, 0.0, 0.0, 0.0, 0)
    idx, _ = top_k(q_emb, corpus, 10)
    r10 = r5 = ndcg = mrr = 0.0
    for row, rel in zip(idx, relevant, strict=True):
        ranked = [ids[int(j)] for j in row]
        hits = [r for r, cid in enumerate(ranked, start=1) if cid in rel]
        r10 += len(hits) / max(1, len(rel))
        r5 += len([r for r in hits if r <= 5]) / max(1, len(rel))
        ideal = sum(1 / np.log2(r + 1) for r in range(1, min(len(rel), 10) + 1))
        ndcg += sum(1 / np.log2(r + 1) for r in hits) / ideal if ideal else 0.0
        mrr += 1 / hits[0] if hits else 0.0
    n = len(relevant)
    return Metrics(r10 / n, r5 / n, ndcg / n, mrr / n, n)
