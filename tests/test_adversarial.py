"""The pipeline on adversarial corpora (see ``tests/adversarial.py`` and the
pipeline section of ``docs/reliability.md``).

Each case is run through the command line. Under ``--on-error skip`` every
unusable record must appear in ``rejected.jsonl`` with its reason; under
``--on-error fail`` the run must stop with exit code 1 at the first one, name
it as ``file:LINE`` (or ``file#ROW``) and leave no output. Every run that
finishes must balance: ``kept + dropped + rejected == read``, with the output
files agreeing with ``summary.json``.
"""

from __future__ import annotations

import filecmp
import gzip
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import adversarial as adv
from cotsieve.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main

ONE_PASS = ["--where", "n_steps >= 1"]
TWO_PASS = ["--by", "length", "--drop-top", "20%"]


SMALL_CASES = {
    "encoding": adv.write_encoding_corpus,
    "empty-lines": adv.write_empty_lines_corpus,
    "text-field": adv.write_text_field_corpus,
    "duplicate-ids": adv.write_duplicate_ids_corpus,
    "mixed-jsonl-shards": adv.write_mixed_jsonl_shards,
    "gzip-cut-in-the-middle": adv.write_truncated_gzip,
    "gzip-cut-in-the-header": lambda folder: adv.write_truncated_gzip(folder, lambda n: 5),
    "gzip-cut-in-the-trailer": lambda folder: adv.write_truncated_gzip(folder, lambda n: n - 4),
    "gzip-wrong-crc": adv.write_gzip_with_wrong_crc,
    "zstd-cut-in-the-middle": adv.write_truncated_zstd,
    "zstd-cut-in-the-checksum": lambda folder: adv.write_truncated_zstd(folder, lambda n: n - 2),
    "parquet-mergeable-schemas": adv.write_mergeable_parquet_shards,
}


# ---------------------------------------------------------------- helpers


def run_filter(case: adv.Case, out: Path, on_error: str, rule: list[str] = ONE_PASS, extra: tuple = ()) -> int:
    return main(["filter", *case.args, "--out", str(out), "--on-error", on_error, "--quiet", *rule, *extra])


def kept_path(out: Path) -> Path:
    [path] = [p for p in out.iterdir() if p.name.startswith("kept.")]
    return path


def kept_lines(out: Path) -> list[bytes]:
    path = kept_path(out)
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True).read()
    return data.splitlines(keepends=True)


def kept_rows(out: Path) -> int:
    path = kept_path(out)
    return pq.read_metadata(path).num_rows if path.suffix == ".parquet" else len(kept_lines(out))


def rejected_entries(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]


def metrics(out: Path) -> pa.Table:
    return pq.read_table(out / "metrics.parquet")


def check_accounting(out: Path, with_kept: bool = True) -> dict:
    """``summary.json`` balances, and each output holds the records it says."""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] + summary["dropped"] + summary["rejected"] == summary["read"]
    assert summary["balanced"] is True
    assert len(rejected_entries(out)) == summary["rejected"]
    assert metrics(out).num_rows == summary["kept"] + summary["dropped"]
    if with_kept:
        assert kept_rows(out) == summary["kept"]
    return summary


def one_line(text: str) -> str:
    """Captured console output with rich's line wrapping undone."""
    return "".join(text.splitlines())


# ---------------------------------------------------------------- every small case, both error modes


CASE_NAMES = list(SMALL_CASES)


@pytest.mark.parametrize("rule", [ONE_PASS, TWO_PASS], ids=["one-pass", "two-pass"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_skip_lists_every_unusable_record_with_its_reason(name, rule, tmp_path):
    case = SMALL_CASES[name](tmp_path / "in")
    out = tmp_path / "out"
    nothing_usable = case.n_records > 0 and len(case.rejects) == case.n_records
    # A run that rejects every record fails, and keeps its outputs for inspection.
    assert run_filter(case, out, "skip", rule) == (EXIT_BAD_INPUT if nothing_usable else EXIT_OK)
    summary = check_accounting(out)
    assert summary["read"] == case.n_records
    entries = rejected_entries(out)
    assert [e["record_id"] for e in entries] == list(case.rejects)
    for entry in entries:
        assert entry["reason"].startswith(case.rejects[entry["record_id"]]), entry


@pytest.mark.parametrize("name", CASE_NAMES)
def test_fail_stops_at_the_first_unusable_record_and_writes_nothing(name, tmp_path, capsys):
    case = SMALL_CASES[name](tmp_path / "in")
    out = tmp_path / "out"
    code = run_filter(case, out, "fail")
    failing = case.first_failing_reject()
    if failing is None:  # empty lines never stop a run
        assert code == EXIT_OK
        check_accounting(out)
        return
    assert code == EXIT_BAD_INPUT
    message = one_line(capsys.readouterr().err)
    assert f"{failing}: {case.rejects[failing]}".replace(" ", "") in message.replace(" ", "")
    assert not out.exists()  # the run created the folder, and takes it back with nothing in it


# ---------------------------------------------------------------- encodings


def test_invalid_utf8_and_nul_records_are_kept_byte_for_byte(tmp_path):
    case = adv.write_encoding_corpus(tmp_path / "in")
    out = tmp_path / "out"
    assert run_filter(case, out, "skip") == EXIT_OK
    lines = case.inputs[0].read_bytes().splitlines(keepends=True)
    accepted = [line for n, line in enumerate(lines, 1) if f"{case.inputs[0]}:{n}" not in case.rejects]
    assert kept_lines(out) == accepted
    # The engine measured the original bytes of the text, invalid ones included.
    n_bytes = dict(zip(metrics(out).column("row").to_pylist(), metrics(out).column("n_bytes").to_pylist()))
    assert n_bytes[1] == len("caf\xe9 \xff\xfe Wait, no.\n\nSo x = 3.".encode("latin-1"))
    assert n_bytes[0] == len(b"a\x00b. Wait, no.\x00")


def test_rejected_records_keep_their_original_bytes(tmp_path):
    case = adv.write_encoding_corpus(tmp_path / "in")
    out = tmp_path / "out"
    run_filter(case, out, "skip")
    lines = case.inputs[0].read_bytes().splitlines(keepends=True)
    for entry in rejected_entries(out):
        assert entry["record"].encode("utf-8", "surrogateescape") + b"\n" == lines[entry["row"]]


def analyzed_alone(lines: list[bytes], folder: Path, fields: tuple[str, ...]) -> tuple[int, list[dict]]:
    """Rejected count and metric rows (without ids) of ``analyze`` over ``lines``."""
    folder.mkdir(parents=True)
    path = adv.write_lines(folder / "in.jsonl", lines)
    field_args = [arg for f in fields for arg in ("--field", f)]
    code = main(["analyze", str(path), "--out", str(folder / "out"), "--on-error", "skip", "--quiet", *field_args])
    summary = json.loads((folder / "out" / "summary.json").read_text())
    assert code == (EXIT_BAD_INPUT if summary["rejected"] == summary["read"] else EXIT_OK)
    rows = metrics(folder / "out").drop(["record_id", "file"]).to_pylist()
    return summary["rejected"], rows


TRICKY_LINES = {
    "escaped-nul": adv.json_line({"text": "a\u0000b. Wait."}),
    "invalid-utf8-text": b'{"text": "caf\xe9 \xff Wait, no.\\n\\nSo 3."}\n',
    "invalid-utf8-field": b'{"text": "Hmm.", "note": "\xc3\x28"}\n',
    "lone-surrogate-escape": adv.json_line({"text": "\ud800 x. Wait."}),
    "bom": b'\xef\xbb\xbf{"text": "BOM first"}\n',
    "float-field": adv.json_line({"text": "Score. Wait.", "score": 1.0}),
    "big-int-field": adv.json_line({"text": "Big.", "score": 2**70}),
    "duplicate-key": b'{"text": "first", "text": "second. Wait."}\n',
    "deep-array-carried": b'{"text": "Deep. Hmm.", "note": ' + adv.nested_array(10_000).encode() + b"}\n",
    "deep-array": b'{"text": "Deep.", "meta": ' + adv.nested_array(10_000).encode() + b"}\n",
    "huge-int-field": b'{"text": "Huge.", "score": ' + b"7" * 5000 + b"}\n",
    "huge-int-elsewhere": b'{"text": "Huge.", "meta": [' + b"7" * 5000 + b"]}\n",
}


@pytest.mark.parametrize("line", TRICKY_LINES.values(), ids=TRICKY_LINES)
def test_a_records_verdict_does_not_depend_on_its_neighbours(line, tmp_path):
    """A record must come out the same alone and next to a malformed line
    (which the native reader hands to the per-line parser)."""
    fields = ("note", "score")
    fast = analyzed_alone([line], tmp_path / "fast", fields)
    slow = analyzed_alone([line, b"not json\n"], tmp_path / "slow", fields)
    assert (fast[0], fast[1]) == (slow[0] - 1, slow[1])


# ---------------------------------------------------------------- duplicates and schemas


def test_duplicate_ids_are_neither_merged_nor_dropped(tmp_path):
    case = adv.write_duplicate_ids_corpus(tmp_path / "in")
    out = tmp_path / "out"
    assert run_filter(case, out, "fail", extra=("--field", "id")) == EXIT_OK
    assert kept_lines(out) == case.inputs[0].read_bytes().splitlines(keepends=True)
    table = metrics(out)
    assert table.column("id").to_pylist() == ["dup", "dup", "dup", "dup", "solo"]
    assert len(set(table.column("record_id").to_pylist())) == 5  # positional ids stay unique


def test_invalid_utf8_in_a_carried_field_does_not_stop_the_run(tmp_path):
    case = adv.write_encoding_corpus(tmp_path / "in")
    out = tmp_path / "out"
    assert run_filter(case, out, "skip", extra=("--field", "note")) == EXIT_OK
    metrics(out).validate(full=True)


def test_jsonl_shards_with_different_fields_carry_them_as_strings_or_nulls(tmp_path):
    case = adv.write_mixed_jsonl_shards(tmp_path / "in")
    out = tmp_path / "out"
    assert run_filter(case, out, "fail", extra=("--field", "source", "--field", "id")) == EXIT_OK
    table = metrics(out)
    assert table.column("source").to_pylist() == ["s1"] * 5 + [None] * 5 + ["s0", "1", "s2", "3", "s4"]
    assert table.column("id").to_pylist() == [str(i) for i in range(5)] + [None] * 5 + [f"c{i}" for i in range(5)]
    assert kept_lines(out) == [line for p in case.inputs for line in p.read_bytes().splitlines(keepends=True)]


def test_mergeable_parquet_schemas_are_widened_in_the_kept_file(tmp_path):
    case = adv.write_mergeable_parquet_shards(tmp_path / "in")
    out = tmp_path / "out"
    assert run_filter(case, out, "skip") == EXIT_OK
    kept = pq.read_table(out / "kept.parquet")
    assert kept.schema.field("id").type == pa.int64()
    assert kept.column("id").to_pylist() == [1, 2, 3, 4]
    assert kept.column("score").to_pylist() == [None, None, None, 0.5]


def test_conflicting_parquet_schemas_fail_before_any_output(tmp_path, capsys):
    case = adv.write_conflicting_parquet_shards(tmp_path / "in")
    out = tmp_path / "out"
    assert run_filter(case, out, "skip") == EXIT_BAD_INPUT
    message = one_line(capsys.readouterr().err)
    assert "cannot be merged" in message and all(p.name in message for p in case.inputs)
    assert not out.exists() or list(out.iterdir()) == []


def test_jsonl_and_parquet_shards_together_are_a_usage_error(tmp_path, capsys):
    jsonl = adv.write_duplicate_ids_corpus(tmp_path / "in")
    parquet = adv.write_mergeable_parquet_shards(tmp_path / "in")
    both = adv.Case(jsonl.inputs + parquet.inputs, 0)
    assert run_filter(both, tmp_path / "out", "skip") == EXIT_USAGE
    assert "mix JSONL with Parquet" in one_line(capsys.readouterr().err)


# ---------------------------------------------------------------- compressed streams


@pytest.mark.parametrize("write", [adv.write_truncated_gzip, adv.write_truncated_zstd], ids=["gzip", "zstd"])
def test_a_cut_stream_keeps_every_record_before_the_cut(write, tmp_path):
    case = write(tmp_path / "in")
    out = tmp_path / "out"
    assert run_filter(case, out, "skip") == EXIT_OK
    complete = case.n_records - 1
    assert complete > 100, "the cut should leave many whole records"
    assert kept_lines(out) == adv.corpus_payload()[:complete]


def test_damaged_deflate_data_ends_the_file_with_one_stream_reject(tmp_path):
    """Zeroed bytes inside deflate data may still inflate, to wrong bytes,
    until the member's CRC check fails: whatever was decoded is read as it
    is; the file ends with one stream reject, and the run balances."""
    whole = bytearray(gzip.compress(b"".join(adv.corpus_payload()), mtime=0))
    whole[len(whole) // 2: len(whole) // 2 + 64] = bytes(64)
    path = tmp_path / "damaged.jsonl.gz"
    path.write_bytes(bytes(whole))
    out = tmp_path / "out"
    assert run_filter(adv.Case([path], 0), out, "skip") == EXIT_OK
    summary = check_accounting(out)
    stream_rejects = [e for e in rejected_entries(out) if e["reason"].startswith("compressed stream")]
    assert [e["row"] for e in stream_rejects] == [summary["read"] - 1]


# ---------------------------------------------------------------- size


def run_measured(args: list[str]) -> tuple[int, int, float]:
    """Run the CLI in a fresh interpreter: exit code, peak RSS in bytes, seconds."""
    code = ("import resource, sys; from cotsieve.cli import main; rc = main(sys.argv[1:]); "
            "print('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(rc)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    peak = re.search(r"PEAK_KB (\d+)", done.stdout)
    assert peak, done.stderr
    return done.returncode, int(peak.group(1)) * 1024, seconds


@pytest.mark.slow
def test_one_200mb_trace_in_bounded_memory(tmp_path):
    path, text_bytes = adv.write_huge_trace(tmp_path)
    out = tmp_path / "out"
    code, peak, _ = run_measured(["filter", str(path), "--out", str(out), "--quiet", *ONE_PASS])
    assert code == EXIT_OK
    summary = check_accounting(out, with_kept=False)
    assert (summary["read"], summary["kept"]) == (1, 1)
    assert filecmp.cmp(path, out / "kept.jsonl", shallow=False)
    assert metrics(out).column("n_bytes").to_pylist() == [text_bytes]
    # The record is one block. Seen: about 6.7x the record (framing 2.4x, the
    # decoded text 1x, the engine the rest); a copy kept per 16 MiB read would
    # add 13 blocks more.
    assert peak < 10 * text_bytes, f"peak RSS {peak / 1e6:.0f} MB for a {text_bytes / 1e6:.0f} MB record"


@pytest.mark.slow
def test_a_million_tiny_traces(tmp_path):
    path = adv.write_tiny_traces(tmp_path)
    out = tmp_path / "out"
    assert main(["filter", str(path), "--out", str(out), "--quiet", *ONE_PASS]) == EXIT_OK
    summary = check_accounting(out, with_kept=False)
    assert (summary["read"], summary["kept"], summary["dropped"]) == (1_000_000, 800_000, 200_000)
    assert (out / "kept.jsonl").read_bytes().count(b"\n") == 800_000


def test_deep_and_huge_non_text_fields(tmp_path):
    case = adv.write_nested_corpus(tmp_path / "in")
    out = tmp_path / "out"
    assert run_filter(case, out, "skip") == EXIT_OK
    summary = check_accounting(out)
    assert summary["read"] == case.n_records
    assert [e["record_id"] for e in rejected_entries(out)] == list(case.rejects)
