"""Builds the vector index, the graph store, the hybrid Retriever and the matching IndexWriter from settings:
the one place retrieval backends are chosen. Nothing is opened or loaded here; every backend loads lazily on
first use."""

from __future__ import annotations

from pathlib import Path

from core.embedder import Embedder
from core.llm import LLM
from core.settings import IndexConfig, RetrievalConfig
from retrieval.extract import Extractor, LLMExtractor, SpacyExtractor
from retrieval.graph import GraphStore
from retrieval.index import QdrantIndex, VectorIndex
from retrieval.index_edge import EdgeIndex
from retrieval.registry import Registry
from retrieval.rerank import reranker_from_settings
from retrieval.retriever import Retriever
from retrieval.writer import IndexWriter


def build_index(config: IndexConfig) -> VectorIndex:
    """The vector index ``config.backend`` names: ``QdrantIndex`` (qdrant-client) or ``EdgeIndex`` (Qdrant Edge)."""
    return EdgeIndex(config) if config.backend == "edge" else QdrantIndex(config)


def graph_store_from_settings(db_dir: Path, neo4j_url: str | None = None, neo4j_user: str = "neo4j",
                              neo4j_password: str = "") -> GraphStore:
    """The graph store: Neo4j when a URL is set, else the embedded SQLite store next to the registry."""
    if neo4j_url:
        from retrieval.graph_neo4j import Neo4jGraphStore

        return Neo4jGraphStore(neo4j_url, neo4j_user, neo4j_password)
    from retrieval.graph_sqlite import SqliteGraphStore

    return SqliteGraphStore(db_dir / "graph.db")


def graph_store(config: RetrievalConfig, index: VectorIndex) -> GraphStore:
    return graph_store_from_settings(index.config.db_path.parent, config.neo4j_url, config.neo4j_user,
                                     config.neo4j_password)


def build_retriever(config: RetrievalConfig, index: VectorIndex, embedder: Embedder, registry: Registry,
                    llm: LLM | None, graph: GraphStore | None = None) -> Retriever:
    """``llm`` drives the decomposition path (None = path skipped)."""
    return Retriever(index, embedder, registry, graph=graph or graph_store(config, index),
                     reranker=reranker_from_settings(config.rerank_model, config.rerank_max_tokens),
                     llm=None if config.decompose == "off" else llm, config=config)


def build_writer(config: RetrievalConfig, retriever: Retriever, llm: LLM | None = None) -> IndexWriter:
    """An IndexWriter that writes into the retriever's graph store with the configured extractor."""
    extractor: Extractor = retriever.extractor if isinstance(retriever.extractor, SpacyExtractor) else SpacyExtractor()
    if config.graph_extractor == "llm" and llm is not None:
        extractor = LLMExtractor(llm, fallback=retriever.extractor)
    return IndexWriter(retriever.index, retriever.embedder_for, graph=retriever.graph or False, extractor=extractor)
