"""What every ``ragent`` command shares: settings (the CLI's one read of ``.env``), the runtime, the consoles, the
shared options and the error boundary (a ragent error becomes one red line and a non-zero exit, never a traceback).

Command modules call these through the module (``common.runtime()``), so a test can replace
``app.cli.common.runtime`` with a runtime over fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn, TypeVar

import typer
from rich.console import Console

from app.runtime import Runtime
from core.errors import RagentError
from core.settings import Settings

T = TypeVar("T")
err = Console(stderr=True)
out = Console()

WorkspaceOpt = typer.Option(None, "--workspace", "-w", help="Workspace (default: RAGENT_WORKSPACE).")
JsonOpt = typer.Option(False, "--json", help="Print machine-readable JSON.")


def settings() -> Settings:
    """Settings from the environment and ``./.env``."""
    return Settings.from_env(".env")


@contextmanager
def runtime() -> Iterator[Runtime]:
    """A Runtime over :func:`settings`, closed on exit."""
    rt = Runtime(settings())
    try:
        yield rt
    finally:
        rt.close()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with ``code``."""
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn: Callable[[], T]) -> T:
    """Run ``fn``; turn ragent errors into a clear message and exit code 1."""
    try:
        return fn()
    except RagentError as e:
        fail(str(e))
