"""The ``cotsieve`` command line: ``scan``, ``analyze``, ``filter``, ``report``, ``profile``, ``demo``,
``completion``.

The modules of this package:

- :mod:`~cotsieve.cli.parser`: the arguments, and the rules and options they ask for;
- :mod:`~cotsieve.cli.commands`: ``scan``, ``analyze``, ``filter``, ``report``, ``demo``, ``completion``;
- :mod:`~cotsieve.cli.profile`: ``profile``, with its own parser (it needs torch);
- :mod:`~cotsieve.cli.progress`: the progress line on stderr;
- :mod:`~cotsieve.cli.completion`: the shell completion scripts;
- :mod:`~cotsieve.cli.exit_codes`: the exit codes, and which error gives which;
- :mod:`~cotsieve.cli.process`: malloc and import tuning of the command's process.

Exit codes: 0 success; 1 bad or unreadable input (under ``--on-error=fail``,
or a file that cannot be read at all); 2 usage error (bad option, rule or
column, or a missing optional dependency such as matplotlib for ``report``);
3 an output exists (without ``--force``), would overwrite an input, or
another run holds the output folder; 4 an output cannot be written (no
space left, a read-only place); 70 an
internal error (a bug; the traceback is printed); 130 interrupted. See
``docs/cli.md`` and ``docs/report.md``.

Example:
    >>> EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_OUTPUT_EXISTS
    (0, 1, 2, 3)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional

from .commands import COMMANDS, reads_saved_dataset
from .exit_codes import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_WRITE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_OUTPUT_EXISTS,
    EXIT_USAGE,
    run_command,
)
from .parser import build_parser
from .process import hold_freed_memory, skip_pandas_probe

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_CANNOT_WRITE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_OUTPUT_EXISTS",
    "EXIT_USAGE",
    "build_parser",
    "main",
    "reads_saved_dataset",
]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit code (see the module docstring).

    It tunes the process for streaming (``cotsieve.cli.process``): glibc's
    malloc thresholds and, unless pandas is imported already, pyarrow left
    without pandas. A program that calls it and then hands pandas objects to
    pyarrow should import pandas first.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    hold_freed_memory()  # the streaming commands allocate a block at a time
    if argv[:1] == ["profile"]:
        from . import profile

        return profile.main(argv[1:])
    args = build_parser().parse_args(argv)
    if not reads_saved_dataset(args):
        skip_pandas_probe()
    return run_command(lambda: COMMANDS[args.command](args))
