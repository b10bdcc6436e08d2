"""Builds the vector index, the graph store, the hybrid Retriever and the IndexWriter: the one place retrieval
backends are chosen. The caller (``app.runtime.Runtime``) builds the shared parts once (index, registry, graph
store, active-model record, spaCy extractor) and hands the same objects to the retriever and the writer. Nothing
is opened or loaded here; every backend loads lazily on first use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from core.embedder import Embedder
from core.llm import LLM
from core.settings import IndexConfig, RetrievalConfig
from retrieval.active_model import ActiveModels
from retrieval.extract import Extractor, LLMExtractor, SpacyExtractor
from retrieval.graph import GraphStore
from retrieval.index import QdrantIndex, VectorIndex
from retrieval.index_edge import EdgeIndex
from retrieval.registry import Registry
from retrieval.rerank import reranker_for_model
from retrieval.retriever import Retriever
from retrieval.writer import IndexWriter


def build_index(config: IndexConfig) -> VectorIndex:
    """The vector index ``config.backend`` names: ``QdrantIndex`` (qdrant-client) or ``EdgeIndex`` (Qdrant Edge)."""
    return EdgeIndex(config) if config.backend == "edge" else QdrantIndex(config)


def build_graph_store(config: RetrievalConfig, db_dir: Path) -> GraphStore:
    """The graph store: Neo4j when ``config.neo4j_url`` is set, else the embedded SQLite store in ``db_dir`` (next
    to the registry)."""
    if config.neo4j_url:
        from retrieval.graph_neo4j import Neo4jGraphStore

        return Neo4jGraphStore(config.neo4j_url, config.neo4j_user, config.neo4j_password)
    from retrieval.graph_sqlite import SqliteGraphStore

    return SqliteGraphStore(db_dir / "graph.db")


def build_retriever(config: RetrievalConfig, index: VectorIndex, embedder: Embedder, registry: Registry,
                    llm: LLM | None, *, graph: GraphStore, active_models: ActiveModels | None = None,
                    extractor: SpacyExtractor | None = None) -> Retriever:
    """``llm`` drives the decomposition path (None = path skipped). ``graph``: the store the caller built (the
    Runtime builds one, ``build_graph_store``, and hands it to the retriever and the writer); ``active_models``
    defaults to the record next to the index (``ActiveModels.for_index``)."""
    return Retriever(index, embedder, registry, active_models, graph=graph,
                     reranker=reranker_for_model(config.rerank_model, config.rerank_max_tokens),
                     llm=None if config.decompose == "off" else llm, config=config, extractor=extractor)


def build_writer(config: RetrievalConfig, index: VectorIndex, embedder_for: Callable[[str], Embedder],
                 graph: GraphStore | None, llm: LLM | None = None, *,
                 extractor: SpacyExtractor | None = None) -> IndexWriter:
    """An IndexWriter into ``index`` and ``graph`` (None = no graph) with the configured entity extractor: spaCy
    (``extractor``, shared with the retriever's query linking), or the LLM with spaCy as its fallback when
    ``config.graph_extractor`` is ``llm`` and an ``llm`` is given."""
    spacy = extractor or SpacyExtractor()
    chosen: Extractor = spacy
    if config.graph_extractor == "llm" and llm is not None:
        chosen = LLMExtractor(llm, fallback=spacy)
    return IndexWriter(index, embedder_for, graph=graph, extractor=chosen)
