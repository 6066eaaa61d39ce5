"""The progress line of the streaming commands and of ``profile``, on stderr.

It shows only where stderr is a terminal (one line, rewritten in place), or
where ``--progress`` asks for it (then a new line every few seconds, for
logs); ``--quiet`` silences it. The lines themselves come from pure functions
of the run's counters.

Example:
    >>> progress_line("pass 2/2: writing kept", 1200, 50_000_000, 200_000_000, 10.0)
    'pass 2/2: writing kept  1,200 traces  50.0 of 200.0 MB (25%)  5.0 MB/s  ETA 0:00:30'
    >>> progress_line("measuring", 1200, 50_000_000, None, 10.0)
    'measuring  1,200 traces  50.0 MB  5.0 MB/s'
    >>> profile_line(12, 8078, 113.0)
    'profiling  12 traces  8,078 tokens  71 tokens/s  0:01:53'
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Callable, Optional, TextIO

from ..io import Chunk, Source
from ..progress import RunProgress

# Seconds between two lines: a terminal redraws its one line often; a log gets
# a new line now and then.
TERMINAL_EVERY = 0.1
LOG_EVERY = 5.0


def pass_label(name: str, number: int, passes: int) -> str:
    """``pass 1/2: measuring``; a run of one pass is named by what it does.

    Example:
        >>> pass_label("measuring", 1, 2), pass_label("measuring", 1, 1)
        ('pass 1/2: measuring', 'measuring')
    """
    return f"pass {number}/{passes}: {name}" if passes > 1 else name


def progress_line(label: str, traces: int, done_bytes: int, total_bytes: Optional[int], seconds: float) -> str:
    """The line of a corpus pass: records read, input bytes read (of the total
    and with an ETA when the input's size is known), and the read rate."""
    parts = [label, f"{traces:,} traces"]
    done_mb = done_bytes / 1e6
    if total_bytes:
        parts.append(f"{done_mb:,.1f} of {total_bytes / 1e6:,.1f} MB ({min(done_bytes / total_bytes, 1.0):.0%})")
    else:
        parts.append(f"{done_mb:,.1f} MB")
    if seconds > 0:
        parts.append(f"{done_mb / seconds:,.1f} MB/s")
    if total_bytes and 0 < done_bytes < total_bytes and seconds > 0:
        parts.append(f"ETA {_clock(seconds * (total_bytes - done_bytes) / done_bytes)}")
    return "  ".join(parts)


def profile_line(traces: int, tokens: int, seconds: float) -> str:
    """The line of ``profile``: traces and model input tokens done, tokens/s
    since the start, and the time since the start."""
    rate = f"{tokens / seconds:,.0f} tokens/s" if seconds > 0 else "-- tokens/s"
    return f"profiling  {traces:,} traces  {tokens:,} tokens  {rate}  {_clock(seconds)}"


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


class StatusLine:
    """Where progress lines go: rewritten in place on a terminal, appended
    now and then to a log, or nowhere."""

    def __init__(self, quiet: bool, asked: bool = False, stream: Optional[TextIO] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.terminal = _is_terminal(self.stream)
        self.on = not quiet and (asked or self.terminal)
        self.clock = clock
        self.last_shown = -float("inf")

    def show(self, line: str) -> None:
        """Show ``line`` unless one was shown a moment ago."""
        now = self.clock()
        if self.on and now - self.last_shown >= (TERMINAL_EVERY if self.terminal else LOG_EVERY):
            self.last_shown = now
            self._write(line, final=False)

    def close(self, line: str) -> None:
        """Show ``line`` as the last of its kind (a finished pass)."""
        if self.on:
            self._write(line, final=True)
            self.last_shown = -float("inf")

    def _write(self, line: str, final: bool) -> None:
        if self.terminal:  # back to the start of the line, and clear what the last one left
            self.stream.write("\r" + line + "\x1b[K" + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class CorpusProgress(RunProgress):
    """The progress line of ``scan``, ``analyze``, ``filter`` and ``demo``, pass
    by pass; use as a context manager (the last pass's line is kept at the end)."""

    def __init__(self, status: StatusLine, reads_to_the_end: bool = True):
        self.status = status
        self.reads_to_the_end = reads_to_the_end  # False under --limit: a pass may stop early
        self.label = ""  # no pass yet
        self.started = time.perf_counter()
        self.traces = self.record_bytes = self.done = 0
        self.total: Optional[int] = None
        self.reached: dict[str, int] = {}  # how far into each stored file reading has got

    def start_pass(self, name: str, number: int, passes: int, sources: Sequence[Source]) -> None:
        self._close_pass()
        self.label, self.started = pass_label(name, number, passes), time.perf_counter()
        self.traces = self.record_bytes = self.done = 0
        sizes = [_stored_size(s) for s in sources]
        known = [size for size in sizes if size is not None]
        self.total = sum(known) if sources and len(known) == len(sizes) else None
        self.reached = {}
        self.status.show(self.line())

    def advance(self, chunk: Chunk) -> None:
        self.traces += len(chunk)
        self.record_bytes += chunk.n_bytes
        if self.total is None:  # sizes unknown: count the record bytes read
            self.done = self.record_bytes
        elif chunk.position is not None:  # several files may be read at once
            self.done += chunk.position - self.reached.get(chunk.source.name, 0)
            self.reached[chunk.source.name] = chunk.position
        self.status.show(self.line())

    def line(self) -> str:
        return progress_line(self.label, self.traces, self.done, self.total, time.perf_counter() - self.started)

    def __enter__(self) -> CorpusProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._close_pass(finished=exc[0] is None)

    def _close_pass(self, finished: bool = True) -> None:
        if self.label:
            if finished and self.reads_to_the_end and self.total is not None:
                self.done = self.total  # the tail of the last block, and files read to their end
            self.status.close(self.line())
            self.label = ""


def _stored_size(source: Source) -> Optional[int]:
    """The size of an input file as stored, or None (a dataset, a stream:
    a named pipe's size reads 0)."""
    if source.kind == "dataset" or source.stream is not None:
        return None
    try:
        return os.path.getsize(source.name)
    except OSError:
        return None
