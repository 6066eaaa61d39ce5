"""Blocks of one JSON Lines file parsed on several threads: the same records,
rows, reasons and outputs as one thread, in the same order."""

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


def test_parse_threads_are_capped():
    assert parse_threads(1) == 1
    assert parse_threads(3) == min(3, MAX_PARSE_THREADS)
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
    for threads in (1, 4):
        out = tmp_path / f"out{threads}"
        options = CurateOptions(threads=threads, on_error="skip", block_bytes=8192)
        summary = filter_corpus(str(path), out, [parse_rule(rule)], options)
        outputs[threads] = ((out / "kept.jsonl.gz").read_bytes(), pq.read_table(out / "metrics.parquet"),
                            (out / "rejected.jsonl").read_bytes(), summary.kept)
    kept, metrics, rejected, n_kept = outputs[1]
    assert outputs[4][0] == kept  # the very same gzip bytes, not only the same records
    assert outputs[4][1].equals(metrics) and outputs[4][2] == rejected
    # The kept records are the input lines whose metrics row says kept, in order.
    by_id = dict(zip(metrics.column("record_id").to_pylist(), metrics.column("kept").to_pylist()))
    expected = [line for n, line in enumerate(lines, 1) if by_id.get(f"{path}:{n}")]
    assert gzip.decompress(kept) == b"".join(expected) and len(expected) == n_kept
