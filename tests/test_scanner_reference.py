"""Property tests: the native engine equals the pure-Python reference."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from scanner_helpers import (
    BUILTIN_CATEGORIES,
    build_set,
    engine_spans,
    engines,
    first_difference,
    input_forms,
    reference_counts,
    reference_spans,
    scan_cases,
)

pytest.importorskip("cotsieve")

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@pytest.mark.parametrize("engine", engines())
@PROPERTY_SETTINGS
@given(scan_cases())
def test_matches_equal_reference(engine, case):
    patterns, texts = case
    table = build_set(patterns, engine=engine).matches(texts)
    got = engine_spans(table, len(texts))
    expected = reference_spans(texts, patterns)
    assert got == expected, first_difference(got, expected)


@pytest.mark.parametrize("engine", engines())
@PROPERTY_SETTINGS
@given(scan_cases())
def test_counts_equal_reference(engine, case):
    patterns, texts = case
    counts = build_set(patterns, engine=engine).count(texts)
    assert counts.dtype == np.uint32
    assert counts.shape == (len(texts), len(patterns))
    assert counts.tolist() == reference_counts(texts, patterns)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scan_cases())
def test_match_table_is_well_formed(case):
    patterns, texts = case
    table = build_set(patterns).matches(texts)
    assert table.column_names[:5] == ["doc", "start", "end", "pattern", "category"]
    rows = table.to_pydict()
    keys = list(zip(rows["doc"], rows["start"]))
    assert keys == sorted(keys), "matches must be ordered by text, then start"
    for index, category in zip(rows["pattern"], rows["category"]):
        assert category == patterns[index].category


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scan_cases(max_texts=7))
def test_input_forms_and_thread_counts_agree(case):
    patterns, texts = case
    pattern_set = build_set(patterns)
    expected_spans = reference_spans(texts, patterns)
    expected_counts = reference_counts(texts, patterns)
    for form_name, form in input_forms(texts).items():
        for threads in (1, 4):
            got = engine_spans(pattern_set.matches(form, threads=threads), len(texts))
            assert got == expected_spans, f"{form_name}, threads={threads}"
            counts = pattern_set.count(form, threads=threads)
            assert counts.tolist() == expected_counts, f"{form_name}, threads={threads}"


@settings(max_examples=150, deadline=None)
@given(scan_cases())
def test_category_counts_sum_pattern_counts(case):
    patterns, texts = case
    table = build_set(patterns, extra_categories=("extra",)).count_categories(texts)
    assert table.column_names == [*BUILTIN_CATEGORIES, "extra"]
    for category in table.column_names:
        expected = [
            sum(n for n, p in zip(row, patterns) if p.category == category)
            for row in reference_counts(texts, patterns)
        ]
        assert table.column(category).type == pa.uint32()
        assert table.column(category).to_pylist() == expected, category
