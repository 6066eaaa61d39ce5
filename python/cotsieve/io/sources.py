"""Input resolution: a file, directory, glob, list of those, or a Hugging
Face dataset becomes a sorted list of :class:`Source` shards.

Example:
    >>> resolve_inputs([]) == []
    True
    >>> _source_for_file("shard.jsonl.zst")
    Source(name='shard.jsonl.zst', kind='jsonl', compression='zstd')
"""

from __future__ import annotations

import glob as globlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

from ..errors import InputNote

JSONL_SUFFIXES = {".jsonl": None, ".ndjson": None, ".jsonl.gz": "gzip", ".jsonl.zst": "zstd", ".jsonl.zstd": "zstd"}
PARQUET_SUFFIXES = (".parquet",)


@dataclass(frozen=True)
class Source:
    """One input shard: a file path, or an in-memory Hugging Face dataset."""

    name: str
    kind: str  # "jsonl" | "parquet" | "dataset"
    compression: Optional[str] = None
    dataset: Any = field(default=None, compare=False, repr=False)


def resolve_inputs(spec: Union[str, Path, Sequence[Union[str, Path]], Any]) -> list[Source]:
    """Expand a file, directory, glob, list of those, or a ``datasets.Dataset``
    into input shards, in a stable (sorted) order.

    A directory holding a dataset saved with ``Dataset.save_to_disk`` is loaded
    as one dataset; any other directory contributes its JSONL and Parquet files.
    All shards must be JSONL, or all Parquet/datasets.

    A file is read once however often the inputs name it (two spellings of a
    path, a glob that matches it again, a link to it): each later mention is
    dropped with an :class:`~cotsieve.errors.InputNote` warning.

    Example:
        >>> resolve_inputs([]) == []
        True
    """
    if _is_hf_dataset(spec):
        return [Source("<dataset>", "dataset", dataset=_one_split(spec, "<dataset>"))]
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    sources = _once_each([source for item in specs for source in _expand(str(item))])
    families = {"jsonl" if s.kind == "jsonl" else "arrow" for s in sources}
    if len(families) > 1:
        raise ValueError("inputs mix JSONL with Parquet/datasets; curate them separately")
    return sources


def _once_each(sources: list[Source]) -> list[Source]:
    """The sources in order, each file only at its first mention, by what it
    resolves to (device and inode), not by how it is spelled."""
    first: dict[tuple[int, int], str] = {}
    kept = []
    for source in sources:
        if source.kind != "dataset":
            stat = os.stat(source.name)
            identity = (stat.st_dev, stat.st_ino)
            if identity in first:
                warnings.warn(InputNote(f"{source.name} is the same file as {first[identity]}; it is read once"),
                              stacklevel=3)
                continue
            first[identity] = source.name
        kept.append(source)
    return kept


def _expand(item: str) -> list[Source]:
    path = Path(item)
    if path.is_dir():
        if is_saved_dataset(path):
            return [Source(item, "dataset", dataset=_load_saved_dataset(path))]
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and _kind_of(str(p)))
        if not files:
            raise FileNotFoundError(f"{item}: directory holds no .jsonl[.gz|.zst] or .parquet files")
        return [_source_for_file(f) for f in files]
    if path.is_file():
        return [_source_for_file(item)]
    if globlib.has_magic(item):
        files = sorted(f for f in globlib.glob(item, recursive=True) if Path(f).is_file())
        if not files:
            raise FileNotFoundError(f"{item}: pattern matches no files")
        return [_source_for_file(f) for f in files]
    raise FileNotFoundError(f"{item}: no such file or directory")


def is_saved_dataset(path: Union[str, Path]) -> bool:
    """Whether ``path`` is a directory written by ``Dataset.save_to_disk``:
    its ``state.json`` lists the dataset's Arrow files, or its
    ``dataset_dict.json`` its splits. A ``state.json`` of another tool beside
    JSONL shards does not make a dataset.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "state.json").write_text('{"step": 3}')
        >>> is_saved_dataset(folder)
        False
    """
    path = Path(path)
    return path.is_dir() and (_json_has(path / "state.json", "_data_files")
                              or _json_has(path / "dataset_dict.json", "splits"))


def _json_has(path: Path, key: str) -> bool:
    """Whether ``path`` is a JSON object file with ``key`` (false when absent or not JSON)."""
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and key in document


def _kind_of(name: str) -> Optional[tuple[str, Optional[str]]]:
    lower = name.lower()
    for suffix, compression in JSONL_SUFFIXES.items():
        if lower.endswith(suffix):
            return "jsonl", compression
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet", None
    return None


def _source_for_file(name: str) -> Source:
    kind = _kind_of(name)
    if kind is None:
        raise ValueError(f"{name}: unknown format; expected .jsonl, .jsonl.gz, .jsonl.zst or .parquet")
    return Source(name, kind[0], kind[1])


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets.") and hasattr(obj, "column_names")


def _one_split(dataset: Any, name: str) -> Any:
    if hasattr(dataset, "data") and hasattr(dataset.data, "table"):
        return dataset
    splits = list(dataset.keys())
    raise ValueError(f"{name}: a DatasetDict with splits {splits}; pass one split, e.g. ds[{splits[0]!r}]")


def _load_saved_dataset(path: Path) -> Any:
    try:
        import datasets
    except ModuleNotFoundError:
        raise ModuleNotFoundError(f"{path} is a saved Hugging Face dataset; pip install 'cotsieve[hf]'") from None
    return _one_split(datasets.load_from_disk(str(path)), str(path))
