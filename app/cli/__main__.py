"""``python -m app.cli``: the same as the ``ragent`` command."""

from app.cli import main

main()
