"""Regenerate .env.example from core.settings.Settings (tests/test_env_example.py checks it is in sync).
Run: .venv/bin/python scripts/gen_env_example.py"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.settings import Settings  # noqa: E402


def render() -> str:
    lines = ["# ragent settings: every variable, its default, and what it does. Copy to .env and edit.", ""]
    for name, f in Settings.model_fields.items():
        default = f.default
        value = "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        lines.append(f"# {f.description or name}")
        lines.append(f"RAGENT_{name.upper()}={value}")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    (ROOT / ".env.example").write_text(render())
    print("wrote .env.example")
