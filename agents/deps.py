"""What the agent's nodes need, passed in once to ``build_graph``."""

from __future__ import annotations

from dataclasses import dataclass

from agents.config import AgentConfig
from agents.memory import ExperienceMemory
from core.llm import LLM
from retrieval.retriever import Retriever


@dataclass(frozen=True)
class Deps:
    retriever: Retriever
    llm: LLM
    memory: ExperienceMemory | None
    config: AgentConfig
