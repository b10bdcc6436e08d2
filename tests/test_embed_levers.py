"""Cheaper embedding (#18 item 3): batches by token length give the same vectors; the int8 ONNX model is close to
fp32, has its own identity, and a workspace embedded by one is never searched with the other's vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.runtime import Runtime
from core.embedder import EmbedderId, SentenceTransformerEmbedder, embedder_id, tuned_embedder
from core.errors import ConfigError
from core.settings import Settings
from retrieval.active_model import ActiveModels
from retrieval.registry import DocRecord
from tests.fakes import HashEmbedder

TEXTS = [
    "Qdrant stores dense and sparse vectors.",
    "The Eiffel Tower is in Paris. " * 60,  # truncated at max_seq_length
    "personalised PageRank over the entity graph",
    "A chunk of medium length about reciprocal rank fusion of dense, sparse and graph recall paths. " * 3,
    "",
    "ünïcödé — ½ ∑ 東京",
    "Short.",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def test_batches_by_token_length_give_the_unsorted_vectors(onnx_cache: Path) -> None:
    enc = SentenceTransformerEmbedder(onnx_cache=onnx_cache)._encoder()
    assert enc is not None
    sorted_vecs = enc.encode(TEXTS, batch_size=2)
    unsorted = enc.encode(TEXTS, batch_size=2, sort=False)
    one_by_one = np.concatenate([enc.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(sorted_vecs, unsorted, atol=1e-5)
    np.testing.assert_allclose(sorted_vecs, one_by_one, atol=1e-5)


def test_int8_is_close_to_fp32_and_cached_next_to_it(onnx_cache: Path) -> None:
    fp32 = SentenceTransformerEmbedder(onnx_cache=onnx_cache).embed_batch(TEXTS)
    emb = SentenceTransformerEmbedder(onnx_cache=onnx_cache, quant="int8")
    int8 = emb.embed_batch(TEXTS)
    assert int8.shape == fp32.shape and int8.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-5)
    cos = (int8 * fp32).sum(1)
    # close, yet other vectors (the empty text, [CLS][SEP] only, is the farthest: ~0.97)
    assert float(cos.mean()) >= 0.98 and float(cos.min()) >= 0.95 and float(cos.max()) < 0.99999
    assert float(np.delete(cos, TEXTS.index("")).min()) >= 0.98
    fp32_file, int8_file = sorted(onnx_cache.glob("*.onnx"), key=lambda p: len(p.name))
    assert int8_file.name == fp32_file.name.replace(".onnx", "-int8.onnx")
    assert int8_file.stat().st_size < fp32_file.stat().st_size / 2


def test_identity_names_the_quantisation() -> None:
    fp32, int8 = SentenceTransformerEmbedder(), SentenceTransformerEmbedder(quant="int8")
    assert fp32.identity == EmbedderId("minilm") != int8.identity == EmbedderId("minilm", "int8")
    assert SentenceTransformerEmbedder(backend="torch").identity == fp32.identity  # same vectors
    assert str(int8.identity) == "minilm (int8)"
    assert embedder_id(HashEmbedder()) is None
    assert tuned_embedder("/m/v1/model", int8).quant == "int8"  # a fine-tuned model keeps the workspace's mode
    with pytest.raises(ConfigError, match="RAGENT_EMBED_BACKEND=onnx"):
        SentenceTransformerEmbedder(backend="torch", quant="int8")


def test_int8_without_onnx_is_an_error_not_a_silent_fp32_fallback(tmp_path: Path) -> None:
    emb = SentenceTransformerEmbedder("no-such-model-folder", quant="int8", onnx_cache=tmp_path)
    with pytest.raises(ConfigError, match="RAGENT_EMBED_QUANT=none"):
        emb.embed_batch(["x"])


def test_settings_reach_the_embedder(tmp_path: Path) -> None:
    rt = Runtime(Settings(home=tmp_path, embed_quant="int8"))
    assert embedder_id(rt.embedder) == EmbedderId("minilm", "int8")
    rt.close()


def _runtime(home: Path, quant: str) -> Runtime:
    return Runtime(Settings(home=home), overrides={"embedder": SentenceTransformerEmbedder(quant=quant)})  # type: ignore[arg-type]


def _done(rt: Runtime, ws: str) -> None:
    rt.registry.put(DocRecord(ws, "d1", "a.txt", "a", "h1", "done", chunk_ids=("c1",)))


def test_a_workspace_keeps_the_mode_it_was_embedded_with(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rt = _runtime(home, "int8")
    rt.embedder_for("ws")  # the first write of an empty workspace records the mode
    _done(rt, "ws")
    assert ActiveModels.for_index(rt.settings.index).record("ws").embedder == EmbedderId("minilm", "int8")
    rt.embedder_for("ws")  # same mode: fine
    rt.close()
    other = _runtime(home, "none")
    with pytest.raises(ConfigError, match=r"holds vectors of minilm \(int8\).*RAGENT_EMBED_QUANT=int8 back.*re-ingest"):
        other.retriever.embedder_for("ws")
    other.embedder_for("empty")  # fp32 on a workspace without a record: nothing is written
    assert ActiveModels.for_index(other.settings.index).workspaces() == ["ws"]
    other.close()


def test_a_workspace_embedded_before_the_record_is_fp32(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rt = _runtime(home, "none")
    _done(rt, "old")
    rt.embedder_for("old")
    rt.close()
    int8 = _runtime(home, "int8")
    with pytest.raises(ConfigError, match=r"holds vectors of an fp32 model.*RAGENT_EMBED_QUANT=none back"):
        int8.embedder_for("old")
    int8.registry.delete("old", "d1")  # documents deleted: the workspace may switch (re-ingest)
    int8.embedder_for("old")
    assert ActiveModels.for_index(int8.settings.index).record("old").embedder == EmbedderId("minilm", "int8")
    int8.close()
