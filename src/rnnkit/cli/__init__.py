"""The ``rnnkit`` command line (typer); the only layer that turns errors into exit codes."""
