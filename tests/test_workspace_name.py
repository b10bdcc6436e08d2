"""The workspace-name rule (core/workspace.py): one definition, used by the index, the API and the CLI."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from core.errors import ConfigError
from core.workspace import WORKSPACE_PATTERN, WORKSPACE_RE, check_workspace

VALID = ["default", "a", "Team_2-docs", "x" * 64]
INVALID = ["", "-lead", "_lead", "has space", "dot.ted", "x" * 65, "ws/../etc", "ünï"]
TRAILING = ["docs\n", "docs\r\n", "docs\n\n", "\ndocs"]


@pytest.mark.parametrize("ws", VALID)
def test_valid_names_pass_everywhere(ws: str) -> None:
    assert check_workspace(ws) == ws
    assert WORKSPACE_RE.match(ws)
    assert TypeAdapter(Annotated[str, Field(pattern=WORKSPACE_PATTERN)]).validate_python(ws) == ws


@pytest.mark.parametrize("ws", INVALID + TRAILING)
def test_invalid_names_fail_everywhere(ws: str) -> None:
    """A trailing newline used to pass: ``$`` in Python's re also matches just before a final newline."""
    with pytest.raises(ConfigError, match="invalid workspace name"):
        check_workspace(ws)
    assert WORKSPACE_RE.match(ws) is None
    assert WORKSPACE_RE.fullmatch(ws) is None
    with pytest.raises(ValidationError):
        TypeAdapter(Annotated[str, Field(pattern=WORKSPACE_PATTERN)]).validate_python(ws)
