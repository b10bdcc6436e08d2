from pathlib import Path

from scripts.gen_cli_docs import render


def test_cli_docs_in_sync() -> None:
    path = Path(__file__).resolve().parent.parent / "docs" / "CLI.md"
    assert path.read_text() == render(), "run: .venv/bin/python scripts/gen_cli_docs.py"
