"""The error tree. Messages are shown to users as they are: say what happened and what to do."""


class RagentError(Exception):
    """Base of every error ragent raises on purpose."""


class ConfigError(RagentError):
    """A setting is missing or wrong."""


class IngestError(RagentError):
    """A document could not be ingested (corrupt, encrypted, empty, wrong type, too large)."""


class RetrievalError(RagentError):
    """The index could not be read or written."""


class LLMError(RagentError):
    """The LLM server failed or returned something unusable."""


class LLMUnavailableError(LLMError):
    """The LLM server cannot be reached."""
