"""Agents: planner / executor / reflector / answerer on LangGraph, with an experience memory."""

from agents.agent import Agent, SqliteCheckpoints
from agents.answer import rag_answer
from agents.config import AgentConfig
from agents.graph import build_graph
from agents.memory import ExperienceMemory, store_from_url

__all__ = ["Agent", "AgentConfig", "ExperienceMemory", "SqliteCheckpoints", "build_graph", "rag_answer",
           "store_from_url"]
