"""Hot swap: re-embed the workspace into a NEW collection, then move the alias atomically; rollback; recover.

The active-model record (``retrieval.active_model``) is the truth: it names the model, the collection the
alias must point at and the model the graph's entity-name vectors were embedded with. Both swap and rollback
first make the target collection hold every searchable chunk embedded with the target model
(``sync_collection``), then write the record (the commit point), then let ``recover`` move the alias,
re-embed the entity names and drop abandoned collections. A process killed at any step leaves either the old
state (rerun) or a committed record that ``recover`` (run by the next swap/rollback, ``ragent finetune
recover``, or at start-up) completes; upserts are by content-hash id, so a rerun never duplicates.

Searches never see a half-built index: until the alias moves they read the old collection, after it the new
one. Both models have the same dimension, so a query embedded in between still runs (it only ranks a little
worse for that instant). A document ingested between the final sync and the alias move lands in the old
collection only (``recover`` does not copy it; a later rollback's sync does): do not ingest into a workspace
during its swap.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.embedder import Embedder, tuned_embedder
from core.errors import ConfigError, RagentError
from core.types import Chunk
from finetune.corpus import Corpus
from finetune.tunable import Tunable
from retrieval.active_model import ModelVersion, collections, drop_collection, model_key, next_collection
from retrieval.sparse import bm25_document

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
STEP = 256  # chunks per upsert while filling a collection
EMBED_BATCH = 64


def embedder_of(retriever: Tunable, version: ModelVersion | None) -> Embedder:
    """The embedder of a model version (None: the workspace default)."""
    return retriever.embedder if version is None else tuned_embedder(version.model_dir, retriever.embedder)


def sync_collection(retriever: Tunable, workspace: str, collection: str, embedder: Embedder,
                    progress: Progress | None = None) -> int:
    """Make the physical ``collection`` hold exactly the searchable chunks (those of ``done`` documents in the
    collection the alias points at), with ``embedder``'s dense vectors: documents it lacks or holds in another
    version are re-embedded, documents that are not searchable any more are deleted. Returns the number of
    chunks embedded; idempotent."""
    index = retriever.index
    if collection == index.physical(workspace):
        raise ValueError(f"{collection} is the collection searches read: sync another one")
    done = retriever.registry.done_doc_ids(workspace)
    source: dict[str, list[Chunk]] = {}
    for rec in index.scroll(workspace):
        if rec.payload and rec.payload.get("doc_id") in done:
            c = Chunk.from_payload(rec.payload)
            source.setdefault(c.doc_id, []).append(c)
    held: dict[str, set[str]] = {}
    for rec in index.scroll(workspace, collection=collection):
        if rec.payload:
            held.setdefault(str(rec.payload.get("doc_id")), set()).add(str(rec.payload.get("id")))
    todo: list[Chunk] = []
    for doc, ids in held.items():
        if doc not in source or ids != {c.id for c in source[doc]}:
            index.delete_doc(workspace, doc, collection=collection)
    for doc, chunks in source.items():
        if held.get(doc) != {c.id for c in chunks}:
            todo.extend(chunks)
    missing = done - source.keys()
    if missing:  # a registry entry without chunks anywhere: nothing to copy (empty documents are legitimate)
        logger.info("workspace %s: %d done documents have no chunks in %s", workspace, len(missing),
                    index.physical(workspace))
    for i in range(0, len(todo), EMBED_BATCH):
        part = todo[i : i + EMBED_BATCH]
        texts = [c.index_text for c in part]
        index.upsert(workspace, part, embedder.embed_batch(texts), [bm25_document(t) for t in texts],
                     collection=collection)
        if progress is not None:
            progress(min(i + EMBED_BATCH, len(todo)), len(todo))
    if todo:
        logger.info("workspace %s: re-embedded %d chunks into %s", workspace, len(todo), collection)
    return len(todo)


def reembed_entities(retriever: Tunable, workspace: str, embedder: Embedder) -> int:
    """Replace every entity-name vector of the workspace's graph with ``embedder``'s; returns how many."""
    graph = retriever.graph
    if graph is None:
        return 0
    keys, _ = graph.entity_vectors(workspace)
    if not keys:
        return 0
    names = graph.view(workspace).names
    for i in range(0, len(keys), EMBED_BATCH):
        part = keys[i : i + EMBED_BATCH]
        graph.add_entity_vectors(workspace, part, embedder.embed_batch([names.get(k, k) for k in part]))
    return len(keys)


def recover(retriever: Tunable, workspace: str) -> None:
    """Make the index agree with the active-model record: point the alias at the recorded collection, re-embed
    the entity names when another model embedded them, drop collections nothing refers to (a swap killed while
    filling one). Cheap when all agree; run before every swap/rollback and after a crash."""
    index, active = retriever.index, retriever.active_models
    rec = active.record(workspace)
    names = set(index.collection_names())
    if rec.alias and index.physical(workspace) != rec.alias:
        if rec.alias not in names:
            raise ConfigError(f"workspace {workspace!r}: the recorded collection {rec.alias} is missing")
        index.point_alias(workspace, rec.alias)
        logger.info("workspace %s: alias re-pointed at %s", workspace, rec.alias)
    keep = {index.physical(workspace)} | {v.collection for v in rec.history} | {
        v.previous_collection for v in rec.history}
    for name in collections(index, workspace):
        if name not in keep:
            drop_collection(index, name)
            logger.info("workspace %s: dropped abandoned collection %s", workspace, name)
    key = model_key(rec.history[-1] if rec.history else None)
    if rec.entity_model != key:
        n = reembed_entities(retriever, workspace, retriever.embedder_for(workspace))
        active.set_entity_model(workspace, key)
        logger.info("workspace %s: re-embedded %d entity names with %s", workspace, n, key or "the default model")


def recover_all(retriever: Tunable) -> list[str]:
    """``recover`` every workspace with a record (call at start-up, before serving); returns those recovered.
    A workspace that cannot be (its recorded collection is gone) is logged and skipped, not fatal."""
    done = []
    for ws in retriever.active_models.workspaces():
        try:
            recover(retriever, ws)
        except RagentError as e:
            logger.error("workspace %s: cannot recover the fine-tune state: %s", ws, e)
            continue
        done.append(ws)
    return done


def swap_in(
    retriever: Tunable, workspace: str, corpus: Corpus, dense: np.ndarray, *, version: int, model_dir: Path,
    metrics: dict[str, float], embedder: Embedder | None = None, progress: Progress | None = None,
) -> ModelVersion:
    """Fill a new collection with ``dense`` (+ the stored sparse vectors and payloads) and whatever was ingested
    since ``corpus`` was read (embedded with ``embedder``, default the model in ``model_dir``); commit the new
    version; move the alias and re-embed the entity names."""
    index = retriever.index
    recover(retriever, workspace)
    previous = index.physical(workspace)
    if previous is None:
        raise ConfigError(f"workspace {workspace!r} has no collection to swap")
    name = next_collection(index, workspace)
    index.create_collection(name, int(dense.shape[1]))
    try:
        for i in range(0, len(corpus.chunks), STEP):
            index.upsert(workspace, corpus.chunks[i : i + STEP], dense[i : i + STEP],
                         corpus.sparse[i : i + STEP], collection=name)
            if progress is not None:
                progress(min(i + STEP, len(corpus.chunks)), len(corpus.chunks))
        sync_collection(retriever, workspace, name, embedder or tuned_embedder(str(model_dir), retriever.embedder))
        index.optimize(workspace, collection=name)  # build HNSW before searches move over
    except Exception:
        drop_collection(index, name)
        raise
    mv = ModelVersion(workspace=workspace, version=version, model_dir=str(model_dir), collection=name,
                      previous_collection=previous, metrics=metrics)
    retriever.active_models.set(workspace, mv)  # the commit point
    recover(retriever, workspace)
    logger.info("workspace %s now searches %s with model v%d", workspace, name, version)
    return mv


def rollback(retriever: Tunable, workspace: str) -> ModelVersion | None:
    """Point the alias back at the previous collection and model, after re-embedding into that collection what
    it lacks (documents ingested since the swap) with the previous model; drop the abandoned collection.

    Returns the version now active (None: the default model). Raises ConfigError when nothing was swapped.
    """
    index, active = retriever.index, retriever.active_models
    recover(retriever, workspace)
    hist = active.history(workspace)
    if not hist or not hist[-1].previous_collection:
        raise ConfigError(f"workspace {workspace!r} uses its original model: nothing to roll back")
    back = hist[-1].previous_collection
    if back not in index.collection_names():
        raise ConfigError(f"workspace {workspace!r}: the previous collection {back} is gone, cannot roll back")
    sync_collection(retriever, workspace, back, embedder_of(retriever, hist[-2] if len(hist) > 1 else None))
    active.pop(workspace)  # the commit point
    recover(retriever, workspace)
    return active.get(workspace)
