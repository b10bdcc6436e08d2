from pathlib import Path

from scripts.gen_cli_docs import render


def test_cli_docs_in_sync() -> None:
    path = Path(__file__).resolve().parent.parent / "docs" / "CLI.md"
    assert path.read_text() == render(), "run: .venv/bin/python scripts/gen_cli_docs.py"


def test_cli_docs_do_not_depend_on_the_checkout_path() -> None:
    # CI checks out elsewhere: a default rendered as an absolute path broke the sync test there
    root = Path(__file__).resolve().parent.parent
    assert str(root.parent) not in render()
