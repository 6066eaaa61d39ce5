"""Glue to the tools users already run; each module needs its own extra.

- ``cotsieve.integrations.hf``: ``Dataset.map`` / ``Dataset.filter`` functions (``pip install 'cotsieve[hf]'``)
- ``cotsieve.integrations.datatrove``: a filter and an annotator step (``pip install 'cotsieve[datatrove]'``)
- ``cotsieve.integrations.ray``: Ray Data metrics and the two-pass filter (``pip install 'cotsieve[ray]'``)

This package imports none of them; importing a module above imports its tool.
See ``docs/integrations.md``.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message holds the pip command."""


def require_extra(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise ``MissingExtraError`` naming ``pip install 'cotsieve[extra]'``.

    Example:
        >>> require_extra("json", "none").__name__
        'json'
        >>> require_extra("no_such_module_here", "report")
        Traceback (most recent call last):
        ...
        cotsieve.integrations.MissingExtraError: this needs no_such_module_here: pip install 'cotsieve[report]'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"this needs {module.split('.')[0]}: pip install 'cotsieve[{extra}]'") from None
