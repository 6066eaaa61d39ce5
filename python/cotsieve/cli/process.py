"""Process tuning for the ``cotsieve`` command line: glibc's malloc, and
pyarrow's first look for pandas. Both change the whole process, so only the
command line calls them; a program that imports cotsieve keeps its own
settings and imports.

Example (the thresholds sit above the pipeline's 16 MiB blocks; the finder
turns away pandas and nothing else):
    >>> MMAP_THRESHOLD_BYTES > 16 << 20 and TRIM_THRESHOLD_BYTES > MMAP_THRESHOLD_BYTES
    True
    >>> _NoPandas().find_spec("numpy") is None
    True
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.abc
import os
import sys
from typing import Any

import pyarrow as pa

# ---------------------------------------------------------------- malloc

# Keep freed block buffers in the process, for the streaming commands.
#
# The curation pipeline allocates its buffers a block (16 MiB) at a time:
# decompressed lines, the block of whole lines cut from them, the decoded
# texts. glibc serves requests that large with a fresh ``mmap`` and returns
# them to the kernel on ``free``, so every block's pages are faulted in and
# zeroed again, twice or more per block. Fixing the mmap threshold above the
# block size, and the trim threshold well above it, lets freed blocks be reused
# from the heap: on a two-pass filter of a 335 MB ``.jsonl.gz`` corpus this cut
# the kernel's time by about a quarter and raised throughput by about 6%
# (``benchmarks/RESULTS.md``). One arena for all threads does the same across
# threads: the reader thread allocates each block and the main thread frees it,
# and with an arena per thread a freed block went back to the reader's arena
# while the main thread's next allocations took fresh pages (a quarter fewer
# page faults and 2-5% faster on that filter).

# From glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

MMAP_THRESHOLD_BYTES = 32 << 20  # above a 16 MiB block and its carried line; a giant record is still mapped
TRIM_THRESHOLD_BYTES = 256 << 20  # free memory kept at the heap top before it is given back


def hold_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds and its arena count for
    block-at-a-time streaming; whether all three were set (False off glibc,
    where nothing changes)."""
    if not _on_glibc():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    set_mmap = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    set_trim = bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    set_arenas = bool(mallopt(_M_ARENA_MAX, 1))
    return set_mmap and set_trim and set_arenas


def _on_glibc() -> bool:
    # confstr answers at once; platform.libc_ver() reads the interpreter binary.
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False


# ---------------------------------------------------------------- pandas

# Spare the command line pyarrow's import of pandas.
#
# pyarrow looks for pandas at its first array conversion and, when pandas is
# installed, imports it: about 0.3 CPU seconds, paid inside every run (on a
# 335 MB two-pass filter on 2 cores, about a seventh of the wall time,
# ``benchmarks/RESULTS.md``). The command line hands pyarrow no pandas objects,
# so it lets that first look find nothing. pandas stays importable, and pyarrow
# imports it after all for the calls that need it (``to_pandas``); only its
# checks for pandas objects inside ``pa.array`` stay off.
#
# Not for a saved Hugging Face dataset, whose library hands pyarrow pandas
# objects.


class _NoPandas(importlib.abc.MetaPathFinder):
    # An import hook, because pyarrow's look is an ``import pandas`` inside
    # pyarrow: a finder first on ``sys.meta_path`` fails that one import and
    # nothing else, and is removed again once the look is made.
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
