"""``Tunable``: exactly what finetune reads and rewrites of the retrieval layer, as a Protocol.

Finetune is a writer, unlike agents (which only search, ``retrieval.searcher.Searcher``): it reads a workspace's
stored vectors, fills a new collection and moves the alias (``VectorIndex``), re-embeds the entity names
(``GraphStore``), reads which documents are searchable and commits the active model (``ActiveModels``). Every
member is a retrieval seam or record, never a ``Retriever``; a ``Retriever`` satisfies it as it stands, and a
test or another backend can stand in with these members alone.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from core.embedder import Embedder
from retrieval.active_model import ActiveModels
from retrieval.graph import GraphStore
from retrieval.index import VectorIndex
from retrieval.rerank import Reranker


class DoneDocuments(Protocol):
    """The registry as finetune reads it: which documents of a workspace are searchable."""

    def done_doc_ids(self, workspace: str) -> set[str]: ...


@runtime_checkable
class Tunable(Protocol):
    @property
    def index(self) -> VectorIndex:
        """The vector index: stored vectors read, new collections filled, the alias moved."""
        ...

    @property
    def registry(self) -> DoneDocuments: ...

    @property
    def graph(self) -> GraphStore | None:
        """The entity graph whose name vectors follow the active model (None: no graph)."""
        ...

    @property
    def active_models(self) -> ActiveModels:
        """Each workspace's active fine-tuned model: the commit point of a swap or rollback."""
        ...

    @property
    def embedder(self) -> Embedder:
        """The default (not fine-tuned) embedder: the base of a workspace's first training run."""
        ...

    @property
    def reranker(self) -> Reranker | None:
        """The cross-encoder that filters false negatives while mining (None: no filter)."""
        ...

    def embedder_for(self, workspace: str) -> Embedder:
        """The embedder whose vectors the workspace's collection holds (its active fine-tuned model, if any)."""
        ...
