"""Filter rules: thresholds, percentiles (ties, groups, nulls), Proxy 1, combination, parsing."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_ties_at_the_cutoff_are_split_to_the_share_asked_or_kept_on_request():
    t = pa.table({"x": [0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0], "record_id": [f"a:{i}" for i in range(10)]})
    # k = 2 should go, but only one value lies above the cutoff 0.5: one of the seven tied goes too
    split = DropShare("x", 0.2).drops(t)
    assert split.sum() == 2 and split[9] and split[2:9].sum() == 1
    assert np.flatnonzero(DropShare("x", 0.2, ties="keep").drops(t)).tolist() == [9]


def test_the_tied_records_that_go_depend_on_ids_not_on_order():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 5, 200).astype(float)
    ids = np.array([f"f.jsonl:{i}" for i in range(200)])
    perm = rng.permutation(200)
    a = DropShare("x", 0.15).drops(pa.table({"x": x, "record_id": ids}))
    b = DropShare("x", 0.15).drops(pa.table({"x": x[perm], "record_id": ids[perm]}))
    assert (a[perm] == b).all() and a.sum() == 30


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.integers(0, 4), min_size=0, max_size=60), n_groups=st.integers(1, 4),
       share=st.floats(0, 1), seed=st.integers(0, 2**32 - 1))
def test_every_group_loses_exactly_the_rounded_share(values, n_groups, share, seed):
    n = len(values)
    groups = [f"g{i % n_groups}" for i in range(n)]
    ids = [f"r{i}" for i in range(n)]
    table = pa.table({"x": pa.array(values, pa.float64()), "g": groups, "record_id": ids})
    rule = DropShare("x", share, per="g")
    drop = rule.drops(table)
    for g in set(groups):
        rows = [i for i in range(n) if groups[i] == g]
        expected = int(np.floor(share * len(rows) + 0.5 + 1e-9))
        assert drop[rows].sum() == expected
        kept_max = max((values[i] for i in rows if not drop[i]), default=-1)
        assert all(values[i] >= kept_max for i in rows if drop[i])  # nothing kept ranks above a dropped one
    perm = np.random.default_rng(seed).permutation(n)
    shuffled = table.take(pa.array(perm, pa.int64())) if n else table
    assert (rule.drops(shuffled) == drop[perm]).all()
    details = {d["group"]: d for d in rule.details(table)["groups"]}
    assert sum(d["dropped"] for d in details.values()) == drop.sum()


def test_nulls_are_kept_and_not_counted():
    t = pa.table({"x": [None] * 10 + list(range(10))})
    drop = DropShare("x", 0.1).drops(t)
    assert not drop[:10].any() and np.flatnonzero(drop).tolist() == [19]


def test_per_group_percentiles():
    t = pa.table({"x": list(range(10)) + list(range(100, 110)), "g": ["a"] * 10 + ["b"] * 10})
    assert np.flatnonzero(DropShare("x", 0.1, per="g").drops(t)).tolist() == [9, 19]
    assert np.flatnonzero(DropShare("x", 0.1).drops(t)).tolist() == [18, 19]
    details = DropShare("x", 0.1, per="g").details(t)
    assert details["cutoffs"] == {"a": 8.0, "b": 108.0}
    assert details["groups"][0] == {"group": "a", "records": 10, "asked": 0.1, "asked_count": 1, "dropped": 1,
                                    "dropped_share": 0.1, "cutoff": 8.0, "at_cutoff": 1}


def test_share_edges_and_rounding():
    t = pa.table({"x": np.arange(100, dtype=float)})
    assert DropShare("x", 0.0).drops(t).sum() == 0
    assert DropShare("x", 1.0).drops(t).sum() == 100
    assert DropShare("x", 0.29).drops(t).sum() == 29
    assert DropShare("x", 0.1).drops(pa.table({"x": np.arange(9.0)})).sum() == 1  # round(0.9) == 1
    assert DropShare("x", 0.1).drops(pa.table({"x": np.arange(4.0)})).sum() == 0  # round(0.4) == 0
    assert DropShare("x", 0.1).drops(pa.table({"x": np.arange(5.0)})).sum() == 1  # halves round up


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


def test_the_integrations_refuse_an_empty_rule_list():
    """A filter with no rule would decide nothing, and documents would vanish uncounted."""
    from cotsieve.integrations import hf

    with pytest.raises(ValueError, match="no rule given"):
        hf.cotsieve_filter([])
