"""The index (Qdrant, registry), recall paths, fusion and rerank. Imports only ``core``."""

from retrieval.index import QdrantIndex, VectorIndex
from retrieval.registry import DocRecord, Registry
from retrieval.retriever import Neighbourhood, Retriever

__all__ = ["DocRecord", "Neighbourhood", "QdrantIndex", "Registry", "Retriever", "VectorIndex"]
