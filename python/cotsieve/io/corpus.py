"""The one entry point of reading: every record of every source, as chunks.

Each source goes to the reader of its family: :mod:`cotsieve.io.jsonl` for
JSON Lines, :mod:`cotsieve.io.arrow` for Parquet and datasets.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from typing import Any, TypeGuard, Union

from .arrow import read_arrow
from .chunks import Chunk, ReadOptions
from .jsonl import read_jsonl
from .select import selected
from .sources import Source, resolve_inputs


def read_corpus(inputs: Union[str, Sequence[str], list[Source], Any], options: ReadOptions = ReadOptions()
                ) -> Generator[Chunk, None, None]:
    """Stream every record of every input shard as :class:`Chunk` objects
    (those of ``options.selection``, when it limits or samples them).

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "a.jsonl")
        >>> _ = open(p, "w").write('{"text": "Hmm."}\\n\\n')
        >>> [(len(c), c.reasons.to_pylist()) for c in read_corpus(p)]
        [(2, [None, 'empty line'])]
    """
    sources = inputs if _is_source_list(inputs) else resolve_inputs(inputs)
    yield from selected(_every_chunk(sources, options), options.selection)


def _every_chunk(sources: list[Source], options: ReadOptions) -> Iterator[Chunk]:
    for source in sources:
        if source.kind == "jsonl":
            yield from read_jsonl(source, options)
        else:
            yield from read_arrow(source, options)


def _is_source_list(obj: Any) -> TypeGuard[list[Source]]:
    return isinstance(obj, list) and all(isinstance(s, Source) for s in obj)
