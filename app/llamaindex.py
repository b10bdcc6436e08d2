"""``open_retriever``: a ``RagentRetriever`` (llama-index) over a workspace, wired from the RAGENT_* settings."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.runtime import Runtime
from core.settings import Settings
from retrieval.llamaindex import RagentRetriever


def open_retriever(workspace: str | None = None, *, k: int = 10, paths: Sequence[str] | None = None,
                   rerank: bool = True, settings: Settings | None = None,
                   overrides: dict[str, Any] | None = None) -> RagentRetriever:
    """The workspace's hybrid search as a llama-index retriever: ``with open_retriever("manuals") as r: ...``.

    Builds a ``Runtime`` from ``settings`` (default: the environment's RAGENT_*, no ``.env``: that is for entry
    points); ``workspace`` defaults to RAGENT_WORKSPACE. Nothing is opened or loaded until the first query.
    Closing the retriever closes the runtime's index and registry (Qdrant local mode locks its folder to one
    process), so a process that already holds a runtime (the API) wraps its own instead:
    ``RagentRetriever(runtime.retriever, workspace)``.
    """
    s = settings or Settings.from_env()
    rt = Runtime(s, overrides=dict(overrides or {}))
    return RagentRetriever(rt.retriever, workspace or s.workspace, k, paths=paths, rerank=rerank, on_close=rt.close)
