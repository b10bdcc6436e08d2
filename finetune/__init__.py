"""Contrastive fine-tuning of the workspace's embedding model, with evaluation and a safe hot swap.

Public API:
    await run_finetune(retriever, workspace, settings.finetune, llm=..., progress=cb) -> FinetuneResult
    rollback(retriever, workspace) -> ModelVersion | None
    recover(retriever, workspace)   # finish a swap/rollback a crash interrupted
    recover_all(retriever) -> list[str]   # recover every workspace with a record (run at start-up)
    list_versions(retriever, settings.finetune.root, workspace) -> list[dict]
``retriever`` is any ``Tunable`` (``finetune.tunable``: the index, registry, graph store, active-model record and
embedders finetune reads and rewrites); the ``Retriever`` is one, and finetune does not import it.
"""

from finetune.loop import STAGES, list_versions, run_finetune
from finetune.swap import recover, recover_all, rollback
from finetune.tunable import Tunable
from finetune.types import EvalQuestion, Example, FinetuneResult, Metrics, Pair

__all__ = ["STAGES", "EvalQuestion", "Example", "FinetuneResult", "Metrics", "Pair", "Tunable", "list_versions",
           "recover", "recover_all", "rollback", "run_finetune"]
