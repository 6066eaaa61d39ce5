"""pytest-benchmark suite: ``pytest benchmarks/ --benchmark-enable``.

Each benchmark scans the same corpus (the real traces when ../shared/data is
present, the shipped synthetic sample otherwise) with the default pattern set;
``extra_info['MB/s']`` gives the throughput of each row.
"""

import sys
from pathlib import Path

import pyarrow as pa
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cotsieve  # noqa: E402
from peers import PEERS, real_traces, sample_traces, shared_data_dir  # noqa: E402


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    return real_traces() if shared_data_dir().is_dir() else sample_traces()


@pytest.fixture(scope="module")
def patterns() -> cotsieve.PatternSet:
    return cotsieve.PatternSet.load("default")


def record_rate(benchmark, corpus):
    nbytes = sum(map(len, corpus))
    benchmark.extra_info["MB/s"] = round(nbytes / benchmark.stats.stats.min / 1e6, 1)


@pytest.mark.parametrize("threads", [1, None])
def test_count(benchmark, corpus, patterns, threads):
    arrow = pa.array(corpus, pa.large_binary())
    benchmark(patterns.count, arrow, threads=threads)
    record_rate(benchmark, corpus)


@pytest.mark.parametrize("threads", [1, None])
def test_analyze(benchmark, corpus, patterns, threads):
    arrow = pa.array(corpus, pa.large_binary())
    benchmark(cotsieve.analyze, arrow, patterns, threads=threads)
    record_rate(benchmark, corpus)


@pytest.mark.parametrize("peer", sorted(PEERS))
def test_peer(benchmark, corpus, patterns, peer):
    try:
        scan = PEERS[peer](patterns)
    except ImportError as err:
        pytest.skip(str(err))
    subset = corpus[: max(1, len(corpus) // 20)] if peer in ("python re", "pyahocorasick") else corpus
    benchmark.pedantic(scan, args=(subset,), rounds=1, iterations=1)
    record_rate(benchmark, subset)
