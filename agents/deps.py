"""What the agent's nodes need, passed in once to ``build_graph``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents.config import AgentConfig
from agents.memory import ExperienceMemory
from core.llm import LLM
from retrieval.searcher import Searcher


@dataclass(frozen=True)
class Deps:
    retriever: Searcher
    llm: LLM
    memory: ExperienceMemory | None
    config: AgentConfig
    # (doc_id, image file, question) -> what a vision model reads in that figure; None = no vision model
    figures: Callable[[str, str, str], str] | None = None
