"""Where the bytes of an input are: a local file (read natively), a URL of
any store fsspec knows (``s3://``, ``gs://``, ``hf://``, ``https://``,
``memory://``), or a one-time stream (standard input, a pipe); and what the
first bytes of a stream say it holds.

Local paths and ``file://`` URLs never go through fsspec: they keep the
native reader's speed. fsspec is imported only for other URLs.

Example:
    >>> is_url("s3://bucket/a.jsonl"), is_url("shards/a.jsonl"), is_url("C:/data")
    (True, False, False)
    >>> local_path("file:///tmp/a.jsonl")
    '/tmp/a.jsonl'
    >>> sniff(b"\\x1f\\x8b\\x08\\x00"), sniff(b"PAR1"), sniff(b'{"text": 1}')
    (('jsonl', 'gzip'), ('parquet', None), ('jsonl', None))
"""

from __future__ import annotations

import io
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any, Optional
from urllib.parse import unquote, urlsplit

from ..errors import BadInputError, InputNote, UsageError

STDIN = "-"
STDIN_NAME = "<stdin>"
# The first bytes of each compression, and of a Parquet file.
MAGIC = {"gzip": b"\x1f\x8b", "zstd": b"\x28\xb5\x2f\xfd", "bz2": b"BZh", "xz": b"\xfd7zXZ\x00"}
PARQUET_MAGIC = b"PAR1"
HEAD_BYTES = 6
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_url(name: str) -> bool:
    """Whether ``name`` is a URL of a store other than the local file system."""
    return bool(_URL.match(name)) and not name.lower().startswith("file://")


def local_path(name: str) -> str:
    """``name`` with a ``file://`` scheme taken off (a local path stays as it is)."""
    if not name.lower().startswith("file://"):
        return name
    parts = urlsplit(name)
    if parts.netloc not in ("", "localhost"):
        raise UsageError(f"{name}: a file:// URL names a file on this machine (file:///path)")
    return unquote(parts.path)


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path inside it; a clear error
    when fsspec, or the package of the URL's store, is not installed."""
    try:
        import fsspec.core
    except ModuleNotFoundError:
        raise UsageError(f"{url}: reading or writing URLs needs fsspec: pip install 'cotsieve[remote]'") from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as err:  # fsspec names the package the store needs (s3fs, gcsfs, ...)
        raise UsageError(f"{url}: {err}") from None
    except ValueError as err:  # a protocol fsspec does not know
        raise UsageError(f"{url}: {err}") from None
    return fs, str(path)


def sniff(head: bytes) -> tuple[str, Optional[str]]:
    """The format (``jsonl`` or ``parquet``) and compression that the first
    bytes of an input show; anything not compressed and not Parquet is taken
    for JSON Lines (its records are then checked one by one)."""
    if head.startswith(PARQUET_MAGIC):
        return "parquet", None
    return "jsonl", held_compression(head)


def held_compression(head: bytes) -> Optional[str]:
    """The compression whose magic bytes ``head`` starts with, or None."""
    return next((kind for kind, magic in MAGIC.items() if head.startswith(magic)), None)


class Replayed(io.RawIOBase):
    """A one-time stream whose first bytes were read to sniff it: they are
    read again first, then the rest of the stream."""

    def __init__(self, head: bytes, rest: IO[bytes]):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def read_head(stream: IO[bytes]) -> bytes:
    """The first :data:`HEAD_BYTES` bytes of a stream (fewer only at its end)."""
    head = b""
    while len(head) < HEAD_BYTES and (piece := stream.read(HEAD_BYTES - len(head))):
        head += piece
    return head


def standard_input() -> IO[bytes]:
    """This process's standard input, as bytes; a usage error where there is
    none, or where it is a terminal (a forgotten pipe would wait for typing)."""
    if sys.stdin is None:
        raise UsageError("- reads standard input, and this process has none")
    if sys.stdin.isatty():
        raise UsageError("- reads standard input, which is a terminal here; pipe a corpus in, e.g. "
                         "zstdcat traces.jsonl.zst | cotsieve scan -")
    return sys.stdin.buffer


def spooled(stream: IO[bytes], name: str, why: str) -> IO[bytes]:
    """The rest of a one-time stream, copied to an unnamed temporary file (it
    vanishes when closed or when the process ends), with a note saying so."""
    copy = tempfile.TemporaryFile(prefix="cotsieve-spool-")
    shutil.copyfileobj(stream, copy, 1 << 20)
    size = copy.tell()
    warnings.warn(InputNote(f"{name} is read more than once ({why}): spooled to a temporary file of "
                            f"{size / 1e6:,.1f} MB in {tempfile.gettempdir()} (set TMPDIR to choose where)"),
                  stacklevel=3)
    return copy


@contextmanager
def opened(name: str, stream: Optional[IO[bytes]] = None) -> Iterator[IO[bytes]]:
    """The bytes of an input from their start: ``stream`` when the input is
    one (rewound when it can be; a one-time stream is read once), else the
    local file or the URL ``name``. Only what is opened here is closed here."""
    if stream is not None:
        if stream.seekable():
            stream.seek(0)
        yield stream
        return
    if is_url(name):
        fs, path = filesystem(name)
        try:
            handle = fs.open(path, "rb")
        except FileNotFoundError:
            raise FileNotFoundError(f"{name}: no such file") from None
        except OSError as err:
            raise BadInputError(f"{name}: cannot read: {err}") from None
    else:
        handle = open(local_path(name), "rb")
    with handle:
        yield handle


def can_reread(stream: Optional[IO[bytes]]) -> bool:
    """Whether an input can be read again from its start (not so a one-time stream)."""
    return stream is None or stream.seekable()
