"""Progress of a curation run, pass by pass.

``analyze_corpus`` and ``filter_corpus`` take a ``progress`` argument: either
a plain callable, called with ``(records, record_bytes)`` for every chunk the
measuring pass reads, or a :class:`RunProgress`, which also learns when each
pass starts (``measuring``; for a rule that needs the whole corpus, then
``writing kept``), over which inputs, and how far into each stored file every
chunk reaches (:attr:`cotsieve.io.Chunk.position`).

Example:
    >>> seen = []
    >>> progress = run_progress(lambda records, nbytes: seen.append(records))
    >>> progress.start_pass("measuring", 1, 2, [])
    >>> progress.start_pass("writing kept", 2, 2, [])  # a plain callable hears of the measuring pass alone
    >>> isinstance(progress, RunProgress), seen
    (True, [])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Callable, Optional, Union

from .io import Chunk, Source

#: What ``analyze_corpus`` and ``filter_corpus`` accept as ``progress``.
Progress = Union[Callable[[int, int], None], "RunProgress"]


class RunProgress:
    """Hears of a run's passes and chunks; the methods do nothing until overridden."""

    def start_pass(self, name: str, number: int, passes: int, sources: Sequence[Source]) -> None:
        """Pass ``number`` of ``passes``, called ``name``, starts reading ``sources``."""

    def advance(self, chunk: Chunk) -> None:
        """The current pass has read ``chunk``."""


class _Callback(RunProgress):
    """A plain ``(records, record_bytes)`` callable, called in the measuring pass."""

    def __init__(self, callback: Callable[[int, int], None]):
        self.callback = callback
        self.measuring = False

    def start_pass(self, name: str, number: int, passes: int, sources: Sequence[Source]) -> None:
        self.measuring = number == 1

    def advance(self, chunk: Chunk) -> None:
        if self.measuring:
            self.callback(len(chunk), chunk.n_bytes)


def run_progress(progress: Optional[Progress]) -> RunProgress:
    """``progress`` as a :class:`RunProgress` (one that does nothing for None)."""
    if isinstance(progress, RunProgress):
        return progress
    return RunProgress() if progress is None else _Callback(progress)
