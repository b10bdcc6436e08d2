"""Experience memory: CRUD, merging, search, counters, decay, SQLite persistence, and `ragent memory`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langgraph.store.memory import InMemoryStore
from typer.testing import CliRunner

from agents.memory import ExperienceMemory, store_from_url
from core.errors import ConfigError
from tests.fakes import HashEmbedder


@pytest.fixture(params=["memory", "sqlite"])
def mem(request: pytest.FixtureRequest, tmp_path: Path) -> ExperienceMemory:
    """The same contract over both embedded backends."""
    store = InMemoryStore() if request.param == "memory" else store_from_url(None, tmp_path / "m.db")
    return ExperienceMemory(store, HashEmbedder())


def test_put_get_list_delete(mem: ExperienceMemory) -> None:
    tid = mem.put("tips", "w", {"text": "Search distinctive names first.", "provenance": ["run1"]})
    item = mem.get("tips", "w", tid)
    assert item is not None and item["text"].startswith("Search") and item["provenance"] == ["run1"]
    assert item["uses"] == 0 and item["weight"] == 1.0
    assert [i["id"] for i in mem.list("tips", "w")] == [tid]
    assert mem.list("tips", "other") == [] and mem.list("shortcuts", "w") == []
    assert mem.delete("tips", "w", tid) and not mem.delete("tips", "w", tid)
    assert mem.get("tips", "w", tid) is None


def test_duplicates_merge_with_provenance(mem: ExperienceMemory) -> None:
    a = mem.put("tips", "w", {"text": "Search distinctive names first.", "provenance": ["run1"]})
    b = mem.put("tips", "w", {"text": "search  distinctive names FIRST", "provenance": ["run2"]})
    assert a == b and len(mem.list("tips", "w")) == 1
    assert mem.get("tips", "w", a)["provenance"] == ["run1", "run2"]  # type: ignore[index]


def test_search_ranks_by_similarity(mem: ExperienceMemory) -> None:
    mem.put("tips", "w", {"text": "For birth dates, search the person's name and read the first sentence."})
    mem.put("tips", "w", {"text": "Inverter warranty questions live in the service chapter."})
    top = mem.search("tips", "w", "How long is the inverter warranty?", limit=1)
    assert top and "warranty" in top[0]["text"] and top[0]["score"] > 0


def test_counters_and_decay(mem: ExperienceMemory) -> None:
    good = mem.put("tips", "w", {"text": "A tip that helps."})
    bad = mem.put("tips", "w", {"text": "A tip that misleads."})
    mem.record("tips", "w", good, success=True, run_id="r1")
    mem.record("tips", "w", bad, success=False, run_id="r1")
    g = mem.get("tips", "w", good)
    assert g is not None and g["uses"] == 1 and g["successes"] == 1 and g["provenance"] == ["r1"]
    for _ in range(12):
        dropped = mem.decay("w", used={good}, factor=0.8, min_weight=0.2)
        if dropped:
            break
    assert dropped == [bad] and mem.get("tips", "w", good) is not None


def test_unknown_kind_and_url() -> None:
    m = ExperienceMemory(InMemoryStore())
    with pytest.raises(ConfigError, match="unknown memory kind"):
        m.list("recipes", "w")
    with pytest.raises(ConfigError, match="unsupported"):
        store_from_url("redis://x", Path("/tmp/x.db"))


def test_sqlite_store_persists(tmp_path: Path) -> None:
    m1 = ExperienceMemory(store_from_url(None, tmp_path / "m.db"))
    tid = m1.put("shortcuts", "w", {"name": "two_hop", "params": ["question"], "description": "search twice",
                                    "steps": [{"id": "s1", "tool": "search", "input": {"query": "{question}"}}]})
    m2 = ExperienceMemory(store_from_url(None, tmp_path / "m.db"))
    assert m2.get("shortcuts", "w", tid)["name"] == "two_hop"  # type: ignore[index]


def test_cli_memory_list_show_edit_delete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app import cli

    monkeypatch.setenv("RAGENT_HOME", str(tmp_path / "var"))
    m = ExperienceMemory(store_from_url(None, tmp_path / "var" / "memory.db"))
    tid = m.put("tips", "w", {"text": "Prefer the manual's tables for ratings.", "provenance": ["r9"]})
    runner = CliRunner()
    r = runner.invoke(cli.app, ["memory", "list", "-w", "w", "--json"])
    assert r.exit_code == 0, r.output
    assert [i["id"] for i in json.loads(r.stdout)["items"]] == [tid]
    r = runner.invoke(cli.app, ["memory", "show", tid, "-w", "w", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["provenance"] == ["r9"]
    r = runner.invoke(cli.app, ["memory", "edit", tid, "--text", "Read the ratings table.", "-w", "w"])
    assert r.exit_code == 0 and m.get("tips", "w", tid)["text"] == "Read the ratings table."  # type: ignore[index]
    assert runner.invoke(cli.app, ["memory", "list", "-w", "w", "--kind", "shortcuts"]).exit_code == 0
    assert runner.invoke(cli.app, ["memory", "delete", tid, "-w", "w"]).exit_code == 0
    r = runner.invoke(cli.app, ["memory", "delete", tid, "-w", "w"])
    assert r.exit_code == 1 and "no memory item" in r.output
