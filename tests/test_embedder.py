"""The ONNX Runtime embedding backend gives PyTorch's vectors (real packaged MiniLM, real export)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.embedder import SentenceTransformerEmbedder, packaged_minilm_path, tuned_embedder
from core.onnx_encoder import _layout, onnx_encoder

TEXTS = [
    "",
    "Qdrant stores dense and sparse vectors.",
    "The Eiffel Tower is in Paris. " * 60,  # longer than max_seq_length: truncated the same way
    "personalised PageRank over the entity graph",
    "ünïcödé — ½ ∑ 東京",
]


def test_onnx_matches_torch_and_is_cached(tmp_path: Path) -> None:
    cache = tmp_path / "onnx"
    torch_vecs = SentenceTransformerEmbedder(backend="torch").embed_batch(TEXTS)
    emb = SentenceTransformerEmbedder(backend="onnx", onnx_cache=cache, batch_size=2)
    onnx_vecs = emb.embed_batch(TEXTS)
    assert emb._onnx, "the packaged MiniLM must run on ONNX Runtime"
    assert onnx_vecs.shape == torch_vecs.shape == (len(TEXTS), 384)
    assert onnx_vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(onnx_vecs, axis=1), 1.0, atol=1e-5)
    assert float((onnx_vecs * torch_vecs).sum(1).min()) > 0.9999
    files = list(cache.glob("*.onnx"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    again = SentenceTransformerEmbedder(onnx_cache=cache).embed_batch(TEXTS[1:2])  # reuses the file
    assert files[0].stat().st_mtime_ns == mtime
    np.testing.assert_allclose(again[0], onnx_vecs[1], atol=1e-5)
    assert emb.embed_batch([]).shape == (0, 384)


def test_unsupported_folder_falls_back_to_torch(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(packaged_minilm_path(), model)
    modules = json.loads((model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (model / "modules.json").write_text(json.dumps(modules))
    assert _layout(model) is None
    assert onnx_encoder(model, tmp_path / "onnx") is None
    assert _layout(packaged_minilm_path()) == (256, "mean")


def test_export_failure_falls_back_to_torch(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "not-a-dir"
    cache.write_text("a file where the cache folder should be")
    emb = SentenceTransformerEmbedder(onnx_cache=cache)
    vecs = emb.embed_batch(TEXTS[1:3])
    assert emb._onnx is False and vecs.shape == (2, 384)
    assert "using PyTorch" in caplog.text


def test_tuned_embedder_caches_next_to_the_model(tmp_path: Path) -> None:
    like = SentenceTransformerEmbedder(backend="torch")
    emb = tuned_embedder(str(tmp_path / "v1" / "model"), like)
    assert emb.backend == "torch" and emb.onnx_cache == tmp_path / "v1" / "onnx"


def test_folder_saved_by_this_sentence_transformers_exports_too(tmp_path: Path) -> None:
    """Fine-tuned models are saved by sentence-transformers >= 6 (pooling_mode "mean", no max_seq_length in
    sentence_bert_config.json): they must run on ONNX Runtime with the same vectors as PyTorch."""
    saved = tmp_path / "saved"
    SentenceTransformerEmbedder(backend="torch").model.save(str(saved))
    assert _layout(saved) == (256, "mean")
    torch_vecs = SentenceTransformerEmbedder(str(saved), backend="torch").embed_batch(TEXTS)
    emb = SentenceTransformerEmbedder(str(saved), onnx_cache=tmp_path / "onnx")
    onnx_vecs = emb.embed_batch(TEXTS)
    assert emb._onnx
    assert float((onnx_vecs * torch_vecs).sum(1).min()) > 0.9999
