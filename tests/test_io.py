"""Readers and text extraction: formats, text choice, and every kind of bad input."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from cotsieve.io import EMPTY_LINE, ReadOptions, Source, TextSpec, read_corpus, resolve_inputs

RECORDS = [{"text": f"Step {i}.\n\nAlternatively, {i}.", "source": "s" + str(i % 2), "pid": i} for i in range(5)]


def jsonl_bytes(records):
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def write(path, data: bytes):
    if path.name.endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return path


def read_all(inputs, **options):
    chunks = list(read_corpus(inputs, ReadOptions(**options)))
    texts = [t for c in chunks for t in c.texts.to_pylist()]
    reasons = [r for c in chunks for r in c.reasons.to_pylist()]
    return chunks, texts, reasons


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz", "a.jsonl.zst"])
def test_jsonl_formats_read_the_same_texts(tmp_path, name):
    path = write(tmp_path / name, jsonl_bytes(RECORDS))
    _, texts, reasons = read_all(str(path))
    assert texts == [r["text"].encode() for r in RECORDS]
    assert reasons == [None] * len(RECORDS)


def test_parquet_directory_and_glob(tmp_path):
    pq.write_table(pa.Table.from_pylist(RECORDS[:2]), tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_pylist(RECORDS[2:]), tmp_path / "b.parquet")
    for spec in (str(tmp_path), str(tmp_path / "*.parquet")):
        _, texts, _ = read_all(spec)
        assert texts == [r["text"].encode() for r in RECORDS]


def test_mixing_jsonl_and_parquet_is_refused(tmp_path):
    write(tmp_path / "a.jsonl", jsonl_bytes(RECORDS))
    pq.write_table(pa.Table.from_pylist(RECORDS), tmp_path / "b.parquet")
    with pytest.raises(ValueError, match="mix"):
        resolve_inputs(str(tmp_path))


def test_missing_input_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        resolve_inputs(str(tmp_path / "nope.jsonl"))


def test_small_blocks_split_into_many_chunks_with_running_rows(tmp_path):
    path = write(tmp_path / "a.jsonl", jsonl_bytes(RECORDS))
    chunks, texts, _ = read_all(str(path), block_bytes=40)
    assert len(chunks) > 1
    assert [c.first_row for c in chunks] == [sum(len(p) for p in chunks[:i]) for i in range(len(chunks))]
    assert texts == [r["text"].encode() for r in RECORDS]


def test_extra_fields_are_strings_whatever_their_json_type(tmp_path):
    path = write(tmp_path / "a.jsonl", jsonl_bytes(RECORDS))
    chunks, _, _ = read_all(str(path), fields=("source", "pid", "absent"))
    fields = chunks[0].fields.to_pydict()
    assert fields["source"] == [r["source"] for r in RECORDS]
    assert fields["pid"] == [str(r["pid"]) for r in RECORDS]
    assert fields["absent"] == [None] * len(RECORDS)


@pytest.mark.parametrize(
    "spec, record, expected",
    [
        ("text", {"text": "T"}, b"T"),
        ("reasoning_content", {"reasoning_content": "R", "text": "T"}, b"R"),
        ("messages[-1].content", {"messages": [{"content": "a"}, {"content": "b"}]}, b"b"),
        ("messages", {"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A1"},
                                   {"role": "user", "content": "Q2"}]}, b"A1"),
        ("a.b[0]", {"a": {"b": ["x"]}}, b"x"),
    ],
)
def test_text_choice(tmp_path, spec, record, expected):
    path = write(tmp_path / "a.jsonl", jsonl_bytes([record]))
    _, texts, reasons = read_all(str(path), text=TextSpec(spec))
    assert (texts, reasons) == ([expected], [None])


@pytest.mark.parametrize(
    "text, auto",
    [
        ("<think>inner</think>answer", b"inner"),
        ("preamble <think>inner", b"inner"),
        ("inner</think>answer", b"inner"),
        ("no tags at all", b"no tags at all"),
    ],
)
def test_think_part(tmp_path, text, auto):
    path = write(tmp_path / "a.jsonl", jsonl_bytes([{"text": text}]))
    assert read_all(str(path))[1] == [auto]
    assert read_all(str(path), text=TextSpec("text", think="keep"))[1] == [text.encode()]


def test_bad_text_specs_are_refused():
    for bad in ("", "a..b", "[0]", "a[x]", ".a"):
        with pytest.raises(ValueError):
            TextSpec(bad)
    with pytest.raises(ValueError):
        TextSpec("text", think="sometimes")


BAD_LINES = [
    (b'{"text": "ok"}', None),
    (b"", EMPTY_LINE),
    (b"   \t", EMPTY_LINE),
    (b'{"text": "unterminated', "malformed JSON"),
    (b"[1, 2]", "JSON value is a list, expected an object"),
    (b'{"text": 5}', "field 'text' is a number, expected a string"),
    (b'{"text": null}', "field 'text' is null, expected a string"),
    (b'{"other": "x"}', "missing field 'text'"),
    (b'{"text": "a"} {"text": "b"}', "malformed JSON"),
]


@pytest.mark.parametrize("name", ["a.jsonl", "a.jsonl.gz"])
def test_every_bad_line_gets_a_reason_and_good_lines_survive(tmp_path, name):
    data = b"\n".join(line for line, _ in BAD_LINES) + b"\n"
    path = write(tmp_path / name, data)
    _, texts, reasons = read_all(str(path))
    assert len(reasons) == len(BAD_LINES)
    for (line, expected), reason in zip(BAD_LINES, reasons):
        assert (reason is None) if expected is None else reason.startswith(expected), (line, reason)
    assert texts[0] == b"ok"


def test_invalid_utf8_is_kept_as_bytes(tmp_path):
    line = b'{"text": "caf\xe9 \xff wait"}'
    path = write(tmp_path / "a.jsonl", line + b"\n" + b'{"text": 1}\n')  # the second line forces the slow path
    chunks, texts, reasons = read_all(str(path))
    assert texts[0] == b"caf\xe9 \xff wait" and reasons[0] is None
    assert chunks[0].raw[0].as_py() == line + b"\n"


def test_last_line_without_newline_is_read(tmp_path):
    path = write(tmp_path / "a.jsonl", b'{"text": "a"}\n{"text": "b"}')
    chunks, texts, _ = read_all(str(path))
    assert texts == [b"a", b"b"]
    assert chunks[-1].raw[len(chunks[-1]) - 1].as_py() == b'{"text": "b"}\n'


@pytest.mark.parametrize("name", ["a.jsonl.gz", "a.jsonl.zst"])
def test_truncated_stream_rejects_its_partial_last_record(tmp_path, name):
    full = write(tmp_path / name, jsonl_bytes(RECORDS * 200)).read_bytes()
    path = tmp_path / ("cut-" + name)
    path.write_bytes(full[: len(full) // 2])
    _, texts, reasons = read_all(str(path))
    assert reasons[-1].startswith("compressed stream ends early")
    assert all(r is None for r in reasons[:-1]) and len(reasons) < len(RECORDS) * 200
    assert texts[-1] is None


def test_parquet_null_missing_and_wrongly_typed_text(tmp_path):
    pq.write_table(pa.table({"text": ["a", None]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"body": ["a"]}), tmp_path / "b.parquet")
    pq.write_table(pa.table({"text": [7]}), tmp_path / "c.parquet")
    _, texts, reasons = read_all(str(tmp_path))
    assert texts[0] == b"a"
    assert reasons[1:] == ["field 'text' is null, expected a string", "missing field 'text'",
                           "field 'text' is a number, expected a string"]


def test_chunk_locate_names_file_and_line(tmp_path):
    path = write(tmp_path / "a.jsonl", jsonl_bytes(RECORDS))
    chunk = next(read_corpus(str(path)))
    assert chunk.locate(0) == f"{path}:1"
    assert Source("x.parquet", "parquet").name == "x.parquet"


def test_hf_dataset_in_memory_and_on_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(RECORDS)
    assert read_all(ds)[1] == [r["text"].encode() for r in RECORDS]
    ds.save_to_disk(str(tmp_path / "saved"))
    assert read_all(str(tmp_path / "saved"))[1] == [r["text"].encode() for r in RECORDS]


def test_hf_dataset_views_read_the_rows_they_show():
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(RECORDS)
    texts = [r["text"].encode() for r in RECORDS]
    assert read_all(ds.select([2, 0]))[1] == [texts[2], texts[0]]
    shuffled = ds.shuffle(seed=3)
    assert read_all(shuffled)[1] == [r["text"].encode() for r in shuffled]
    assert read_all(ds.filter(lambda r: r["text"] != RECORDS[1]["text"]))[1] == [texts[0], *texts[2:]]


def test_jsonl_shards_with_different_fields(tmp_path):
    write(tmp_path / "a.jsonl", jsonl_bytes([{"text": "a", "source": "x"}]))
    write(tmp_path / "b.jsonl.gz", jsonl_bytes([{"text": "b", "score": 1.5, "source": 7}]))
    chunks, texts, reasons = read_all(str(tmp_path), fields=("source",))
    assert texts == [b"a", b"b"] and reasons == [None, None]
    assert [c.fields.column("source").to_pylist() for c in chunks] == [["x"], ["7"]]
