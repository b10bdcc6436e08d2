"""Records passed between the finetune stages (frozen dataclasses; JSON only at the edges)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

PairSource = Literal["keyphrase", "llm", "bridge"]


@dataclass(frozen=True)
class Pair:
    """A synthetic question and the chunk that answers it."""

    query: str
    chunk_id: str
    doc_id: str
    source: PairSource = "keyphrase"


@dataclass(frozen=True)
class Example:
    """A training row: the pair plus hard negatives mined from the recall pool (chunk ids)."""

    query: str
    positive_id: str
    doc_id: str
    negative_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvalQuestion:
    """A real question with its relevant chunks (never used for training)."""

    query: str
    relevant_ids: frozenset[str]


@dataclass(frozen=True)
class Metrics:
    """recall@k, nDCG@10 and MRR@10 of the dense path over the whole workspace, in [0, 1]."""

    recall_at_10: float
    recall_at_5: float
    ndcg_at_10: float
    mrr_at_10: float
    n: int

    def to_json(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class FinetuneResult:
    """What one ``run_finetune`` did: the version trained, metrics before/after, and whether it was promoted."""

    workspace: str
    version: int
    model_dir: str
    pairs: int
    train_examples: int
    val_examples: int
    train_seconds: float
    before: dict[str, Metrics]  # "validation" and, when given, "questions"
    after: dict[str, Metrics]
    promoted: bool
    collection: str | None = None
    reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    ir_evaluator: dict[str, Any] = field(default_factory=dict)  # InformationRetrievalEvaluator, validation

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace, "version": self.version, "model_dir": self.model_dir,
            "pairs": self.pairs, "train_examples": self.train_examples, "val_examples": self.val_examples,
            "train_seconds": round(self.train_seconds, 2),
            "before": {k: m.to_json() for k, m in self.before.items()},
            "after": {k: m.to_json() for k, m in self.after.items()},
            "promoted": self.promoted, "collection": self.collection, "reason": self.reason,
            "timings": {k: round(v, 2) for k, v in self.timings.items()}, "ir_evaluator": self.ir_evaluator,
        }
