"""The packaged ms-marco MiniLM cross-encoder (real ONNX model) and the reranker factory."""

from __future__ import annotations

import pytest

from retrieval.rerank import OnnxCrossEncoder, SentenceTransformersReranker, reranker_for_model


@pytest.mark.slow
def test_real_onnx_reranker_orders_relevant_first() -> None:
    r = OnnxCrossEncoder(max_length=128)
    passages = [
        "Bananas are a yellow fruit rich in potassium.",
        "The NW-200 inverter has a rated continuous output of 5 kW and a 10-year warranty.",
        "Paris is the capital and largest city of France.",
    ]
    scores = r.score("What is the rated output of the NW-200 inverter?", passages)
    assert len(scores) == 3
    assert scores[1] == max(scores) and scores[1] > scores[0] + 5
    assert r.score("anything", []) == []


def test_factory_chooses_backend(tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(reranker_for_model("ms-marco-minilm"), OnnxCrossEncoder)
    (tmp_path / "model.onnx").write_bytes(b"")
    onnx = reranker_for_model(str(tmp_path))
    assert isinstance(onnx, OnnxCrossEncoder) and onnx.model_dir == tmp_path
    assert isinstance(reranker_for_model("BAAI/bge-reranker-v2-m3"), SentenceTransformersReranker)
