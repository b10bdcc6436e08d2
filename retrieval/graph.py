"""The GraphStore seam: the graph's types and the Protocol every backend implements (the embedded default
is ``retrieval.graph_sqlite``, the server backend ``retrieval.graph_neo4j``; ``retrieval.factory`` picks one).

The graph has two kinds of node: entities (keyed by their normalised name) and chunks. Edges:
- mentions: entity -> chunk (provenance: which chunk, of which document, names the entity);
- relations: entity -rel-> entity, each with the chunk it came from (co-occurrence by default, LLM triples
  when the LLM extractor is on).
Deleting a document removes its mentions and relations, then the entities nothing mentions any more.
``version(ws)`` changes on every write so readers can cache derived structures (the PPR matrix, the entity
embedding matrix) safely.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Entity:
    key: str  # normalised name: the node id
    name: str  # surface form first seen
    label: str = ""  # spaCy NER label, NOUN for noun chunks, TITLE for a document title


@dataclass(frozen=True)
class Relation:
    src: str  # entity key
    rel: str
    dst: str  # entity key


@dataclass(frozen=True)
class ChunkGraph:
    """What extraction found in one chunk."""

    chunk_id: str
    doc_id: str
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()


@dataclass(frozen=True)
class GraphView:
    """A whole workspace graph, as edge lists (what PPR and the neighbourhood need)."""

    mentions: tuple[tuple[str, str], ...]  # (entity key, chunk id)
    relations: tuple[tuple[str, str, str], ...]  # (src key, rel, dst key)
    names: dict[str, str]  # entity key -> display name


class GraphStore(Protocol):
    """Upsert chunk graphs, read a workspace's graph, delete by document or chunks."""

    def upsert(self, workspace: str, graphs: Sequence[ChunkGraph]) -> None: ...
    def view(self, workspace: str) -> GraphView: ...
    def neighbourhood(self, workspace: str, seeds: Sequence[str], hops: int = 1) -> GraphView: ...
    def delete_doc(self, workspace: str, doc_id: str) -> None: ...
    def delete_chunks(self, workspace: str, chunk_ids: Sequence[str]) -> None: ...
    def version(self, workspace: str) -> int: ...
    def entity_vectors(self, workspace: str) -> tuple[list[str], np.ndarray]: ...
    def add_entity_vectors(self, workspace: str, keys: Sequence[str], vectors: np.ndarray) -> None: ...
    def missing_vectors(self, workspace: str, keys: Iterable[str]) -> list[str]: ...
    def close(self) -> None: ...
