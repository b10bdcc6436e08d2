"""Contrastive training: sentence-transformers ``SentenceTransformerTrainer`` + (cached) MultipleNegativesRankingLoss.

MNRL (Henderson et al. 2017) treats every other positive in the batch as a negative and adds the mined hard
negatives as extra columns; batches are sampled without duplicate texts so no in-batch "negative" is the
positive itself. CPU-only, seeded; checkpoints under ``<version>/checkpoints`` let a killed run resume.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from finetune.types import Example

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def _dataset(examples: Sequence[Example], texts: dict[str, str], negatives: int) -> Any:
    from datasets import Dataset

    cols: dict[str, list[str]] = {"anchor": [e.query for e in examples],
                                  "positive": [texts[e.positive_id] for e in examples]}
    for k in range(negatives):
        cols[f"negative_{k + 1}"] = [texts[e.negative_ids[k]] for e in examples]
    return Dataset.from_dict(cols)


def train_model(
    examples: Sequence[Example], texts: dict[str, str], base_model: str, out_dir: Path, *, epochs: int = 1,
    batch_size: int = 32, lr: float = 2e-5, seed: int = 13, negatives: int = 1, max_steps: int = -1,
    progress: Progress | None = None, show_progress: bool = False,
) -> tuple[Path, float]:
    """Train from ``base_model`` on ``examples``; save to ``out_dir/model``. Returns (model dir, seconds)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import CachedMultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers
    from transformers import TrainerCallback

    if len(examples) < 2:
        raise ConfigError("too few training pairs survived filtering (need at least 2): ingest more documents "
                          "or raise --max-pairs")
    negatives = min([negatives, *(len(e.negative_ids) for e in examples)])
    data = _dataset(examples, texts, negatives)
    model = SentenceTransformer(base_model, device="cpu")
    # MNRL with GradCache (Gao et al. 2021): same loss as MultipleNegativesRankingLoss for the whole batch, but
    # forward/backward in mini-batches of 8, so a batch of 32 x (query, positive, negative) fits in ~1-2 GB
    loss = CachedMultipleNegativesRankingLoss(model, mini_batch_size=8)
    ckpt = out_dir / "checkpoints"
    # batches hold no duplicate text (a duplicate would be a false in-batch negative): on small workspaces
    # cap the batch well below the number of distinct texts, or the sampler cannot fill a single batch
    distinct = len({e.positive_id for e in examples} | {n for e in examples for n in e.negative_ids})
    batch = max(2, min(batch_size, len(examples) // 2, distinct // (2 * (1 + negatives))))
    steps_per_epoch = max(1, len(examples) // batch)
    total = max_steps if max_steps > 0 else steps_per_epoch * epochs
    args = SentenceTransformerTrainingArguments(
        output_dir=str(ckpt), num_train_epochs=epochs, max_steps=max_steps, per_device_train_batch_size=batch,
        learning_rate=lr, warmup_steps=0.1, seed=seed, data_seed=seed, use_cpu=True, report_to=[],
        batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="steps", save_steps=max(10, total // 4),
        save_total_limit=1, logging_steps=max(1, total // 10), disable_tqdm=not show_progress,
        dataloader_num_workers=0, dataloader_drop_last=True,
    )

    class _Progress(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if progress is not None:
                progress(int(state.global_step), int(state.max_steps or total))

    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data, loss=loss,
                                         callbacks=[_Progress()])
    resume = ckpt.is_dir() and any(p.name.startswith("checkpoint-") for p in ckpt.iterdir())
    if resume:
        logger.info("resuming training from %s", ckpt)
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - t0
    if trainer.state.global_step == 0:
        raise ConfigError(f"training ran no step ({len(examples)} examples, batch {batch}): ingest more documents "
                          "or raise --max-pairs")
    model_dir = out_dir / "model"
    model.save(str(model_dir))
    return model_dir, seconds
