"""Turn the text containers users hold into a native ``TextBatch`` without copying."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Union

import numpy as np
import pyarrow as pa

from . import _core

TextInput = Union[Iterable[Union[str, bytes]], pa.Array, pa.ChunkedArray]

_OFFSET_DTYPES = {
    pa.string(): np.int32,
    pa.binary(): np.int32,
    pa.large_string(): np.int64,
    pa.large_binary(): np.int64,
}


def utf8(text: Union[str, bytes]) -> bytes:
    """The bytes the engine reads for ``text``: the one rule for ``str`` to
    UTF-8, used by every entry point but ``profile`` (the native batch calls
    it for any str that is not valid Unicode). ``profile`` encodes with
    ``surrogatepass`` because its byte offsets must match the character
    offsets the tokenizer reports, three bytes for every surrogate.

    A valid ``str`` is plain UTF-8. A ``str`` with lone surrogates is encoded
    with ``surrogateescape``, which gives back the bytes of text decoded with
    it (U+DC80..U+DCFF stand for the undecodable bytes 0x80..0xFF); one that
    has other surrogates is encoded with ``surrogatepass`` (three bytes per
    surrogate), so that no text is refused. ``bytes`` are read as they are.

    Example:
        >>> utf8("é"), utf8("a\\udcff"), utf8("a\\ud800"), utf8(b"\\xff")
        (b'\\xc3\\xa9', b'a\\xff', b'a\\xed\\xa0\\x80', b'\\xff')
    """
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def as_text_batch(texts: TextInput) -> _core.TextBatch:
    """View ``texts`` as a native batch.

    Arrow string and binary arrays are read in place (their offsets and data
    buffers go to the engine as they are); Python ``str`` and ``bytes`` are
    read through their own buffers, ``str`` converted by ``utf8``.
    """
    if isinstance(texts, _core.TextBatch):
        return texts
    if isinstance(texts, (str, bytes, bytearray)):
        raise TypeError("expected a sequence of texts, got a single text; wrap it in a list: [text]")
    if isinstance(texts, pa.ChunkedArray):
        return _core.TextBatch.from_arrow_chunks(_arrow_chunks(texts.chunks))
    if isinstance(texts, pa.Array):
        return _core.TextBatch.from_arrow_chunks(_arrow_chunks([texts]))
    if not isinstance(texts, (list, tuple)):
        texts = list(texts)
    return _core.TextBatch.from_sequence(texts)


def _arrow_chunks(chunks: Iterable[pa.Array]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    base = 0
    for chunk in chunks:
        out.append(_arrow_chunk(chunk, base))
        base += len(chunk)
    return out


def _arrow_chunk(arr: pa.Array, base: int) -> tuple[np.ndarray, np.ndarray]:
    if arr.null_count:
        first = int(np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))[0])
        raise TypeError(f"text at index {base + first} is null, expected str or bytes")
    if pa.types.is_string_view(arr.type) or pa.types.is_binary_view(arr.type):
        arr = arr.cast(pa.large_binary())  # views have no contiguous offsets
    dtype = _OFFSET_DTYPES.get(arr.type)
    if dtype is None:
        raise TypeError(f"Arrow array of type {arr.type} holds no text; expected string or binary")
    _, offsets_buf, data_buf = arr.buffers()
    if len(arr) == 0 or offsets_buf is None:
        return np.zeros(1, dtype), np.empty(0, np.uint8)
    itemsize = np.dtype(dtype).itemsize
    offsets = np.frombuffer(offsets_buf, dtype=dtype, count=len(arr) + 1, offset=arr.offset * itemsize)
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.empty(0, np.uint8)
    return offsets, data
