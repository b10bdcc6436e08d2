"""Hot swap: re-embed the workspace into a NEW collection, then move the alias atomically; and rollback.

Searches never see a half-built index: until ``point_alias`` runs they read the old collection, after it the
new one, and both hold every chunk. The active-model record (``retrieval.active_model``) is written right
after the alias moves, so ``Retriever.embedder_for`` (queries and ingest) switches to the new model.
Both models have the same dimension, so a query embedded in between still runs (it only ranks a little
worse for that instant). Chunks written to the old collection while the new one is being filled are not
copied: do not ingest into a workspace during its swap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.errors import ConfigError
from finetune.corpus import Corpus
from retrieval.active_model import ActiveModels, ModelVersion, drop_collection, next_collection
from retrieval.index import VectorIndex

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def swap_in(
    index: VectorIndex, active: ActiveModels, workspace: str, corpus: Corpus, dense: np.ndarray, *,
    version: int, model_dir: Path, metrics: dict[str, float], progress: Progress | None = None,
) -> ModelVersion:
    """Fill a new collection with ``dense`` (+ the stored sparse vectors and payloads); point the alias at it."""
    previous = index.physical(workspace)
    if previous is None:
        raise ConfigError(f"workspace {workspace!r} has no collection to swap")
    name = next_collection(index, workspace)
    index.create_collection(name, int(dense.shape[1]))
    step = 256
    try:
        for i in range(0, len(corpus.chunks), step):
            index.upsert(workspace, corpus.chunks[i : i + step], dense[i : i + step],
                         corpus.sparse[i : i + step], collection=name)
            if progress is not None:
                progress(min(i + step, len(corpus.chunks)), len(corpus.chunks))
        index.optimize(workspace, collection=name)  # build HNSW before searches move over
    except Exception:
        drop_collection(index, name)
        raise
    index.point_alias(workspace, name)
    mv = ModelVersion(workspace=workspace, version=version, model_dir=str(model_dir), collection=name,
                      previous_collection=previous, metrics=metrics)
    active.set(workspace, mv)
    logger.info("workspace %s now searches %s with model v%d", workspace, name, version)
    return mv


def rollback(index: VectorIndex, active: ActiveModels, workspace: str) -> ModelVersion | None:
    """Point the alias back at the previous collection and model; drop the abandoned collection.

    Returns the version now active (None: the default model). Raises ConfigError when nothing was swapped.
    """
    current = active.get(workspace)
    if current is None or not current.previous_collection:
        raise ConfigError(f"workspace {workspace!r} uses its original model: nothing to roll back")
    index.point_alias(workspace, current.previous_collection)
    active.pop(workspace)
    if index.physical(workspace) != current.collection:
        drop_collection(index, current.collection)
    return active.get(workspace)
