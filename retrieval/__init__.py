"""The index (Qdrant or Qdrant Edge, registry), recall paths, fusion and rerank. Imports only ``core``."""

from retrieval.index import QdrantIndex, VectorIndex
from retrieval.index_edge import EdgeIndex
from retrieval.registry import DocRecord, Registry
from retrieval.retriever import Neighbourhood, Retriever

__all__ = ["DocRecord", "EdgeIndex", "Neighbourhood", "QdrantIndex", "Registry", "Retriever", "VectorIndex"]
