"""The agent's knobs: ``AgentConfig`` is defined in ``core.config`` (``Settings.agent`` builds it, one source of
defaults) and re-exported here for agents/ and its callers."""

from __future__ import annotations

from core.config import AgentConfig

__all__ = ["AgentConfig"]
