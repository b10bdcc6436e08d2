"""Regenerate docs/CLI.md from the CLI's own --help (tests/test_cli_docs.py checks it is in sync).
Run: .venv/bin/python scripts/gen_cli_docs.py"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli import app  # noqa: E402


def _walk(cmd: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    out = [(path, cmd)]
    if getattr(cmd, "commands", None):
        for name in sorted(cmd.commands):
            out.extend(_walk(cmd.commands[name], [*path, name]))
    return out


def render() -> str:
    root = typer.main.get_command(app)
    parts = ["# ragent CLI reference", "", "Generated from `--help` by `scripts/gen_cli_docs.py`; do not edit.", ""]
    runner = CliRunner()
    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb", "_TYPER_FORCE_DISABLE_TERMINAL": "1"}
    for path, _cmd in _walk(root, ["ragent"]):
        text = runner.invoke(app, [*path[1:], "--help"], env=env, terminal_width=100, prog_name="ragent").output
        text = "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")
        parts += [f"## `{' '.join(path)}`", "", "```", text.rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    (ROOT / "docs" / "CLI.md").write_text(render())
    print("wrote docs/CLI.md")
