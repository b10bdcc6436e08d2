"""Builds ragent's components from Settings: the one place where backends are chosen (lazily)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from core.embedder import Embedder, embedder_from_settings
from core.llm import LLM, OpenAILLM
from core.settings import Settings
from core.vision import FigureReader, VisionModel, vision_model
from retrieval.index import VectorIndex
from retrieval.registry import Registry
from retrieval.retriever import Retriever

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
        return self.overrides.get("embedder") or embedder_from_settings(
            self.settings.embed_model, self.settings.embed_batch_size, self.settings.embed_backend
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
    def retriever(self) -> Retriever:
        """Hybrid retriever (dense, BM25, graph PPR, decomposition; RRF; cross-encoder rerank).

        Decomposition uses the LLM: with RAGENT_DECOMPOSE=auto only the configured server (not an injected
        test LLM, whose scripted replies belong to the test), always with =on, never with =off.
        """
        from retrieval.factory import build_retriever

        cfg = self.settings.retrieval
        use_llm = cfg.decompose == "on" or (cfg.decompose == "auto" and "llm" not in self.overrides)
        return build_retriever(cfg, self.index, self.embedder, self.registry, self.llm if use_llm else None)

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
        """An Ingestor wired from the settings: the retriever's per-workspace embedder, the settings' limits, the
        configured graph store and extractor, optional enrichment (an LLM context per chunk, cached under home)."""
        from ingest.enrich import ContextCache, Enricher
        from ingest.pipeline import Ingestor
        from retrieval.factory import build_writer

        s, cfg = self.settings, self.settings.ingest
        enricher = None
        if enrich:
            enricher = Enricher(self.llm, ContextCache(s.home / "enrich_cache.db"),
                                model_key=f"{s.llm_model}:{s.llm_served_name}", doc_chars=cfg.enrich_doc_chars,
                                concurrency=cfg.enrich_concurrency)
        return Ingestor.from_config(self.index, self.registry, self.retriever.embedder_for, cfg, home=s.home,
                                    enricher=enricher, progress=progress, on_file=on_file, vision=self.vision,
                                    index_writer=build_writer(s.retrieval, self.retriever, self.llm))

    def close(self) -> None:
        if "index" in self.__dict__:
            self.index.close()
        if "registry" in self.__dict__:
            self.registry.close()
        if self.__dict__.get("vision") is not None:
            self.vision.close()  # type: ignore[union-attr]
