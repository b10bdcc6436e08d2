"""``ragent index ...``: the embedded vector index; ``migrate`` moves a Qdrant local-mode home to Qdrant Edge."""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from app.cli import common
from app.cli.common import JsonOpt, err, guarded, out

index_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="The embedded vector index (Qdrant Edge; older homes: Qdrant local mode).")


class Target(StrEnum):
    edge = "edge"


@index_app.command("migrate")
def migrate(
    to: Target = typer.Option(Target.edge, "--to", help="The backend to move the vectors to (edge)."),
    as_json: bool = JsonOpt,
) -> None:
    """Move this RAGENT_HOME's vectors from Qdrant local mode to Qdrant Edge, check the counts, then switch.

    Copies every collection (all workspaces, finetune aliases included). Stop `ragent api` first.

    Safe to kill and rerun: nothing switches before every count matches. The local-mode folder is kept.
    """
    from rich.progress import Progress

    from retrieval.index_migrate import migrate_to_edge

    s = common.settings()
    with Progress(console=err, transient=True, disable=as_json) as bar:
        tasks: dict[str, object] = {}

        def tick(collection: str, done: int, total: int) -> None:
            if collection not in tasks:
                tasks[collection] = bar.add_task(collection, total=total)
            bar.update(tasks[collection], completed=done, total=total)  # type: ignore[arg-type]

        res = guarded(lambda: migrate_to_edge(s.index, progress=tick))
    explicit = s.vector_backend == "qdrant"
    if as_json:
        out.print_json(json.dumps({
            "to": to.value, "switched": res.switched, "source": str(res.source), "target": str(res.target),
            "collections": {c.name: c.points for c in res.collections}, "aliases": dict(res.aliases),
        }))
    elif not res.switched:
        out.print(f"Qdrant Edge at {res.target} is already in use (it has aliases): nothing to migrate.")
    else:
        for c in res.collections:
            out.print(f"{c.name}: {c.points} points")
        out.print(f"Migrated {len(res.collections)} collections ({res.points} points) to Qdrant Edge at {res.target}; "
                  f"counts checked. The local-mode store at {res.source} is left as it was: delete it once "
                  "satisfied (RAGENT_VECTOR_BACKEND=qdrant reads it again, without what is written from now on).")
    if explicit:
        err.print("[yellow]warning:[/] RAGENT_VECTOR_BACKEND=qdrant is set: remove it (or set auto or edge) to "
                  "read the Qdrant Edge store.", highlight=False)
