"""The one speed assertion CI makes: a wide ratio against Python ``re``,
measured in the same run on the same bytes (timings alone are never asserted).
"""

import sys
from pathlib import Path

import pyarrow as pa

import cotsieve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peers import best_seconds, python_re, sample_traces  # noqa: E402

FLOOR = 20.0


def test_scanner_is_at_least_20x_python_re():
    texts = sample_traces()[:120]
    ps = cotsieve.PatternSet.load("default")
    arrow = pa.array(texts, pa.large_binary())
    ours = best_seconds(lambda: ps.count(arrow, threads=1), repeat=5)
    theirs = best_seconds(lambda: python_re(ps)(texts), repeat=2)
    assert theirs / ours >= FLOOR, f"only {theirs / ours:.1f}x faster than Python re"
