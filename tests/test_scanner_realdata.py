"""The engine equals the reference, match for match, on real reasoning traces
with the shipped pattern sets. Skipped when the shared trace files are absent."""

import functools

import pytest

from scanner_helpers import (
    engine_spans,
    first_difference,
    load_traces,
    reference_of,
    reference_spans,
    shared_data_dir,
)

cotsieve = pytest.importorskip("cotsieve")

pytestmark = pytest.mark.realdata

# (file, traces taken, stride): every stride-th trace spreads the subset over
# the models and benchmarks each file holds.
TRACE_FILES = {
    "sky_t1": ("skythought_sky_t1_outputs.jsonl.gz", 300, 12),
    "short_cot": ("skythought_short_cot_baselines.jsonl.zst", 300, 13),
    "r1_distill": ("r1_distill_llama8b_500.jsonl.gz", 300, 1),
}

# The reference is slow: the default set sees the full subsets, the others
# a prefix of each.
SET_SUBSET_SIZES = {"default": 300, "nowait": 120, "reasonscore": 120, "oat-zero": 120, "paper-2604.01702": 120}


@functools.lru_cache(maxsize=None)
def traces(file_key: str) -> tuple[str, ...]:
    name, limit, stride = TRACE_FILES[file_key]
    if not (shared_data_dir() / name).exists():
        pytest.skip(f"shared trace data not found: {shared_data_dir() / name}")
    texts = load_traces(name, limit, stride)
    assert len(texts) == limit
    return tuple(texts)


@functools.lru_cache(maxsize=None)
def expected_spans(file_key: str, set_name: str):
    """Reference matches, computed once: the counts test reuses them."""
    texts = traces(file_key)[: SET_SUBSET_SIZES[set_name]]
    raw = [text.encode("utf-8", "surrogateescape") for text in texts]
    return reference_spans(raw, reference_of(cotsieve.PatternSet.load(set_name)))


@pytest.mark.parametrize("file_key", sorted(TRACE_FILES))
@pytest.mark.parametrize("set_name", sorted(SET_SUBSET_SIZES))
def test_shipped_set_matches_reference_on_traces(file_key, set_name):
    texts = list(traces(file_key)[: SET_SUBSET_SIZES[set_name]])
    pattern_set = cotsieve.PatternSet.load(set_name)
    got = engine_spans(pattern_set.matches(texts), len(texts))
    expected = expected_spans(file_key, set_name)
    assert got == expected, first_difference(got, expected)


@pytest.mark.parametrize("file_key", sorted(TRACE_FILES))
def test_default_counts_match_reference_on_traces(file_key):
    texts = list(traces(file_key))
    pattern_set = cotsieve.PatternSet.load("default")
    counts = pattern_set.count(texts, threads=2)
    expected = [[0] * len(pattern_set) for _ in texts]
    for row, spans in zip(expected, expected_spans(file_key, "default")):
        for _, _, index in spans:
            row[index] += 1
    assert counts.tolist() == expected
    assert counts.sum() > 0
