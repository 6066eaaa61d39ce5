"""Where the command line writes: results to stdout, progress and errors to stderr."""

from rich.console import Console

out_console = Console()
err_console = Console(stderr=True)
