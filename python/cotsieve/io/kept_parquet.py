"""A kept corpus of JSON Lines written as Parquet (``--kept-format parquet``).

JSON Lines have no schema, and a Parquet file has one for all its rows, known
when the file starts. So the kept lines go first, byte for byte, to a spool
file beside the output; when the run ends, the spool is read twice: once to
find the schema of all kept records (the types of every block's records,
merged as Arrow merges them: an integer field that is fractional elsewhere
becomes a double, a field absent from some records is null there), and once
to write them in that schema. A field whose types cannot be merged (a number
in some records, a string in others) stops the run with a clear error.

Example:
    >>> import os, tempfile
    >>> from .chunks import Chunk
    >>> from .sources import Source
    >>> lines = pa.array([b'{"text": "a", "n": 1}\\n', b'{"text": "b", "n": 2.5}\\n'], pa.large_binary())
    >>> chunk = Chunk(Source("in.jsonl", "jsonl"), 0, pa.nulls(2, pa.binary()), pa.nulls(2, pa.string()),
    ...               pa.table({}), lines, 42)
    >>> writer = JsonlAsParquetWriter(os.path.join(tempfile.mkdtemp(), "kept.parquet"))
    >>> writer.write(chunk, np.array([True, True])); writer.close(); writer.file.commit()
    >>> pq.read_table(writer.file.path).to_pylist()
    [{'text': 'a', 'n': 1.0}, {'text': 'b', 'n': 2.5}]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Union

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from ..errors import BadInputError
from .chunks import BLOCK_BYTES, Chunk
from .jsonl import line_blocks
from .sources import Source
from .writers import AtomicFile, JsonlKeptWriter


class _FileWithSpool(AtomicFile):
    """The kept Parquet file; discarding it discards its spool too."""

    def __init__(self, path: Union[str, Path], spool: AtomicFile):
        super().__init__(path)
        self.spool = spool

    def discard(self) -> None:
        super().discard()
        self.spool.discard()


class JsonlAsParquetWriter:
    """Writes kept JSON Lines records as one Parquet file (see the module docstring)."""

    def __init__(self, path: Union[str, Path]):
        path = Path(path)
        self._spool = JsonlKeptWriter(path.with_name(path.name + ".jsonl"))
        self.file = _FileWithSpool(path, self._spool.file)

    def write(self, chunk: Chunk, keep: np.ndarray) -> None:
        self._spool.write(chunk, keep)

    def close(self) -> None:
        self._spool.close()
        try:
            _convert(self._spool.file.temp, self.file.temp)
        finally:
            self._spool.file.discard()


# What Arrow refuses in a table it cannot build or write (an empty object has
# no Parquet type, say).
_UNTABLED = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


def _convert(spool: Path, parquet: Path) -> None:
    try:
        schema = pa.unify_schemas([_as_json_types(block.schema) for block in _tables(spool)],
                                  promote_options="permissive") if spool.stat().st_size else pa.schema([])
        with pq.ParquetWriter(str(parquet), schema) as writer:
            for table in _tables(spool, schema):
                writer.write_table(table.select(schema.names).cast(schema))
    except _UNTABLED as err:
        raise _not_one_table(err) from None


def _as_json_types(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every timestamp a string. JSON has no date type:
    Arrow guesses one from strings that look like dates, block by block, and
    would rewrite them (or fail where a later block holds "n/a"); read as
    strings they stay the characters the record held."""
    return pa.schema([field.with_type(_json_type(field.type)) for field in schema])


def _json_type(type_: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(type_):
        return pa.string()
    if pa.types.is_struct(type_):
        return pa.struct([type_.field(i).with_type(_json_type(type_.field(i).type)) for i in range(type_.num_fields)])
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        return pa.list_(type_.value_field.with_type(_json_type(type_.value_type)))
    return type_


def _tables(spool: Path, schema: Union[pa.Schema, None] = None) -> Iterator[pa.Table]:
    """The spooled records, a block of lines at a time, as Arrow tables (in ``schema`` when given)."""
    parse = pa_json.ParseOptions(explicit_schema=schema) if schema is not None else pa_json.ParseOptions()
    for lines, _, _ in line_blocks(Source(str(spool), "jsonl"), BLOCK_BYTES):
        block = lines.block()
        options = pa_json.ReadOptions(block_size=len(block) + 1, use_threads=True)
        yield pa_json.read_json(pa.BufferReader(block), read_options=options, parse_options=parse)


def _not_one_table(err: Exception) -> BadInputError:
    return BadInputError(f"the kept records cannot be one Parquet table ({err}); keep them as JSON Lines "
                         f"(leave out --kept-format parquet)")
