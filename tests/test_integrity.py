"""Integrity at the edges: no record lost, duplicated or corrupted, and one
clear line (never a traceback) for each bad situation. docs/reliability.md
("Integrity at the edges") lists the rules these tests hold the pipeline to."""

import fcntl
import gzip
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from cotsieve.cli import EXIT_BAD_INPUT, EXIT_CANNOT_WRITE, EXIT_OK, EXIT_OUTPUT_EXISTS, EXIT_USAGE, main
from cotsieve.pipeline import reserved_columns

TEXTS = ["Let x = 1.\n\nAlternatively, x = 2.", "x = 1.\n\nSo x = 1.", "Hmm.\n\nWait, no.\n\nPerhaps 4."]


def records(n=3, **extra):
    return [{"text": TEXTS[i % 3], "source": f"s{i % 2}", "id": f"r{i}", **extra} for i in range(n)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def corpus(tmp_path):
    return write_jsonl(tmp_path / "a.jsonl", records(3))


def run(args, capsys):
    code = main([*map(str, args), "--quiet"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.err


# ------------------------------------------------------- 1. the pipeline's own columns


def test_reserved_columns_cover_ids_decisions_and_every_metric():
    names = reserved_columns()
    assert {"record_id", "file", "row", "kept", "drop_reason", "_shard", "_ordinal", "branch_step_ratio", "n_words"} <= names


@settings(max_examples=25, deadline=None)
@given(name=st.sampled_from(sorted(reserved_columns())))
def test_a_field_named_like_a_pipeline_column_is_refused(tmp_path_factory, name):
    folder = tmp_path_factory.mktemp("reserved")
    corpus = write_jsonl(folder / "a.jsonl", records(3, **{name: "carried"}))
    out = folder / "out"
    code = main(["filter", str(corpus), "--out", str(out), "--field", name, "--where", "n_steps >= 1", "--quiet"])
    assert code == EXIT_USAGE
    assert not out.exists()


@pytest.mark.parametrize("rule", ["drop-top 10% n_words per kept", "drop-top 10% n_words per record_id"])
def test_a_rule_grouping_by_a_pipeline_column_is_refused(corpus, tmp_path, capsys, rule):
    code, err = run(["filter", corpus, "--out", tmp_path / "out", "--rule", rule], capsys)
    assert code == EXIT_USAGE and "reserved" in err


# ------------------------------------------------------- 2. one file, read once


def test_a_file_named_several_ways_is_read_once(corpus, tmp_path, capsys, monkeypatch):
    (tmp_path / "link.jsonl").symlink_to(corpus)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "out"
    code, err = run(["filter", corpus, "a.jsonl", "./a.jsonl", "a*.jsonl", "link.jsonl", tmp_path,
                     "--out", out, "--where", "n_steps >= 0"], capsys)
    assert code == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["read"] == 3 and summary["kept"] == 3
    ids = pq.read_table(out / "metrics.parquet").column("record_id").to_pylist()
    assert len(ids) == len(set(ids)) == 3
    assert "once" in err


# ------------------------------------------------------- 3. every valid zstd frame


def test_zstd_with_a_long_window_is_read(tmp_path, capsys):
    data = "".join(json.dumps(r) + "\n" for r in records(5)).encode()
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=30, enable_ldm=True)
    compressor = zstandard.ZstdCompressor(compression_params=params)
    path = tmp_path / "long.jsonl.zst"
    with open(path, "wb") as f, compressor.stream_writer(f) as writer:  # no content size: the window stays 1 GiB
        writer.write(data)
    code, _ = run(["filter", path, "--out", tmp_path / "out", "--where", "n_steps >= 0"], capsys)
    assert code == EXIT_OK
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["kept"] == 5


def test_corrupt_zstd_still_fails_clearly(tmp_path, capsys):
    path = tmp_path / "bad.jsonl.zst"
    good = zstandard.ZstdCompressor().compress(b'{"text": "x"}\n' * 50)
    path.write_bytes(good[: len(good) // 2])
    code, err = run(["filter", path, "--out", tmp_path / "out", "--where", "n_steps >= 0"], capsys)
    assert code == EXIT_BAD_INPUT and "bad.jsonl.zst" in err


@pytest.mark.parametrize("suffix, payload, named", [
    (".jsonl.gz", zstandard.ZstdCompressor().compress(b'{"text": "x"}\n'), "zstd"),
    (".jsonl.zst", gzip.compress(b'{"text": "x"}\n'), "gzip"),
])
def test_a_file_compressed_otherwise_than_its_name_says_is_named(tmp_path, capsys, suffix, payload, named):
    path = tmp_path / f"mixed{suffix}"
    path.write_bytes(payload)
    code, err = run(["filter", path, "--out", tmp_path / "out", "--where", "n_steps >= 0"], capsys)
    assert code == EXIT_BAD_INPUT and named in err and path.name in err


def test_gzip_with_trailing_garbage_adds_no_phantom_record(tmp_path, capsys):
    path = tmp_path / "tail.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records(4))) + b"\x00garbage")
    code, err = run(["filter", path, "--out", tmp_path / "out", "--where", "n_steps >= 0", "--on-error", "skip"],
                    capsys)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text()) if code == EXIT_OK else None
    assert code == EXIT_BAD_INPUT and "trailing" in err or summary and summary["read"] == 4


# ------------------------------------------------------- 4. one run per output folder


def test_a_second_run_into_a_held_folder_is_refused(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, time\n"
        f"fd = os.open({str(out)!r}, os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, err = run(["filter", corpus, "--out", out, "--where", "n_steps >= 0", "--force"], capsys)
        assert code == EXIT_OUTPUT_EXISTS and f"pid {holder.pid}" in err and "in use" in err
        assert list(out.iterdir()) == []
    finally:
        holder.kill()
        holder.wait()
    assert run(["filter", corpus, "--out", out, "--where", "n_steps >= 0"], capsys)[0] == EXIT_OK


def test_the_folder_is_released_after_a_run_and_leaves_no_lock_file(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["filter", corpus, "--out", out, "--where", "n_steps >= 0"], capsys)[0] == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["kept.jsonl", "metrics.parquet", "rejected.jsonl",
                                                     "summary.json"]
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises if the run left it held
    finally:
        os.close(fd)


def test_a_failed_run_leaves_no_folder_it_created(tmp_path, capsys):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": 3}])
    out = tmp_path / "new" / "out"
    code, _ = run(["filter", bad, "--out", out, "--where", "n_steps >= 0"], capsys)
    assert code == EXIT_BAD_INPUT and not out.exists()


# ------------------------------------------------------- clear errors, no partial output


def bad_situations(tmp_path, corpus):
    """(arguments, exit code, text the message must hold) for situations a careless command creates."""
    as_file = tmp_path / "out-is-a-file"
    as_file.write_text("x")
    toml_dir = tmp_path / "set.toml"
    toml_dir.mkdir()
    empty_parquet = tmp_path / "empty.parquet"
    empty_parquet.write_bytes(b"")
    corrupt_parquet = tmp_path / "corrupt.parquet"
    corrupt_parquet.write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    rule = ["--where", "n_steps >= 0"]
    gz = tmp_path / "a.jsonl.gz"
    gz.write_bytes(gzip.compress(corpus.read_bytes()))
    return [
        (["filter", corpus, "--out", as_file, *rule], EXIT_USAGE, "out-is-a-file"),
        (["filter", corpus, "--out", tmp_path / "o0", "--field", "record_id", *rule], EXIT_USAGE, "record_id"),
        (["filter", corpus, "--out", tmp_path / "o1", "--patterns", toml_dir, *rule], EXIT_USAGE, "set.toml"),
        (["filter", gz, "--out", tmp_path / "o2", "--compression-level", "99", *rule], EXIT_USAGE,
         "--compression-level"),
        (["filter", corpus, "--out", tmp_path / "o3", "--threads", str(2**31), *rule], EXIT_USAGE, "--threads"),
        (["filter", corpus, "--out", tmp_path / "o4", "--threads", "0", *rule], EXIT_USAGE, "--threads"),
        (["filter", corpus, "--out", tmp_path / "o5", "--where", "n_words >= nan"], EXIT_USAGE, "nan"),
        (["filter", empty_parquet, "--out", tmp_path / "o6", *rule], EXIT_BAD_INPUT, "empty.parquet"),
        (["filter", corrupt_parquet, "--out", tmp_path / "o7", *rule], EXIT_BAD_INPUT, "corrupt.parquet"),
        (["analyze", corrupt_parquet, "--out", tmp_path / "o8"], EXIT_BAD_INPUT, "corrupt.parquet"),
    ]


def test_each_bad_situation_ends_in_one_clear_line(tmp_path, corpus, capsys):
    for args, expected, named in bad_situations(tmp_path, corpus):
        code, err = run(args, capsys)
        assert (code, named in err) == (expected, True), (args, err)
        assert err.strip().count("\n") == 0, err
        out = args[args.index("--out") + 1]
        assert out.is_file() or not out.exists() or not any(out.iterdir()), f"partial output in {out}"


def test_a_folder_where_an_output_file_goes_is_an_error_even_with_force(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "metrics.parquet").mkdir(parents=True)
    code, err = run(["filter", corpus, "--out", out, "--where", "n_steps >= 0", "--force"], capsys)
    assert code == EXIT_OUTPUT_EXISTS and "metrics.parquet" in err


def test_a_full_disk_is_one_clear_line_and_no_partial_output(corpus, tmp_path, capsys, monkeypatch):
    import errno

    import cotsieve.io.writers as writers

    original = writers.AtomicFile.commit

    def full(self):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr(writers.AtomicFile, "commit", full)
    out = tmp_path / "out"
    code, err = run(["filter", corpus, "--out", out, "--where", "n_steps >= 0"], capsys)
    monkeypatch.setattr(writers.AtomicFile, "commit", original)
    assert code == EXIT_CANNOT_WRITE and "No space left" in err and str(out) in err
    assert not out.exists() or list(out.iterdir()) == []


# ------------------------------------------------------- smaller, same spirit


def test_rejected_records_are_json_with_readable_bytes(tmp_path, capsys):
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b'{"text": "fine."}\n{"text": NaN}\n\xff\xfe not json\n{"text": 3}\n')
    code, _ = run(["filter", path, "--out", tmp_path / "out", "--where", "n_steps >= 0", "--on-error", "skip"],
                  capsys)
    assert code == EXIT_OK
    lines = (tmp_path / "out" / "rejected.jsonl").read_text("utf-8").splitlines()
    rows = [json.loads(line, parse_constant=lambda c: pytest.fail(f"bare {c} in rejected.jsonl")) for line in lines]
    assert len(rows) == 3
    assert not any("b'\\x" in line for line in lines)


def test_a_folder_holding_state_json_and_jsonl_is_read_as_jsonl(tmp_path, capsys):
    folder = tmp_path / "shards"
    folder.mkdir()
    write_jsonl(folder / "part-0.jsonl", records(3))
    (folder / "state.json").write_text(json.dumps({"note": "written by another tool"}))
    code, _ = run(["filter", folder, "--out", tmp_path / "out", "--where", "n_steps >= 0"], capsys)
    assert code == EXIT_OK
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["read"] == 3


def test_a_record_of_one_huge_line_is_measured(tmp_path, capsys):
    text = ("Wait, no. " * 200_000) + "\n\nSo x = 1."
    path = write_jsonl(tmp_path / "huge.jsonl", [{"text": text}, {"text": ""}])
    code, _ = run(["filter", path, "--out", tmp_path / "out", "--where", "n_steps >= 0", "--on-error", "skip"],
                  capsys)
    assert code == EXIT_OK
    table = pq.read_table(tmp_path / "out" / "metrics.parquet")
    assert table.num_rows + json.loads((tmp_path / "out" / "summary.json").read_text())["rejected"] == 2


def test_carried_fields_keep_their_record(tmp_path, capsys):
    rows = records(6)
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    code, _ = run(["filter", path, "--out", tmp_path / "out", "--field", "id", "--field", "source",
                   "--by", "n_words", "--drop-top", "34%"], capsys)
    assert code == EXIT_OK
    table = pq.read_table(tmp_path / "out" / "metrics.parquet")
    by_line = {int(r.rsplit(":", 1)[1]): (i, s) for r, i, s in
               zip(*(table.column(c).to_pylist() for c in ("record_id", "id", "source")))}
    assert by_line == {k + 1: (r["id"], r["source"]) for k, r in enumerate(rows)}
    assert table.schema.field("row").type == pa.int64()
    assert os.path.basename(table.column("file")[0].as_py()) == "a.jsonl"


def test_a_place_the_outputs_may_not_go_is_one_clear_line(corpus, tmp_path, capsys, monkeypatch):
    """A read-only or forbidden folder (root ignores permission bits, so the refusal is simulated)."""
    import errno
    from pathlib import Path

    real_mkdir = Path.mkdir

    def forbidden(self, *args, **kwargs):
        if self.name == "locked":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", forbidden)
    code, err = run(["filter", corpus, "--out", tmp_path / "locked", "--where", "n_steps >= 0"], capsys)
    assert code == EXIT_CANNOT_WRITE and "Permission denied" in err and "locked" in err
