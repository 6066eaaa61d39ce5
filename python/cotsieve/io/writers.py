"""Atomic output files: the kept corpus, rejected records, metrics, summary.

Every output is written to a temporary file in its target directory and only
renamed into place after an ``fsync`` (``commit``); a failed run leaves no
half-written output behind (``discard``).

Example:
    >>> import os, tempfile
    >>> out = AtomicFile(os.path.join(tempfile.mkdtemp(), "a.txt"))
    >>> with out.open() as f:
    ...     _ = f.write(b"hi")
    >>> out.commit(); open(out.path, "rb").read()
    b'hi'
"""

from __future__ import annotations

import glob
import json
import math
import os
import queue
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from collections.abc import Iterator, Sequence, Mapping
from typing import Any, Callable, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from isal import isal_zlib

from ..errors import UsageError
from .chunks import Chunk

# gzip level 1 is 3-5x faster than 6 for about 1.3x the size; zstd 3 is its own default.
DEFAULT_LEVELS = {"gzip": 1, "zstd": 3}
# gzip levels 1-3 are ISA-L's; 0 (stored, in zlib; ISA-L's 0 still compresses) and 4-9 go to zlib.
ISAL_LEVELS = (1, 3)
GZIP_WBITS = 31  # deflate in a gzip member, with a fixed header (no name, no time)
_MEMBER_BYTES = 4 << 20
# Members compressed at once, at most: 64 MiB of kept records held, enough
# for the writer to keep up past 64 cores (about 1.1 CPU s a GB to deflate).
_PENDING_MEMBERS = 16
_APPEND_BYTES = 16 << 20


def level_range(compression: str) -> tuple[int, int]:
    """The levels a gzip (zlib's 0-9) or zstd (the codec's own range) kept corpus takes."""
    if compression == "gzip":
        return 0, 9
    return pa.Codec.minimum_compression_level(compression), pa.Codec.maximum_compression_level(compression)


def check_compression_level(compression: Optional[str], level: Optional[int]) -> None:
    """Refuse, before anything is read, a level the kept corpus's codec does not take.

    Example:
        >>> check_compression_level("gzip", 99)
        Traceback (most recent call last):
        ...
        cotsieve.errors.UsageError: --compression-level 99 is out of range for gzip (0 to 9)
    """
    if compression is None or level is None:
        return
    low, high = level_range(compression)
    if not low <= level <= high:
        raise UsageError(f"--compression-level {level} is out of range for {compression} ({low} to {high})")


class AtomicFile:
    """A file that appears at ``path`` only on ``commit()``.

    ``part`` names one of several temporaries of the same output (a shard's
    share of it, written ahead of its turn and appended later): such a file
    is only ever discarded, never committed."""

    def __init__(self, path: Union[str, Path], part: Optional[str] = None) -> None:
        self.path = Path(path)
        suffix = f".{part}" if part else ""
        self.temp = self.path.with_name(f".{self.path.name}.{os.getpid()}{suffix}.tmp")
        _remove_orphaned_temps(self.path)

    def open(self) -> pa.NativeFile:
        return pa.OSFile(str(self.temp), "wb")

    def commit(self) -> None:
        fd = os.open(self.temp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.temp, self.path)
        _fsync_dir(self.path.parent)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)


def commit_together(files: Sequence[AtomicFile], write: Callable[[], None]) -> None:
    """Run ``write`` into the files' temporaries, then commit them all; on any
    error (Ctrl-C too) discard them all, so the outputs appear together or not at all."""
    try:
        write()
        for file in files:
            file.commit()
    except BaseException:
        for file in files:
            file.discard()
        raise


def _remove_orphaned_temps(path: Path) -> None:
    """Delete temp files of ``path`` left by runs that were killed: their pid is gone."""
    for temp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = temp.name[len(path.name) + 2 : -len(".tmp")].split(".", 1)[0]  # then a part's name, if any
        if pid.isdigit() and not _alive(int(pid)):
            temp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True


def append_file(stream: pa.NativeFile, file: AtomicFile) -> None:
    """Copy the bytes of ``file``'s temporary to the end of ``stream``, a piece at a time."""
    with open(file.temp, "rb") as source:
        while piece := source.read(_APPEND_BYTES):
            stream.write(piece)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteBehind:
    """Runs writes in one background thread, in the order given and at most
    ``depth`` behind, so that compressing and writing one chunk overlaps the
    engine's work on the next (deflate, Parquet encoding and file writes
    release the GIL). The first failed write is raised in the caller, at the
    next ``submit`` or when the ``with`` block ends; the writes after it are
    skipped, and the outputs are discarded as after any error. When the
    caller fails instead, the writes still queued are skipped too.

    Example:
        >>> done = []
        >>> with WriteBehind() as writes:
        ...     for i in range(3):
        ...         writes.submit(done.append, i)
        >>> done
        [0, 1, 2]
    """

    def __init__(self, depth: int = 2):
        self._jobs: queue.Queue[Optional[tuple[Callable[..., None], tuple[Any, ...]]]] = queue.Queue(maxsize=depth)
        self._error: Optional[BaseException] = None
        self._cancelled = False
        self._closed = False
        self._thread = threading.Thread(target=self._work, daemon=True)

    def __enter__(self) -> "WriteBehind":
        self._thread.start()
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._cancelled = exc_type is not None  # the outputs are about to be discarded
        self._closed = True
        self._jobs.put(None)
        self._thread.join()  # no write may still run when the caller discards the outputs
        if exc_type is None:
            self.check()

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        if self._closed:
            raise RuntimeError("submit after the write-behind thread was closed")
        self.check()
        self._jobs.put((job, args))

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            if self._error is None and not self._cancelled:
                try:
                    item[0](*item[1])
                except BaseException as err:  # handed to the caller
                    self._error = err

    def check(self) -> None:
        """Raise the first failed write now (``submit`` does too), for a caller that submits rarely."""
        if self._error is not None:
            raise self._error


class JsonlKeptWriter:
    """Copies kept JSONL records byte for byte (original line bytes).

    With ``compression`` (``"gzip"`` or ``"zstd"``) the kept bytes are cut
    into pieces of 4 MiB (regardless of line ends), compressed in parallel,
    each piece one gzip member or zstd frame; concatenated members and frames
    form one valid stream, which every decompressor reads as the
    concatenated text. ``write`` hands a chunk's pieces to the compressor
    threads and returns; the members are written in order as they are done
    (all of them by ``close``), so the pieces of several chunks are
    compressed at once.
    """

    def __init__(self, path: Union[str, Path], compression: Optional[str] = None, level: Optional[int] = None,
                 threads: Optional[int] = None, *, part: Optional[str] = None,
                 pool: Optional[ThreadPoolExecutor] = None):
        self._compression = compression
        self._level = level if level is not None or compression is None else DEFAULT_LEVELS.get(compression)
        check_compression_level(compression, self._level)
        self.file = AtomicFile(path, part)
        self._owns_pool = pool is None
        self._pool = pool or (ThreadPoolExecutor(threads or os.cpu_count() or 1) if compression else None)
        self._pending: deque[Future[Union[pa.Buffer, bytes]]] = deque()  # members in order, being compressed
        self._stream = self.file.open()

    def part(self, name: str) -> JsonlKeptWriter:
        """A writer of a part of this output, in a temporary of its own, with
        the same compression and compressor threads; :meth:`append` it here
        once the part's turn comes (members and frames concatenate)."""
        return JsonlKeptWriter(self.file.path, self._compression, self._level, part=name, pool=self._pool)

    def append(self, part: JsonlKeptWriter) -> None:
        """Close ``part`` (from :meth:`part`) and copy what it holds to the end of this output."""
        self._write_pending(0)
        part.close()
        append_file(self._stream, part.file)

    def write(self, chunk: Chunk, keep: np.ndarray) -> None:
        # The kept lines are read in place, as runs of consecutive lines:
        # copying them out first cost as much as a quarter of pass 2.
        data, runs = _kept_runs(chunk.raw, keep)
        if not runs:
            return
        if self._pool is None:  # uncompressed
            # One write per chunk (a write per run costs a system call each),
            # and no copy when every line is kept.
            parts = [data.slice(start, end - start) for start, end in runs]
            self._stream.write(parts[0] if len(parts) == 1 else b"".join(map(memoryview, parts)))
            return
        # Compressing pieces as separate members in parallel keeps the writer
        # off the critical path; not waiting for a chunk's last member lets
        # the next chunk's pieces start (the writer thread alone limited a
        # run past about 16 cores, benchmarks/RESULTS.md, issue 23).
        for piece in _pieces(data, runs, _MEMBER_BYTES):
            self._write_pending(_PENDING_MEMBERS - 1)
            self._pending.append(self._pool.submit(self._compress, piece))
        while self._pending and self._pending[0].done():
            self._stream.write(self._pending.popleft().result())

    def _write_pending(self, keep: int) -> None:
        """Write the members being compressed, in order, until at most ``keep`` are left."""
        while len(self._pending) > keep:
            self._stream.write(self._pending.popleft().result())

    def _compress(self, piece: list[pa.Buffer]) -> Union[pa.Buffer, bytes]:
        level = self._level
        if self._compression == "gzip" and level is not None and ISAL_LEVELS[0] <= level <= ISAL_LEVELS[1]:
            # ISA-L deflates about 6x faster than zlib at level 1, and smaller.
            deflate = isal_zlib.compressobj(level, isal_zlib.DEFLATED, GZIP_WBITS)
            return b"".join([deflate.compress(part) for part in piece] + [deflate.flush()])
        # A codec holds stream state, so each call gets its own.
        whole = piece[0] if len(piece) == 1 else pa.py_buffer(b"".join(memoryview(part) for part in piece))
        return pa.Codec(self._compression, compression_level=self._level).compress(whole)

    def close(self) -> None:
        try:
            self._write_pending(0)
        finally:  # a failed close leaves nothing to write again
            self._pending.clear()
            self._stream.close()
            if self._pool is not None and self._owns_pool:
                self._pool.shutdown()


def _kept_runs(lines: pa.Array, keep: np.ndarray) -> tuple[pa.Buffer, list[tuple[int, int]]]:
    """The data buffer of a ``large_binary`` array of lines, and the byte
    ranges of its maximal runs of kept lines, in order."""
    _, offsets_buffer, data = lines.buffers()
    offsets = np.frombuffer(offsets_buffer, np.int64, count=len(lines) + 1, offset=lines.offset * 8)
    edges = np.diff(np.concatenate(([False], keep, [False])).astype(np.int8))
    firsts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return data, list(zip(offsets[firsts].tolist(), offsets[stops].tolist()))


def _pieces(data: pa.Buffer, runs: list[tuple[int, int]], limit: int) -> Iterator[list[pa.Buffer]]:
    """The runs' bytes, in order, cut into pieces of ``limit`` bytes (the last
    may be shorter), each piece a list of slices of ``data``."""
    piece, size = [], 0
    for start, end in runs:
        while start < end:
            take = min(end - start, limit - size)
            piece.append(data.slice(start, take))
            size += take
            start += take
            if size == limit:
                yield piece
                piece, size = [], 0
    if piece:
        yield piece


class ParquetKeptWriter:
    """Writes kept Parquet/dataset rows with all their columns, in one schema."""

    def __init__(self, path: Union[str, Path], schema: pa.Schema):
        self.file = AtomicFile(path)
        self.schema = schema
        self._writer = pq.ParquetWriter(str(self.file.temp), schema)

    def write(self, chunk: Chunk, keep: np.ndarray) -> None:
        batch = chunk.raw.filter(pa.array(keep))
        if batch.num_rows:
            self._writer.write_table(_conform(batch, self.schema))

    def close(self) -> None:
        self._writer.close()


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """``batch`` in the merged ``schema``: columns it lacks become null."""
    columns = [batch.column(f.name).cast(f.type) if f.name in batch.schema.names else pa.nulls(batch.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


class RejectedWriter:
    """JSON lines ``{"record_id", "file", "row", "reason", "record"}``: one per
    unusable record. ``record`` is the original line (JSONL) or the row as an
    object. Every line is strict JSON (:func:`json_safe`)."""

    def __init__(self, path: Union[str, Path], part: Optional[str] = None):
        self.file = AtomicFile(path, part)
        self._stream = self.file.open()

    def part(self, name: str) -> RejectedWriter:
        """A writer of a part of this output, to :meth:`append` here later."""
        return RejectedWriter(self.file.path, name)

    def append(self, part: RejectedWriter) -> None:
        """Close ``part`` and copy its lines to the end of this output."""
        part.close()
        append_file(self._stream, part.file)

    def write(self, chunk: Chunk, rows: np.ndarray) -> None:
        reasons = chunk.reasons
        lines = [json.dumps(json_safe(_rejected_entry(chunk, int(i), reasons[int(i)].as_py())), allow_nan=False)
                 + "\n" for i in rows]
        if lines:
            self._stream.write("".join(lines).encode("utf-8", "surrogateescape"))

    def close(self) -> None:
        self._stream.close()


def json_safe(value: Any) -> Any:
    """``value`` as strict JSON can hold it: bytes decoded as UTF-8 with
    ``surrogateescape`` (a byte that is not UTF-8 becomes a ``\\udcXX`` escape,
    as in a JSONL record's line), non-finite floats as the strings ``"NaN"``,
    ``"Infinity"`` and ``"-Infinity"``, any other non-JSON value as its ``str``.

    Example:
        >>> json_safe({"a": [float("nan"), b"ok\\xff"], "b": 1.5})
        {'a': ['NaN', 'ok\\udcff'], 'b': 1.5}
    """
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _rejected_entry(chunk: Chunk, i: int, reason: str) -> dict[str, Any]:
    if chunk.source.kind == "jsonl":
        record: Any = chunk.raw[i].as_py().rstrip(b"\r\n").decode("utf-8", "surrogateescape")
    else:
        record = chunk.raw.slice(i, 1).to_pylist()[0]
    return {"record_id": chunk.locate(i), "file": chunk.source.name, "row": chunk.row_of(i),
            "reason": reason, "record": record}


class MetricsWriter:
    """Streams metric tables into one Parquet file (schema of the first table)."""

    def __init__(self, path: Union[str, Path]):
        self.file = AtomicFile(path)
        self._writer: Optional[pq.ParquetWriter] = None

    def part(self, name: str) -> MetricsPart:
        """A writer of a part of this output, to :meth:`append` here later."""
        return MetricsPart(AtomicFile(self.file.path, name))

    def append(self, part: MetricsPart) -> None:
        """Close ``part`` and write its tables here, in their order."""
        for table in part.tables():
            self.write(table)

    def write(self, table: pa.Table) -> None:
        """Append the table's rows; a table without rows adds nothing (``close`` gives an empty file its schema)."""
        if not table.num_rows:
            return
        if self._writer is None:
            self._writer = pq.ParquetWriter(str(self.file.temp), table.schema)
        self._writer.write_table(table)

    def close(self, empty: Optional[pa.Table] = None) -> bool:
        """Close; whether any table was written. ``empty`` (a zero-row table)
        gives the file its schema when none was."""
        written = self._writer is not None
        if not written and empty is not None:
            self._writer = pq.ParquetWriter(str(self.file.temp), empty.schema)
            self._writer.write_table(empty)
        if self._writer is not None:
            self._writer.close()
        return written


class MetricsPart:
    """Metric tables set aside as an Arrow IPC stream: writing and reading
    one back costs about a copy, where Parquet would encode them twice."""

    def __init__(self, file: AtomicFile):
        self.file = file
        self._stream = file.open()
        self._writer: Optional[pa.ipc.RecordBatchStreamWriter] = None

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:  # as MetricsWriter: no empty row groups
            return
        self._writer = self._writer or pa.ipc.new_stream(self._stream, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        try:
            if self._writer is not None and not self._stream.closed:
                self._writer.close()
        finally:
            self._stream.close()

    def tables(self) -> Iterator[pa.Table]:
        """Close, then read back each table written, in order."""
        self.close()
        if self._writer is None:
            return
        with pa.memory_map(str(self.file.temp)) as source:
            for batch in pa.ipc.open_stream(source):
                yield pa.Table.from_batches([batch])


def write_json(path: Union[str, Path], data: Mapping[str, object]) -> None:
    """Write ``data`` as pretty JSON, atomically."""
    out = AtomicFile(path)
    with out.open() as stream:
        stream.write((json.dumps(data, indent=2, default=str) + "\n").encode())
    out.commit()
