"""IndexWriter: the one write path into the index for a workspace's chunks (ingest and finetune use it).

``write`` embeds (dense with the workspace's embedder, sparse BM25) and upserts, then extracts the chunks'
entities and relations into the graph store and embeds new entity names (for query-time linking), so every
writer of chunks keeps vectors and graph in step. Ingest's deferred graph stage splits it in two:
``write_vectors`` (what makes a document searchable) now, ``write_graph`` (extraction, graph upsert, entity-name
vectors) later; ``write_graph`` is idempotent (the store replaces a chunk's mentions and relations), so a stage
cut short by a crash is simply run again. Entity names that already have a vector are never embedded again.
``delete_doc`` removes a document's vectors and its graph mentions/relations (entities nothing mentions any more
go too).

The graph store is handed in (``graph=None``: vectors only, no extraction); the writer never builds one, so
``app.runtime.Runtime`` (through ``retrieval.factory.build_writer``) is the one place that does and the retriever
reads the very store the writer writes. Without an ``extractor`` the spaCy one is built on first extraction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from core.embedder import Embedder
from core.types import Chunk
from retrieval.extract import Extractor, SpacyExtractor
from retrieval.graph import ChunkGraph, GraphStore
from retrieval.index import VectorIndex
from retrieval.sparse import bm25_document

logger = logging.getLogger(__name__)


class IndexWriter:
    def __init__(
        self, index: VectorIndex, embedder_for: Callable[[str], Embedder], batch: int = 64, *,
        graph: GraphStore | None, extractor: Extractor | None = None,
    ) -> None:
        self.index = index
        self.embedder_for = embedder_for
        self.batch = batch
        self.graph = graph  # None: vectors only
        self._extractor = extractor

    @property
    def extractor(self) -> Extractor:
        if self._extractor is None:
            self._extractor = SpacyExtractor()
        return self._extractor

    def write(self, workspace: str, chunks: Sequence[Chunk], progress: Callable[[int], None] | None = None) -> None:
        """Embed + upsert each batch; its entity extraction (spaCy, one core) runs in a worker thread meanwhile,
        overlapping the embedding (ONNX Runtime / PyTorch release the GIL). On 2 cores with PyTorch embeddings:
        asymptote.pdf 46.1 -> 37.5 s, the shared PDFs 89.4 -> 85.5 s (docs/INGEST.md)."""
        embedder = self.embedder_for(workspace)
        graph = self.graph
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract") as pool:
            for i in range(0, len(chunks), self.batch):
                part = list(chunks[i : i + self.batch])
                extracted = pool.submit(self.extractor.extract, part) if graph is not None else None
                texts = [c.index_text for c in part]
                dense = embedder.embed_batch(texts)
                sparse = [bm25_document(t) for t in texts]
                self.index.upsert(workspace, part, dense, sparse)
                if graph is not None and extracted is not None:
                    self._write_graph(graph, embedder, workspace, extracted.result())
                if progress is not None:
                    progress(len(part))

    def write_vectors(self, workspace: str, chunks: Sequence[Chunk],
                      progress: Callable[[int], None] | None = None) -> None:
        """Dense + sparse vectors only: the document is searchable once this returns (no graph work)."""
        embedder = self.embedder_for(workspace)
        for i in range(0, len(chunks), self.batch):
            part = list(chunks[i : i + self.batch])
            texts = [c.index_text for c in part]
            self.index.upsert(workspace, part, embedder.embed_batch(texts), [bm25_document(t) for t in texts])
            if progress is not None:
                progress(len(part))

    def write_graph(self, workspace: str, chunks: Sequence[Chunk],
                    progress: Callable[[int], None] | None = None) -> None:
        """The graph of chunks already written by ``write_vectors``: entities, relations and vectors of new entity
        names. Extraction of the next batch (spaCy) overlaps the upsert and name embedding of this one."""
        graph = self.graph
        if graph is None:
            if progress is not None:
                progress(len(chunks))
            return
        embedder = self.embedder_for(workspace)
        parts = [list(chunks[i : i + self.batch]) for i in range(0, len(chunks), self.batch)]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract") as pool:
            nxt = pool.submit(self.extractor.extract, parts[0]) if parts else None
            for j, part in enumerate(parts):
                assert nxt is not None
                graphs = nxt.result()
                nxt = pool.submit(self.extractor.extract, parts[j + 1]) if j + 1 < len(parts) else None
                self._write_graph(graph, embedder, workspace, graphs)
                if progress is not None:
                    progress(len(part))

    def _write_graph(self, graph: GraphStore, embedder: Embedder, workspace: str, graphs: list[ChunkGraph]) -> None:
        graph.upsert(workspace, graphs)
        # names of named entities (not common-noun phrases, which query n-grams match exactly) get vectors
        names = {e.key: e.name for g in graphs for e in g.entities if e.label not in ("NOUN", "DATE")}
        new = graph.missing_vectors(workspace, names)
        if new:
            graph.add_entity_vectors(workspace, new, embedder.embed_batch([names[k] for k in new]))

    def delete_doc(self, workspace: str, doc_id: str) -> None:
        self.index.delete_doc(workspace, doc_id)
        graph = self.graph
        if graph is not None:
            graph.delete_doc(workspace, doc_id)
