"""Builds ragent's components from Settings: the one place where backends are chosen (lazily)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from core.embedder import Embedder, embedder_from_settings
from core.llm import LLM, OpenAILLM
from core.settings import Settings
from retrieval.index import QdrantIndex
from retrieval.registry import Registry
from retrieval.retriever import Retriever


@dataclass
class Runtime:
    """Lazily built dependencies; nothing is opened or loaded until first used."""

    settings: Settings
    overrides: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def embedder(self) -> Embedder:
        return self.overrides.get("embedder") or embedder_from_settings(
            self.settings.embed_model, self.settings.embed_batch_size
        )

    @cached_property
    def llm(self) -> LLM:
        return self.overrides.get("llm") or OpenAILLM(self.settings.llm)

    @cached_property
    def index(self) -> QdrantIndex:
        return QdrantIndex(self.settings.index)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.settings.index.db_path)

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.index, self.embedder, self.registry)

    def close(self) -> None:
        if "index" in self.__dict__:
            self.index.close()
        if "registry" in self.__dict__:
            self.registry.close()
