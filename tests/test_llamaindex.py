"""RagentRetriever under a real llama-index query engine: the example manual ingested by ragent's Ingestor into a
temp RAGENT_HOME (packaged MiniLM, Qdrant local mode, spaCy graph), then queried through
``RetrieverQueryEngine`` whose LLM is llama-index's ``MockLLM`` (it echoes its prompt, so the answer shows what
context the engine handed the model)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from llama_index.core import Document
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SemanticSplitterNodeParser
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode

from app.llamaindex import open_retriever
from app.runtime import Runtime
from core.settings import Settings
from retrieval.llamaindex import RagentEmbedding, RagentRetriever
from tests.fakes import HashEmbedder

WS = "li"


@pytest.fixture
def ingested(example_pdf: Path) -> str:
    """The example PDF ingested into workspace ``li`` (the runtime is closed again: the index is free)."""
    rt = Runtime(Settings.from_env())
    try:
        (res,) = rt.ingestor().ingest([example_pdf], WS)
    finally:
        rt.close()
    assert res.status == "ingested" and res.chunks > 0
    return res.doc_id


@pytest.mark.slow
def test_query_engine_over_ragent_retriever(ingested: str, example_pdf: Path) -> None:
    with open_retriever(WS, k=3) as retriever:
        assert isinstance(retriever, RagentRetriever)
        engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())
        response = engine.query("How much weight must the wall carry when mounting the inverter?")
        top = response.source_nodes[0]
        assert top.metadata["page"] == 2
        assert "22 kg" in top.node.get_content()
        assert top.metadata["doc_id"] == ingested
        assert top.metadata["source"] == str(example_pdf.resolve())
        assert top.metadata["kind"] in ("text", "table")
        assert top.metadata["title"]
        bbox = top.metadata["bbox"]
        assert bbox is not None and len(bbox) == 4 and bbox[0] < bbox[2] and bbox[1] < bbox[3]
        assert top.node.source_node is not None and top.node.source_node.node_id == ingested
        assert top.score is not None
        assert len(response.source_nodes) <= 3
        # the chunk text reached the model's prompt; the bbox did not
        assert "22 kg" in str(response)
        assert "bbox" not in top.node.get_content(MetadataMode.LLM)
        assert f"page: {top.metadata['page']}" in top.node.get_content(MetadataMode.LLM)

        errors = engine.query("What does error E07 mean?")
        assert errors.source_nodes[0].metadata["page"] == 3
        assert "E07" in errors.source_nodes[0].node.get_content()


@pytest.mark.slow
def test_async_query_and_sync_call_inside_a_running_loop(ingested: str) -> None:
    with open_retriever(WS, k=2, paths=("dense", "sparse"), rerank=False) as retriever:
        engine = RetrieverQueryEngine.from_args(retriever, llm=MockLLM())

        async def go() -> tuple[int | None, int | None]:
            response = await engine.aquery("What is the rated output of the NW-200?")
            nested = retriever.retrieve("What is the rated output of the NW-200?")  # sync, loop running
            return response.source_nodes[0].metadata["page"], nested[0].metadata["page"]

        assert asyncio.run(go()) == (1, 1)
        nodes = retriever.retrieve("What is the rated output of the NW-200?")
        assert len(nodes) == 2
        assert all(set(n.metadata["paths"]) <= {"dense", "sparse"} for n in nodes)


def test_ragent_embedding_drives_a_llama_index_parser() -> None:
    """ragent's Embedder as a llama-index BaseEmbedding: same vectors, usable by llama-index's semantic parser."""
    inner = HashEmbedder()
    emb = RagentEmbedding(inner)
    assert emb.get_text_embedding("pumps") == pytest.approx(inner.embed_batch(["pumps"])[0].tolist())
    assert emb.get_query_embedding("pumps") == emb.get_text_embedding("pumps")
    assert len(emb.get_text_embedding_batch(["a", "b", "c"])) == 3
    assert asyncio.run(emb.aget_query_embedding("pumps")) == emb.get_text_embedding("pumps")
    text = "Pumps move water. Pumps need seals. Pumps wear out. Taxes are due in April. Taxes fund roads."
    nodes = SemanticSplitterNodeParser.from_defaults(embed_model=emb).get_nodes_from_documents([Document(text=text)])
    assert "".join(n.get_content() for n in nodes).replace(" ", "") == text.replace(" ", "")
