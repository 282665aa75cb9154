"""``python -m producers.cli``: the same as the ``tutopanda`` command."""

from producers.cli.app import main

main()
