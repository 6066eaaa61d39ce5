"""Blocks of one JSON Lines file parsed on several threads, and pass 2 of a
two-pass filter taking pass 1's last blocks from memory: the same records,
rows, reasons and outputs as one thread reading everything twice."""

import gzip
import json
import threading
import time

import pyarrow.parquet as pq
import pytest

from cotsieve.io import ReadOptions, read_corpus
from cotsieve.io.prefetch import ordered_map
from cotsieve.pipeline import CurateOptions, MAX_PARSE_THREADS, filter_corpus, parse_threads
from cotsieve.rules import parse_rule
from cotsieve.testing import generate_traces


def test_ordered_map_keeps_order_when_later_items_finish_first():
    def slow_for_small(x):
        time.sleep(0.002 * (10 - x))
        return x, threading.get_ident()

    results = list(ordered_map(slow_for_small, iter(range(10)), threads=4))
    assert [x for x, _ in results] == list(range(10))
    assert len({ident for _, ident in results}) > 1  # the work did run on several threads


def test_ordered_map_raises_at_the_failing_items_turn():
    def fail_on_three(x):
        if x == 3:
            raise ValueError("three")
        return x

    seen = []
    with pytest.raises(ValueError, match="three"):
        for x in ordered_map(fail_on_three, iter(range(6)), threads=3):
            seen.append(x)
    assert seen == [0, 1, 2]


def test_ordered_map_keeps_at_most_threads_items_in_work():
    started, lock = [], threading.Lock()

    def record(x):
        with lock:
            started.append(x)
        return x

    for x in ordered_map(record, iter(range(20)), threads=3):
        with lock:  # items started beyond the one taken: at most the pool's width
            assert len(started) - (x + 1) <= 3


def test_parse_threads_are_half_the_threads_and_capped():
    assert [parse_threads(n) for n in (1, 2, 3, 4, 6)] == [1, 1, 1, 2, 3]
    assert parse_threads(1024) == MAX_PARSE_THREADS
    assert parse_threads(None) >= 1


def corpus_lines() -> list[bytes]:
    """Traces with a malformed line, a blank line and a non-object line among them."""
    lines = [json.dumps(t).encode() + b"\n" for t in generate_traces(120, seed=7)]
    lines[10], lines[50], lines[90] = b'{"text": "cut\n', b"\n", b"[1, 2]\n"
    return lines


def as_rows(chunks):
    return [(c.locate(i), c.texts[i].as_py(), c.reasons[i].as_py(), c.raw[i].as_py())
            for c in chunks for i in range(len(c))]


@pytest.mark.parametrize("truncate", [False, True])
def test_several_parse_threads_read_what_one_reads(tmp_path, truncate):
    data = gzip.compress(b"".join(corpus_lines()))
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3] if truncate else data)
    one = list(read_corpus(str(path), ReadOptions(block_bytes=4096)))
    several = list(read_corpus(str(path), ReadOptions(block_bytes=4096, parse_threads=3)))
    assert len(one) > 10  # many blocks, so several are in work at once
    assert as_rows(several) == as_rows(one)
    assert [c.first_row for c in several] == [c.first_row for c in one]
    if truncate:  # the cut stream's partial last record is rejected, as with one thread
        assert "compressed stream ends early" in one[-1].reasons[len(one[-1]) - 1].as_py()


@pytest.mark.parametrize("rule", ["branch_step_ratio <= 0.3", "drop-top 10% branch_step_ratio"])
def test_filter_outputs_do_not_depend_on_threads(tmp_path, rule):
    lines = corpus_lines()
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(lines)))
    outputs = {}
    for threads in (1, 8):  # 1 and 4 parse threads
        out = tmp_path / f"out{threads}"
        options = CurateOptions(threads=threads, on_error="skip", block_bytes=8192)
        summary = filter_corpus(str(path), out, [parse_rule(rule)], options)
        outputs[threads] = ((out / "kept.jsonl.gz").read_bytes(), pq.read_table(out / "metrics.parquet"),
                            (out / "rejected.jsonl").read_bytes(), summary.kept)
    kept, metrics, rejected, n_kept = outputs[1]
    assert outputs[8][0] == kept  # the very same gzip bytes, not only the same records
    assert outputs[8][1].equals(metrics) and outputs[8][2] == rejected
    # The kept records are the input lines whose metrics row says kept, in order.
    by_id = dict(zip(metrics.column("record_id").to_pylist(), metrics.column("kept").to_pylist()))
    expected = [line for n, line in enumerate(lines, 1) if by_id.get(f"{path}:{n}")]
    assert gzip.decompress(kept) == b"".join(expected) and len(expected) == n_kept


def count_second_pass_reads(monkeypatch) -> list[int]:
    """Chunks that pass 2 reads from the input, counted (one entry per chunk)."""
    from cotsieve import pipeline

    reads: list[int] = []
    chunks = pipeline._TwoPass.chunks

    def counted(self, parse=True):
        for chunk in chunks(self, parse):
            if not parse:
                reads.append(len(chunk))
            yield chunk

    monkeypatch.setattr(pipeline._TwoPass, "chunks", counted)
    return reads


@pytest.mark.parametrize("tail_bytes", [0, 20_000, 10**9])
def test_second_pass_takes_pass_ones_last_blocks_from_memory(tmp_path, monkeypatch, tail_bytes):
    """Whatever part of the corpus pass 1 holds, the outputs are those of a
    run that reads everything again, and pass 2 reads only the rest."""
    from cotsieve import pipeline

    lines = corpus_lines()
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(lines)))
    options = CurateOptions(threads=2, on_error="skip", block_bytes=8192)
    rule = [parse_rule("drop-top 10% branch_step_ratio")]
    monkeypatch.setattr(pipeline, "TAIL_BYTES", 0)
    filter_corpus(str(path), tmp_path / "reread", rule, options)
    monkeypatch.setattr(pipeline, "TAIL_BYTES", tail_bytes)
    reads = count_second_pass_reads(monkeypatch)
    summary = filter_corpus(str(path), tmp_path / "out", rule, options)
    for name in ("kept.jsonl.gz", "rejected.jsonl"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "reread" / name).read_bytes()
    assert pq.read_table(tmp_path / "out" / "metrics.parquet").equals(pq.read_table(tmp_path / "reread" / "metrics.parquet"))
    read_again = sum(reads)
    if tail_bytes == 0:
        assert read_again == summary.read
    elif tail_bytes == 20_000:  # the last two or three 8 KiB blocks come from memory
        assert 0 < read_again < summary.read
    else:
        assert read_again == 0


def test_a_truncated_input_is_caught_before_the_blocks_held(tmp_path, monkeypatch):
    from cotsieve import pipeline
    from cotsieve.io import BadInputError

    path = tmp_path / "c.jsonl.gz"
    data = b"".join(corpus_lines())
    path.write_bytes(gzip.compress(data))
    monkeypatch.setattr(pipeline, "TAIL_BYTES", 20_000)
    monkeypatch.setattr(pipeline._TwoPass, "check_files_unchanged", lambda self: None)
    decide = pipeline._TwoPass.decide_and_copy

    def truncating(self, staging):
        path.write_bytes(gzip.compress(data[: len(data) // 2]))
        return decide(self, staging)

    monkeypatch.setattr(pipeline._TwoPass, "decide_and_copy", truncating)
    with pytest.raises(BadInputError, match="changed between the two passes: pass 2 read the end, after"):
        filter_corpus(str(path), tmp_path / "out", [parse_rule("drop-top 10% branch_step_ratio")],
                      CurateOptions(on_error="skip", block_bytes=8192))
    assert not (tmp_path / "out").exists()
