"""The unit a reader yields: :class:`Chunk`, a bounded run of records with
their texts or the reasons they are unusable, and :class:`ReadOptions`.

Every input record becomes exactly one row of exactly one chunk, so nothing
is ever dropped silently.

Example:
    >>> unparsed_columns(2, np.array([False, True]), ReadOptions())[1].to_pylist()
    [None, 'empty line']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import UsageError
from .sources import Source
from .text import TextSpec

EMPTY_LINE = "empty line"
BLOCK_BYTES = 16 << 20


@dataclass
class Chunk:
    """A bounded run of consecutive records from one source.

    ``texts`` (binary) and ``reasons`` (string) have one entry per record: a
    record has a text and a null reason, or a null text and the reason it is
    unusable. ``fields`` holds the requested extra fields as strings.
    ``raw`` is what a writer needs to copy records unchanged: for JSONL the
    original line bytes (``large_binary``, newline included), for Parquet and
    datasets the full record batch. ``rows`` holds the records' row numbers
    in their source where they do not run on from ``first_row`` (a sample).
    ``position`` is how far into the source file reading has got with this
    chunk, in bytes of the file as stored (compressed bytes for gzip and
    zstd), for progress; None where unknown.
    """

    source: Source
    first_row: int
    texts: pa.Array
    reasons: pa.Array
    fields: pa.Table
    raw: Union[pa.Array, pa.RecordBatch]
    n_bytes: int
    rows: Optional[np.ndarray] = None
    position: Optional[int] = None

    def __len__(self) -> int:
        return len(self.reasons)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of usable records."""
        return np.asarray(self.reasons.is_null().to_numpy(zero_copy_only=False), bool)

    def row_numbers(self, rows: np.ndarray) -> np.ndarray:
        """The row numbers in their source (0-based) of the chunk's records ``rows``."""
        return self.first_row + rows if self.rows is None else self.rows[rows]

    def row_of(self, i: int) -> int:
        """The row number in its source (0-based) of the chunk's record ``i``."""
        return self.first_row + i if self.rows is None else int(self.rows[i])

    def take(self, rows: np.ndarray) -> Chunk:
        """The chunk of the records ``rows`` (ascending) of this one, with their row numbers."""
        picked = pa.array(rows, pa.int64())
        raw = self.raw.take(picked)
        n_bytes = raw.nbytes if isinstance(raw, pa.RecordBatch) else int(pc.sum(pc.binary_length(raw)).as_py() or 0)
        # A table without columns would lose its row count in take().
        fields = self.fields.take(picked) if self.fields.num_columns else null_fields(len(rows), ())
        return Chunk(self.source, self.first_row, self.texts.take(picked), self.reasons.take(picked), fields, raw,
                     n_bytes, self.row_numbers(rows), self.position)

    def locate(self, i: int) -> str:
        """Where record ``i`` of this chunk is, for messages: ``file:line`` or ``file#row``."""
        row = self.row_of(i)
        return f"{self.source.name}:{row + 1}" if self.source.kind == "jsonl" else f"{self.source.name}#{row}"


@dataclass(frozen=True)
class Selection:
    """Which records of a corpus are read: the first ``limit``, then, of those,
    a uniform sample of ``sample`` records that ``seed`` picks
    (:func:`cotsieve.io.select.selected`). Records are lines of JSON Lines
    (empty ones too) and rows of Parquet, counted across all inputs in order.

    Example:
        >>> Selection(limit=0)
        Traceback (most recent call last):
        ...
        cotsieve.errors.UsageError: --limit must be at least 1, got 0
    """

    limit: Optional[int] = None
    sample: Optional[int] = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name, value in (("limit", self.limit), ("sample", self.sample)):
            if value is not None and value < 1:
                raise UsageError(f"--{name} must be at least 1, got {value}")


@dataclass(frozen=True)
class ReadOptions:
    """How to read a corpus: which text, which extra fields to carry along
    (as strings, e.g. ``source`` for per-group rules), and whether to parse.

    ``parse=False`` only frames records (lines or rows) for copying; it is
    used by the second pass of a two-pass filter. ``selection`` limits or
    samples the records read. ``parse_threads`` frame and parse that many
    JSON Lines blocks of a file at once (inflating one gzip or zstd stream
    stays one thread: the format is serial).
    """

    text: TextSpec = TextSpec()
    fields: tuple[str, ...] = ()
    parse: bool = True
    block_bytes: int = BLOCK_BYTES
    selection: Selection = Selection()
    parse_threads: int = 1


def unparsed_columns(n: int, blank: np.ndarray, options: ReadOptions) -> tuple[pa.Array, pa.Array, pa.Table]:
    return pa.nulls(n, pa.binary()), empty_line_reasons(blank), null_fields(n, options.fields)


def empty_line_reasons(blank: np.ndarray) -> pa.Array:
    if not blank.any():
        return pa.nulls(len(blank), pa.string())
    return pa.array([EMPTY_LINE if b else None for b in blank.tolist()], pa.string())


def null_fields(n: int, names: Sequence[str]) -> pa.Table:
    return pa.table({name: pa.nulls(n, pa.string()) for name in names}) if names else pa.table({"_": pa.nulls(n)}).drop(["_"])


def field_string(value: Any) -> Optional[str]:
    """A carried field as valid UTF-8 text: invalid bytes (kept as surrogate
    escapes by the line decoder) become U+FFFD, since Parquet strings must be
    UTF-8; the record itself keeps its original bytes."""
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return text
