"""Parquet files and Hugging Face datasets, read a record batch at a time.

Example:
    >>> batch = pa.record_batch({"text": ["Hmm.", None]})
    >>> [r for r in _arrow_texts(batch, TextSpec())[1].to_pylist()]
    [None, "field 'text' is null, expected a string"]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import BadInputError
from .chunks import Chunk, ReadOptions, field_string, null_fields, unparsed_columns
from .locations import is_url, opened
from .sources import Source
from .text import TextSpec

_ARROW_BATCH_ROWS = 1024


def arrow_schema(source: Source) -> pa.Schema:
    """The schema of a Parquet or dataset source, read without its data."""
    if source.kind == "dataset":
        return source.dataset.data.table.schema
    try:
        with _parquet_file(source) as parquet:
            return parquet.schema_arrow
    except (pa.ArrowInvalid, OSError) as err:
        raise _unreadable(source, err) from None


def _arrow_batches(source: Source) -> Iterator[pa.RecordBatch]:
    if source.kind == "dataset":
        # The dataset's own iterator honours a select, shuffle or filter (an
        # indices mapping over its table); the table alone holds every row
        # beneath them, in their stored order.
        for table in source.dataset.with_format("arrow").iter(batch_size=_ARROW_BATCH_ROWS):
            yield from table.to_batches()
        return
    try:
        with _parquet_file(source) as parquet:
            yield from parquet.iter_batches(batch_size=_ARROW_BATCH_ROWS)
    except (pa.ArrowInvalid, OSError) as err:
        raise _unreadable(source, err) from None


@contextmanager
def _parquet_file(source: Source) -> Iterator[pq.ParquetFile]:
    """A Parquet source opened for reading: a local file by Arrow's own
    reader, a URL or a (spooled) stream through a Python file object."""
    if source.stream is None and not is_url(source.name):
        yield pq.ParquetFile(source.name)
        return
    with opened(source.name, source.stream) as stream:
        yield pq.ParquetFile(stream)


def _unreadable(source: Source, err: Exception) -> BadInputError:
    return BadInputError(f"{source.name}: cannot read Parquet: {err}")


def read_arrow(source: Source, options: ReadOptions) -> Iterator[Chunk]:
    first_row = 0
    position = _row_position(source)
    for batch in _arrow_batches(source):
        n = batch.num_rows
        if options.parse:
            texts, reasons = _arrow_texts(batch, options.text)
            texts = options.text.cut_thinking(texts)
            fields = pa.table({f: _arrow_field(batch, f) for f in options.fields}) if options.fields \
                else null_fields(n, ())
        else:
            texts, reasons, fields = unparsed_columns(n, np.zeros(n, bool), options)
        yield Chunk(source, first_row, texts, reasons, fields, batch, batch.nbytes, position=position(first_row + n))
        first_row += n


def _row_position(source: Source) -> Callable[[int], Optional[int]]:
    """How far into a Parquet file its first ``rows`` rows reach, for progress:
    the file's size times the share of its rows (None for a dataset)."""
    if source.kind == "dataset":
        return lambda rows: None
    try:
        size, total = os.path.getsize(source.name), pq.read_metadata(source.name).num_rows
    except (pa.ArrowInvalid, OSError):
        return lambda rows: None  # the reader names the unreadable file
    return lambda rows: size * rows // max(total, 1)


def _arrow_texts(batch: pa.RecordBatch, spec: TextSpec) -> tuple[pa.Array, pa.Array]:
    n = batch.num_rows
    if spec.column not in batch.schema.names:
        return pa.nulls(n, pa.binary()), pa.array([f"missing field {spec.column!r}"] * n, pa.string())
    column = batch.column(spec.column)
    if spec.is_plain_column and _is_text_type(column.type):
        texts = column.cast(pa.large_binary() if _is_large(column.type) else pa.binary())
        reasons = pc.if_else(column.is_null(), f"field {spec.column!r} is null, expected a string", None)
        return texts, reasons.cast(pa.string())
    return _texts_from_objects([{spec.column: v} for v in column.to_pylist()], spec)


def _is_text_type(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
                or pa.types.is_large_binary(t))


def _is_large(t: pa.DataType) -> bool:
    return bool(pa.types.is_large_string(t) or pa.types.is_large_binary(t))


def _texts_from_objects(objects: list[dict[str, Any]], spec: TextSpec) -> tuple[pa.Array, pa.Array]:
    texts: list[Optional[bytes]] = []
    reasons: list[Optional[str]] = []
    for obj in objects:
        try:
            texts.append(spec.from_object(obj))
            reasons.append(None)
        except ValueError as err:
            texts.append(None)
            reasons.append(str(err))
    return pa.array(texts, pa.binary()), pa.array(reasons, pa.string())


def _arrow_field(batch: pa.RecordBatch, name: str) -> pa.Array:
    if name not in batch.schema.names:
        return pa.nulls(batch.num_rows, pa.string())
    column = batch.column(name)
    if pa.types.is_string(column.type) or pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.cast(pa.string())
    return pa.array([field_string(v) for v in column.to_pylist()], pa.string())
