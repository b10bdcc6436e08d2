"""Personalised PageRank over the entity-chunk graph (HippoRAG 2, Gutiérrez et al. 2025, arXiv 2502.14802).

Nodes are entities and chunks; edges are mentions (entity-chunk, weight 1) and entity-entity relations
(weight ``rel_weight``). The walk restarts at the seeds (linked query entities, plus optionally chunks the
dense path found, with a small weight as HippoRAG 2 does); a chunk's score is its stationary probability.

Power iteration: ``r = (1 - d) * s + d * P r`` with ``P`` the column-normalised adjacency and ``d`` the damping.
Example: seeds {"paris": 1}, chunk c1 mentions paris and france, c2 mentions france only: after the walk
c1 > c2 > every chunk that shares no entity with either (score 0: unreachable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from retrieval.graph import GraphView


@dataclass(frozen=True)
class PPRGraph:
    """A workspace graph as a sparse transition matrix (built once per graph version, then cached)."""

    nodes: dict[str, int]  # "e:<key>" / "c:<chunk id>" -> row
    chunk_rows: np.ndarray  # rows of chunk nodes
    chunk_ids: tuple[str, ...]  # aligned with chunk_rows
    entity_df: dict[str, int]  # entity key -> number of chunks mentioning it
    matrix: object  # scipy.sparse csr (column-stochastic)

    @classmethod
    def build(cls, view: GraphView, rel_weight: float = 0.5) -> PPRGraph:
        import scipy.sparse as sp

        nodes: dict[str, int] = {}

        def nid(name: str) -> int:
            return nodes.setdefault(name, len(nodes))

        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        df: dict[str, int] = {}
        for key, chunk in set(view.mentions):
            a, b = nid("e:" + key), nid("c:" + chunk)
            rows += [a, b]
            cols += [b, a]
            vals += [1.0, 1.0]
            df[key] = df.get(key, 0) + 1
        for src, _rel, dst in {(s, "", d) for s, _, d in view.relations if s != d}:
            a, b = nid("e:" + src), nid("e:" + dst)
            rows += [a, b]
            cols += [b, a]
            vals += [rel_weight, rel_weight]
        n = len(nodes)
        adj = sp.csr_matrix((vals, (rows, cols)), shape=(n, n), dtype=np.float64)
        adj.sum_duplicates()
        deg = np.asarray(adj.sum(axis=0)).ravel()
        inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
        trans = (adj @ sp.diags(inv)).tocsr()  # column j spread over j's neighbours
        chunk_items = [(name[2:], i) for name, i in nodes.items() if name.startswith("c:")]
        return cls(nodes, np.array([i for _, i in chunk_items], dtype=np.int64),
                   tuple(c for c, _ in chunk_items), df, trans)

    def run(self, seeds: Mapping[str, float], damping: float = 0.5, iters: int = 40,
            tol: float = 1e-7) -> dict[str, float]:
        """Chunk id -> PPR score for ``seeds`` (node names ``e:<key>`` / ``c:<id>`` -> restart weight)."""
        n = len(self.nodes)
        s = np.zeros(n)
        for name, w in seeds.items():
            i = self.nodes.get(name)
            if i is not None and w > 0:
                s[i] += w
        if n == 0 or s.sum() <= 0:
            return {}
        s /= s.sum()
        r = s.copy()
        mat = self.matrix
        for _ in range(iters):
            nxt = (1 - damping) * s + damping * (mat @ r)  # type: ignore[operator]
            if np.abs(nxt - r).sum() < tol:
                r = nxt
                break
            r = nxt
        scores = r[self.chunk_rows]
        return {self.chunk_ids[i]: float(scores[i]) for i in np.nonzero(scores > 0)[0]}
