"""Filter rules: thresholds, percentiles (ties, groups, nulls), Proxy 1, combination, parsing."""

import numpy as np
import pyarrow as pa
import pytest

from cotsieve.errors import UsageError
from cotsieve.rules import (DropShare, RuleSet, StepCountRatio, Threshold, length_baseline, parse_rule,
                            parse_share)


def test_threshold_keeps_what_holds_and_nulls():
    t = pa.table({"x": [0.1, 0.3, 0.31, None]})
    assert Threshold("x", "<=", 0.3).drops(t).tolist() == [False, False, True, False]
    assert Threshold("x", ">", 0.3).drops(t).tolist() == [True, True, False, False]


def test_unknown_column_and_operator():
    with pytest.raises(UsageError, match="available"):
        Threshold("nope", "<", 1).drops(pa.table({"x": [1]}))
    with pytest.raises(ValueError):
        Threshold("x", "=<", 1)


def test_drop_top_share_of_distinct_values():
    t = pa.table({"x": np.arange(100, dtype=float)})
    drop = DropShare("x", 0.10).drops(t)
    assert drop.sum() == 10 and drop[90:].all()


def test_drop_bottom():
    t = pa.table({"x": np.arange(10, dtype=float)})
    assert np.flatnonzero(DropShare("x", 0.2, "bottom").drops(t)).tolist() == [0, 1]


def test_ties_at_the_cutoff_are_all_kept():
    t = pa.table({"x": [0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0]})
    # k = 2 should go, but only one value lies above the cutoff 0.5
    assert np.flatnonzero(DropShare("x", 0.2).drops(t)).tolist() == [9]


def test_order_does_not_matter():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 200).astype(float)
    perm = rng.permutation(200)
    a = DropShare("x", 0.15).drops(pa.table({"x": x}))
    b = DropShare("x", 0.15).drops(pa.table({"x": x[perm]}))
    assert (a[perm] == b).all()


def test_nulls_are_kept_and_not_counted():
    t = pa.table({"x": [None] * 10 + list(range(10))})
    drop = DropShare("x", 0.1).drops(t)
    assert not drop[:10].any() and np.flatnonzero(drop).tolist() == [19]


def test_per_group_percentiles():
    t = pa.table({"x": list(range(10)) + list(range(100, 110)), "g": ["a"] * 10 + ["b"] * 10})
    assert np.flatnonzero(DropShare("x", 0.1, per="g").drops(t)).tolist() == [9, 19]
    assert np.flatnonzero(DropShare("x", 0.1).drops(t)).tolist() == [18, 19]
    assert DropShare("x", 0.1, per="g").details(t) == {"cutoffs": {"a": 8.0, "b": 108.0}}


def test_share_edges_and_rounding():
    t = pa.table({"x": np.arange(100, dtype=float)})
    assert DropShare("x", 0.0).drops(t).sum() == 0
    assert DropShare("x", 1.0).drops(t).sum() == 100
    assert DropShare("x", 0.29).drops(t).sum() == 29
    assert DropShare("x", 0.1).drops(pa.table({"x": np.arange(9.0)})).sum() == 0  # floor(0.9) == 0


def test_length_baseline_is_a_drop_share_on_length():
    assert length_baseline(0.1, per="source") == DropShare("n_words", 0.1, "top", "source")


def test_step_count_ratio_rule():
    t = pa.table({"problem_id": ["p", "p", "q", "r"], "source": ["r1", "oss", "r1", "oss"],
                  "n_steps": [30, 10, 50, 5]})
    # q has no reference trace, so it is kept
    assert StepCountRatio("oss", 1.5).drops(t).tolist() == [True, False, False, False]


def test_ruleset_combines_and_names_every_rule():
    t = pa.table({"x": [1.0, 5.0, 9.0], "y": [9.0, 1.0, 9.0]})
    decision = RuleSet([Threshold("x", "<", 8), Threshold("y", "<", 8)]).decide(t)
    assert decision.drop.tolist() == [True, False, True]
    assert decision.reasons.to_pylist() == ["y < 8", None, "x < 8; y < 8"]
    assert decision.counts == {"x < 8": 1, "y < 8": 2}


def test_parse_rule_round_trips_names():
    for spec in ("branch_step_ratio <= 0.3", "drop-top 10% branch_step_ratio per source",
                 "drop-bottom 5% n_words", "step_count_ratio <= 1.5 vs gpt-oss"):
        assert parse_rule(spec).name == spec
    rule = parse_rule("step_count_ratio <= 2 vs oss problem pid source model")
    assert rule == StepCountRatio("oss", 2.0, "pid", "model")
    for bad in ("x <= y", "drop-top ten x", "keep the good ones", "drop-top 120% x"):
        with pytest.raises(ValueError):
            parse_rule(bad)


def test_parse_share():
    assert parse_share("10%") == pytest.approx(0.1) and parse_share("0.5") == 0.5
    with pytest.raises(ValueError):
        parse_share("-1%")
