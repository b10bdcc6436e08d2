"""``ragent finetune ...``: train the workspace's embedding model on its own documents, list, roll back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.table import Table

from app.cli import common
from app.cli.common import JsonOpt, WorkspaceOpt, err, fail, guarded, out
from core.errors import ConfigError
from finetune.types import EvalQuestion
from retrieval.retriever import Retriever

finetune_app = typer.Typer(add_completion=False, no_args_is_help=True,
                           help="Fine-tune the embedding model on a workspace (contrastive, with hot swap).")


def load_questions(path: Path, retriever: Retriever, workspace: str) -> list[EvalQuestion]:
    """JSONL rows ``{"question": ..., "doc_titles": [...]}`` or ``{"question": ..., "chunk_ids": [...]}``."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read questions file {path}: {e}") from e
    by_title: dict[str, set[str]] = {}
    if any("doc_titles" in r for r in rows):
        for rec in retriever.index.scroll(workspace):
            by_title.setdefault(rec.payload.get("doc_title", ""), set()).add(rec.payload["id"])
    qs = []
    for r in rows:
        ids = set(r.get("chunk_ids") or ())
        for t in r.get("doc_titles") or ():
            ids |= by_title.get(t, set())
        if ids:
            qs.append(EvalQuestion(str(r["question"]), frozenset(ids)))
    return qs


@finetune_app.command("run")
def run(
    workspace: str = WorkspaceOpt,
    max_pairs: int = typer.Option(None, "--max-pairs", help="Most synthetic pairs (default: setting)."),
    epochs: int = typer.Option(None, "--epochs", help="Training epochs (default RAGENT_FINETUNE_EPOCHS)."),
    generator: str = typer.Option(None, "--generator", help="keyphrase | llm | both (default: setting)."),
    questions: Path = typer.Option(None, "--questions", help="JSONL of real questions to evaluate on (not trained)."),
    force: bool = typer.Option(False, "--force", help="Swap the new model in even if it is not better."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Train and evaluate, but do not swap."),
    max_steps: int = typer.Option(-1, "--max-steps", hidden=True, help="Stop training after N steps (tests)."),
    as_json: bool = JsonOpt,
) -> None:
    """Synthesise pairs, mine hard negatives, train, evaluate; hot-swap the model if it wins."""
    import dataclasses

    from rich.progress import Progress

    from finetune import run_finetune

    s = common.settings()
    ws = workspace or s.workspace
    cfg = s.finetune
    if generator:
        if generator not in ("keyphrase", "llm", "both"):
            fail("--generator must be keyphrase, llm or both", 2)
        cfg = dataclasses.replace(cfg, generator=generator)  # type: ignore[arg-type]
    with common.runtime() as rt, Progress(console=err, transient=True, disable=as_json) as bar:
        tasks: dict[str, object] = {}

        def tick(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        qs = guarded(lambda: load_questions(questions, rt.retriever, ws)) if questions else []
        llm = rt.llm if cfg.generator != "keyphrase" else None
        res = guarded(lambda: asyncio.run(run_finetune(
            rt.retriever, ws, cfg, llm=llm, questions=qs, max_pairs=max_pairs, epochs=epochs,
            max_steps=max_steps, promote=not dry_run, force=force, progress=tick)))
    if as_json:
        print(json.dumps(res.to_json()))
        return
    table = Table("set", "metric", "before", "after", title=f"finetune {ws!r} v{res.version}")
    for key, before in res.before.items():
        after = res.after[key]
        for m in ("recall_at_10", "ndcg_at_10", "mrr_at_10"):
            table.add_row(f"{key} (n={before.n})", m, f"{getattr(before, m):.3f}", f"{getattr(after, m):.3f}")
    out.print(table)
    out.print(f"pairs {res.pairs} (train {res.train_examples}, validation {res.val_examples}); "
              f"training {res.train_seconds:.1f}s; {res.reason}", highlight=False)
    out.print(f"[green]promoted:[/] now searching {res.collection}" if res.promoted else "not promoted")


@finetune_app.command("list")
def list_cmd(
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Trained model versions of a workspace with their metrics; * marks the active one."""
    from finetune import list_versions

    with common.runtime() as rt:
        ws = workspace or rt.settings.workspace
        rows = guarded(lambda: list_versions(rt.retriever, rt.settings.finetune.root, ws))
    if as_json:
        print(json.dumps({"workspace": ws, "versions": rows}))
        return
    table = Table("", "version", "pairs", "train s", "val nDCG@10 before→after", "questions R@10 before→after",
                  "promoted", title=f"finetune versions of {ws!r}")
    for r in rows:
        b, a = r.get("before", {}), r.get("after", {})

        def pair(key: str, m: str, b: dict = b, a: dict = a) -> str:
            return f"{b[key][m]:.3f}→{a[key][m]:.3f}" if key in b and key in a else "-"

        table.add_row("*" if r.get("active") else "", f"v{r['version']}", str(r.get("pairs", "-")),
                      str(r.get("train_seconds", "-")), pair("validation", "ndcg_at_10"),
                      pair("questions", "recall_at_10"), str(r.get("promoted", "-")))
    out.print(table)


@finetune_app.command("recover")
def recover_cmd(
    workspace: str = typer.Option(None, "--workspace", "-w", help="One workspace (default: every fine-tuned one)."),
    as_json: bool = JsonOpt,
) -> None:
    """Finish a swap or rollback that was killed part-way (alias, entity-name vectors, abandoned collections)."""
    from finetune import recover, recover_all

    with common.runtime() as rt:
        def go() -> list[str]:
            if workspace:
                recover(rt.retriever, workspace)
                return [workspace]
            return recover_all(rt.retriever)

        done = guarded(go)
        state = {ws: rt.index.physical(ws) for ws in done}
    if as_json:
        print(json.dumps({"recovered": state}))
        return
    for ws, collection in state.items():
        out.print(f"{ws}: searching {collection}", highlight=False)


@finetune_app.command("rollback")
def rollback_cmd(
    workspace: str = WorkspaceOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Point the workspace back at its previous collection and embedding model."""
    from finetune import rollback

    with common.runtime() as rt:
        ws = workspace or rt.settings.workspace
        now = guarded(lambda: rollback(rt.retriever, ws))
        collection = rt.index.physical(ws)
    if as_json:
        print(json.dumps({"workspace": ws, "active_version": now.version if now else None,
                          "collection": collection}))
        return
    model = f"fine-tuned v{now.version}" if now else "the default model"
    out.print(f"{ws}: now searching {collection} with {model}")
