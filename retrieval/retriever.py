"""The Retriever: what agents, the API and finetune call.

Public API (stable; other packages code against it):
    await search(workspace, query, k=10, *, paths=None, rerank=True) -> list[Hit]
    await recall(path, workspace, query, k) -> list[Hit]          # one recall path alone
    await neighbourhood(workspace, entities, hops=1) -> Neighbourhood
    get_chunks(workspace, ids) -> list[Chunk]; page_chunks(workspace, doc_id, page) -> list[Chunk]
    paths -> tuple of recall path names available
    embedder_for(workspace) -> Embedder                            # the workspace's (fine-tuned) embedder
Also: await run(...) -> SearchResult (per-path hits and timings, the fused pool, rerank time).
``retrieval.searcher.Searcher`` is this API as a Protocol; agents/ depend on it, not on this class.

Recall paths run concurrently (``asyncio.gather``; blocking work in threads): ``dense`` (Qdrant dense vector),
``sparse`` (Qdrant BM25 sparse vector, IDF), ``graph`` (entity linking -> personalised PageRank over the
entity-chunk graph), ``decompose`` (LLM sub-queries, each through dense + sparse; skipped for simple
questions, without an LLM, or when the LLM fails). Their lists are fused with RRF (``fusion.rrf``) and the
top N rescored by the cross-encoder; documents the best passage names by title move up behind it (the bridge
hop, ``bridge.bridge_hop``). Only chunks of documents the registry marks ``done`` are returned. A query mostly
in a non-Latin script is answered by the sparse path alone, unreranked, while the models read English only
(``RetrievalConfig.non_latin``, RAGENT_NON_LATIN).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.embedder import Embedder, embedder_id, tuned_embedder
from core.errors import LLMError
from core.llm import LLM
from core.settings import RetrievalConfig
from core.types import Chunk, Hit
from retrieval.active_model import ActiveModels
from retrieval.bridge import bridge_hop
from retrieval.decompose import decompose, looks_complex
from retrieval.extract import SpacyExtractor, normalise
from retrieval.fusion import blend, distinct, rrf
from retrieval.graph import GraphStore
from retrieval.index import VectorIndex
from retrieval.link import EntityLinker
from retrieval.ppr import PPRGraph
from retrieval.registry import Registry
from retrieval.rerank import Reranker
from retrieval.sparse import bm25_query, non_latin

logger = logging.getLogger(__name__)

ALL_PATHS = ("dense", "sparse", "graph", "decompose")
# candidates a path fetches beyond k, for chunks of documents not yet ``done`` (dropped); every fetched candidate
# costs a payload decode, so this stays small (k * 2 + 10 cost ~5 ms a query at 50k chunks)
FETCH_SLACK = 10
MAX_HOPS = 3  # graph neighbourhood depth cap: hops come from a model or a user, and each one widens the walk


@dataclass(frozen=True)
class Neighbourhood:
    """Entities around the seeds, the relations between them, and the chunks that mention them."""

    entities: tuple[str, ...] = ()
    relations: tuple[tuple[str, str, str], ...] = ()  # (source, relation, target)
    chunk_ids: tuple[str, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class PathRun:
    """One recall path's outcome: its hits best-first, how long it took, and why it was skipped (if it was)."""

    path: str
    hits: tuple[Hit, ...] = ()
    ms: float = 0.0
    skipped: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchResult:
    hits: tuple[Hit, ...]
    runs: dict[str, PathRun]
    fused: tuple[Hit, ...]
    rerank_ms: float = 0.0


@dataclass
class _Query:
    """Per-search shared work: the query vector and the done-document set (computed once)."""

    workspace: str
    text: str
    k: int
    embedder: Embedder
    done: set[str]
    vec: asyncio.Task[np.ndarray] | None = None
    dense: asyncio.Task[PathRun] | None = None


class Retriever:
    """Multi-path recall over a workspace, fused with RRF and reranked; documents must be ``done``."""

    def __init__(
        self, index: VectorIndex, embedder: Embedder, registry: Registry, active_models: ActiveModels | None = None,
        *, graph: GraphStore | None = None, reranker: Reranker | None = None, llm: LLM | None = None,
        config: RetrievalConfig | None = None, extractor: SpacyExtractor | None = None,
    ) -> None:
        self.index = index
        self.embedder = embedder
        self.registry = registry
        self.active_models = active_models or ActiveModels.for_index(index.config)  # finetune's record
        self._tuned: dict[str, Embedder] = {}  # fine-tuned model dir -> its embedder (loaded lazily)
        self.graph = graph
        self.reranker = reranker
        self.llm = llm
        self.config = config or RetrievalConfig()
        self.extractor = extractor or SpacyExtractor()
        self.linker = EntityLinker(graph, self.extractor, self.config.link_threshold,
                                   self.config.link_mentions) if graph is not None else None
        self._ppr: dict[str, tuple[int, PPRGraph]] = {}
        self._ppr_lock = threading.Lock()

    @property
    def paths(self) -> tuple[str, ...]:
        have = {"dense", "sparse"} | ({"graph"} if self.graph is not None else set()) | (
            {"decompose"} if self.llm is not None else set())
        return tuple(p for p in ALL_PATHS if p in have)

    def embedder_for(self, workspace: str) -> Embedder:
        """The embedder whose vectors the workspace's collection holds: its active fine-tuned model, if any.
        ConfigError when the workspace was embedded by another base model or quantisation (RAGENT_EMBED_QUANT)."""
        ident = embedder_id(self.embedder)
        if ident is not None:
            self.active_models.check_embedder(workspace, ident, lambda: self.registry.committed(workspace)[0] > 0)
        active = self.active_models.get(workspace)
        if active is None:
            return self.embedder
        emb = self._tuned.get(active.model_dir)
        if emb is None:
            emb = self._tuned.setdefault(active.model_dir, tuned_embedder(active.model_dir, self.embedder))
        return emb

    # ---- public API ------------------------------------------------------------------------------
    async def search(
        self, workspace: str, query: str, k: int = 10, *, paths: Sequence[str] | None = None, rerank: bool = True
    ) -> list[Hit]:
        return list((await self.run(workspace, query, k, paths=paths, rerank=rerank)).hits)

    async def recall(self, path: str, workspace: str, query: str, k: int) -> list[Hit]:
        if path not in ALL_PATHS:
            raise ValueError(f"unknown recall path {path!r}; available: {', '.join(self.paths)}")
        q = self._query(workspace, query, k)
        return list((await self._run_path(path, q)).hits)

    async def run(
        self, workspace: str, query: str, k: int = 10, *, paths: Sequence[str] | None = None, rerank: bool = True,
        pool: int | None = None,
    ) -> SearchResult:
        """Every requested path (default: the configured ones that are available), fused, then reranked."""
        wanted = [p for p in (paths or self.config.paths) if p in ALL_PATHS]
        unknown = [p for p in (paths or ()) if p not in ALL_PATHS]
        if unknown:
            raise ValueError(f"unknown recall path(s) {unknown}; available: {', '.join(self.paths)}")
        q = self._query(workspace, query, max(pool or self.config.candidates, k))
        if self.config.non_latin == "lexical" and "sparse" in wanted and non_latin(query):
            lexical = await self._run_path("sparse", q)  # English-only models would only add noise
            if lexical.hits:
                return SearchResult(tuple(distinct(lexical.hits, k)), {"sparse": lexical}, lexical.hits)
        results = await asyncio.gather(*(self._run_path(p, q) for p in wanted))
        runs = {r.path: r for r in results}
        fused = rrf({r.path: r.hits for r in results if r.hits}, k=self.config.rrf_k,
                    weights=dict(self.config.weights))
        hits, ms = fused, 0.0
        if rerank and self.reranker is not None and fused:
            t = time.perf_counter()
            hits = await self.rerank(query, fused, self.config.rerank_top_n)
            ms = (time.perf_counter() - t) * 1000
        return SearchResult(tuple(distinct(hits, k)), runs, tuple(fused), ms)

    async def rerank(self, query: str, hits: Sequence[Hit], top_n: int) -> list[Hit]:
        """Cross-encoder scores for the first ``top_n`` hits, which are reordered by them (blended with their fused
        rank when ``rerank_blend`` > 0), then the bridge hop (``bridge.bridge_hop``); the rest follow."""
        if self.reranker is None or not hits:
            return list(hits)
        head, tail = list(hits[:top_n]), list(hits[top_n:])
        scores = await asyncio.to_thread(self.reranker.score, query, [self._passage(h.chunk) for h in head])
        scored = [Hit(h.chunk, h.score, h.paths, s) for h, s in zip(head, scores, strict=True)]
        ordered = blend(scored, self.config.rerank_blend, k=self.config.rrf_k)
        return bridge_hop(ordered, self.config.rerank_bridge) + tail

    async def neighbourhood(self, workspace: str, entities: Sequence[str], hops: int = 1) -> Neighbourhood:
        """Entities within ``hops`` relation steps of the linked seeds (``hops`` clamped to 0..MAX_HOPS)."""
        if self.graph is None or not entities:
            return Neighbourhood()
        hops = max(0, min(int(hops), MAX_HOPS))
        ppr = await asyncio.to_thread(self._ppr_graph, workspace)
        seeds = {normalise(e) for e in entities} & set(ppr.entity_df)
        if self.linker is not None:
            for e in entities:
                seeds |= set(await asyncio.to_thread(self.linker.link, workspace, e, self.embedder_for(workspace),
                                                     ppr.entity_df))
        view = await asyncio.to_thread(self.graph.neighbourhood, workspace, sorted(seeds), hops)
        ids = list(dict.fromkeys(c for _, c in view.mentions))
        done = self.registry.done_doc_ids(workspace)
        chunks = await asyncio.to_thread(self.index.get, workspace, ids[:500])
        return Neighbourhood(
            entities=tuple(view.names[k] for k in sorted(view.names)),
            relations=tuple((view.names.get(s, s), r, view.names.get(d, d)) for s, r, d in view.relations),
            chunk_ids=tuple(c.id for c in chunks if c.doc_id in done),
            extra={"seeds": sorted(seeds)},
        )

    def get_chunks(self, workspace: str, ids: Sequence[str]) -> list[Chunk]:
        return self.index.get(workspace, ids)

    def page_chunks(self, workspace: str, doc_id: str, page: int) -> list[Chunk]:
        recs = self.index.scroll(workspace, doc_id)
        chunks = [Chunk.from_payload(r.payload) for r in recs]
        return sorted((c for c in chunks if c.page == page), key=lambda c: c.order)

    # ---- paths -----------------------------------------------------------------------------------
    @staticmethod
    def _passage(c: Chunk) -> str:
        return c.index_text if c.doc_title and c.doc_title in c.index_text else f"{c.doc_title}\n{c.index_text}"

    def _query(self, workspace: str, text: str, k: int) -> _Query:
        return _Query(workspace, text, k, self.embedder_for(workspace), self.registry.done_doc_ids(workspace))

    async def _vec(self, q: _Query) -> np.ndarray:
        if q.vec is None:
            q.vec = asyncio.ensure_future(asyncio.to_thread(q.embedder.embed_batch, [q.text]))
        return (await q.vec)[0]

    async def _run_path(self, path: str, q: _Query) -> PathRun:
        if path == "dense":
            if q.dense is None:
                q.dense = asyncio.ensure_future(self._timed(path, self._dense(q)))
            return await q.dense
        fn = {"sparse": self._sparse, "graph": self._graph, "decompose": self._decompose}[path]
        return await self._timed(path, fn(q))

    @staticmethod
    async def _timed(path: str, coro: Any) -> PathRun:
        t = time.perf_counter()
        out = await coro
        hits, skipped, detail = out if isinstance(out, tuple) else (out, "", {})
        ranked = tuple(Hit(h.chunk, h.score, {path: i}) for i, h in enumerate(hits, start=1))
        return PathRun(path, ranked, (time.perf_counter() - t) * 1000, skipped, detail)

    @staticmethod
    def _keep(scored: Sequence[tuple[Chunk, float]], done: set[str], k: int) -> list[Hit]:
        return [Hit(chunk=c, score=s) for c, s in scored if c.doc_id in done][:k]

    async def _dense(self, q: _Query) -> list[Hit]:
        vec = await self._vec(q)
        scored = await asyncio.to_thread(self.index.query_dense, q.workspace, vec, q.k + FETCH_SLACK)
        return self._keep(scored, q.done, q.k)

    async def _sparse(self, q: _Query) -> list[Hit]:
        scored = await asyncio.to_thread(self.index.query_sparse, q.workspace, bm25_query(q.text), q.k + FETCH_SLACK)
        return self._keep(scored, q.done, q.k)

    def _ppr_graph(self, workspace: str) -> PPRGraph:
        assert self.graph is not None
        v = self.graph.version(workspace)
        with self._ppr_lock:
            hit = self._ppr.get(workspace)
            if hit is None or hit[0] != v:
                hit = (v, PPRGraph.build(self.graph.view(workspace)))
                self._ppr[workspace] = hit
            return hit[1]

    async def _graph(self, q: _Query) -> tuple[list[Hit], str, dict[str, Any]]:
        if self.graph is None or self.linker is None:
            return [], "no graph store", {}
        ppr = await asyncio.to_thread(self._ppr_graph, q.workspace)
        linked = await asyncio.to_thread(self.linker.link, q.workspace, q.text, q.embedder, ppr.entity_df)
        total = sum(linked.values())
        seeds = {"e:" + key: w / total for key, w in linked.items()} if total else {}
        pw = self.config.graph_passage_weight
        if pw > 0:
            dense = await self._run_path("dense", q)
            top = dense.hits[:20]
            if top:
                lo, hi = min(h.score for h in top), max(h.score for h in top)
                for h in top:
                    seeds["c:" + h.chunk.id] = pw * ((h.score - lo) / (hi - lo) if hi > lo else 1.0)
        if not seeds:
            return [], "no query entity linked to the graph", {"linked": {}}
        scores = await asyncio.to_thread(ppr.run, seeds, self.config.ppr_damping, limit=q.k + FETCH_SLACK,
                                         eps=self.config.ppr_eps)
        ids = list(scores)
        chunks = await asyncio.to_thread(self.index.get, q.workspace, ids)
        hits = self._keep([(c, scores[c.id]) for c in chunks], q.done, q.k)
        return hits, "", {"linked": linked}

    async def _decompose(self, q: _Query) -> tuple[list[Hit], str, dict[str, Any]]:
        cfg = self.config
        if self.llm is None or cfg.decompose == "off":
            return [], "no LLM configured", {}
        if cfg.decompose != "on" and not looks_complex(q.text):
            return [], "simple question", {}
        try:
            subs = await asyncio.wait_for(decompose(self.llm, q.text), cfg.decompose_timeout_s)
        except (LLMError, TimeoutError) as e:
            why = str(e) or f"timed out after {cfg.decompose_timeout_s:g} s"  # TimeoutError has no message
            logger.warning("query decomposition skipped: %s", why)
            return [], f"LLM failed: {why}", {}
        if not subs:
            return [], "LLM returned no sub-queries", {}
        vecs = await asyncio.to_thread(q.embedder.embed_batch, subs)
        lists: dict[str, list[Hit]] = {}
        for i, (sub, vec) in enumerate(zip(subs, vecs, strict=True)):
            d = await asyncio.to_thread(self.index.query_dense, q.workspace, vec, q.k)
            s = await asyncio.to_thread(self.index.query_sparse, q.workspace, bm25_query(sub), q.k)
            lists[f"d{i}"] = self._keep(d, q.done, q.k)
            lists[f"s{i}"] = self._keep(s, q.done, q.k)
        return rrf(lists, k=cfg.rrf_k, limit=q.k), "", {"sub_queries": subs}
