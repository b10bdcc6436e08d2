"""``RagentRetriever``: a llama-index ``BaseRetriever`` over a ragent workspace's hybrid search.

A LlamaIndex application plugs ragent's retrieval (dense + BM25 + graph PPR, RRF, cross-encoder rerank; only
documents the registry marks ``done``) into its own query engine, chat engine or agent::

    from llama_index.core.query_engine import RetrieverQueryEngine
    from app.llamaindex import open_retriever

    with open_retriever("default", k=5) as retriever:          # opens the workspace's index from RAGENT_* settings
        engine = RetrieverQueryEngine.from_args(retriever, llm=my_llm)
        response = engine.query("What is the rated output of the NW-200?")
        response.source_nodes[0].metadata["page"]               # -> 1

Each hit becomes a ``NodeWithScore``: a ``TextNode`` whose id is the chunk id and whose text is the chunk text
(what a citation quotes), whose ``SOURCE`` relationship is the ragent document, and whose metadata carries
``doc_id``, ``page``, ``bbox``, ``source``, ``title``, ``kind``, ``heading`` and the recall ``paths`` that found
it. Only ``title``, ``page`` and ``heading`` go into the LLM prompt and embeddings (a bbox is noise to a model).
The score is the cross-encoder score when the hit was reranked, else the fused RRF score.

The core is async (``_aretrieve``); ``_retrieve`` is its one sync wrapper (in a worker thread when the caller
already runs an event loop, as Jupyter does).

``RagentEmbedding`` is the other direction: ragent's ``Embedder`` (the packaged MiniLM, or a workspace's
fine-tuned model) as a llama-index ``BaseEmbedding``, so llama-index components that embed (its
``SemanticSplitterNodeParser``, a ``VectorStoreIndex``) use the same vectors ragent indexes with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any

from llama_index.core.embeddings import BaseEmbedding
from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeRelationship, NodeWithScore, QueryBundle, RelatedNodeInfo, TextNode
from pydantic import PrivateAttr

from core.embedder import Embedder
from core.types import Hit
from retrieval.retriever import Retriever

_HIDDEN_FROM_MODELS = ["doc_id", "bbox", "source", "kind", "paths"]


def hit_to_node(hit: Hit) -> NodeWithScore:
    """One ragent ``Hit`` as a llama-index ``NodeWithScore`` (see the module docstring for the fields)."""
    c = hit.chunk
    meta: dict[str, Any] = {
        "title": c.doc_title, "page": c.page, "heading": " > ".join(c.heading_path), "doc_id": c.doc_id,
        "bbox": list(c.bbox) if c.bbox else None, "source": c.source, "kind": c.kind, "paths": dict(hit.paths),
    }
    node = TextNode(
        id_=c.id, text=c.text, metadata=meta,
        excluded_llm_metadata_keys=list(_HIDDEN_FROM_MODELS), excluded_embed_metadata_keys=list(_HIDDEN_FROM_MODELS),
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=c.doc_id, metadata={"title": c.doc_title})},
    )
    score = hit.rerank_score if hit.rerank_score is not None else hit.score
    return NodeWithScore(node=node, score=float(score))


class RagentRetriever(BaseRetriever):
    """Top ``k`` chunks of ``workspace`` from ``Retriever.search`` as llama-index nodes.

    ``paths`` picks recall paths (default: the retriever's configured ones), ``rerank`` the cross-encoder.
    ``on_close`` is what ``close()`` (or leaving a ``with`` block) releases: ``app.llamaindex.open_retriever``
    passes the runtime's close, since Qdrant local mode locks its folder to one process.
    """

    def __init__(
        self, retriever: Retriever, workspace: str = "default", k: int = 10, *, paths: Sequence[str] | None = None,
        rerank: bool = True, on_close: Callable[[], None] | None = None, **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.retriever = retriever
        self.workspace = workspace
        self.k = k
        self.paths = tuple(paths) if paths else None
        self.rerank = rerank
        self._on_close = on_close

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = await self.retriever.search(self.workspace, query_bundle.query_str, self.k, paths=self.paths,
                                           rerank=self.rerank)
        return [hit_to_node(h) for h in hits]

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._aretrieve(query_bundle))
        with ThreadPoolExecutor(max_workers=1) as pool:  # called from inside a running loop: not on its thread
            return pool.submit(asyncio.run, self._aretrieve(query_bundle)).result()

    def close(self) -> None:
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> RagentRetriever:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class RagentEmbedding(BaseEmbedding):
    """A ragent ``Embedder`` as a llama-index ``BaseEmbedding`` (queries and texts embed alike, as ragent does)."""

    _embedder: Embedder = PrivateAttr()

    def __init__(self, embedder: Embedder, model_name: str = "ragent", embed_batch_size: int = 32,
                 **kwargs: Any) -> None:
        super().__init__(model_name=model_name, embed_batch_size=embed_batch_size, **kwargs)
        self._embedder = embedder

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return [[float(x) for x in row] for row in self._embedder.embed_batch(list(texts))]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)
