"""JSON Lines: framing decompressed bytes into blocks of whole lines,
recovering the records before a cut or corrupt gzip/zstd stream, and parsing
each block (the native reader, with the per-line parser for the lines it
leaves to Python and for nested text paths).

Example:
    >>> _line_offsets(b'{"text": "a"}\\n\\n').tolist()
    [0, 14, 15]
    >>> _parse_line(b"[1]")
    (None, 'JSON value is a list, expected an object')
"""

from __future__ import annotations

import bz2
import json
import lzma
import sys
import warnings
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import IO, Any, Callable, Optional, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import zstandard
from isal import igzip, isal_zlib

from .. import _core
from ..errors import BadInputError, InputNote
from .chunks import EMPTY_LINE, Chunk, ReadOptions, empty_line_reasons, field_string, null_fields, unparsed_columns
from .locations import PARQUET_MAGIC, can_reread, held_compression, opened, read_head
from .prefetch import ordered_map, prefetched
from .sources import Source
from .text import json_type, think_tagged

_WHITESPACE = b" \t\r\n"
# What a cut or corrupt compressed stream raises: Arrow and gzip raise OSError
# subclasses, ISA-L and zstandard their own errors, and a gzip stream cut
# short EOFError, xz its LZMAError.
# isal's stub declares ``isal_zlib.error`` as an Exception instance, not a class.
STREAM_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, isal_zlib.error, zstandard.ZstdError,  # type: ignore[assignment]
                                                  lzma.LZMAError)


def read_jsonl(source: Source, options: ReadOptions) -> Generator[Chunk, None, None]:
    def parse(item: tuple[_Lines, Optional[str], Optional[int]]) -> tuple[Chunk, Optional[str], Optional[int]]:
        lines, stream_error, position = item
        return _jsonl_chunk(source, lines.block(), options), stream_error, position

    first_row = 0
    blocks = prefetched(line_blocks(source, options.block_bytes))
    for chunk, stream_error, position in ordered_map(parse, blocks, options.parse_threads):
        chunk.first_row = first_row  # known once the blocks before it are framed
        if stream_error:
            chunk = _reject_last(chunk, stream_error)
        chunk.position = position
        first_row += len(chunk)
        yield chunk


class _Lines:
    """A block of whole lines before it is joined: the carried start of its
    first line, and the read whose first ``cut`` bytes end it. The reader
    thread, which alone inflates a stream, hands the join (one copy of the
    block) on to the threads that parse blocks at once."""

    __slots__ = ("head", "data", "cut")

    def __init__(self, head: bytes, data: bytes, cut: int):
        self.head, self.data, self.cut = head, data, cut

    @classmethod
    def whole(cls, block: bytes) -> _Lines:
        return cls(b"", block, len(block))

    def block(self) -> bytes:
        if self.head:
            return self.head + memoryview(self.data)[:self.cut]
        return self.data if self.cut == len(self.data) else self.data[:self.cut]


def line_blocks(source: Source, block_bytes: int) -> Iterator[tuple[_Lines, Optional[str], Optional[int]]]:
    """Blocks of whole lines, each ending in a newline (one is added to a last
    line that lacks it), with how far into the stored file reading has got
    (None where unknown). When the compressed stream is truncated or corrupt,
    the last block ends with the partial line read so far, and the error."""
    carry = b""
    delivered = 0  # decompressed bytes handed on so far (in blocks or carry)
    with _decompressed(source) as stream:
        while True:
            try:
                data = stream.read(block_bytes)
            except _ReadFailed as failed:  # the storage, not the data: nothing after it can be trusted
                raise BadInputError(f"{source.name}: cannot read: {failed.__cause__}") from None
            except STREAM_ERRORS as err:
                # A decoder may drop what it decompressed in the failing read:
                # recover those bytes, and yield their whole lines before the break.
                recovered, trailing = _readable_after(source, delivered, err)
                buf = carry + recovered
                if trailing:  # every member was whole: the bytes after them are no record
                    warnings.warn(InputNote(f"{source.name}: {trailing}"), stacklevel=2)
                    if buf:
                        yield _Lines.whole(buf + (b"" if buf.endswith(b"\n") else b"\n")), None, None
                    return
                cut = buf.rfind(b"\n") + 1
                if cut:
                    yield _Lines(b"", buf, cut), None, None
                lost = f"compressed stream ends early or is corrupt ({err}); records after this are lost"
                yield _Lines.whole(buf[cut:] + b"\n"), lost, None
                return
            if not data:
                break
            delivered += len(data)
            cut = data.rfind(b"\n") + 1
            if not cut:  # inside a line longer than a block
                carry += data
                continue
            # One copy per block, made by the parsing thread: the carried
            # start of its first line joined to the whole lines of this read.
            block = _Lines(carry, data, cut)
            carry = data[cut:]
            yield block, None, _stored_position(stream)
    if carry:
        yield _Lines.whole(carry + b"\n"), None, None


def _stored_position(stream: Any) -> Optional[int]:
    """How far into the stored (compressed) file a decompressed stream has
    read, or None when it cannot say."""
    raw = getattr(stream, "fileobj", None) or getattr(stream, "raw_file", None) or stream
    try:
        return int(raw.tell())
    except (AttributeError, OSError, ValueError):
        return None


# The largest window the zstd format allows (``zstd --long=31``); the
# decoder's default stops at 128 MiB and calls valid long-window frames corrupt.
ZSTD_MAX_WINDOW = 1 << 31


@contextmanager
def _decompressed(source: Source) -> Iterator[Any]:
    """The decompressed bytes of a JSONL source as a stream. gzip goes through
    ISA-L (about 1.5x zlib's inflate speed, benchmarks/bench_reader.py); the
    decoders release the GIL, so the reader thread runs beside the engine."""
    if source.stream is None:  # a stream's compression was found from its own first bytes
        _check_compression(source)
    with opened(source.name, source.stream) as opened_raw:
        raw = cast(IO[bytes], _StoredReads(opened_raw))  # a file in all but its type
        if source.compression is None:
            yield raw
            return
        with _decoder(raw, source.compression, fast=True) as stream:
            yield stream


class _ReadFailed(Exception):
    """The storage failed to hand over an input's bytes (a dropped connection,
    an I/O error): not an OSError, so no decoder or reader takes it for a
    corrupt or cut stream, whose records before the break could be kept."""


class _StoredReads:
    """An input's stored bytes, with the storage's read errors raised as
    :class:`_ReadFailed`; everything else is the wrapped file's."""

    def __init__(self, raw: IO[bytes]):
        self._raw: Any = raw  # readinto: every binary file has it, IO[bytes] does not say so

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._raw.read(size)
            return data
        except OSError as err:
            raise _ReadFailed(err) from err

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._raw.readinto(buffer))
        except OSError as err:
            raise _ReadFailed(err) from err

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _decoder(raw: IO[bytes], compression: Optional[str], fast: bool = False) -> Any:
    """A decompressing stream over ``raw`` (which it leaves open); ``fast``
    takes ISA-L for gzip, else Python's gzip, whose errors say where a stream breaks."""
    if compression == "gzip":
        if fast:
            return igzip.IGzipFile(fileobj=raw)  # type: ignore[no-untyped-call]  # isal leaves it unannotated
        import gzip

        return gzip.GzipFile(fileobj=raw)
    if compression == "bz2":
        return _Frames(raw, bz2.BZ2Decompressor, "bz2")
    if compression == "xz":
        return _Frames(raw, lzma.LZMADecompressor, "xz")
    return _Frames(raw, zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj, "zstd")


def _check_compression(source: Source) -> None:
    """A file whose bytes are of another compression than its name says is named,
    with what it holds, before a decoder calls it corrupt."""
    with opened(source.name) as f:
        head = read_head(f)
    if head.startswith(PARQUET_MAGIC):
        raise BadInputError(f"{source.name}: the file holds Parquet data, not JSON Lines; name it .parquet "
                            f"(or pass --format parquet)")
    held = held_compression(head)
    if head and held != source.compression:
        says = f"{source.compression} data" if source.compression else "plain JSON Lines"
        holds = f"{held} data" if held else "no gzip, zstd, bz2 or xz header"
        raise BadInputError(f"{source.name}: the name says {says}, but the file holds {holds}; rename it "
                            f"(.jsonl, .jsonl.gz, .jsonl.zst, .jsonl.bz2 or .jsonl.xz after what it holds)")


class _NotAFrame(OSError):
    """Bytes after whole compressed frames that start no frame."""


class _Frames:
    """The decompressed bytes of consecutive zstd frames (or bz2 or xz
    streams), as a stream. Unlike the libraries' own stream readers, which end
    quietly where the input ends (zstandard) or skip what follows the last
    whole stream (bz2, lzma), a stream cut inside a frame raises, so a
    truncated file is never read as a shorter whole one, and bytes after the
    last whole frame raise :class:`_NotAFrame` (the reader notes them); the
    bytes decoded before either go out first. ``read(size)`` returns at least
    ``size`` bytes until the end (more when a decoded piece overshoots: the
    readers cut at newlines themselves, and a second copy to trim would cost
    a pass over the data)."""

    def __init__(self, raw: Any, new_frame: Callable[[], Any], kind: str):
        self._raw, self._new_frame, self._kind = raw, new_frame, kind
        self._frame = new_frame()
        self._inside_frame = False
        self._whole_frames = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def read(self, size: int) -> bytes:
        while self._pending_bytes < size:
            data = self._raw.read(1 << 20)
            if not data:
                if self._inside_frame and not self._pending_bytes:  # what came before the cut goes out first
                    raise EOFError(f"the stream ends inside a {self._kind} frame (truncated file)")
                break
            try:
                self._decode(data)
            except STREAM_ERRORS as err:
                if not self._pending_bytes:
                    raise
                self._raw = _Failing(err)  # what was decoded before the break goes out first
                break
        out = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        return out

    def _decode(self, data: bytes) -> None:
        while data:
            try:
                out = self._frame.decompress(data)
            except STREAM_ERRORS as err:
                if self._whole_frames and not self._inside_frame:
                    raise _NotAFrame(f"bytes after the last whole {self._kind} frame start no frame: {err}") from err
                raise
            self._pending.append(out)
            self._pending_bytes += len(out)
            self._inside_frame = not self._frame.eof
            data = self._frame.unused_data if self._frame.eof else b""
            if self._frame.eof:
                self._whole_frames += 1
                self._frame = self._new_frame()

    @property
    def raw_file(self) -> Any:
        return self._raw

    def close(self) -> None:
        """Nothing to close: the raw stream is its opener's."""

    def __enter__(self) -> _Frames:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class _Failing:
    """A raw stream that broke: its next read raises the error it broke with."""

    def __init__(self, error: BaseException):
        self._error = error

    def read(self, size: int) -> bytes:
        raise self._error


def _readable_after(source: Source, skip: int, error: BaseException) -> tuple[bytes, Optional[str]]:
    """The decompressed bytes of ``source`` after the first ``skip``, as far as
    they can be read before the stream breaks (``error``); and, where the
    break is bytes after the last whole gzip member or compressed frame, what
    to tell the user. A one-time stream cannot be read again: what its
    decoder dropped is lost, and only ``error`` tells what the break is."""
    pieces, seen, trailing = [], 0, None
    if not can_reread(source.stream):
        return b"", _trailing_data(error, skip)
    try:
        with opened(source.name, source.stream) as raw, _decoder(raw, source.compression) as stream:
            while data := stream.read1(1 << 20) if hasattr(stream, "read1") else stream.read(1 << 20):
                if seen + len(data) > skip:
                    pieces.append(data[max(0, skip - seen):])
                seen += len(data)
    except Exception as err:  # the break itself: keep what came before it
        trailing = _trailing_data(err, seen)
    return b"".join(pieces), trailing


def _trailing_data(err: BaseException, decompressed: int) -> Optional[str]:
    """The note for bytes that follow whole members or frames (``gzip -d``
    ignores them with a warning), or None when the break is a real corruption."""
    message = str(err)
    if decompressed and (isinstance(err, _NotAFrame) or "Not a gzipped file" in message):
        return "bytes after the last whole compressed member are not compressed data and were ignored"
    return None


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


def _jsonl_chunk(source: Source, block: bytes, options: ReadOptions) -> Chunk:
    """The chunk of one block of whole lines; its ``first_row`` is set by the
    reader, which knows it once the blocks before are framed."""
    offsets = _line_offsets(block)
    n = len(offsets) - 1
    buffer = pa.py_buffer(block)
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), buffer])
    blank = _blank_lines(block, offsets)
    if not options.parse:
        texts, reasons, fields = unparsed_columns(n, blank, options)
    elif options.text.is_plain_column:
        texts, reasons, fields, tagged = _parse_block_native(block, raw, offsets, blank, options)
        texts = options.text.cut_thinking(texts, tagged)
    else:
        texts, reasons, fields = _parse_lines(raw, blank, options)
        texts = options.text.cut_thinking(texts)
    return Chunk(source, 0, texts, reasons, fields, raw, len(block))


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
    reasons = empty_line_reasons(blank)
    fields = pa.table({f: columns[f].cast(pa.string()) for f in options.fields}) if options.fields \
        else null_fields(len(blank), ())
    tagged = result["think_tagged"].view(bool)
    slow = result["status"] == int(_core.LineStatus.NEEDS_FULL_PARSER)
    if not slow.any():
        return texts, reasons, fields, tagged
    mask = pa.array(slow)
    slow_texts, slow_reasons, slow_fields = _parse_lines(raw.filter(mask), np.zeros(int(slow.sum()), bool), options)
    texts = pc.replace_with_mask(texts, mask, slow_texts.cast(texts.type))
    reasons = pc.replace_with_mask(reasons, mask, slow_reasons)
    fields = pa.table({f: pc.replace_with_mask(fields.column(f).combine_chunks(), mask,
                                               slow_fields.column(f).combine_chunks()) for f in options.fields}) \
        if options.fields else fields
    tagged[slow] = think_tagged(slow_texts)
    return texts, reasons, fields, tagged


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
            values.append(field_string(obj.get(name)) if obj is not None and reason is None else None)
    return pa.array(texts, pa.binary()), pa.array(reasons, pa.string()), _string_table(fields, len(texts))


def _parse_line(line: bytes) -> tuple[Optional[dict[str, Any]], Optional[str]]:
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
        return None, f"JSON value is {json_type(obj)}, expected an object"
    return obj, None


def _string_table(columns: dict[str, list[Optional[str]]], n: int) -> pa.Table:
    if not columns:
        return null_fields(n, ())
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
