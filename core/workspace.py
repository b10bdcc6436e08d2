"""The workspace-name rule, defined once: 1-64 letters, digits, '-' or '_', starting with a letter or digit.
A workspace name becomes a Qdrant alias (``chunks_<ws>``) and a folder name, so nothing else gets through."""

from __future__ import annotations

import re

from core.errors import ConfigError

WORKSPACE_NAME = r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}"
# ``\Z``, not ``$``: in Python's re ``$`` also matches before a final newline, so "docs\n" would pass.
WORKSPACE_RE = re.compile(rf"^{WORKSPACE_NAME}\Z")
# For pydantic / FastAPI ``pattern=``: pydantic-core's Rust regex reads ``$`` as the very end (and has no ``\Z``).
WORKSPACE_PATTERN = rf"^{WORKSPACE_NAME}$"


def check_workspace(ws: str) -> str:
    """``ws`` itself when it is a valid workspace name; else a ``ConfigError`` that says the rule."""
    if not WORKSPACE_RE.match(ws):
        raise ConfigError(f"invalid workspace name {ws!r}: use 1-64 letters, digits, '-' or '_'")
    return ws
