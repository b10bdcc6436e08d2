"""Shared types, settings, errors and clients. Imports nothing of ragent's."""

from core.errors import ConfigError, IngestError, LLMError, LLMUnavailableError, RagentError, RetrievalError
from core.settings import Settings
from core.types import Answer, Chunk, Citation, Hit, content_id

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "ConfigError",
    "Hit",
    "IngestError",
    "LLMError",
    "LLMUnavailableError",
    "RagentError",
    "RetrievalError",
    "Settings",
    "content_id",
]
