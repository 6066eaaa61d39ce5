"""Fuzz the native JSON Lines reader: random bytes, cut into lines, read by
the native reader (with its per-line fallback) and by the per-line Python
parser alone.

Checks, for every input: the texts, reasons and carried fields are identical
both ways, except for lines the Python parser rejects only because they nest
deeper than its recursion limit (the native reader accepts any depth, on
purpose; see csrc/jsonl.h).

Usage: python fuzz/fuzz_jsonl.py [CORPUS_DIR] -max_total_time=60
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

# Imported before instrumenting: their coverage would only add noise.
import numpy  # noqa: F401
import pyarrow  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

with atheris.instrument_imports():
    from jsonl_helpers import both_ways

TOO_DEEP = "malformed JSON: nested too deeply"


def test_one_input(data: bytes) -> None:
    block = data if data.endswith(b"\n") or not data else data + b"\n"
    native, reference = both_ways(block)
    deep = [i for i, reason in enumerate(reference[1]) if reason == TOO_DEEP]
    if deep:  # compare the other lines only
        keep = [i for i in range(len(reference[1])) if i not in deep]
        native = tuple(_rows(part, keep) for part in native)
        reference = tuple(_rows(part, keep) for part in reference)
    assert native == reference, f"native {native} != per-line {reference}"


def _rows(part, rows: list[int]):
    if isinstance(part, dict):
        return {k: [v[i] for i in rows] for k, v in part.items()}
    return [part[i] for i in rows]


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
