from pathlib import Path

from scripts.gen_env_example import render


def test_env_example_in_sync() -> None:
    path = Path(__file__).resolve().parent.parent / ".env.example"
    assert path.read_text() == render(), "run: .venv/bin/python scripts/gen_env_example.py"
