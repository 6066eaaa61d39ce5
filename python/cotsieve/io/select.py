"""A quick look at a corpus: its first N records, or a reproducible uniform
sample of N records.

The sample is a bottom-k sample by hash: record ``k`` (0-based, counted
across all inputs in order) gets the hash ``splitmix64(splitmix64(seed) ^ k)``,
and the ``N`` records with the smallest hashes are the sample, handed on in
input order. Which records are picked depends only on the seed and the
records' positions, not on how the input is cut into chunks, so the two
passes of a percentile rule pick the same records, and the same corpus and
seed always give the same sample. Every set of ``N`` records is equally
likely (a uniform sample without replacement). The sample is held in memory
until the input ends: at most ``2 N`` records and one chunk.

Example:
    >>> import pyarrow as pa
    >>> from .sources import Source
    >>> chunk = Chunk(Source("a.jsonl", "jsonl"), 0, pa.array([b"a", b"b", b"c"]), pa.nulls(3, pa.string()),
    ...               pa.table({}), pa.array([b"1\\n", b"2\\n", b"3\\n"], pa.large_binary()), 6)
    >>> [c.texts.to_pylist() for c in selected(iter([chunk]), Selection(limit=2))]
    [[b'a', b'b']]
    >>> [c.locate(0) for c in selected(iter([chunk]), Selection(sample=1, seed=7))]
    ['a.jsonl:2']
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .chunks import Chunk, Selection

_UINT64 = (1 << 64) - 1


def selected(chunks: Iterator[Chunk], selection: Selection) -> Iterator[Chunk]:
    """The chunks of the records ``selection`` picks."""
    if selection.limit is not None:
        chunks = _first(chunks, selection.limit)
    if selection.sample is not None:
        chunks = _sample(chunks, selection.sample, selection.seed)
    return chunks


def _first(chunks: Iterator[Chunk], n: int) -> Iterator[Chunk]:
    """The first ``n`` records; the input is not read past them."""
    left = n
    for chunk in chunks:
        if len(chunk) >= left:
            yield chunk if len(chunk) == left else chunk.take(np.arange(left))
            return
        left -= len(chunk)
        yield chunk


def _sample(chunks: Iterator[Chunk], n: int, seed: int) -> Iterator[Chunk]:
    """The ``n`` records of smallest hash, in input order (see the module docstring)."""
    held: list[tuple[Chunk, np.ndarray]] = []
    bound, count, n_held = np.uint64(_UINT64), 0, 0
    for chunk in chunks:
        hashes = record_hashes(seed, count, len(chunk))
        count += len(chunk)
        rows = np.flatnonzero(hashes <= bound)
        if rows.size:
            held.append((chunk if rows.size == len(chunk) else chunk.take(rows), hashes[rows]))
            n_held += rows.size
        if n_held >= 2 * n:  # keep memory at 2 n records: drop all but the n smallest so far
            held, bound = _smallest(held, n)
            n_held = n
    for subset, _ in _smallest(held, n)[0]:
        yield subset


def _smallest(held: list[tuple[Chunk, np.ndarray]], n: int) -> tuple[list[tuple[Chunk, np.ndarray]], np.uint64]:
    """The held records among the ``n`` of smallest hash, and the largest hash among them."""
    hashes = np.concatenate([h for _, h in held]) if held else np.zeros(0, np.uint64)
    if len(hashes) <= n:
        return held, np.uint64(_UINT64)
    bound = np.partition(hashes, n - 1)[n - 1]
    kept = []
    for subset, subset_hashes in held:
        rows = np.flatnonzero(subset_hashes <= bound)
        if rows.size:
            kept.append((subset.take(rows), subset_hashes[rows]))
    return kept, bound


def record_hashes(seed: int, first: int, count: int) -> np.ndarray:
    """The sampling hashes of records ``first`` to ``first + count - 1``.

    Example:
        >>> record_hashes(0, 0, 2).tolist() == [record_hashes(0, 0, 1)[0], record_hashes(0, 1, 1)[0]]
        True
    """
    key = _splitmix64(np.array([seed & _UINT64], np.uint64))[0]
    return _splitmix64(np.arange(first, first + count, dtype=np.uint64) ^ key)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Steele, Lea and Flood's SplitMix64 finalizer (wrapping uint64 arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    mixed: np.ndarray = x ^ (x >> np.uint64(31))
    return mixed
