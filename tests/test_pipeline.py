"""End to end: outputs, byte identity, accounting, two passes, errors, atomicity."""

import gzip
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cotsieve
from cotsieve.errors import OutputWriteError, UsageError
from cotsieve.io import BadInputError
from cotsieve.pipeline import CurateOptions, OutputExistsError, analyze_corpus, filter_corpus
from cotsieve.rules import DropShare, StepCountRatio, Threshold

BRANCHY = "Let x = 1.\n\nAlternatively, x = 2.\n\nPerhaps x = 3.\n\nSo \\boxed{1}."
PLAIN = "Let x = 1.\n\nThen x + 1 = 2.\n\nSo \\boxed{2}."


def corpus_lines(n=40):
    lines = []
    for i in range(n):
        record = {"id": i, "source": "a" if i % 2 else "b", "problem_id": f"p{i // 2}",
                  "text": (BRANCHY if i % 5 == 0 else PLAIN) + " " * i, "extra": {"k": [i]}}
        lines.append(json.dumps(record).encode() + b"\n")
    return lines


def write_corpus(path, lines):
    data = b"".join(lines)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return str(path)


def read_lines(path):
    data = gzip.decompress(open(path, "rb").read()) if str(path).endswith(".gz") else open(path, "rb").read()
    return data.splitlines(keepends=True)


@pytest.mark.parametrize("name", ["in.jsonl", "in.jsonl.gz"])
def test_kept_lines_are_byte_identical_and_accounted(tmp_path, name):
    lines = corpus_lines()
    lines[3] = b'{"text": "caf\xe9 \xff ok", "source": "a"}\r\n'  # invalid UTF-8 and CRLF survive
    lines.insert(7, b"\n")
    lines.insert(9, b"{broken\n")
    corpus = write_corpus(tmp_path / name, lines)
    options = CurateOptions(on_error="skip", block_bytes=300)
    summary = filter_corpus(corpus, tmp_path / "out", [Threshold("branch_step_ratio", "<=", 0.3)], options)
    assert summary.read == len(lines) and summary.rejected == 2 and summary.balanced
    kept = read_lines(summary.outputs["kept"])
    assert len(kept) == summary.kept and set(kept) <= set(lines) and lines[3] in kept
    assert [line for line in lines if line in kept] == kept  # order preserved
    rejected = [json.loads(x) for x in open(tmp_path / "out" / "rejected.jsonl")]
    assert [(r["row"], r["reason"].split(":")[0]) for r in rejected] == [(7, "empty line"), (9, "malformed JSON")]
    assert rejected[1]["record_id"].endswith(":10") and rejected[1]["record"] == "{broken"
    saved = json.load(open(tmp_path / "out" / "summary.json"))
    assert saved["balanced"] and saved["read"] == len(lines)


def test_metrics_have_ids_fields_and_decisions(tmp_path):
    corpus = write_corpus(tmp_path / "in.jsonl", corpus_lines())
    summary = filter_corpus(corpus, tmp_path / "out", [DropShare("branch_step_ratio", 0.1, per="source")],
                            CurateOptions(fields=("id",), block_bytes=500))
    metrics = pq.read_table(summary.outputs["metrics"])
    assert summary.passes == 2 and metrics.num_rows == 40
    assert metrics.column("record_id").to_pylist()[:2] == [f"{corpus}:1", f"{corpus}:2"]
    assert metrics.column("id").to_pylist() == [str(i) for i in range(40)]
    assert "source" in metrics.column_names and "n_steps" in metrics.column_names
    kept = metrics.column("kept").to_numpy(zero_copy_only=False)
    assert kept.sum() == summary.kept
    # the same decision, recomputed from the metrics, selects the same records
    expected = ~DropShare("branch_step_ratio", 0.1, per="source").drops(metrics)
    assert (kept == expected).all()
    texts = [json.loads(x)["text"] for x in read_lines(summary.outputs["kept"])]
    assert texts == [json.loads(x)["text"] for x, k in zip(corpus_lines(), kept) if k]


def test_metrics_match_analyze(tmp_path):
    lines = corpus_lines(6)
    corpus = write_corpus(tmp_path / "in.jsonl", lines)
    summary = analyze_corpus(corpus, tmp_path / "out")
    metrics = pq.read_table(summary.outputs["metrics"])
    direct = cotsieve.analyze([json.loads(x)["text"] for x in lines])
    assert metrics.select(direct.column_names).equals(direct)
    assert "kept" not in metrics.column_names and not (tmp_path / "out" / "kept.jsonl").exists()


def test_proxy1_rule_end_to_end(tmp_path):
    corpus = write_corpus(tmp_path / "in.jsonl", corpus_lines())
    summary = filter_corpus(corpus, tmp_path / "out", [StepCountRatio("b", 1.0)])
    assert summary.dropped > 0 and summary.balanced


def test_fail_mode_stops_and_leaves_nothing(tmp_path):
    lines = corpus_lines(5) + [b'{"text": 3}\n']
    corpus = write_corpus(tmp_path / "in.jsonl", lines)
    with pytest.raises(BadInputError, match=r"in.jsonl:6: field 'text' is a number"):
        filter_corpus(corpus, tmp_path / "out", [Threshold("n_steps", ">=", 1)])
    assert not (tmp_path / "out").exists()  # created by the run, and taken back


def test_empty_lines_do_not_fail_a_run(tmp_path):
    corpus = write_corpus(tmp_path / "in.jsonl", corpus_lines(3) + [b"\n"])
    summary = filter_corpus(corpus, tmp_path / "out", [Threshold("n_steps", ">=", 1)])
    assert summary.rejected_by_reason == {"empty line": 1} and summary.balanced


def test_outputs_are_never_overwritten_without_force(tmp_path):
    corpus = write_corpus(tmp_path / "in.jsonl", corpus_lines(3))
    rule = [Threshold("n_steps", ">=", 1)]
    filter_corpus(corpus, tmp_path / "out", rule)
    with pytest.raises(OutputExistsError, match="--force"):
        filter_corpus(corpus, tmp_path / "out", rule)
    assert filter_corpus(corpus, tmp_path / "out", rule, CurateOptions(force=True)).read == 3
    inside = tmp_path / "kept.jsonl"
    inside.write_bytes(b"".join(corpus_lines(3)))
    with pytest.raises(OutputExistsError, match="is an input"):
        filter_corpus(str(inside), tmp_path, rule, CurateOptions(force=True))
    assert not [p for p in os.listdir(tmp_path / "out") if p.endswith(".tmp")]


def test_parquet_in_parquet_out_with_all_columns_and_merged_schemas(tmp_path):
    records = [json.loads(x) for x in corpus_lines()]
    for r in records:
        r.pop("extra")
    pq.write_table(pa.Table.from_pylist(records[:20]), tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_pylist(records[20:]).drop(["problem_id"]), tmp_path / "b.parquet")
    summary = filter_corpus(str(tmp_path / "*.parquet"), tmp_path / "out", [Threshold("branch_step_ratio", "<=", 0.3)])
    kept = pq.read_table(summary.outputs["kept"])
    assert summary.outputs["kept"].endswith("kept.parquet")
    assert kept.num_rows == summary.kept and set(kept.column_names) == {"id", "source", "problem_id", "text"}
    assert pq.read_table(summary.outputs["metrics"]).column("record_id")[0].as_py().endswith("a.parquet#0")


def test_conflicting_parquet_schemas_are_an_error(tmp_path):
    pq.write_table(pa.table({"text": ["a"], "x": [1]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"text": ["b"], "x": [[1, 2]]}), tmp_path / "b.parquet")
    with pytest.raises(BadInputError, match="cannot be merged"):
        filter_corpus(str(tmp_path), tmp_path / "out", [Threshold("n_steps", ">=", 1)])


def test_truncated_gzip_under_skip_is_accounted(tmp_path):
    full = gzip.compress(b"".join(corpus_lines(400)))
    (tmp_path / "cut.jsonl.gz").write_bytes(full[: len(full) // 2])
    summary = filter_corpus(str(tmp_path / "cut.jsonl.gz"), tmp_path / "out", [DropShare("n_words", 0.1)],
                            CurateOptions(on_error="skip"))
    assert summary.rejected == 1 and summary.balanced and 0 < summary.read < 400
    with pytest.raises(BadInputError, match="compressed stream ends early"):
        filter_corpus(str(tmp_path / "cut.jsonl.gz"), tmp_path / "out2", [DropShare("n_words", 0.1)])


def test_rule_field_missing_everywhere_is_an_error(tmp_path):
    corpus = write_corpus(tmp_path / "in.jsonl", corpus_lines(5))
    with pytest.raises(UsageError, match="sourse"):
        filter_corpus(corpus, tmp_path / "out", [DropShare("n_words", 0.1, per="sourse")])


def test_empty_input(tmp_path):
    corpus = write_corpus(tmp_path / "in.jsonl", [])
    summary = filter_corpus(corpus, tmp_path / "out", [DropShare("n_words", 0.1)])
    assert (summary.read, summary.kept) == (0, 0)
    assert pq.read_table(summary.outputs["metrics"]).num_rows == 0


def test_hf_dataset_goes_to_parquet(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list([{"text": PLAIN, "k": 1}, {"text": BRANCHY, "k": 2}])
    summary = filter_corpus(ds, tmp_path / "out", [Threshold("branch_step_ratio", "<=", 0.3)])
    assert pq.read_table(summary.outputs["kept"]).column("k").to_pylist() == [1]


def test_real_traces_round_trip(tmp_path):
    path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "r1_distill_llama8b_500.jsonl.gz")
    if not os.path.exists(path):
        pytest.skip("shared data not present")
    summary = filter_corpus(path, tmp_path / "out", [DropShare("branch_step_ratio", 0.1)])
    kept = read_lines(summary.outputs["kept"])
    original = read_lines(path)
    assert summary.read == len(original) == 500 and summary.kept == len(kept) == 450 - _ties(summary)
    assert set(kept) <= set(original)


def _ties(summary):
    return 50 - summary.dropped  # ties at the cutoff are kept, so fewer than 50 may go


def test_threads_do_not_change_results(tmp_path):
    corpus = write_corpus(tmp_path / "in.jsonl", corpus_lines())
    a = filter_corpus(corpus, tmp_path / "a", [DropShare("n_words", 0.2)], CurateOptions(threads=1))
    b = filter_corpus(corpus, tmp_path / "b", [DropShare("n_words", 0.2)], CurateOptions(threads=2))
    assert read_lines(a.outputs["kept"]) == read_lines(b.outputs["kept"])
    assert np.array_equal(pq.read_table(a.outputs["metrics"]).column("n_words"),
                          pq.read_table(b.outputs["metrics"]).column("n_words"))


@pytest.mark.parametrize("rule", [Threshold("branch_step_ratio", "<=", 0.3), DropShare("branch_step_ratio", 0.1)],
                         ids=["one-pass", "two-pass"])
def test_a_failed_write_stops_the_run_and_leaves_no_output(tmp_path, monkeypatch, rule):
    """Writes run behind the engine in a thread; a write that fails there
    (a full disk, say) is raised in the run, and nothing reaches a final name."""
    from cotsieve.io import writers as io_writers

    calls = []

    def failing_write(self, chunk, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(io_writers.RejectedWriter, "write", failing_write)
    src = write_corpus(tmp_path / "in.jsonl", corpus_lines(400))
    out = tmp_path / "out"
    with pytest.raises(OutputWriteError, match="No space left"):
        filter_corpus(src, out, [rule], CurateOptions(block_bytes=4096, on_error="skip"))
    assert len(calls) == 2  # the writes after the failed one are skipped
    assert not out.exists()  # the run created the folder, and takes it back with nothing in it


def test_a_failed_metrics_rewrite_stops_pass_two_at_the_next_chunk(tmp_path, monkeypatch):
    """Pass 2 rewrites the metrics in the write-behind thread while it copies
    the kept records; a failure there stops the copy, not only its end."""
    import threading
    import time

    from cotsieve.io import writers as io_writers
    from cotsieve.pipeline import _TwoPass

    failed = threading.Event()
    copied = []

    def failing_rewrite(self, staging, drop, reasons):
        failed.set()
        raise OSError(28, "No space left on device")

    def slow_copy(self, chunk, keep):
        failed.wait(5)
        time.sleep(0.05)  # room for the failure to be recorded
        copied.append(len(keep))

    monkeypatch.setattr(_TwoPass, "copy_metrics", failing_rewrite)
    monkeypatch.setattr(io_writers.JsonlKeptWriter, "write", slow_copy)
    src = write_corpus(tmp_path / "in.jsonl", corpus_lines(400))
    with pytest.raises(OutputWriteError, match="No space left"):
        filter_corpus(src, tmp_path / "out", [DropShare("n_words", 0.1)], CurateOptions(block_bytes=2048))
    n_chunks = -(-os.path.getsize(src) // 2048)
    assert n_chunks > 10 and len(copied) <= 2


def test_write_behind_skips_queued_writes_when_the_caller_fails():
    import time

    from cotsieve.io.writers import WriteBehind

    done = []

    def until_cancelled(writes):  # holds the thread until the caller's failure is known
        deadline = time.monotonic() + 10
        while not writes._cancelled and time.monotonic() < deadline:
            time.sleep(0.001)

    with pytest.raises(KeyError):
        with WriteBehind(depth=4) as writes:
            writes.submit(until_cancelled, writes)
            for i in range(3):
                writes.submit(done.append, i)
            raise KeyError("the engine failed")
    assert done == []  # the outputs are discarded anyway
    with pytest.raises(RuntimeError, match="closed"):
        writes.submit(done.append, 9)


def _change_before_pass_two(monkeypatch, path, change):
    """Write a corpus at ``path`` and change it once pass 1 is done."""
    from cotsieve.pipeline import _TwoPass

    write_corpus(path, corpus_lines())
    decide = _TwoPass.decide_and_copy

    def changing_input(self, staging):
        data = path.read_bytes()
        stat = path.stat()
        changed = {"append": data + b'{"text": "late"}\n', "truncate": data[: len(data) // 2],
                   "reorder": b"".join(reversed(data.splitlines(keepends=True)))}[change]
        assert changed != data
        path.write_bytes(changed)
        # A rewrite within one clock tick can keep the old time; a real one is later.
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        return decide(self, staging)

    monkeypatch.setattr(_TwoPass, "decide_and_copy", changing_input)


@pytest.mark.parametrize("change", ["append", "truncate", "reorder"])
def test_an_input_changed_between_passes_is_an_error(tmp_path, monkeypatch, change):
    """Pass 2 copies records by their ordinal in pass 1: if the file changed
    in between, the ordinals would pick the wrong lines. A reorder keeps the
    count and the size; its modification time gives it away."""
    path = tmp_path / "in.jsonl"
    _change_before_pass_two(monkeypatch, path, change)
    with pytest.raises(BadInputError, match="changed between the two passes") as raised:
        filter_corpus(str(path), tmp_path / "out", [DropShare("n_words", 0.1)], CurateOptions(block_bytes=500))
    assert not (tmp_path / "out").exists()  # created by the run, and taken back
    assert f"{path} was modified" in str(raised.value)


@pytest.mark.parametrize("change", ["append", "truncate"])
def test_a_record_count_changed_during_pass_two_is_an_error(tmp_path, monkeypatch, change):
    """The backstop behind the size and time check, for a file that changes
    while pass 2 reads it: pass 2 frames a different number of records."""
    from cotsieve.pipeline import _TwoPass

    path = tmp_path / "in.jsonl"
    _change_before_pass_two(monkeypatch, path, change)
    monkeypatch.setattr(_TwoPass, "check_files_unchanged", lambda self: None)
    with pytest.raises(BadInputError, match="changed between the two passes") as raised:
        filter_corpus(str(path), tmp_path / "out", [DropShare("n_words", 0.1)], CurateOptions(block_bytes=500))
    assert not (tmp_path / "out").exists()  # created by the run, and taken back
    if change == "append":  # it names the first record that pass 1 did not read
        assert f"pass 2 read {path}:41 where pass 1 read 40 records" in str(raised.value)
    else:
        assert "pass 2 read the end, after" in str(raised.value)
