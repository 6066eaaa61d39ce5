"""Deprecated alias of ``cotsieve.cli.profile``, the ``cotsieve profile`` command.

``docs/profiling.md`` once named this module; it goes in a later release.
Importing it warns.
"""

from __future__ import annotations

import warnings

warnings.warn("cotsieve.profile_cli is deprecated; import cotsieve.cli.profile", DeprecationWarning, stacklevel=2)

from .cli.profile import build_parser, main, run  # noqa: E402

__all__ = ["build_parser", "main", "run"]
