"""``Runtime``: the one place ragent's components are built from Settings (lazily), shared and closed.

Each part is built once, on first use, and the same object is handed to everything that needs it: the index,
registry, graph store, active-model record and spaCy extractor go to both the retriever and the writer; the
retriever, LLM and memory go to the agent. Documents come in through ``ingestor()`` and go through
``delete_document()``, which needs no extractor, embedder, LLM or retriever. ``close()`` closes what the runtime
built (not what a caller passed in ``overrides``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from core.embedder import Embedder, embedder_for_model
from core.llm import LLM, OpenAILLM
from core.settings import Settings
from core.vision import FigureReader, VisionModel, vision_model
from retrieval.active_model import ActiveModels
from retrieval.extract import SpacyExtractor
from retrieval.graph import GraphStore
from retrieval.index import VectorIndex
from retrieval.registry import Registry
from retrieval.retriever import Retriever
from retrieval.writer import IndexWriter

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from agents import Agent, ExperienceMemory
    from ingest.pipeline import Ingestor, Progress


@dataclass
class Runtime:
    """Lazily built dependencies; nothing is opened or loaded until first used."""

    settings: Settings
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def embedder(self) -> Embedder:
        return self.overrides.get("embedder") or embedder_for_model(
            self.settings.embed_model, self.settings.embed_batch_size, self.settings.embed_backend,
            quant=self.settings.embed_quant,
        )

    @cached_property
    def llm(self) -> LLM:
        return self.overrides.get("llm") or OpenAILLM(self.settings.llm)

    @cached_property
    def vision(self) -> VisionModel | None:
        """The vision model (RAGENT_VLM_BASE_URL), None when unset; replies cached under home by image hash."""
        if "vision" in self.overrides:
            return self.overrides["vision"]  # type: ignore[no-any-return]
        s = self.settings
        return vision_model(s.vlm_base_url, s.vlm_model, s.vlm_api_key, s.vlm_timeout_s, s.home / "vlm_cache.db")

    @cached_property
    def index(self) -> VectorIndex:
        """Qdrant (qdrant-client) or Qdrant Edge, as RAGENT_VECTOR_BACKEND says."""
        from retrieval.factory import build_index

        return build_index(self.settings.index)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.settings.index.db_path)

    @cached_property
    def graph(self) -> GraphStore:
        """The entity graph (RAGENT_NEO4J_URL, else SQLite next to the registry): the retriever reads it, the
        writer writes it."""
        from retrieval.factory import build_graph_store

        return build_graph_store(self.settings.retrieval, self.settings.index.db_path.parent)

    @cached_property
    def active_models(self) -> ActiveModels:
        """Each workspace's active fine-tuned embedding model (finetune's record under home/finetune)."""
        return ActiveModels.for_index(self.settings.index)

    @cached_property
    def extractor(self) -> SpacyExtractor:
        """spaCy entity extraction (loaded on first use), shared by query linking and the writer."""
        return SpacyExtractor()

    @cached_property
    def retriever(self) -> Retriever:
        """Hybrid retriever (dense, BM25, graph PPR, decomposition; RRF; cross-encoder rerank).

        Decomposition uses the LLM: with RAGENT_DECOMPOSE=auto only the configured server (not an injected
        test LLM, whose scripted replies belong to the test), always with =on, never with =off.
        """
        from retrieval.factory import build_retriever

        cfg = self.settings.retrieval
        use_llm = cfg.decompose == "on" or (cfg.decompose == "auto" and "llm" not in self.overrides)
        return build_retriever(cfg, self.index, self.embedder, self.registry, self.llm if use_llm else None,
                               graph=self.graph, active_models=self.active_models, extractor=self.extractor)

    def embedder_for(self, workspace: str) -> Embedder:
        """The embedder whose vectors ``workspace``'s collection holds (its fine-tuned model, if any): the
        retriever's, built on the first call rather than when this method is handed to a writer."""
        return self.retriever.embedder_for(workspace)

    @cached_property
    def writer(self) -> IndexWriter:
        """The one write path into the index and the graph (ingest, eval corpora): each workspace's embedder
        (its fine-tuned model, if any) and the configured entity extractor (RAGENT_GRAPH_EXTRACTOR)."""
        from retrieval.factory import build_writer

        return build_writer(self.settings.retrieval, self.index, self.embedder_for, self.graph, self.llm,
                            extractor=self.extractor)

    @cached_property
    def memory(self) -> ExperienceMemory:
        """The agent's experience memory (tips, shortcuts): SQLite under home, or RAGENT_MEMORY_URL."""
        from agents.memory import ExperienceMemory, store_from_url

        if "memory" in self.overrides:
            return self.overrides["memory"]  # type: ignore[no-any-return]
        store = store_from_url(self.settings.memory_url, self.settings.home / "memory.db")
        return ExperienceMemory(store, embedder=self.embedder)

    @cached_property
    def agent(self) -> Agent:
        """The planner/executor/reflector agent; checkpoints runs in SQLite under home (resume by thread id)."""
        from agents import Agent, SqliteCheckpoints

        s = self.settings
        figures = FigureReader(self.vision, s.home / "files") if self.vision is not None else None
        return Agent(self.retriever, self.llm, self.memory, s.agent, SqliteCheckpoints(s.home / "checkpoints.db"),
                     figures=figures)

    def ingestor(self, enrich: bool = False, progress: Progress | None = None,
                 on_file: Callable[[Path], None] | None = None) -> Ingestor:
        """An Ingestor wired from the settings (``Settings.ingest``): the runtime's writer (per-workspace embedder,
        graph store, extractor), optional enrichment (an LLM context per chunk, cached under home)."""
        from ingest.enrich import ContextCache, Enricher
        from ingest.pipeline import Ingestor

        s, cfg = self.settings, self.settings.ingest
        enricher = None
        if enrich:
            enricher = Enricher(self.llm, ContextCache(s.home / "enrich_cache.db"),
                                model_key=f"{s.llm_model}:{s.llm_served_name}", doc_chars=cfg.enrich_doc_chars,
                                concurrency=cfg.enrich_concurrency)
        return Ingestor.from_config(self.index, self.registry, self.embedder_for, cfg, home=s.home,
                                    enricher=enricher, progress=progress, on_file=on_file, vision=self.vision,
                                    index_writer=self.writer)

    def delete_document(self, workspace: str, doc_id: str) -> bool:
        """Delete a document: its vectors, graph mentions and relations, saved files and registry row; False when
        the workspace has no such document. Only the index, graph store and registry are built for it (a delete
        extracts and embeds nothing), so ``ragent docs delete`` loads no spaCy model, embedder or LLM."""
        from ingest.pipeline import Ingestor

        writer = IndexWriter(self.index, self.embedder_for, graph=self.graph)  # for delete_doc only
        return Ingestor(self.index, self.registry, self.embedder_for, home=self.settings.home,
                        index_writer=writer).delete(workspace, doc_id)

    def close(self) -> None:
        """Close what this runtime built and opened (overrides belong to the caller)."""
        built = self.__dict__
        if "memory" in built and "memory" not in self.overrides:
            conn = getattr(self.memory.store, "conn", None)  # langgraph's SqliteStore / PostgresStore (a pool)
            if conn is not None:
                conn.close()
        if built.get("vision") is not None and "vision" not in self.overrides:
            self.vision.close()  # type: ignore[union-attr]
        for name in ("graph", "registry", "index"):  # these reopen lazily if used again
            if name in built:
                built[name].close()
        for name in ("agent", "memory"):
            built.pop(name, None)  # the memory's store connection is closed: a later use builds a fresh one
