"""Where records come from and where outputs go: standard input and pipes,
fsspec URLs (memory://, file://, a real S3-compatible server), more
extensions and --format, --kept-format parquet, --limit and --sample."""

import bz2
import gzip
import io
import json
import lzma
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

import hermetic
from cotsieve.cli import EXIT_BAD_INPUT, EXIT_CANNOT_WRITE, EXIT_OK, EXIT_OUTPUT_EXISTS, EXIT_USAGE, main
from cotsieve.errors import BadInputError
from cotsieve.io import Chunk, ReadOptions, Selection, Source, read_corpus, resolve_inputs
from cotsieve.io.select import selected

RECORDS = [{"text": f"Step {i}.\n\n" + "Alternatively, maybe.\n\nWait, no.\n\n" * (i % 4), "source": f"s{i % 3}",
            "n": i} for i in range(40)]
LINES = [json.dumps(r).encode() + b"\n" for r in RECORDS]
COMPRESS = {"": lambda b: b, ".gz": gzip.compress, ".zst": zstandard.ZstdCompressor().compress,
            ".bz2": bz2.compress, ".xz": lzma.compress}
TWO_PASS = ["--by", "branch_step_ratio", "--drop-top", "25%", "--per", "source"]


def corpus_file(folder: Path, name: str, lines=LINES) -> Path:
    path = folder / name
    suffix = next((s for s in COMPRESS if s and name.endswith(s)), "")
    path.write_bytes(COMPRESS[suffix](b"".join(lines)))
    return path


def metric_rows(out, columns=("record_id", "n_words", "branch_step_ratio")):
    return pq.read_table(str(Path(out) / "metrics.parquet"), columns=list(columns)).to_pylist()


def kept_records(folder: Path):
    """The kept JSON Lines records, whatever the compression."""
    [kept] = [p for p in folder.iterdir() if p.name.startswith("kept.")]
    data = kept.read_bytes()
    if kept.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    elif kept.name.endswith(".gz"):
        data = gzip.decompress(data)
    return [json.loads(line) for line in data.splitlines()]


def with_stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


# ---------------------------------------------------------------- standard input


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_stdin_compression_is_found_from_its_first_bytes(tmp_path, monkeypatch, suffix):
    path = corpus_file(tmp_path, "c.jsonl" + suffix)
    with_stdin(monkeypatch, path.read_bytes())
    assert main(["analyze", "-", "--out", str(tmp_path / "piped"), "--quiet"]) == EXIT_OK
    assert main(["analyze", str(path), "--out", str(tmp_path / "named"), "--quiet"]) == EXIT_OK
    piped, named = metric_rows(tmp_path / "piped"), metric_rows(tmp_path / "named")
    assert [r["record_id"] for r in piped] == [f"<stdin>:{i + 1}" for i in range(len(RECORDS))]
    assert [{**r, "record_id": None} for r in piped] == [{**r, "record_id": None} for r in named]


@pytest.mark.parametrize("rule", [["--where", "n_steps >= 2"], TWO_PASS])
def test_stdin_parquet_is_spooled_and_read(tmp_path, monkeypatch, capsys, rule):
    path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(RECORDS), path)
    with_stdin(monkeypatch, path.read_bytes())
    assert main(["filter", "-", "--out", str(tmp_path / "piped"), "--quiet", *rule]) == EXIT_OK
    assert "spooled" in capsys.readouterr().err
    assert main(["filter", str(path), "--out", str(tmp_path / "named"), "--quiet", *rule]) == EXIT_OK
    kept = pq.read_table(tmp_path / "piped" / "kept.parquet").to_pylist()
    assert kept == pq.read_table(tmp_path / "named" / "kept.parquet").to_pylist()
    assert 0 < len(kept) < len(RECORDS)


def test_a_two_pass_rule_on_stdin_spools_it_and_matches_the_file(tmp_path, monkeypatch, capsys):
    path = corpus_file(tmp_path, "c.jsonl.zst")
    with_stdin(monkeypatch, path.read_bytes())
    assert main(["filter", "-", "--out", str(tmp_path / "piped"), "--quiet", *TWO_PASS]) == EXIT_OK
    assert "read more than once" in capsys.readouterr().err
    assert main(["filter", str(path), "--out", str(tmp_path / "named"), "--quiet", *TWO_PASS]) == EXIT_OK
    assert kept_records(tmp_path / "piped") == kept_records(tmp_path / "named")
    assert 0 < len(kept_records(tmp_path / "named")) < len(RECORDS)


def test_dev_stdin_and_dash_read_a_real_pipe_or_a_redirected_file(tmp_path):
    path = corpus_file(tmp_path, "c.jsonl.gz")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for name, redirected in (("/dev/stdin", False), ("-", False), ("/dev/stdin", True)):
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        command = [sys.executable, "-m", "cotsieve.cli", "filter", name, "--out", str(out), "--quiet", *TWO_PASS]
        with open(path, "rb") as file:  # a pipe, or the file itself as standard input
            stdin = {"stdin": file} if redirected else {"input": path.read_bytes()}
            run = subprocess.run(command, capture_output=True, timeout=120, env=env, **stdin)
        assert run.returncode == EXIT_OK, run.stderr.decode()
        assert (out / "kept.jsonl.gz").exists()
        assert json.loads((out / "summary.json").read_text())["read"] == len(RECORDS)


def test_standard_input_named_twice_is_read_once(tmp_path):
    """A stream named twice would lose to its first reader the bytes the
    second needs: repeats are dropped before anything is read, however named."""
    path = corpus_file(tmp_path, "c.jsonl")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for names, redirected in ((["-", "-"], False), (["-", "/dev/stdin"], False), ([str(path), "-"], True),
                              (["-", str(path)], True)):
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        command = [sys.executable, "-m", "cotsieve.cli", "analyze", *names, "--out", str(out), "--quiet"]
        with open(path, "rb") as file:
            stdin = {"stdin": file} if redirected else {"input": path.read_bytes()}
            run = subprocess.run(command, capture_output=True, timeout=120, env=env, **stdin)
        assert run.returncode == EXIT_OK, run.stderr.decode()
        assert b"is read once" in run.stderr, names
        summary = json.loads((out / "summary.json").read_text())
        assert (summary["read"], summary["rejected"]) == (len(RECORDS), 0), names


def test_wrong_format_on_stdin_is_a_clear_error(tmp_path, monkeypatch, capsys):
    with_stdin(monkeypatch, b"".join(LINES))
    assert main(["scan", "-", "--format", "parquet", "--quiet"]) == EXIT_BAD_INPUT
    assert "does not start as Parquet" in capsys.readouterr().err


def test_no_standard_input_or_a_terminal_is_a_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", None)
    assert main(["scan", "-", "--quiet"]) == EXIT_USAGE
    assert "has none" in capsys.readouterr().err

    class Terminal(io.TextIOWrapper):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdin", Terminal(io.BytesIO(b"")))
    assert main(["analyze", "-", "--out", str(tmp_path / "o"), "--quiet"]) == EXIT_USAGE
    assert "pipe a corpus in" in capsys.readouterr().err and not (tmp_path / "o").exists()


class DroppingConnection(io.RawIOBase):
    """Stored bytes whose reads fail part way, as a dropped connection does."""

    def __init__(self, data: bytes, fail_after: int):
        self.data, self.pos, self.fail_after = data, 0, fail_after

    def readable(self):
        return True

    def readinto(self, buffer):
        if self.pos >= self.fail_after:
            raise ConnectionResetError(104, "connection reset by peer")
        n = min(len(buffer), self.fail_after - self.pos, len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos:self.pos + n]
        self.pos += n
        return n


@pytest.mark.parametrize("suffix", ["", ".gz", ".zst"])
def test_a_storage_read_error_fails_the_run_instead_of_cutting_the_corpus(suffix):
    data = COMPRESS[suffix](b"".join(LINES * 50))
    compression = {"": None, ".gz": "gzip", ".zst": "zstd"}[suffix]
    stream = io.BufferedReader(DroppingConnection(data, len(data) // 2), buffer_size=4096)
    source = Source("s3://bucket/c.jsonl" + suffix, "jsonl", compression, stream=stream)
    with pytest.raises(BadInputError, match="cannot read: .*connection reset"):
        for _ in read_corpus([source], ReadOptions(block_bytes=4096)):
            pass


# ---------------------------------------------------------------- extensions and --format


@pytest.mark.parametrize("name", ["a.json", "a.json.gz", "a.jsonl.bz2", "a.jsonl.xz", "a.ndjson.zst", "a.json.xz"])
def test_more_extensions_read_the_same_texts(tmp_path, name):
    path = corpus_file(tmp_path, name)
    texts = [t for c in read_corpus(str(path)) for t in c.texts.to_pylist()]
    assert texts == [r["text"].encode() for r in RECORDS]


def test_a_folder_leaves_its_json_metadata_alone(tmp_path):
    corpus_file(tmp_path, "train.jsonl.xz")
    (tmp_path / "dataset_info.json").write_text('{\n  "features": {}\n}\n')
    assert [s.name for s in resolve_inputs(str(tmp_path))] == [str(tmp_path / "train.jsonl.xz")]
    assert len(resolve_inputs(str(tmp_path / "*.json"))) == 1  # named or globbed, a .json is read


def test_format_overrides_the_name(tmp_path, capsys):
    path = tmp_path / "dump.txt"
    path.write_bytes(gzip.compress(b"".join(LINES)))
    assert main(["scan", str(path), "--quiet"]) == EXIT_USAGE
    assert "--format jsonl|parquet" in capsys.readouterr().err
    assert resolve_inputs(str(path), "jsonl") == [Source(str(path), "jsonl", "gzip")]
    assert main(["analyze", str(path), "--format", "jsonl", "--out", str(tmp_path / "o"), "--quiet"]) == EXIT_OK
    assert len(metric_rows(tmp_path / "o")) == len(RECORDS)
    assert main(["scan", str(corpus_file(tmp_path, "c.jsonl")), "--format", "parquet", "--quiet"]) == EXIT_BAD_INPUT
    assert "cannot read Parquet" in capsys.readouterr().err
    pq.write_table(pa.Table.from_pylist(RECORDS), tmp_path / "t.parquet")
    assert main(["scan", str(tmp_path / "t.parquet"), "--format", "jsonl", "--quiet"]) == EXIT_BAD_INPUT
    assert "holds Parquet data" in capsys.readouterr().err


@pytest.mark.parametrize("name, whole_before_cut", [("a.jsonl.xz", True), ("a.jsonl.bz2", False)])
def test_truncated_xz_and_bz2_say_so_and_keep_what_decodes(tmp_path, name, whole_before_cut):
    path = corpus_file(tmp_path, name)
    path.write_bytes(path.read_bytes()[:-40])
    reasons = [r for c in read_corpus(str(path)) for r in c.reasons.to_pylist()]
    assert reasons[-1].startswith("compressed stream ends early")
    assert reasons[:-1] == [None] * (len(reasons) - 1)
    # xz decodes up to the cut; bz2 decodes nothing of a block (900 kB) cut short.
    assert (len(reasons) > 1) == whole_before_cut


@pytest.mark.parametrize("suffix", [".bz2", ".xz", ".zst"])
@pytest.mark.parametrize("piped", [False, True])
def test_bytes_after_the_last_whole_stream_are_a_note_not_a_silent_skip(tmp_path, monkeypatch, capsys, suffix, piped):
    path = corpus_file(tmp_path, "c.jsonl" + suffix)
    path.write_bytes(path.read_bytes() + b"garbage\n")
    if piped:
        with_stdin(monkeypatch, path.read_bytes())
    assert main(["analyze", "-" if piped else str(path), "--out", str(tmp_path / "o"), "--quiet"]) == EXIT_OK
    assert "were ignored" in capsys.readouterr().err
    assert len(metric_rows(tmp_path / "o")) == len(RECORDS)


def test_a_cut_xz_stream_on_stdin_keeps_the_records_before_the_cut(tmp_path, monkeypatch):
    with_stdin(monkeypatch, corpus_file(tmp_path, "c.jsonl.xz").read_bytes()[:-40])
    assert main(["analyze", "-", "--out", str(tmp_path / "o"), "--quiet", "--on-error", "skip"]) == EXIT_OK
    [rejected] = [json.loads(line) for line in (tmp_path / "o" / "rejected.jsonl").read_text().splitlines()]
    assert rejected["reason"].startswith("compressed stream ends early")
    assert [r["record_id"] for r in metric_rows(tmp_path / "o")] == [f"<stdin>:{i}" for i in range(1, rejected["row"] + 1)]
    assert rejected["row"] > 1


def test_the_kept_corpus_of_xz_input_is_zstd(tmp_path):
    path = corpus_file(tmp_path, "c.jsonl.xz")
    assert main(["filter", str(path), "--out", str(tmp_path / "o"), "--where", "n_steps >= 2", "--quiet"]) == EXIT_OK
    assert (tmp_path / "o" / "kept.jsonl.zst").exists()
    assert kept_records(tmp_path / "o") == [r for r in RECORDS if r["n"] % 4 >= 1]


# ---------------------------------------------------------------- --kept-format parquet


@pytest.mark.parametrize("rule", [["--where", "n_steps >= 2"], TWO_PASS])
def test_kept_format_parquet_holds_the_kept_records(tmp_path, rule):
    path = corpus_file(tmp_path, "c.jsonl.gz")
    out = tmp_path / "o"
    assert main(["filter", str(path), "--out", str(out), "--kept-format", "parquet", "--quiet", *rule]) == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["kept.parquet", "metrics.parquet", "rejected.jsonl",
                                                     "summary.json"]
    kept_lines = {int(r["record_id"].rsplit(":", 1)[1]) for r in metric_rows(out, ("record_id", "kept")) if r["kept"]}
    assert pq.read_table(out / "kept.parquet").to_pylist() == [r for i, r in enumerate(RECORDS, 1) if i in kept_lines]


def test_kept_format_parquet_refuses_fields_of_clashing_types(tmp_path, capsys):
    lines = [json.dumps({"text": "Hmm.", "id": 1}).encode() + b"\n", json.dumps({"text": "So.", "id": "b"}).encode()]
    path = corpus_file(tmp_path, "c.jsonl", lines)
    out = tmp_path / "o"
    code = main(["filter", str(path), "--out", str(out), "--kept-format", "parquet", "--where", "n_steps >= 0",
                 "--quiet", "--threads", "1"])
    assert code == EXIT_BAD_INPUT
    assert "cannot be one Parquet table" in capsys.readouterr().err
    assert not out.exists()  # nothing left behind, not even the spool


def test_kept_format_parquet_keeps_date_like_strings_as_written(tmp_path):
    """JSON has no date type: strings that look like dates stay strings, also
    when a later block of the same field holds one that does not."""
    lines = [json.dumps({"text": f"Step {i}.", "date": f"2023-01-{i % 28 + 1:02d}"}).encode() + b"\n"
             for i in range(300)] + [json.dumps({"text": "Last.", "date": "n/a"}).encode() + b"\n"]
    path = corpus_file(tmp_path, "c.jsonl", lines)
    out = tmp_path / "o"
    assert main(["filter", str(path), "--out", str(out), "--kept-format", "parquet", "--where", "n_steps >= 0",
                 "--quiet"]) == EXIT_OK
    kept = pq.read_table(out / "kept.parquet")
    assert kept.schema.field("date").type == pa.string()
    assert kept.column("date").to_pylist() == [json.loads(line)["date"] for line in lines]


def test_kept_format_parquet_names_a_record_it_cannot_hold(tmp_path, capsys):
    lines = [json.dumps({"text": "Hmm.", "meta": {}}).encode() + b"\n"]
    out = tmp_path / "o"
    code = main(["filter", str(corpus_file(tmp_path, "c.jsonl", lines)), "--out", str(out), "--kept-format",
                 "parquet", "--where", "n_steps >= 0", "--quiet"])
    assert code == EXIT_BAD_INPUT and "cannot be one Parquet table" in capsys.readouterr().err
    assert not out.exists()


def test_report_on_standard_input_is_refused_before_the_run(tmp_path, monkeypatch, capsys):
    with_stdin(monkeypatch, b"".join(LINES))
    out = tmp_path / "o"
    assert main(["filter", "-", "--out", str(out), "--report", "--quiet", *TWO_PASS]) == EXIT_USAGE
    assert "can be read once" in capsys.readouterr().err and not out.exists()


# ---------------------------------------------------------------- --limit and --sample


def test_limit_reads_the_first_records_and_no_further(tmp_path):
    path = corpus_file(tmp_path, "c.jsonl", LINES[:20] + [b"not json\n"] + LINES[20:])
    assert main(["filter", str(path), "--out", str(tmp_path / "o"), "--limit", "7", "--quiet", *TWO_PASS]) == EXIT_OK
    assert [r["record_id"] for r in metric_rows(tmp_path / "o")] == [f"{path}:{i}" for i in range(1, 8)]
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["read"] == 7
    # Under --on-error fail the bad line 21 stops a run that reads it, and only such a run.
    assert main(["scan", str(path), "--limit", "20", "--quiet"]) == EXIT_OK
    assert main(["scan", str(path), "--limit", "21", "--quiet"]) == EXIT_BAD_INPUT


def _reference_sample(seed: int, total: int, n: int) -> list[int]:
    """The n record indices of smallest SplitMix64 hash, in plain Python integers."""
    mask = (1 << 64) - 1

    def mix(x):
        x = (x + 0x9E3779B97F4A7C15) & mask
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & mask
        return x ^ (x >> 31)

    key = mix(seed & mask)
    return sorted(sorted(range(total), key=lambda k: mix(k ^ key))[:n])


@pytest.mark.parametrize("block_bytes", [64, 1 << 20])
def test_sample_is_the_documented_hash_sample_whatever_the_blocks(tmp_path, block_bytes):
    paths = [corpus_file(tmp_path, "a.jsonl", LINES[:25]), corpus_file(tmp_path, "b.jsonl.gz", LINES[25:])]
    options = ReadOptions(block_bytes=block_bytes, selection=Selection(sample=9, seed=12345))
    picked = [c.locate(i) for c in read_corpus([str(p) for p in paths], options) for i in range(len(c))]
    names = [f"{paths[0]}:{k + 1}" if k < 25 else f"{paths[1]}:{k - 24}" for k in range(40)]
    assert picked == [names[k] for k in _reference_sample(12345, 40, 9)]


def test_sample_is_uniform_over_seeds():
    chunk = Chunk(Source("a.jsonl", "jsonl"), 0, pa.array([b"t"] * 20), pa.nulls(20, pa.string()), pa.table({}),
                  pa.array([b"{}\n"] * 20, pa.large_binary()), 60)
    counts = np.zeros(20)
    seeds = 2000
    for seed in range(seeds):
        for part in selected(iter([chunk.take(np.arange(8)), chunk.take(np.arange(8, 20))]), Selection(sample=5, seed=seed)):
            counts[part.rows] += 1
    expected = seeds * 5 / 20
    chi_square = ((counts - expected) ** 2 / expected).sum()
    assert chi_square < 50, counts  # 19 degrees of freedom: 50 is far past p = 0.001 (43.8)


def test_sample_with_a_two_pass_rule_keeps_what_the_metrics_say(tmp_path):
    path = corpus_file(tmp_path, "c.jsonl.zst")
    out = tmp_path / "o"
    assert main(["filter", str(path), "--out", str(out), "--sample", "12", "--seed", "4", "--quiet", *TWO_PASS]) == 0
    rows = metric_rows(out, ("record_id", "kept"))
    assert [r["record_id"] for r in rows] == [f"{path}:{k + 1}" for k in _reference_sample(4, 40, 12)]
    assert kept_records(out) == [RECORDS[int(r["record_id"].rsplit(":", 1)[1]) - 1] for r in rows if r["kept"]]


@pytest.mark.parametrize("args", [["--limit", "0"], ["--sample", "-1"], ["--seed", "3"]])
def test_bad_selections_are_usage_errors(tmp_path, args, capsys):
    path = corpus_file(tmp_path, "c.jsonl")
    assert main(["analyze", str(path), "--out", str(tmp_path / "o"), "--quiet", *args]) == EXIT_USAGE
    assert "--" in capsys.readouterr().err and not (tmp_path / "o").exists()


# ---------------------------------------------------------------- fsspec: memory:// and file://


@pytest.fixture
def memory_fs():
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    fs.rm("/", recursive=True) if fs.ls("/") else None
    yield fs
    if fs.ls("/"):
        fs.rm("/", recursive=True)


def test_memory_urls_in_and_out_match_a_local_run(tmp_path, memory_fs):
    memory_fs.pipe("/corpus/part-0.jsonl.gz", gzip.compress(b"".join(LINES[:20])))
    memory_fs.pipe("/corpus/part-1.jsonl.gz", gzip.compress(b"".join(LINES[20:])))
    local = corpus_file(tmp_path, "c.jsonl.gz")
    for spec in ("memory://corpus", "memory://corpus/*.jsonl.gz"):
        memory_fs.rm("/out", recursive=True) if memory_fs.exists("/out") else None
        assert main(["filter", spec, "--out", "memory://out", "--quiet", *TWO_PASS]) == EXIT_OK
        summary = json.loads(memory_fs.cat("/out/summary.json"))
        assert summary["outputs"]["kept"] == "memory://out/kept.jsonl.gz" and summary["read"] == len(RECORDS)
        assert sorted(memory_fs.ls("/out", detail=False)) == [f"/out/{n}" for n in (
            "kept.jsonl.gz", "metrics.parquet", "rejected.jsonl", "summary.json")]
    assert main(["filter", str(local), "--out", str(tmp_path / "o"), "--quiet", *TWO_PASS]) == EXIT_OK
    assert gzip.decompress(memory_fs.cat("/out/kept.jsonl.gz")) == \
        b"".join(json.dumps(r).encode() + b"\n" for r in kept_records(tmp_path / "o"))


def test_parquet_at_a_url(memory_fs, tmp_path):
    for i in range(2):
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(RECORDS[i * 20:(i + 1) * 20]), buffer)
        memory_fs.pipe(f"/shards/{i}.parquet", buffer.getvalue())
    assert main(["filter", "memory://shards", "--out", str(tmp_path / "o"), "--where", "n_steps >= 2", "--quiet"]) == 0
    local = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(RECORDS), local)
    assert main(["filter", str(local), "--out", str(tmp_path / "l"), "--where", "n_steps >= 2", "--quiet"]) == 0
    assert pq.read_table(tmp_path / "o" / "kept.parquet").to_pylist() == \
        pq.read_table(tmp_path / "l" / "kept.parquet").to_pylist()
    assert metric_rows(tmp_path / "o")[0]["record_id"] == "memory:///shards/0.parquet#0"


def test_memory_out_exists_and_force(memory_fs, tmp_path, capsys):
    path = corpus_file(tmp_path, "c.jsonl")
    memory_fs.pipe("/run/metrics.parquet", b"old")
    assert main(["analyze", str(path), "--out", "memory://run", "--quiet"]) == EXIT_OUTPUT_EXISTS
    assert "memory://run/metrics.parquet exists" in capsys.readouterr().err
    assert memory_fs.cat("/run/metrics.parquet") == b"old"
    assert main(["analyze", str(path), "--out", "memory://run", "--quiet", "--force"]) == EXIT_OK
    assert pq.read_table(io.BytesIO(memory_fs.cat("/run/metrics.parquet"))).num_rows == len(RECORDS)


def test_a_failed_upload_leaves_no_temporary_key_and_no_summary(memory_fs, tmp_path, monkeypatch, capsys):
    path = corpus_file(tmp_path, "c.jsonl")
    memory_fs.pipe("/run/summary.json", b"{}")
    real_put = type(memory_fs).put_file

    def put_file(self, local, remote, *args, **kwargs):
        if "metrics" in remote:
            raise PermissionError("access denied")
        return real_put(self, local, remote, *args, **kwargs)

    monkeypatch.setattr(type(memory_fs), "put_file", put_file)
    assert main(["analyze", str(path), "--out", "memory://run", "--quiet", "--force"]) == EXIT_CANNOT_WRITE
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot write memory://run/metrics.parquet" in err and "nothing at the URL was replaced" in err
    # The store is as it was: no temporary key, the old summary in place.
    assert memory_fs.ls("/run", detail=False) == ["/run/summary.json"] and memory_fs.cat("/run/summary.json") == b"{}"
    kept_locally = Path(err.split("the finished outputs are in ")[1].split()[0])
    assert (kept_locally / "metrics.parquet").is_file()
    shutil.rmtree(kept_locally)


def test_missing_remote_input_and_unknown_store(memory_fs, tmp_path, capsys):
    assert main(["scan", "memory://nowhere/a.jsonl", "--quiet"]) == EXIT_BAD_INPUT
    assert "memory://nowhere/a.jsonl: no such file" in capsys.readouterr().err
    assert main(["scan", "nosuchstore://a/b.jsonl", "--quiet"]) == EXIT_USAGE
    assert "nosuchstore" in capsys.readouterr().err
    path = corpus_file(tmp_path, "c.jsonl")
    assert main(["filter", str(path), "--out", "memory://r", "--where", "n_steps >= 1", "--report"]) == EXIT_USAGE
    assert main(["report", str(path), "--out", "memory://r"]) == EXIT_USAGE
    assert "report writes a local folder" in capsys.readouterr().err


def test_file_urls_are_local_paths(tmp_path):
    path = corpus_file(tmp_path, "c.jsonl.bz2")
    out = tmp_path / "o"
    assert main(["filter", path.as_uri(), "--out", out.as_uri(), "--where", "n_steps >= 2", "--quiet"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"] == [str(path)] and summary["outputs"]["kept"] == str(out / "kept.jsonl.zst")


# ---------------------------------------------------------------- a real S3-compatible server

S3_HOST = "127.0.0.20"  # a loopback address of its own (Ray's test nodes take 127.0.0.2-9)
# moto's server binds through http.server, which looks up the name of its
# address (socket.getfqdn): for an address /etc/hosts does not name, a DNS
# query past loopback. The server runs with that lookup turned off.
MOTO_SERVER = "import socket, sys; socket.getfqdn = lambda name='': name; from moto.server import main; main(sys.argv[1:])"


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on a free loopback port, up for at most 10 minutes and stopped after the module."""
    pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    with socket.socket() as probe:
        probe.bind((S3_HOST, 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(["timeout", "600", sys.executable, "-c", MOTO_SERVER, "-H", S3_HOST, "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://{S3_HOST}:{port}"
    before = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((S3_HOST, port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "moto's S3 server did not start"
                time.sleep(0.1)
        s3fs.S3FileSystem.clear_instance_cache()
        yield s3fs.S3FileSystem(endpoint_url=endpoint)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if before is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = before


def test_s3_in_and_out_match_a_local_run(s3_server, tmp_path, capsys):
    s3_server.mkdir("corpora")
    s3_server.pipe("corpora/in/a.jsonl.zst", COMPRESS[".zst"](b"".join(LINES)))
    assert main(["filter", "s3://corpora/in/*.zst", "--out", "s3://corpora/out/", "--quiet", *TWO_PASS]) == EXIT_OK
    local = corpus_file(tmp_path, "c.jsonl.zst")
    assert main(["filter", str(local), "--out", str(tmp_path / "o"), "--quiet", *TWO_PASS]) == EXIT_OK
    assert sorted(s3_server.ls("corpora/out", detail=False)) == [f"corpora/out/{n}" for n in (
        "kept.jsonl.zst", "metrics.parquet", "rejected.jsonl", "summary.json")]
    assert s3_server.cat("corpora/out/kept.jsonl.zst") == (tmp_path / "o" / "kept.jsonl.zst").read_bytes()
    assert main(["analyze", "s3://corpora/in/a.jsonl.zst", "--out", "s3://corpora/out", "--quiet"]) == \
        EXIT_OUTPUT_EXISTS
    capsys.readouterr()
    assert main(["scan", "s3://no-such-bucket/a.jsonl", "--quiet"]) == EXIT_BAD_INPUT
    assert "s3://no-such-bucket/a.jsonl" in capsys.readouterr().err


@pytest.mark.slow
def test_the_s3_round_trip_reaches_nothing_past_loopback(tmp_path):
    """The S3 test above, run under strace: no connect or send of any of its
    processes (pytest, s3fs, moto's server) leaves loopback."""
    from test_hermetic import TRACED_CALLS, usable_strace

    strace = usable_strace()
    log = tmp_path / "strace.log"
    pytest_run = [sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-k", "test_s3_in_and_out"]
    run = subprocess.run([strace, "-f", "-qq", "-e", f"trace={TRACED_CALLS}", "-o", str(log), *pytest_run],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    lines = log.read_text(errors="replace").splitlines()
    assert any(S3_HOST in line for line in lines), "strace recorded no connect to the S3 server: the trace did not work"
    assert hermetic.off_loopback(lines) == []
