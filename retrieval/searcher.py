"""``Searcher``: the read API of the retrieval layer, exactly what ``Retriever``'s docstring promises. agents/
codes against it (not against ``Retriever``'s index, registry or graph), so a test or another backend can stand
in with these methods alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from core.embedder import Embedder
from core.types import Chunk, Hit
from retrieval.retriever import Neighbourhood, SearchResult


@runtime_checkable
class Searcher(Protocol):
    @property
    def paths(self) -> tuple[str, ...]:
        """The recall paths available (dense, sparse, graph, decompose; those without a backend are left out)."""
        ...

    async def search(self, workspace: str, query: str, k: int = 10, *, paths: Sequence[str] | None = None,
                     rerank: bool = True) -> list[Hit]:
        """The best ``k`` hits: every requested path, fused (RRF), reranked."""
        ...

    async def run(self, workspace: str, query: str, k: int = 10, *, paths: Sequence[str] | None = None,
                  rerank: bool = True, pool: int | None = None) -> SearchResult:
        """``search`` with per-path hits and timings, the fused pool and the rerank time."""
        ...

    async def recall(self, path: str, workspace: str, query: str, k: int) -> list[Hit]:
        """One recall path alone."""
        ...

    async def neighbourhood(self, workspace: str, entities: Sequence[str], hops: int = 1) -> Neighbourhood:
        """Entities around the linked seeds, their relations and the chunks that mention them."""
        ...

    def get_chunks(self, workspace: str, ids: Sequence[str]) -> list[Chunk]: ...

    def page_chunks(self, workspace: str, doc_id: str, page: int) -> list[Chunk]: ...

    def embedder_for(self, workspace: str) -> Embedder:
        """The embedder whose vectors the workspace's collection holds (its active fine-tuned model, if any)."""
        ...
