"""Spare the command line pyarrow's import of pandas.

pyarrow looks for pandas at its first array conversion and, when pandas is
installed, imports it: about 0.3 CPU seconds, paid inside every run (on a
335 MB two-pass filter on 2 cores, about a seventh of the wall time,
``benchmarks/RESULTS.md``). The command line hands pyarrow no pandas objects,
so it lets that first look find nothing. pandas stays importable, and pyarrow
imports it after all for the calls that need it (``to_pandas``); only its
checks for pandas objects inside ``pa.array`` stay off.

Only the command line calls this, and not for a saved Hugging Face dataset,
whose library hands pyarrow pandas objects.

Example (the finder turns away pandas and nothing else):
    >>> _NoPandas().find_spec("numpy") is None
    True
"""

from __future__ import annotations

import importlib.abc
import sys
from typing import Any

import pyarrow as pa


class _NoPandas(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is not looked for here", name="pandas")
        return None


def skip_pandas_probe() -> bool:
    """Let pyarrow's first look for pandas fail; whether it did (False when
    pandas is imported already, and pyarrow uses it anyway)."""
    if "pandas" in sys.modules:
        return False
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        pa.array([0])  # pyarrow's first conversion makes the look
    finally:
        sys.meta_path.remove(finder)
    return True
