"""What the API shows of server paths: none. Messages and results are cut to file names before they leave."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_ABS_PATH = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:)?(?:[/\\][\w.@+~-]+){2,}[/\\]?")


def no_paths(value: Any, names: Mapping[str, str] | None = None) -> Any:
    """``value`` with every absolute file path in its strings cut to the file's name (a server's folders are
    nobody's business); URLs keep their paths. ``names`` maps known paths (which may hold spaces) to the name
    to show, e.g. an upload's stored path to its upload name; they are replaced first, longest first.

    Example: ``{"source": "/srv/data/musique_100.json"}`` -> ``{"source": "musique_100.json"}``.
    """
    if isinstance(value, str):
        for path in sorted(names or {}, key=len, reverse=True):
            value = value.replace(path, (names or {})[path])
        return _ABS_PATH.sub(lambda m: re.split(r"[/\\]", m.group(0).rstrip("/\\"))[-1], value)
    if isinstance(value, dict):
        return {no_paths(k, names): no_paths(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [no_paths(v, names) for v in value]
    return value
