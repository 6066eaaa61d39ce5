"""The errors a user can cause, in one place; the command line turns each
into its exit code (``cotsieve.cli.exit_codes``, ``docs/cli.md``).

- :class:`BadInputError`: an input record or file is unusable (exit 1);
- :class:`UsageError`: an option, rule or value that cannot work (exit 2);
- :class:`OutputExistsError`: an output exists, or would overwrite an input (exit 3);
- :class:`~cotsieve.integrations.MissingExtraError`: an optional dependency is
  not installed (exit 2).

Any other exception is a bug, and the command line says so.

Example:
    >>> issubclass(UsageError, ValueError), issubclass(BadInputError, ValueError)
    (True, False)
    >>> from cotsieve.errors import OutputExistsError
    >>> from cotsieve.pipeline import OutputExistsError as raised_by_the_pipeline
    >>> OutputExistsError is raised_by_the_pipeline
    True
"""

from __future__ import annotations

from typing import Any

from .integrations import MissingExtraError


class BadInputError(Exception):
    """An input record or file is unusable; the message names the file and line."""


class UsageError(ValueError):
    """The user asked for something that cannot work: a bad option, rule,
    metric or value. A ``ValueError``, which the API raises for the same
    mistakes, so callers that catch ``ValueError`` still catch it."""


def __getattr__(name: str) -> Any:
    # OutputExistsError is still defined in cotsieve.pipeline, which imports
    # cotsieve.io, which imports this module: looked up on first use, this
    # re-export makes no import cycle.
    if name == "OutputExistsError":
        from .pipeline import OutputExistsError

        return OutputExistsError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BadInputError", "MissingExtraError", "OutputExistsError", "UsageError"]
