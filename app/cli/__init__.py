"""The ``ragent`` command line (Typer): the root app and its command groups, one module each.

``common`` holds what the groups share (settings, runtime, consoles, options, the error boundary); each group
module imports only ``common`` and the layers below the app.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer

from app.cli import docs, eval, finetune, index, llm, mcp, memory, query, server

app = typer.Typer(add_completion=False, no_args_is_help=True, help="ragent: documents in, cited answers out.")
app.command()(docs.ingest)
app.command()(query.search)
app.command()(query.ask)
app.command("api")(server.api)
app.command("ui")(server.ui)
app.command("mcp")(mcp.serve)
app.add_typer(server.keys_app, name="keys")
app.add_typer(memory.memory_app, name="memory")
app.add_typer(eval.eval_app, name="eval")
app.add_typer(finetune.finetune_app, name="finetune")
app.add_typer(docs.docs_app, name="docs")
app.add_typer(index.index_app, name="index")
app.add_typer(llm.llm_app, name="llm")


def main() -> Any:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return app()


__all__ = ["app", "main"]
