"""Streaming corpus readers and text extraction (see ``docs/curation.md``).

A reader turns one input -- JSONL (plain, ``.gz``, ``.zst``), Parquet, or a
Hugging Face dataset -- into a stream of :class:`Chunk` objects. Every input
record becomes exactly one row of exactly one chunk, either with its text or
with the reason it is unusable, so nothing is ever dropped silently. Chunks
are bounded in size, so memory stays bounded however large the input is.

Example:
    >>> import json, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "c.jsonl")
    >>> with open(path, "w") as f:
    ...     _ = f.write(json.dumps({"text": "Wait, no."}) + "\\n" + "not json\\n")
    >>> [chunk.reasons.to_pylist() for chunk in read_corpus(path)]
    [[None, 'malformed JSON: Expecting value at column 1']]
"""

from __future__ import annotations

import glob as globlib
import json
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, TypeVar, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from isal import igzip, isal_zlib

from . import _core

JSONL_SUFFIXES = {".jsonl": None, ".ndjson": None, ".jsonl.gz": "gzip", ".jsonl.zst": "zstd", ".jsonl.zstd": "zstd"}
PARQUET_SUFFIXES = (".parquet",)
THINK_MODES = ("auto", "keep")
EMPTY_LINE = "empty line"
_BLOCK_BYTES = 16 << 20
_ARROW_BATCH_ROWS = 1024
_WHITESPACE = b" \t\r\n"
# What a cut or corrupt compressed stream raises: Arrow and gzip raise OSError
# subclasses, ISA-L its own error, and a gzip stream cut short EOFError.
STREAM_ERRORS = (OSError, EOFError, isal_zlib.error)


class BadInputError(Exception):
    """An input record or file is unusable; the message names the file and line."""


# ---------------------------------------------------------------- inputs


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

    Example:
        >>> resolve_inputs([]) == []
        True
    """
    if _is_hf_dataset(spec):
        return [Source("<dataset>", "dataset", dataset=_one_split(spec, "<dataset>"))]
    specs = [spec] if isinstance(spec, (str, Path)) else list(spec)
    sources = [source for item in specs for source in _expand(str(item))]
    families = {"jsonl" if s.kind == "jsonl" else "arrow" for s in sources}
    if len(families) > 1:
        raise ValueError("inputs mix JSONL with Parquet/datasets; curate them separately")
    return sources


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
    """Whether ``path`` is a directory written by ``Dataset.save_to_disk``."""
    path = Path(path)
    return path.is_dir() and ((path / "state.json").exists() or (path / "dataset_dict.json").exists())


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


# ---------------------------------------------------------------- text choice


PathPart = Union[str, int]
_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][\w-]*)|\[(-?\d+)\]")


@dataclass(frozen=True)
class TextSpec:
    """Which part of a record is the trace.

    ``field`` is a top-level column (``"text"``, ``"reasoning_content"``) or a
    path into nested JSON such as ``"messages[-1].content"``. If the value it
    reaches is a chat ``messages`` list, the content of the last assistant
    turn is used. With ``think="auto"`` (default) a trace holding ``<think>``
    or ``</think>`` is cut to the thinking part: after the first ``<think>``
    (if any) up to the next ``</think>`` (or the end); ``think="keep"`` uses
    the text as it is.

    Example:
        >>> spec = TextSpec("messages")
        >>> spec.from_object({"messages": [{"role": "user", "content": "Q"},
        ...                                {"role": "assistant", "content": "A"}]})
        b'A'
        >>> TextSpec("a[0].b").path
        ('a', 0, 'b')
    """

    field: str = "text"
    think: str = "auto"

    def __post_init__(self) -> None:
        if self.think not in THINK_MODES:
            raise ValueError(f"think must be one of {list(THINK_MODES)}, got {self.think!r}")
        _parse_path(self.field)

    @property
    def path(self) -> tuple[PathPart, ...]:
        return _parse_path(self.field)

    @property
    def column(self) -> str:
        """The top-level field the text lives in."""
        return str(self.path[0])

    @property
    def is_plain_column(self) -> bool:
        return len(self.path) == 1

    def from_object(self, obj: Any) -> bytes:
        """The text of one parsed JSON record, as UTF-8 bytes; raises ``ValueError`` with the reason."""
        value: Any = obj
        walked = ""
        for part in self.path:
            value, walked = _step_into(value, part, walked)
        value = _last_assistant_turn(value, walked)
        if not isinstance(value, str):
            raise ValueError(f"field {walked!r} is {_json_type(value)}, expected a string")
        return _utf8(value)

    def cut_thinking(self, texts: pa.Array, tagged: Optional[np.ndarray] = None) -> pa.Array:
        """Apply the ``think`` mode to an Arrow binary array of texts.
        ``tagged`` says which texts hold a think tag, where that is known."""
        if self.think == "keep" or len(texts) == 0:
            return texts
        tagged = _think_tagged(texts) if tagged is None else tagged
        if not tagged.any():
            return texts
        tagged = pa.array(tagged)
        inside = pc.extract_regex(texts.filter(tagged), r"(?s)^(?:.*?<think>)?(?P<t>.*?)(?:</think>|\z)")
        return pc.replace_with_mask(texts, tagged, inside.field("t"))


def _think_tagged(texts: pa.Array) -> np.ndarray:
    """Which texts hold ``<think>`` or ``</think>`` (both end in "think>")."""
    found = pc.fill_null(pc.match_substring(texts, "think>"), False)
    return found.to_numpy(zero_copy_only=False)


def _parse_path(spec: str) -> tuple[PathPart, ...]:
    parts: list[PathPart] = []
    pos = 0
    for match in _PATH_TOKEN.finditer(spec):
        if match.start() != pos or (match.group(0).startswith(".") and not parts):
            break
        parts.append(match.group(1) if match.group(1) else int(match.group(2)))
        pos = match.end()
    if pos != len(spec) or not parts or not isinstance(parts[0], str):
        raise ValueError(f"bad text field {spec!r}; use a name or a path like 'messages[-1].content'")
    return tuple(parts)


def _step_into(value: Any, part: PathPart, walked: str) -> tuple[Any, str]:
    here = f"{walked}[{part}]" if isinstance(part, int) else (f"{walked}.{part}" if walked else part)
    if isinstance(part, int):
        if not isinstance(value, list):
            raise ValueError(f"field {walked!r} is {_json_type(value)}, expected a list")
        if not -len(value) <= part < len(value):
            raise ValueError(f"field {here!r} is missing (list has {len(value)} items)")
        return value[part], here
    if not isinstance(value, dict):
        raise ValueError(f"field {walked!r} is {_json_type(value)}, expected an object")
    if part not in value:
        raise ValueError(f"missing field {here!r}")
    return value[part], here


def _last_assistant_turn(value: Any, walked: str) -> Any:
    if not (isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value)):
        return value
    for message in reversed(value):
        if message["role"] == "assistant":
            if "content" not in message:
                raise ValueError(f"last assistant turn in {walked!r} has no 'content'")
            return message["content"]
    raise ValueError(f"no assistant turn in {walked!r}")


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _utf8(text: str) -> bytes:
    # Lines are decoded with surrogateescape, so this gives the input bytes back.
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


# ---------------------------------------------------------------- chunks


@dataclass
class Chunk:
    """A bounded run of consecutive records from one source.

    ``texts`` (binary) and ``reasons`` (string) have one entry per record: a
    record has a text and a null reason, or a null text and the reason it is
    unusable. ``fields`` holds the requested extra fields as strings.
    ``raw`` is what a writer needs to copy records unchanged: for JSONL the
    original line bytes (``large_binary``, newline included), for Parquet and
    datasets the full record batch.
    """

    source: Source
    first_row: int
    texts: pa.Array
    reasons: pa.Array
    fields: pa.Table
    raw: Union[pa.Array, pa.RecordBatch]
    n_bytes: int

    def __len__(self) -> int:
        return len(self.reasons)

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of usable records."""
        return self.reasons.is_null().to_numpy(zero_copy_only=False)

    def locate(self, i: int) -> str:
        """Where record ``i`` of this chunk is, for messages: ``file:line`` or ``file#row``."""
        row = self.first_row + i
        return f"{self.source.name}:{row + 1}" if self.source.kind == "jsonl" else f"{self.source.name}#{row}"


@dataclass(frozen=True)
class ReadOptions:
    """How to read a corpus: which text, which extra fields to carry along
    (as strings, e.g. ``source`` for per-group rules), and whether to parse.

    ``parse=False`` only frames records (lines or rows) for copying; it is
    used by the second pass of a two-pass filter.
    """

    text: TextSpec = TextSpec()
    fields: tuple[str, ...] = ()
    parse: bool = True
    block_bytes: int = _BLOCK_BYTES


def read_corpus(inputs: Union[str, Sequence[str], list[Source], Any], options: ReadOptions = ReadOptions()
                ) -> Iterator[Chunk]:
    """Stream every record of every input shard as :class:`Chunk` objects.

    Example:
        >>> import os, tempfile
        >>> p = os.path.join(tempfile.mkdtemp(), "a.jsonl")
        >>> _ = open(p, "w").write('{"text": "Hmm."}\\n\\n')
        >>> [(len(c), c.reasons.to_pylist()) for c in read_corpus(p)]
        [(2, [None, 'empty line'])]
    """
    sources = inputs if _is_source_list(inputs) else resolve_inputs(inputs)
    for source in sources:
        if source.kind == "jsonl":
            yield from _read_jsonl(source, options)
        else:
            yield from _read_arrow(source, options)


def _is_source_list(obj: Any) -> bool:
    return isinstance(obj, list) and all(isinstance(s, Source) for s in obj)


# ---------------------------------------------------------------- JSONL


T = TypeVar("T")


def prefetched(items: Iterator[T], depth: int = 2, busy: Optional[Callable[[float], None]] = None) -> Iterator[T]:
    """Produce ``items`` ahead in a thread, at most ``depth`` ahead. Reading,
    decompressing and the native JSON reader release the GIL, so the producer
    runs while the consumer works. ``busy`` receives the producer's seconds
    per item. An exception in the producer is raised in the consumer.

    Example:
        >>> list(prefetched(iter(range(3))))
        [0, 1, 2]
    """
    handoff: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                start = time.perf_counter()
                item = next(items, done)
                if busy is not None:
                    busy(time.perf_counter() - start)
                handoff.put(item)
                if item is done:
                    return
        except BaseException as err:  # handed to the consumer, which re-raises it
            handoff.put(err)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while (item := handoff.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                handoff.get_nowait()
            except queue.Empty:
                worker.join(0.01)



def _read_jsonl(source: Source, options: ReadOptions) -> Iterator[Chunk]:
    first_row = 0
    for block, stream_error in prefetched(_line_blocks(source, options.block_bytes)):
        chunk = _jsonl_chunk(source, first_row, block, options)
        if stream_error:
            chunk = _reject_last(chunk, stream_error)
        first_row += len(chunk)
        yield chunk


def _line_blocks(source: Source, block_bytes: int) -> Iterator[tuple[bytes, Optional[str]]]:
    """Blocks of whole lines, each ending in a newline (one is added to a last
    line that lacks it). When the compressed stream is truncated or corrupt,
    the last block ends with the partial line read so far, and the error."""
    carry = b""
    delivered = 0  # decompressed bytes handed on so far (in blocks or carry)
    with _decompressed(source) as stream:
        while True:
            try:
                data = stream.read(block_bytes)
            except STREAM_ERRORS as err:
                # A decoder may drop what it decompressed in the failing read
                # (Arrow's do): recover those bytes, and yield their whole
                # lines before the break.
                buf = carry + _readable_after(source, delivered)
                cut = buf.rfind(b"\n") + 1
                if cut:
                    yield buf[:cut], False
                yield buf[cut:] + b"\n", f"compressed stream ends early or is corrupt ({err}); records after this are lost"
                return
            if not data:
                break
            delivered += len(data)
            cut = data.rfind(b"\n") + 1
            if not cut:  # inside a line longer than a block
                carry += data
                continue
            # One copy per block: the carried start of its first line joined
            # to the whole lines of this read.
            block = carry + memoryview(data)[:cut] if carry else (data if cut == len(data) else data[:cut])
            carry = data[cut:]
            yield block, False
    if carry:
        yield carry + b"\n", False


def _decompressed(source: Source) -> Any:
    """The decompressed bytes of a JSONL source as a stream. gzip goes through
    ISA-L (about 1.5x zlib's inflate speed, benchmarks/bench_reader.py); the decoders release the GIL,
    so the reader thread runs beside the engine."""
    if source.compression == "gzip":
        return igzip.open(source.name, "rb")
    return pa.input_stream(source.name, compression=source.compression)


def _readable_after(source: Source, skip: int) -> bytes:
    """The decompressed bytes of ``source`` after the first ``skip``, as far as
    they can be read before the stream breaks."""
    pieces, seen = [], 0
    try:
        with open(source.name, "rb") as raw, _python_decompressor(raw, source.compression) as stream:
            while data := stream.read1(1 << 20) if hasattr(stream, "read1") else stream.read(1 << 20):
                if seen + len(data) > skip:
                    pieces.append(data[max(0, skip - seen):])
                seen += len(data)
    except Exception:  # the break itself: keep what came before it
        pass
    return b"".join(pieces)


def _python_decompressor(raw: Any, compression: Optional[str]) -> Any:
    if compression == "gzip":
        import gzip

        return gzip.GzipFile(fileobj=raw)
    import zstandard

    return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)


def _reject_last(chunk: Chunk, reason: str) -> Chunk:
    last = np.arange(len(chunk)) == len(chunk) - 1
    chunk.reasons = pc.if_else(pa.array(last), pa.scalar(reason), chunk.reasons)
    chunk.texts = pc.if_else(pa.array(last), pa.scalar(None, chunk.texts.type), chunk.texts)
    return chunk


def _line_offsets(block: bytes) -> np.ndarray:
    # A native memchr loop: a Python loop over bytes.find cost 1 us a line,
    # which is most of the framing time on corpora of short records.
    return _core.line_offsets(block)


def _blank_lines(block: bytes, offsets: np.ndarray) -> np.ndarray:
    first = np.frombuffer(block, np.uint8)[offsets[:-1]]
    maybe = np.flatnonzero(np.isin(first, np.frombuffer(_WHITESPACE, np.uint8)))
    blank = np.zeros(len(offsets) - 1, bool)
    for i in maybe:
        blank[i] = not block[offsets[i]:offsets[i + 1]].strip(_WHITESPACE)
    return blank


def _jsonl_chunk(source: Source, first_row: int, block: bytes, options: ReadOptions) -> Chunk:
    offsets = _line_offsets(block)
    n = len(offsets) - 1
    buffer = pa.py_buffer(block)
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), buffer])
    blank = _blank_lines(block, offsets)
    if not options.parse:
        texts, reasons, fields = _unparsed(n, blank, options)
    elif options.text.is_plain_column:
        texts, reasons, fields, tagged = _parse_block_native(block, raw, offsets, blank, options)
        texts = options.text.cut_thinking(texts, tagged)
    else:
        texts, reasons, fields = _parse_lines(raw, blank, options)
        texts = options.text.cut_thinking(texts)
    return Chunk(source, first_row, texts, reasons, fields, raw, len(block))


def _unparsed(n: int, blank: np.ndarray, options: ReadOptions) -> tuple[pa.Array, pa.Array, pa.Table]:
    return pa.nulls(n, pa.binary()), _empty_line_reasons(blank), _null_fields(n, options.fields)


def _empty_line_reasons(blank: np.ndarray) -> pa.Array:
    if not blank.any():
        return pa.nulls(len(blank), pa.string())
    return pa.array([EMPTY_LINE if b else None for b in blank.tolist()], pa.string())


def _null_fields(n: int, names: Sequence[str]) -> pa.Table:
    return pa.table({name: pa.nulls(n, pa.string()) for name in names}) if names else pa.table({"_": pa.nulls(n)}).drop(["_"])


def _parse_block_native(block: bytes, raw: pa.Array, offsets: np.ndarray, blank: np.ndarray,
                        options: ReadOptions) -> tuple[pa.Array, pa.Array, pa.Table, np.ndarray]:
    """Decode the text and the carried fields of a block in the native engine;
    also which texts hold a think tag. The lines it leaves to Python (see
    ``csrc/jsonl.h``: malformed JSON, a text that is not a string, a lone
    surrogate escape, ...) take the per-line parser, which gives each its
    exact verdict, so a record's verdict never depends on the records around it."""
    text = options.text.column
    keys = list(dict.fromkeys([text, *options.fields]))
    result = _core.extract_jsonl(block, offsets, keys, _int_max_str_digits())
    columns = dict(zip(keys, (_native_column(*c) for c in result["columns"])))
    texts = columns[text]
    reasons = _empty_line_reasons(blank)
    fields = pa.table({f: columns[f].cast(pa.string()) for f in options.fields}) if options.fields \
        else _null_fields(len(blank), ())
    tagged = result["think_tagged"].view(bool)
    slow = result["status"] == _NEEDS_FULL_PARSER
    if not slow.any():
        return texts, reasons, fields, tagged
    mask = pa.array(slow)
    slow_texts, slow_reasons, slow_fields = _parse_lines(raw.filter(mask), np.zeros(int(slow.sum()), bool), options)
    texts = pc.replace_with_mask(texts, mask, slow_texts.cast(texts.type))
    reasons = pc.replace_with_mask(reasons, mask, slow_reasons)
    fields = pa.table({f: pc.replace_with_mask(fields.column(f).combine_chunks(), mask,
                                               slow_fields.column(f).combine_chunks()) for f in options.fields}) \
        if options.fields else fields
    tagged[slow] = _think_tagged(slow_texts)
    return texts, reasons, fields, tagged


_NEEDS_FULL_PARSER = 2  # jsonl::kNeedsFullParser


def _int_max_str_digits() -> int:
    """Python's limit on the digits of an integer it parses (0: none), which the native reader applies too."""
    return sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 0


def _native_column(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> pa.Array:
    """A binary Arrow array over the native engine's buffers, without copying
    the data; ``binary`` (32-bit offsets) unless the values need more."""
    validity = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    kind, offsets = (pa.binary(), offsets.astype(np.int32)) if offsets[-1] < 2**31 else (pa.large_binary(), offsets)
    return pa.Array.from_buffers(kind, len(valid), [validity, pa.py_buffer(offsets), pa.py_buffer(data)])


def _parse_lines(raw: pa.Array, blank: np.ndarray, options: ReadOptions) -> tuple[pa.Array, pa.Array, pa.Table]:
    """The per-line path: exact reasons for every unusable line."""
    texts: list[Optional[bytes]] = []
    reasons: list[Optional[str]] = []
    fields: dict[str, list[Optional[str]]] = {f: [] for f in options.fields}
    for line, is_blank in zip(raw.to_pylist(), blank):
        obj, reason = (None, EMPTY_LINE) if is_blank else _parse_line(line)
        text = None
        if reason is None:
            try:
                text = options.text.from_object(obj)
            except ValueError as err:
                reason = str(err)
        texts.append(text)
        reasons.append(reason)
        for name, values in fields.items():
            values.append(_field_string(obj.get(name)) if reason is None else None)
    return pa.array(texts, pa.binary()), pa.array(reasons, pa.string()), _string_table(fields, len(texts))


def _parse_line(line: bytes) -> tuple[Any, Optional[str]]:
    decoded = line.decode("utf-8", "surrogateescape")
    # A UTF-8 byte-order mark before the object is skipped, as JSON Lines
    # readers commonly do (the native reader leaves such lines to this path).
    decoded = decoded[1:] if decoded.startswith("\ufeff") else decoded
    try:
        obj = json.loads(decoded)
    except json.JSONDecodeError as err:
        return None, f"malformed JSON: {err.msg.removesuffix(' at')} at column {err.colno}"
    except RecursionError:
        return None, "malformed JSON: nested too deeply"
    except ValueError as err:  # an integer past Python's digit limit
        return None, f"malformed JSON: {err}"
    if not isinstance(obj, dict):
        return None, f"JSON value is {_json_type(obj)}, expected an object"
    return obj, None


def _field_string(value: Any) -> Optional[str]:
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


def _string_table(columns: dict[str, list], n: int) -> pa.Table:
    if not columns:
        return _null_fields(n, ())
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})


# ---------------------------------------------------------------- Parquet and datasets


def arrow_schema(source: Source) -> pa.Schema:
    """The schema of a Parquet or dataset source, read without its data."""
    if source.kind == "dataset":
        return source.dataset.data.table.schema
    return pq.read_schema(source.name)


def _arrow_batches(source: Source) -> Iterator[pa.RecordBatch]:
    if source.kind == "dataset":
        yield from source.dataset.data.table.to_batches(max_chunksize=_ARROW_BATCH_ROWS)
        return
    try:
        yield from pq.ParquetFile(source.name).iter_batches(batch_size=_ARROW_BATCH_ROWS)
    except (pa.ArrowInvalid, OSError) as err:
        raise BadInputError(f"{source.name}: cannot read Parquet: {err}") from None


def _read_arrow(source: Source, options: ReadOptions) -> Iterator[Chunk]:
    first_row = 0
    for batch in _arrow_batches(source):
        n = batch.num_rows
        if options.parse:
            texts, reasons = _arrow_texts(batch, options.text)
            texts = options.text.cut_thinking(texts)
            fields = pa.table({f: _arrow_field(batch, f) for f in options.fields}) if options.fields \
                else _null_fields(n, ())
        else:
            texts, reasons, fields = _unparsed(n, np.zeros(n, bool), options)
        yield Chunk(source, first_row, texts, reasons, fields, batch, batch.nbytes)
        first_row += n


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
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t)


def _is_large(t: pa.DataType) -> bool:
    return pa.types.is_large_string(t) or pa.types.is_large_binary(t)


def _texts_from_objects(objects: list[dict], spec: TextSpec) -> tuple[pa.Array, pa.Array]:
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
    return pa.array([_field_string(v) for v in column.to_pylist()], pa.string())
