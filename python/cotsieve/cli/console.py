"""Where the command line writes: results to stdout, progress and errors to stderr."""

import warnings
from typing import Any

from rich.console import Console

from ..errors import InputNote

out_console = Console()
err_console = Console(stderr=True)
_show_other_warnings = warnings.showwarning


def show_notes(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """``warnings.showwarning`` for the command line: an ``InputNote`` is one
    ``note:`` line on stderr; any other warning shows as Python shows it."""
    if issubclass(category, InputNote):
        err_console.print(f"note: {message}", highlight=False, markup=False, soft_wrap=True)
    else:
        _show_other_warnings(message, category, *args, **kwargs)
