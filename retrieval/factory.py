"""Builds the vector index, the graph store, the hybrid Retriever and the IndexWriter: the one place retrieval
backends are chosen. The caller (``app.runtime.Runtime``) builds the shared parts once (index, registry, graph
store, active-model record, spaCy extractor) and hands the same objects to the retriever and the writer. Nothing
is opened or loaded here (``resolve_backend`` reads two small JSON files); every backend loads lazily on first use."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from core.embedder import Embedder
from core.llm import LLM
from core.settings import IndexConfig, RetrievalConfig
from retrieval.active_model import ActiveModels
from retrieval.extract import Extractor, LLMExtractor, SpacyExtractor
from retrieval.graph import GraphStore
from retrieval.index import QdrantIndex, VectorIndex
from retrieval.index_edge import EdgeIndex
from retrieval.index_migrate import local_mode_only
from retrieval.registry import Registry
from retrieval.rerank import reranker_for_model
from retrieval.retriever import Retriever
from retrieval.writer import IndexWriter

logger = logging.getLogger(__name__)


def resolve_backend(config: IndexConfig) -> Literal["qdrant", "edge"]:
    """The backend ``config.backend`` means: ``auto`` is the Qdrant server when ``qdrant_url`` is set, else Qdrant
    Edge, unless the home's vectors are still in a Qdrant local-mode store and Qdrant Edge holds none (a home made
    before Edge was the default): that one keeps reading local mode, with a warning naming the migration.

    >>> resolve_backend(Settings(home=Path("/tmp/new-home")).index)  # doctest: +SKIP
    'edge'
    """
    if config.backend != "auto":
        if config.backend == "edge" and local_mode_only(config):
            logger.warning("RAGENT_VECTOR_BACKEND=edge, but the vectors of %s are in the Qdrant local-mode store %s "
                           "and Qdrant Edge is empty: run `ragent index migrate --to edge` to copy them.",
                           config.db_path.parent, config.qdrant_path)
        return config.backend
    if config.qdrant_url:
        return "qdrant"
    if local_mode_only(config):
        logger.warning("reading the Qdrant local-mode store %s (slow past ~10k chunks); run `ragent index migrate "
                       "--to edge` to move it to Qdrant Edge, the embedded default.", config.qdrant_path)
        return "qdrant"
    return "edge"


def build_index(config: IndexConfig) -> VectorIndex:
    """The vector index ``config.backend`` names (``resolve_backend``): ``QdrantIndex`` (qdrant-client, a server
    or local mode) or ``EdgeIndex`` (Qdrant Edge)."""
    return EdgeIndex(config) if resolve_backend(config) == "edge" else QdrantIndex(config)


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
