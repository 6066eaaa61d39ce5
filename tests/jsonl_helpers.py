"""Both ways of reading a JSONL block: the native reader (with its per-line
fallback) and the per-line Python parser alone, for tests and the fuzzer."""

from __future__ import annotations

import pyarrow as pa

from cotsieve.io import ReadOptions, TextSpec
from cotsieve.io.jsonl import _blank_lines, _line_offsets, _parse_block_native, _parse_lines
from cotsieve.io.text import think_tagged

FIELDS = ("source", "id")
OPTIONS = ReadOptions(TextSpec("text", think="keep"), fields=FIELDS)


def both_ways(block: bytes) -> tuple[tuple, tuple]:
    """(texts, reasons, fields, which texts hold a think tag) as Python
    lists, read natively and by the per-line parser."""
    offsets = _line_offsets(block)
    n = len(offsets) - 1
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(block)])
    blank = _blank_lines(block, offsets)
    native = _parse_block_native(block, raw, offsets, blank, OPTIONS)
    reference = _parse_lines(raw, blank, OPTIONS)
    return as_lists(*native), as_lists(*reference, think_tagged(reference[0]))


def as_lists(texts: pa.Array, reasons: pa.Array, fields: pa.Table, tagged) -> tuple[list, list, dict, list]:
    return texts.to_pylist(), reasons.to_pylist(), fields.to_pydict(), tagged.tolist()
