"""Adversarial corpora for the curation pipeline.

Each ``write_*`` function writes one case into a folder and returns a
:class:`Case`: the input files, how many records the reader must count, and
the records it must reject (``record_id`` -> expected start of the reason).
Everything is deterministic, so a case written twice gives the same bytes.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

# A paragraph with markers of several categories, so that analysis has work to do.
PARAGRAPH = ("Let x be the number of apples. Then 3x + 2 = 11, so x = 3.\n\n"
             "Wait, let me double-check: 3 * 3 + 2 = 11. Alternatively, subtract 2 first.\n\n")


@dataclass
class Case:
    """One adversarial corpus and what the pipeline must make of it."""

    inputs: list[Path]
    n_records: int
    rejects: dict[str, str] = field(default_factory=dict)  # record_id -> reason prefix

    @property
    def args(self) -> list[str]:
        return [str(p) for p in self.inputs]

    def first_failing_reject(self) -> str | None:
        """The record ``--on-error fail`` must stop at: the first reject that is not an empty line."""
        failing = [rid for rid, reason in self.rejects.items() if reason != "empty line"]
        return failing[0] if failing else None


def json_line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))
    return path


def _case_from_lines(path: Path, lines: list[bytes], rejects_by_line: dict[int, str]) -> Case:
    """``rejects_by_line`` is keyed by 1-based line number."""
    write_lines(path, lines)
    return Case([path], len(lines), {f"{path}:{n}": reason for n, reason in sorted(rejects_by_line.items())})


# ---------------------------------------------------------------- encodings


def write_encoding_corpus(folder: Path) -> Case:
    """NUL as ``\\u0000`` and raw invalid UTF-8 are accepted; a raw NUL or
    stray bytes outside a string make the line malformed JSON."""
    lines = [
        json_line({"text": "a\u0000b. Wait, no.\u0000"}),                      # 1 escaped NULs
        b'{"text": "caf\xe9 \xff\xfe Wait, no.\\n\\nSo x = 3."}\n',            # 2 invalid UTF-8 in the text
        b'{"text": "Hmm.", "note": "\xc3\x28 \xed\xa0\x80"}\n',               # 3 invalid UTF-8 in another field
        b'{"text": "a\x00b"}\n',                                               # 4 raw NUL inside a string
        b'{"text": "x"}\xff\n',                                                # 5 invalid byte after the object
        json_line({"text": "\ud800 lone surrogate escape"}),                  # 6 \ud800 escape, valid JSON
    ]
    rejects = {4: "malformed JSON: Invalid control character", 5: "malformed JSON: Extra data"}
    return _case_from_lines(folder / "encoding.jsonl", lines, rejects)


# ---------------------------------------------------------------- lines and fields


def write_empty_lines_corpus(folder: Path) -> Case:
    """Blank lines of every kind, CRLF endings, and a last line without a newline."""
    lines = [b"\n", json_line({"text": "One. Wait."}), b"   \n", b"\t\r\n",
             b'{"text": "crlf line"}\r\n', b"\n", b"\n", b'{"text": "no newline at the end"}']
    return _case_from_lines(folder / "blank.jsonl", lines, {1: "empty line", 3: "empty line", 4: "empty line",
                                                            6: "empty line", 7: "empty line"})


def write_text_field_corpus(folder: Path) -> Case:
    """Records whose text is missing or not a string, and JSON values that are not objects."""
    bad = [({"txt": "typo"}, "missing field 'text'"), ({"text": None}, "field 'text' is null"),
           ({"text": 3}, "field 'text' is a number"), ({"text": 2.5}, "field 'text' is a number"),
           ({"text": True}, "field 'text' is a boolean"), ({"text": ["a"]}, "field 'text' is a list"),
           ({"text": {"a": 1}}, "field 'text' is an object"), ([1, 2], "JSON value is a list"),
           ("text", "JSON value is a string"), (None, "JSON value is null"), (7, "JSON value is a number")]
    lines, rejects = [json_line({"text": "A good one."})], {}
    for obj, reason in bad:
        lines.append(json_line(obj))
        rejects[len(lines)] = reason
        lines.append(json_line({"text": f"Good again after {reason}."}))
    lines += [b'{"text": "two"} {"text": "objects"}\n', b'{"text": "unterminated\n', b"{}\n"]
    rejects.update({len(lines) - 2: "malformed JSON: Extra data",
                    len(lines) - 1: "malformed JSON: Invalid control character",  # the newline ends the string
                    len(lines): "missing field 'text'"})
    return _case_from_lines(folder / "fields.jsonl", lines, rejects)


def write_duplicate_ids_corpus(folder: Path) -> Case:
    """The same line three times and one id with two texts: no record is merged or dropped as a duplicate."""
    same = json_line({"id": "dup", "text": "Same text. Wait, no."})
    lines = [same, same, json_line({"id": "dup", "text": "Other text."}), same,
             json_line({"id": "solo", "text": "Alone."})]
    return _case_from_lines(folder / "dups.jsonl", lines, {})


def write_mixed_jsonl_shards(folder: Path) -> Case:
    """Shards with different extra fields, and a carried field whose type changes across and within shards."""
    shards = {
        "a.jsonl": [json_line({"text": f"a{i}. Wait.", "source": "s1", "id": i}) for i in range(5)],
        "b.jsonl": [json_line({"text": f"b{i}.", "model": "m", "extra": [i, {"k": i}]}) for i in range(5)],
        "c.jsonl": [json_line({"text": f"c{i}.", "source": i if i % 2 else f"s{i}", "id": f"c{i}"})
                    for i in range(5)],
    }
    paths = [write_lines(folder / name, lines) for name, lines in shards.items()]
    return Case(paths, 15, {})


# ---------------------------------------------------------------- huge and deep values


def nested_array(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def write_nested_corpus(folder: Path, depth: int = 10_000, blob_mb: int = 50) -> Case:
    """A 10k-deep array and a 50 MB string in fields other than the text."""
    blob = "x" * (blob_mb << 20)
    lines = [
        json_line({"text": "Before. Wait."}),
        b'{"text": "Deep. Hmm.", "deep": ' + nested_array(depth).encode() + b"}\n",
        b'{"text": "Deep object.", "deep": ' + (b'{"a":' * depth) + b"1" + (b"}" * depth) + b"}\n",
        json_line({"text": "Blob. Alternatively, no.", "blob": blob}),
        json_line({"text": "After."}),
    ]
    return _case_from_lines(folder / "nested.jsonl", lines, {})


def write_huge_trace(folder: Path, megabytes: int = 200) -> tuple[Path, int]:
    """One record whose text is about ``megabytes`` MB; written in pieces so
    the writer never holds it. Returns the path and the text's byte length."""
    path = folder / "huge.jsonl"
    unit = json.dumps(PARAGRAPH)[1:-1].encode()  # the paragraph as escaped JSON string content
    repeats = (megabytes << 20) // len(PARAGRAPH)
    with open(path, "wb") as f:
        f.write(b'{"id": "huge", "text": "')
        batch = unit * 1024
        for _ in range(repeats // 1024):
            f.write(batch)
        f.write(unit * (repeats % 1024))
        f.write(b'"}\n')
    return path, repeats * len(PARAGRAPH.encode())


def write_tiny_traces(folder: Path, n: int = 1_000_000) -> Path:
    """``n`` records of a few bytes each, with a handful of distinct texts."""
    texts = [b"Wait.", b"Hmm, no.", b"x=1.", b"So 2.", b""]
    path = folder / "tiny.jsonl"
    with open(path, "wb") as f:
        f.writelines(b'{"text":"' + texts[i % len(texts)] + b'"}\n' for i in range(n))
    return path


# ---------------------------------------------------------------- compressed streams


def corpus_payload(n: int = 4000) -> list[bytes]:
    """Lines long enough that a cut lands inside a record, varied so they do not compress to nothing."""
    return [json_line({"id": i, "text": f"Step {i}. " + PARAGRAPH * (1 + i % 5)}) for i in range(n)]


def _complete_lines(data: bytes) -> int:
    return data.count(b"\n")


def middle(length: int) -> int:
    return length // 2


def write_truncated_gzip(folder: Path, cut_at: Callable[[int], int] = middle) -> Case:
    """A gzip stream cut at byte ``cut_at(len(stream))``. The lines that
    decompress completely from the cut stream are readable; the partial one
    after them is the rejected record."""
    whole = gzip.compress(b"".join(corpus_payload()), compresslevel=6, mtime=0)
    cut = whole[: cut_at(len(whole))]
    readable = zlib.decompressobj(wbits=31).decompress(cut)
    return _truncated_case(folder / "cut.jsonl.gz", cut, readable)


def write_gzip_with_wrong_crc(folder: Path) -> Case:
    """A whole gzip stream whose CRC-32 is wrong: every record decompresses,
    the check at the end fails. The empty remainder is the rejected record."""
    payload = b"".join(corpus_payload())
    whole = bytearray(gzip.compress(payload, compresslevel=6, mtime=0))
    whole[-8:-4] = bytes(b ^ 0xFF for b in whole[-8:-4])
    return _truncated_case(folder / "bad-crc.jsonl.gz", bytes(whole), payload)


def write_truncated_zstd(folder: Path, cut_at: Callable[[int], int] = middle) -> Case:
    """The same with a zstd frame that has a checksum and no content size, as a streaming writer leaves it."""
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=False, write_checksum=True)
    whole = compressor.compress(b"".join(corpus_payload()))
    cut = whole[: cut_at(len(whole))]
    readable = zstandard.ZstdDecompressor().decompressobj().decompress(cut)
    return _truncated_case(folder / "cut.jsonl.zst", cut, readable)


def _truncated_case(path: Path, cut: bytes, readable: bytes) -> Case:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cut)
    complete = _complete_lines(readable)
    return Case([path], complete + 1, {f"{path}:{complete + 1}": "compressed stream ends early or is corrupt"})


# ---------------------------------------------------------------- Parquet shards


def write_mergeable_parquet_shards(folder: Path) -> Case:
    """Shards whose column types differ but merge: int32 vs int64 ids,
    string vs large_string texts, a column only one shard has, a null text."""
    folder.mkdir(parents=True, exist_ok=True)
    a = pa.table({"id": pa.array([1, 2, 3], pa.int32()), "text": ["One. Wait.", "Two.", "Three."]})
    b = pa.table({"id": pa.array([4, 5], pa.int64()), "text": pa.array(["Four.", None], pa.large_string()),
                  "score": [0.5, 0.25]})
    paths = [folder / "a.parquet", folder / "b.parquet"]
    pq.write_table(a, paths[0])
    pq.write_table(b, paths[1])
    return Case(paths, 5, {f"{paths[1]}#1": "field 'text' is null"})


def write_conflicting_parquet_shards(folder: Path) -> Case:
    """A column that is a string in one shard and a list in the other: no merged schema exists."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "a.parquet", folder / "b.parquet"]
    pq.write_table(pa.table({"text": ["a."], "tags": ["x"]}), paths[0])
    pq.write_table(pa.table({"text": ["b."], "tags": [["x", "y"]]}), paths[1])
    return Case(paths, 2, {})
