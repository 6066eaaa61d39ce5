"""The errors a user can cause, in one place; the command line turns each
into its exit code (``cotsieve.cli.exit_codes``, ``docs/cli.md``).

- :class:`BadInputError`: an input record or file is unusable (exit 1);
- :class:`UsageError`: an option, rule or value that cannot work (exit 2);
- :class:`OutputExistsError`: an output exists, would overwrite an input, or
  another run holds the output folder (exit 3);
- :class:`OutputWriteError`: an output cannot be written: a full disk, a
  read-only or forbidden place (exit 4);
- :class:`~cotsieve.integrations.MissingExtraError`: an optional dependency is
  not installed (exit 2).

Any other exception is a bug, and the command line says so.

Example:
    >>> issubclass(UsageError, ValueError), issubclass(BadInputError, ValueError)
    (True, False)
    >>> from cotsieve.pipeline import OutputExistsError as raised_by_the_pipeline
    >>> OutputExistsError is raised_by_the_pipeline
    True
"""

from __future__ import annotations

from .integrations import MissingExtraError


class BadInputError(Exception):
    """An input record or file is unusable; the message names the file and line."""


class InputNote(UserWarning):
    """Something the user should know about the inputs that changes no result
    they asked for (a file named twice is read once); the command line prints
    it as a ``note:`` line on stderr."""


class UsageError(ValueError):
    """The user asked for something that cannot work: a bad option, rule,
    metric or value. A ``ValueError``, which the API raises for the same
    mistakes, so callers that catch ``ValueError`` still catch it."""


class OutputExistsError(Exception):
    """An output exists (and ``force`` is off), would overwrite an input, or
    another run writes into the same folder."""


class OutputWriteError(Exception):
    """An output cannot be written (no space left, a read-only or forbidden
    place); the message names the path. Nothing partial is left behind."""


__all__ = ["BadInputError", "InputNote", "MissingExtraError", "OutputExistsError", "OutputWriteError", "UsageError"]
