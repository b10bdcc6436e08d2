"""GraphStore contract suite, run against every backend: embedded SQLite always, Neo4j when
RAGENT_TEST_NEO4J_URL (or RAGENT_NEO4J_URL) points at a server (``integration`` marker)."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from retrieval.graph import ChunkGraph, Entity, GraphStore, Relation
from retrieval.graph_sqlite import SqliteGraphStore

NEO4J_URL = os.environ.get("RAGENT_TEST_NEO4J_URL") or os.environ.get("RAGENT_NEO4J_URL")


@pytest.fixture(params=["sqlite", pytest.param("neo4j", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    if request.param == "sqlite":
        s: GraphStore = SqliteGraphStore(tmp_path / "graph.db")
    else:
        if not NEO4J_URL:
            pytest.skip("no Neo4j server: set RAGENT_TEST_NEO4J_URL (user/password via RAGENT_NEO4J_USER/PASSWORD)")
        from retrieval.graph_neo4j import Neo4jGraphStore

        s = Neo4jGraphStore(NEO4J_URL, os.environ.get("RAGENT_NEO4J_USER", "neo4j"),
                            os.environ.get("RAGENT_NEO4J_PASSWORD", ""))
    yield s
    s.close()


def E(key: str) -> Entity:
    return Entity(key, key.title(), "X")


def cg(chunk: str, doc: str, *keys: str) -> ChunkGraph:
    rels = tuple(Relation(a, "co_occurs", b) for a, b in itertools.pairwise(keys))
    return ChunkGraph(chunk, doc, tuple(E(k) for k in keys), rels)


def test_upsert_view_neighbourhood_delete(store: GraphStore) -> None:
    ws = "w" + uuid.uuid4().hex[:8]
    v0 = store.version(ws)
    store.upsert(ws, [cg("c1", "d1", "alice", "bob"), cg("c2", "d1", "bob", "carol"), cg("c3", "d2", "carol", "dave")])
    assert store.version(ws) != v0
    view = store.view(ws)
    assert set(view.mentions) >= {("alice", "c1"), ("bob", "c1"), ("dave", "c3")}
    assert len(view.names) == 4
    nb1 = store.neighbourhood(ws, ["alice"], hops=1)
    assert set(nb1.names) == {"alice", "bob"}
    assert {c for _, c in nb1.mentions} == {"c1", "c2"}
    nb2 = store.neighbourhood(ws, ["alice"], hops=2)
    assert set(nb2.names) == {"alice", "bob", "carol"}
    # re-upserting a chunk replaces its mentions
    store.upsert(ws, [cg("c1", "d1", "alice", "erin")])
    assert ("bob", "c1") not in set(store.view(ws).mentions)
    store.delete_doc(ws, "d1")
    view = store.view(ws)
    assert {c for _, c in view.mentions} == {"c3"}
    assert set(view.names) == {"carol", "dave"}  # entities nothing mentions are gone
    store.delete_chunks(ws, ["c3"])
    assert store.view(ws).mentions == ()


def test_entity_vectors(store: GraphStore) -> None:
    ws = "w" + uuid.uuid4().hex[:8]
    store.upsert(ws, [cg("c1", "d1", "alice", "bob")])
    assert store.missing_vectors(ws, ["alice", "bob"]) == ["alice", "bob"]
    store.add_entity_vectors(ws, ["alice"], np.ones((1, 4), dtype=np.float32))
    assert store.missing_vectors(ws, ["alice", "bob"]) == ["bob"]
    keys, mat = store.entity_vectors(ws)
    assert keys == ["alice"] and mat.shape == (1, 4)
    store.delete_doc(ws, "d1")
    assert store.entity_vectors(ws)[0] == []
