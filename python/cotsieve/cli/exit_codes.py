"""The exit codes of every ``cotsieve`` command, and which error gives which
(``docs/cli.md``).

Example:
    >>> exit_code_for(UsageError("--top must be at least 1")) == EXIT_USAGE
    True
    >>> exit_code_for(KeyError("source")) == EXIT_INTERNAL  # a bug, not the user's mistake
    True
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from typing import Any

from ..errors import BadInputError, InputNote, MissingExtraError, OutputExistsError, OutputWriteError, UsageError
from .console import err_console, show_notes

EXIT_OK = 0
EXIT_BAD_INPUT = 1  # an unusable record or file; a missing input
EXIT_USAGE = 2  # a bad option, rule, metric or value; a missing optional dependency
EXIT_OUTPUT_EXISTS = 3  # an output exists (without --force), would overwrite an input, or another run holds --out
EXIT_CANNOT_WRITE = 4  # an output cannot be written: no space left, a read-only or forbidden place
EXIT_INTERNAL = 70  # a bug in cotsieve (sysexits' EX_SOFTWARE); the traceback is printed
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT

# First match wins: UsageError is a ValueError, and the API raises ValueError
# for the same mistakes.
_EXIT_CODES: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    ((OutputExistsError, FileExistsError), EXIT_OUTPUT_EXISTS),
    (OutputWriteError, EXIT_CANNOT_WRITE),
    ((BadInputError, FileNotFoundError), EXIT_BAD_INPUT),
    ((UsageError, MissingExtraError, ValueError), EXIT_USAGE),
    (KeyboardInterrupt, EXIT_INTERRUPTED),
)


def exit_code_for(err: BaseException) -> int:
    """The exit code a command ends with when ``err`` stops it."""
    for kinds, code in _EXIT_CODES:
        if isinstance(err, kinds):
            return code
    return EXIT_INTERNAL


def run_command(command: Callable[[], int]) -> int:
    """Run one command; an error it raises is printed and becomes its exit code,
    and the notes it warns of (``InputNote``) are ``note:`` lines on stderr."""
    try:
        with warnings.catch_warnings():  # restores showwarning after the command
            warnings.simplefilter("always", InputNote)
            warnings.showwarning = show_notes
            return command()
    except (Exception, KeyboardInterrupt) as err:
        code = exit_code_for(err)
        if code == EXIT_INTERNAL:
            traceback.print_exception(err)
            return fail(f"internal error, a bug in cotsieve (please report it with the traceback above): {err!r}",
                        code)
        return fail("interrupted" if code == EXIT_INTERRUPTED else _message(err), code)


def fail(message: Any, code: int) -> int:
    """Print ``error: message`` to stderr; return ``code``."""
    err_console.print(f"error: {message}", highlight=False, markup=False, style="red", soft_wrap=True)
    return code


def _message(err: BaseException) -> str:
    # A KeyError's str() quotes its message; the message is its first argument.
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
