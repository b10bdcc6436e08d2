"""Runtime builds each shared part once and hands the same object to the retriever and the writer; close()
closes what it built; the Retriever is a Searcher (the Protocol agents/ depend on)."""

from __future__ import annotations

from app.runtime import Runtime
from core.settings import Settings
from retrieval.searcher import Searcher


def test_retriever_and_writer_share_graph_models_and_extractor(fake_runtime: Runtime) -> None:
    rt = fake_runtime
    r, w = rt.retriever, rt.writer
    assert r.graph is rt.graph and w.graph is rt.graph
    assert r.active_models is rt.active_models
    assert r.extractor is rt.extractor and w.extractor is rt.extractor  # spaCy loads once (graph_extractor=spacy)
    assert w.index is rt.index and r.index is rt.index
    assert rt.ingestor().writer is w  # every ingestor writes through the one writer
    assert isinstance(r, Searcher)


def test_close_closes_what_it_built(fake_runtime: Runtime) -> None:
    rt = fake_runtime
    rt.graph.view("w")  # opens the SQLite graph
    rt.memory.list("tip", "w")  # opens the memory store
    store = rt.memory.store
    rt.close()
    assert rt.graph._conn is None  # type: ignore[attr-defined]
    assert "memory" not in rt.__dict__  # its connection is closed: a later use builds a fresh one
    try:
        store.conn.execute("select 1")
        raise AssertionError("memory connection still open")
    except Exception as e:  # sqlite3.ProgrammingError: closed database
        assert "closed" in str(e)
    assert rt.memory.list("tip", "w") == []  # usable again


def test_close_leaves_overrides_to_the_caller(settings: Settings) -> None:
    from langgraph.store.memory import InMemoryStore

    from agents import ExperienceMemory

    mem = ExperienceMemory(InMemoryStore())
    rt = Runtime(settings, overrides={"memory": mem})
    assert rt.memory is mem
    rt.close()
    assert mem.list("tip", "w") == []
