"""``GraphStore`` on Neo4j (the server backend). Needs the ``neo4j`` driver (``pip install neo4j``).

Model: ``(:Entity {ws, key, name, label, vec})``, ``(:Chunk {ws, id, doc_id})``,
``(e)-[:MENTIONED_IN]->(c)``, ``(a)-[:REL {rel, chunk_id, doc_id}]->(b)``, ``(:GraphVersion {ws, v})``.
Covered by the same contract suite as the SQLite store (tests/test_graph_store.py), which runs it only
under the ``integration`` marker when RAGENT_NEO4J_URL points at a server.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from core.errors import ConfigError, RetrievalError
from retrieval.graph import ChunkGraph, GraphView


class Neo4jGraphStore:
    def __init__(self, url: str, user: str = "neo4j", password: str = "", database: str | None = None) -> None:
        self.url, self.user, self.password, self.database = url, user, password, database
        self._driver: Any = None

    @property
    def driver(self) -> Any:
        if self._driver is None:
            try:
                import neo4j
            except ImportError as e:
                raise ConfigError("RAGENT_NEO4J_URL is set but the `neo4j` driver is missing: pip install neo4j") from e
            self._driver = neo4j.GraphDatabase.driver(self.url, auth=(self.user, self.password))
            try:
                self._driver.verify_connectivity()
            except Exception as e:
                raise RetrievalError(f"cannot reach Neo4j at {self.url}: {e}") from e
            for q in ("CREATE INDEX ragent_entity IF NOT EXISTS FOR (e:Entity) ON (e.ws, e.key)",
                      "CREATE INDEX ragent_chunk IF NOT EXISTS FOR (c:Chunk) ON (c.ws, c.id)"):
                self._run(q)
        return self._driver

    def _run(self, query: str, **params: Any) -> list[Any]:
        records, _, _ = self.driver.execute_query(query, params, database_=self.database)
        return list(records)

    def close(self) -> None:
        if self._driver is not None:
            self._driver.close()
            self._driver = None

    def _bump(self, ws: str) -> None:
        self._run("MERGE (g:GraphVersion {ws: $ws}) SET g.v = $v", ws=ws, v=time.time_ns())

    def version(self, workspace: str) -> int:
        rows = self._run("MATCH (g:GraphVersion {ws: $ws}) RETURN g.v AS v", ws=workspace)
        return int(rows[0]["v"]) if rows else 0

    def upsert(self, workspace: str, graphs: Sequence[ChunkGraph]) -> None:
        if not graphs:
            return
        self.delete_chunks(workspace, [g.chunk_id for g in graphs], prune=False)
        rows = [{"chunk_id": g.chunk_id, "doc_id": g.doc_id,
                 "entities": [{"key": e.key, "name": e.name, "label": e.label} for e in g.entities],
                 "relations": [{"src": r.src, "rel": r.rel, "dst": r.dst} for r in g.relations]} for g in graphs]
        self._run(
            """UNWIND $rows AS row
            MERGE (c:Chunk {ws: $ws, id: row.chunk_id}) SET c.doc_id = row.doc_id
            WITH c, row UNWIND row.entities AS ent
            MERGE (e:Entity {ws: $ws, key: ent.key}) ON CREATE SET e.name = ent.name, e.label = ent.label
            MERGE (e)-[:MENTIONED_IN]->(c)""", rows=rows, ws=workspace)
        self._run(
            """UNWIND $rows AS row UNWIND row.relations AS r
            MATCH (a:Entity {ws: $ws, key: r.src}), (b:Entity {ws: $ws, key: r.dst})
            MERGE (a)-[:REL {rel: r.rel, chunk_id: row.chunk_id, doc_id: row.doc_id}]->(b)""",
            rows=rows, ws=workspace)
        self._bump(workspace)

    def _prune(self, ws: str) -> None:
        self._run("MATCH (c:Chunk {ws: $ws}) WHERE NOT (c)<-[:MENTIONED_IN]-() DETACH DELETE c", ws=ws)
        self._run("MATCH (e:Entity {ws: $ws}) WHERE NOT (e)-[:MENTIONED_IN]->() DETACH DELETE e", ws=ws)

    def delete_doc(self, workspace: str, doc_id: str) -> None:
        self._run("MATCH ()-[r:REL {doc_id: $doc}]->(:Entity {ws: $ws}) DELETE r", ws=workspace, doc=doc_id)
        self._run("MATCH (c:Chunk {ws: $ws, doc_id: $doc}) DETACH DELETE c", ws=workspace, doc=doc_id)
        self._prune(workspace)
        self._bump(workspace)

    def delete_chunks(self, workspace: str, chunk_ids: Sequence[str], prune: bool = True) -> None:
        ids = list(chunk_ids)
        self._run("MATCH (:Entity {ws: $ws})-[r:REL]->() WHERE r.chunk_id IN $ids DELETE r", ws=workspace, ids=ids)
        self._run("MATCH (c:Chunk {ws: $ws}) WHERE c.id IN $ids DETACH DELETE c", ws=workspace, ids=ids)
        if prune:
            self._prune(workspace)
        self._bump(workspace)

    def view(self, workspace: str) -> GraphView:
        m = self._run("MATCH (e:Entity {ws: $ws})-[:MENTIONED_IN]->(c:Chunk) RETURN e.key AS k, c.id AS c",
                      ws=workspace)
        r = self._run("MATCH (a:Entity {ws: $ws})-[r:REL]->(b:Entity) RETURN DISTINCT a.key AS s, r.rel AS r, "
                      "b.key AS d", ws=workspace)
        n = self._run("MATCH (e:Entity {ws: $ws}) RETURN e.key AS k, e.name AS n", ws=workspace)
        return GraphView(tuple((x["k"], x["c"]) for x in m), tuple((x["s"], x["r"], x["d"]) for x in r),
                         {x["k"]: x["n"] for x in n})

    def neighbourhood(self, workspace: str, seeds: Sequence[str], hops: int = 1) -> GraphView:
        keys = self._run(
            f"""MATCH (s:Entity {{ws: $ws}}) WHERE s.key IN $seeds
            OPTIONAL MATCH (s)-[:REL*0..{max(int(hops), 0)}]-(n:Entity {{ws: $ws}})
            RETURN collect(DISTINCT s.key) + collect(DISTINCT n.key) AS keys""", ws=workspace, seeds=list(seeds))
        keep = sorted({k for k in (keys[0]["keys"] if keys else []) if k})
        m = self._run("MATCH (e:Entity {ws: $ws})-[:MENTIONED_IN]->(c:Chunk) WHERE e.key IN $keys "
                      "RETURN e.key AS k, c.id AS c", ws=workspace, keys=keep)
        r = self._run("MATCH (a:Entity {ws: $ws})-[r:REL]->(b:Entity) WHERE a.key IN $keys AND b.key IN $keys "
                      "RETURN DISTINCT a.key AS s, r.rel AS r, b.key AS d", ws=workspace, keys=keep)
        n = self._run("MATCH (e:Entity {ws: $ws}) WHERE e.key IN $keys RETURN e.key AS k, e.name AS n",
                      ws=workspace, keys=keep)
        return GraphView(tuple((x["k"], x["c"]) for x in m), tuple((x["s"], x["r"], x["d"]) for x in r),
                         {x["k"]: x["n"] for x in n})

    def missing_vectors(self, workspace: str, keys: Iterable[str]) -> list[str]:
        want = sorted(set(keys))
        rows = self._run("MATCH (e:Entity {ws: $ws}) WHERE e.key IN $keys AND e.vec IS NOT NULL RETURN e.key AS k",
                         ws=workspace, keys=want)
        have = {x["k"] for x in rows}
        return [k for k in want if k not in have]

    def add_entity_vectors(self, workspace: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        rows = [{"k": k, "v": [float(x) for x in v]} for k, v in zip(keys, np.asarray(vectors), strict=True)]
        self._run("UNWIND $rows AS row MATCH (e:Entity {ws: $ws, key: row.k}) SET e.vec = row.v",
                  ws=workspace, rows=rows)
        self._bump(workspace)

    def entity_vectors(self, workspace: str) -> tuple[list[str], np.ndarray]:
        rows = self._run("MATCH (e:Entity {ws: $ws}) WHERE e.vec IS NOT NULL RETURN e.key AS k, e.vec AS v",
                         ws=workspace)
        if not rows:
            return [], np.zeros((0, 0), dtype=np.float32)
        return [x["k"] for x in rows], np.asarray([x["v"] for x in rows], dtype=np.float32)
