"""Input resolution: a file, directory, glob, URL, ``-`` (standard input),
list of those, or a Hugging Face dataset becomes a sorted list of
:class:`Source` shards.

Example:
    >>> resolve_inputs([]) == []
    True
    >>> _source_for_file("shard.jsonl.zst")
    Source(name='shard.jsonl.zst', kind='jsonl', compression='zstd')
    >>> _source_for_file("train-00000.json.xz")
    Source(name='train-00000.json.xz', kind='jsonl', compression='xz')
"""

from __future__ import annotations

import glob as globlib
import io
import json
import os
import sys
from stat import S_ISDIR
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Optional, TypeVar, Union

from ..errors import BadInputError, InputNote, UsageError
from .locations import (PARQUET_MAGIC, STDIN, STDIN_NAME, Replayed, filesystem, held_compression, is_url,
                        local_path, opened, read_head, sniff, spooled, standard_input)

FORMATS = ("jsonl", "parquet")
COMPRESSION_SUFFIXES = {"": None, ".gz": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2", ".xz": "xz"}
# ``.json`` files of the Hub hold JSON Lines; a folder's ``.json`` files are
# often metadata (dataset_info.json), so a folder contributes only the others.
JSONL_SUFFIXES = {base + ext: compression for base in (".jsonl", ".ndjson", ".json")
                  for ext, compression in COMPRESSION_SUFFIXES.items()}
_FOLDER_JSONL_SUFFIXES = {s: c for s, c in JSONL_SUFFIXES.items() if not (s == ".json" or s.startswith(".json."))}
PARQUET_SUFFIXES = (".parquet",)
# Paths that name a stream, not a file with a name to go by.
_STREAM_PATHS = ("/dev/", "/proc/")

T = TypeVar("T")


@dataclass(frozen=True)
class Source:
    """One input shard: a file path or URL, a stream (standard input, a pipe),
    or an in-memory Hugging Face dataset. ``stream``, when set, holds the
    bytes; ``name`` then only names them in record ids and messages."""

    name: str
    kind: str  # "jsonl" | "parquet" | "dataset"
    compression: Optional[str] = None
    dataset: Any = field(default=None, compare=False, repr=False)
    stream: Optional[IO[bytes]] = field(default=None, compare=False, repr=False)


def resolve_inputs(spec: Union[str, Path, Sequence[Union[str, Path]], Any], format: Optional[str] = None
                   ) -> list[Source]:
    """Expand a file, directory, glob, URL, ``-``, list of those, or a
    ``datasets.Dataset`` into input shards, in a stable (sorted) order.

    A directory holding a dataset saved with ``Dataset.save_to_disk`` is loaded
    as one dataset; any other directory contributes its JSONL and Parquet files.
    All shards must be JSONL, or all Parquet/datasets. A URL (``s3://``,
    ``memory://``, ...) is read through fsspec, a file, folder or glob alike;
    ``-`` is standard input, its format found from its first bytes.
    ``format`` (``"jsonl"`` or ``"parquet"``) overrides what names say.

    A file is read once however often the inputs name it (two spellings of a
    path, a glob that matches it again, a link to it): each later mention is
    dropped with an :class:`~cotsieve.errors.InputNote` warning.

    Example:
        >>> resolve_inputs([]) == []
        True
    """
    if format is not None and format not in FORMATS:
        raise UsageError(f"--format must be one of {list(FORMATS)}, got {format!r}")
    if _is_hf_dataset(spec):
        return [Source("<dataset>", "dataset", dataset=_one_split(spec, "<dataset>"))]
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    sources = _once_each([source for item in _named_once([str(s) for s in specs]) for source in _expand(item, format)])
    families = {"jsonl" if s.kind == "jsonl" else "arrow" for s in sources}
    if len(families) > 1:
        raise ValueError("inputs mix JSONL with Parquet/datasets; curate them separately")
    return sources


def _named_once(items: list[str]) -> list[str]:
    """The input arguments, each file, pipe or standard input at its first
    mention only. A stream named twice (``- -``, ``- /dev/stdin``, or ``-``
    redirected from a file also named) would lose to its first reader the
    bytes the second one needs, so repeats are dropped before anything is
    read, with the note a later repeat gets."""
    return _first_mentions(items, _item_identity, lambda item: STDIN_NAME if item == STDIN else item)


def _item_identity(item: str) -> Any:
    """The device and inode an input argument names before it is expanded:
    standard input's, a pipe's or a file's; None for a URL, a folder, a glob
    or what cannot be looked at (expanding it says what is wrong)."""
    try:
        if item == STDIN:
            stat = os.fstat(sys.stdin.fileno())
        elif is_url(item):
            return None
        else:
            stat = os.stat(local_path(item))  # what does not exist lands below
    except (OSError, ValueError, AttributeError):  # no such file, no standard input, or one without a descriptor
        return None
    return None if S_ISDIR(stat.st_mode) else (stat.st_dev, stat.st_ino)


def _once_each(sources: list[Source]) -> list[Source]:
    """The sources in order, each file only at its first mention, by what it
    resolves to (device and inode), not by how it is spelled."""
    return _first_mentions(sources, lambda s: None if s.kind == "dataset" else _identity(s), lambda s: s.name)


def _first_mentions(items: list[T], identity: Callable[[T], Any], name: Callable[[T], str]) -> list[T]:
    """``items`` in order without the repeats of an identity (None: never a
    repeat), each dropped with a note naming its first mention."""
    first: dict[Any, str] = {}
    kept = []
    for item in items:
        key = identity(item)
        if key is not None:
            if key in first:
                warnings.warn(InputNote(f"{name(item)} is the same file as {first[key]}; it is read once"),
                              stacklevel=4)
                continue
            first[key] = name(item)
        kept.append(item)
    return kept


def _identity(source: Source) -> Any:
    """What a source is, however it is spelled: a local file's device and
    inode; a URL or a stream by its name."""
    if source.stream is not None or is_url(source.name):
        return source.name
    stat = os.stat(source.name)
    return stat.st_dev, stat.st_ino


def input_state(source: Source) -> Optional[tuple[Any, Any]]:
    """Size and modification stamp of an input file or object (None for a
    stream or dataset, or once it is gone), to notice a change between passes."""
    if source.stream is not None or source.kind == "dataset":
        return None
    try:
        if is_url(source.name):
            fs, path = filesystem(source.name)
            info = fs.info(path)
            return info.get("size"), next((str(info[k]) for k in ("mtime", "LastModified", "ETag", "created")
                                           if k in info), None)
        stat = os.stat(source.name)
        return stat.st_size, stat.st_mtime_ns
    except OSError:
        return None


def reread_streams(sources: list[Source], why: str) -> list[Source]:
    """The sources, each one-time stream among them spooled to a temporary
    file (with a note saying so), so that it can be read again."""
    return [Source(s.name, s.kind, s.compression, stream=spooled(s.stream, s.name, why))
            if s.stream is not None and not s.stream.seekable() else s for s in sources]


def _expand(item: str, format: Optional[str]) -> list[Source]:
    if item == STDIN:
        return [_stream_source(STDIN_NAME, standard_input(), format)]
    if is_url(item):
        return _expand_url(item, format)
    item = local_path(item)
    path = Path(item)
    if path.is_dir():
        if is_saved_dataset(path):
            return [Source(item, "dataset", dataset=_load_saved_dataset(path))]
        files = sorted(str(p) for p in path.rglob("*") if p.is_file() and _kind_of(str(p), in_folder=True))
        return [_source_for_file(f, format) for f in _some(files, item, "directory holds no")]
    if path.is_file():
        return [_source_for_file(item, format, named=True)]
    if path.exists():  # a pipe or a device: bytes that can be read once
        return [_stream_source(item, open(item, "rb"), format)]
    if globlib.has_magic(item):
        files = sorted(f for f in globlib.glob(item, recursive=True) if Path(f).is_file())
        return [_source_for_file(f, format) for f in _some(files, item, "pattern matches no")]
    raise FileNotFoundError(f"{item}: no such file or directory")


def _expand_url(url: str, format: Optional[str]) -> list[Source]:
    """The files a URL names: an object, every JSONL/Parquet object under a
    prefix, or the matches of a glob."""
    fs, path = filesystem(url)
    try:
        if fs.isfile(path):
            return [_source_for_file(url, format, named=True)]
        if fs.isdir(path):
            files = sorted(f for f in fs.find(path) if _kind_of(f, in_folder=True))
            found = _some(files, url, "prefix holds no")
        elif globlib.has_magic(path):
            found = _some(sorted(f for f in fs.glob(path) if fs.isfile(f)), url, "pattern matches no")
        else:
            raise FileNotFoundError(f"{url}: no such file or directory")
    except (FileNotFoundError, UsageError):
        raise
    except OSError as err:  # no access, no such bucket, the store cannot be reached
        raise BadInputError(f"{url}: cannot read: {err}") from None
    return [_source_for_file(fs.unstrip_protocol(f), format) for f in found]


def _some(files: list[str], where: str, what: str) -> list[str]:
    if not files:
        raise FileNotFoundError(f"{where}: {what} .jsonl/.ndjson[.gz|.zst|.bz2|.xz] or .parquet files")
    return files


def _stream_source(name: str, stream: IO[bytes], format: Optional[str]) -> Source:
    """A source read from a one-time stream, its format from its first bytes
    (or ``format``). Parquet keeps its index at its end, so a Parquet stream
    is spooled to a temporary file first."""
    head = read_head(stream)
    kind, compression = sniff(head)
    kind = format or kind
    replayed = io.BufferedReader(Replayed(head, stream))
    if kind == "jsonl" and head.startswith(PARQUET_MAGIC):
        raise BadInputError(f"{name}: --format jsonl, but the input is Parquet")
    if kind == "parquet":
        if not head.startswith(PARQUET_MAGIC):
            raise BadInputError(f"{name}: --format parquet, but the input does not start as Parquet does")
        return Source(name, kind, stream=spooled(replayed, name, "a Parquet file is read from its end"))
    return Source(name, kind, compression, stream=replayed)


def _kind_of(name: str, in_folder: bool = False) -> Optional[tuple[str, Optional[str]]]:
    lower = name.lower()
    suffixes = _FOLDER_JSONL_SUFFIXES if in_folder else JSONL_SUFFIXES
    for suffix, compression in suffixes.items():
        if lower.endswith(suffix):
            return "jsonl", compression
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet", None
    return None


def _source_for_file(name: str, format: Optional[str] = None, named: bool = False) -> Source:
    """A file's source: its format from its name, or ``format``; a file
    ``named`` under /dev or /proc (``/dev/stdin`` redirected from a file) is
    known by its first bytes. The compression of JSON Lines comes from the
    name's last suffix, else from the first bytes."""
    guess = _kind_of(name)
    if format is None and guess is None and named and name.startswith(_STREAM_PATHS):
        format = sniff(_head_of(name))[0]
    if format is None:
        if guess is None:
            raise ValueError(f"{name}: unknown format; expected .jsonl, .ndjson or .json (JSON Lines, "
                             f"optionally .gz, .zst, .bz2 or .xz) or .parquet, or pass --format jsonl|parquet")
        return Source(name, guess[0], guess[1])
    if format == "parquet":
        return Source(name, "parquet")
    suffix = next((s for s in COMPRESSION_SUFFIXES if s and name.lower().endswith(s)), None)
    return Source(name, "jsonl", COMPRESSION_SUFFIXES[suffix] if suffix else held_compression(_head_of(name)))


def _head_of(name: str) -> bytes:
    with opened(name) as stream:
        return read_head(stream)


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
