"""Metrics on real reasoning traces: the engine equals the reference on a
sample of each file, and the metrics separate the kinds of trace they are meant
to separate. Skipped when the shared trace files are absent."""

from __future__ import annotations

import functools
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from metrics_reference import differing_columns, reference_matches, reference_metrics

cotsieve = pytest.importorskip("cotsieve")
zstandard = pytest.importorskip("zstandard")

pytestmark = pytest.mark.realdata

SKY_T1 = "skythought_sky_t1_outputs.jsonl.gz"
SHORT_COT = "skythought_short_cot_baselines.jsonl.zst"
R1_DISTILL = "r1_distill_llama8b_500.jsonl.gz"
SAMPLE_SIZE = 100


def read_lines(path: Path) -> Iterator[str]:
    """The lines of a gzip or zstd file, decompressed as they are read."""
    with open(path, "rb") as raw:
        if path.suffix == ".zst":
            stream = zstandard.ZstdDecompressor().stream_reader(raw)
        else:
            stream = gzip.GzipFile(fileobj=raw)
        yield from io.TextIOWrapper(stream, encoding="utf-8")


_records: dict[Path, list[dict]] = {}


def records(path: Path) -> list[dict]:
    """Every record of a JSONL file, read once per session."""
    if path not in _records:
        if not path.exists():
            pytest.skip(f"trace file not found: {path}")
        _records[path] = [json.loads(line) for line in read_lines(path) if line.strip()]
    return _records[path]


def texts(path: Path) -> list[str]:
    return [r["text"] for r in records(path)]


def mean(table: pa.Table, column: str) -> float:
    return pc.mean(table.column(column)).as_py()


def test_short_cot_branches_less_than_sky_t1(shared_data):
    short = cotsieve.analyze(texts(shared_data / SHORT_COT), "default")
    long = cotsieve.analyze(texts(shared_data / SKY_T1), "default")
    assert mean(short, "branch_step_ratio") < mean(long, "branch_step_ratio")


def test_truncated_sky_t1_traces_repeat_more_than_closed_ones(shared_data):
    rows = records(shared_data / SKY_T1)
    table = cotsieve.analyze([r["text"] for r in rows], "default")
    # The field holds True/False; str() also accepts the strings "True"/"False".
    closed = pa.array([str(r["thought_closed"]) for r in rows])
    assert set(closed.to_pylist()) == {"True", "False"}
    truncated = table.filter(pc.equal(closed, "False"))
    finished = table.filter(pc.equal(closed, "True"))
    assert mean(truncated, "repetition") > mean(finished, "repetition")


@functools.cache
def differences_on_sample(path: Path) -> list[tuple]:
    """(trace index, mode, differing columns) for every sampled trace that differs."""
    all_texts = texts(path)
    stride = max(1, len(all_texts) // SAMPLE_SIZE)
    ps = cotsieve.PatternSet.load("default")
    found = []
    for i, index in enumerate(range(0, len(all_texts), stride)[:SAMPLE_SIZE]):
        text = all_texts[index].encode("utf-8", "surrogateescape")
        # Each trace gets one step mode, in turn: every mode is covered at
        # the cost of one reference pass per trace.
        mode = cotsieve.STEP_MODES[i % len(cotsieve.STEP_MODES)]
        got = cotsieve.analyze([text], ps, mode).to_pylist()[0]
        expected = reference_metrics(text, reference_matches(text, ps), ps.categories, mode)
        diff = differing_columns(got, expected)
        if diff:
            found.append((index, mode, diff))
    return found


ANSWER_COLUMNS = {"first_answer_offset", "n_distinct_answers", "tail_after_first_answer"}


@pytest.mark.parametrize("name", [SKY_T1, SHORT_COT, R1_DISTILL])
def test_steps_labels_and_counts_equal_reference_on_a_sample(shared_data, name):
    found = differences_on_sample(shared_data / name)
    outside_answers = [(i, mode, set(diff) - ANSWER_COLUMNS) for i, mode, diff in found]
    assert not [d for d in outside_answers if d[2]], outside_answers[:3]


def test_answers_equal_reference_on_samples(shared_data):
    found = [d for name in (SKY_T1, SHORT_COT, R1_DISTILL) for d in differences_on_sample(shared_data / name)]
    assert not found, found[:3]
