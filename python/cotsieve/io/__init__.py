"""Streaming corpus readers and writers (see ``docs/curation.md``).

A reader turns one input -- JSONL (plain, ``.gz``, ``.zst``, ``.bz2``,
``.xz``), Parquet, or a Hugging Face dataset; a local file, a URL or standard
input -- into a stream of :class:`Chunk` objects. Every input
record becomes exactly one row of exactly one chunk, either with its text or
with the reason it is unusable, so nothing is ever dropped silently. Chunks
are bounded in size, so memory stays bounded however large the input is.

The modules, in the order a record meets them:

- :mod:`~cotsieve.io.sources`: files, directories, globs, URLs, stdin and datasets to :class:`Source` shards;
- :mod:`~cotsieve.io.locations`: local files, fsspec URLs and one-time streams, and sniffing their format;
- :mod:`~cotsieve.io.text`: :class:`TextSpec`, which part of a record is the trace;
- :mod:`~cotsieve.io.jsonl` and :mod:`~cotsieve.io.arrow`: the readers of each family;
- :mod:`~cotsieve.io.chunks`: :class:`Chunk` and :class:`ReadOptions`;
- :mod:`~cotsieve.io.prefetch`: the reader thread; :mod:`~cotsieve.io.lanes`: several shards read at once;
- :mod:`~cotsieve.io.select`: the first N records, or a reproducible sample (:class:`Selection`);
- :mod:`~cotsieve.io.corpus`: :func:`read_corpus`, the entry point;
- :mod:`~cotsieve.io.writers`: the atomic output files; :mod:`~cotsieve.io.kept_parquet`: JSON Lines kept as Parquet;
- :mod:`~cotsieve.io.staged`: the output folder, local or at a URL (uploaded last).

Example:
    >>> import json, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "c.jsonl")
    >>> with open(path, "w") as f:
    ...     _ = f.write(json.dumps({"text": "Wait, no."}) + "\\n" + "not json\\n")
    >>> [chunk.reasons.to_pylist() for chunk in read_corpus(path)]
    [[None, 'malformed JSON: Expecting value at column 1']]
"""

from ..errors import BadInputError
from .arrow import arrow_schema
from .chunks import EMPTY_LINE, Chunk, ReadOptions, Selection
from .corpus import read_corpus
from .jsonl import STREAM_ERRORS
from .lanes import shard_lanes
from .prefetch import prefetched
from .sources import FORMATS, JSONL_SUFFIXES, PARQUET_SUFFIXES, Source, input_state, is_saved_dataset, \
    reread_streams, resolve_inputs
from .text import THINK_MODES, PathPart, TextSpec

__all__ = [
    "EMPTY_LINE",
    "FORMATS",
    "JSONL_SUFFIXES",
    "PARQUET_SUFFIXES",
    "STREAM_ERRORS",
    "THINK_MODES",
    "BadInputError",
    "Chunk",
    "PathPart",
    "ReadOptions",
    "Selection",
    "Source",
    "TextSpec",
    "arrow_schema",
    "input_state",
    "is_saved_dataset",
    "prefetched",
    "read_corpus",
    "reread_streams",
    "resolve_inputs",
    "shard_lanes",
]
