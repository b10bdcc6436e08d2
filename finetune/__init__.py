"""Contrastive fine-tuning of the workspace's embedding model, with evaluation and a safe hot swap.

Public API:
    await run_finetune(retriever, workspace, settings.finetune, llm=..., progress=cb) -> FinetuneResult
    rollback(retriever.index, retriever.active_models, workspace) -> ModelVersion | None
    list_versions(retriever, settings.finetune.root, workspace) -> list[dict]
"""

from finetune.loop import STAGES, list_versions, run_finetune
from finetune.swap import rollback
from finetune.types import EvalQuestion, Example, FinetuneResult, Metrics, Pair

__all__ = ["STAGES", "EvalQuestion", "Example", "FinetuneResult", "Metrics", "Pair", "list_versions", "rollback",
           "run_finetune"]
