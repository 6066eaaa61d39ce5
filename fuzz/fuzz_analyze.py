"""Fuzz segmentation and metrics: random texts and step modes through
``segments`` and ``analyze``, with the shipped default set or a random one.

Checks, for every input (docs/metrics.md):
- steps are ordered, disjoint, in bounds, start and end on non-whitespace, and
  cover every non-whitespace byte exactly once;
- a step's label is ``progress`` or one of its flags;
- ``n_bytes``, ``n_steps`` and ``steps_<cat>`` agree with the steps, and
  ``count_<cat>`` with ``PatternSet.count_categories``;
- ratios and probabilities lie in [0, 1] or are null exactly when their
  denominator is zero, and each label's transition row sums to 1;
- both engines, every thread count and every input container agree.

Usage: python fuzz/fuzz_analyze.py [CORPUS_DIR] -max_total_time=60
"""

from __future__ import annotations

import math
import sys
from functools import cache

import atheris

# Imported before instrumenting: their coverage would only add noise.
import numpy as np
import pyarrow  # noqa: F401

with atheris.instrument_imports():
    import cotsieve
    from cotsieve import PatternSet
    from inputs import pattern_tuples, pick, scan_engines, text_container, texts, threads

STEP_MODES = ("paragraph", "line", "sentence", "marker")
WHITESPACE = frozenset(b" \t\r\n")
MARKER_WORDS = [b"Wait", b"wait,", b"Alternatively,", b"Perhaps", b"Hmm", b"check", b"so the answer", b"\\boxed"]
UNIT_RATIOS = ("branch_step_ratio", "repetition", "tail_after_first_answer")


@cache
def default_patterns():
    shipped = PatternSet.load("default")
    return [(p.text, p.category, p.case, p.boundary, p.anchor) for p in shipped], shipped.categories[5:]


def pattern_set_source(fdp: atheris.FuzzedDataProvider):
    if fdp.ConsumeBool():
        return default_patterns()
    return pattern_tuples(fdp, max_patterns=6)


def check_steps(steps, items: list[bytes], labels: tuple[str, ...]) -> None:
    previous_end = {}
    covered = [0] * len(items)
    for row in steps.to_pylist():
        d, s, e = row["doc"], row["start"], row["end"]
        text = items[d]
        assert 0 <= s < e <= len(text), f"step [{s}, {e}) out of bounds in doc {d}"
        assert s >= previous_end.get(d, 0), f"step at {s} overlaps or precedes the previous one in doc {d}"
        previous_end[d] = e
        assert text[s] not in WHITESPACE and text[e - 1] not in WHITESPACE, f"step [{s}, {e}) has whitespace at an end"
        covered[d] += sum(b not in WHITESPACE for b in text[s:e])
        assert row["label"] in labels, f"unknown label {row['label']!r}"
        assert row["label"] == "progress" or row["label"] in row["flags"], "label is not among the step's flags"
    for d, text in enumerate(items):
        assert covered[d] == sum(b not in WHITESPACE for b in text), f"steps of doc {d} miss non-whitespace bytes"


def check_unit_interval(name: str, values: list) -> None:
    for v in values:
        assert v is None or 0.0 <= v <= 1.0, f"{name} = {v} outside [0, 1]"


def check_transitions(metrics: dict, labels: tuple[str, ...], n_rows: int) -> None:
    for a in labels:
        rows = [[metrics[f"p_{a}_{b}"][i] for b in labels] for i in range(n_rows)]
        for values in rows:
            check_unit_interval(f"p_{a}_*", values)
            defined = [v for v in values if v is not None]
            assert not defined or len(defined) == len(values), f"p_{a}_* partly null"
            assert not defined or math.isclose(sum(defined), 1.0, rel_tol=1e-9), f"p_{a}_* sums to {sum(defined)}"


def check_metrics(table, steps, counts, items: list[bytes], categories: tuple[str, ...]) -> None:
    m = table.to_pydict()
    n = len(items)
    assert m["n_bytes"] == [len(t) for t in items]
    docs = steps.column("doc").to_numpy()
    assert m["n_steps"] == np.bincount(docs, minlength=n).tolist()
    flags = steps.column("flags").to_pylist()
    for c in categories:
        assert m[f"count_{c}"] == counts.column(c).to_pylist(), f"count_{c} differs from count_categories"
        flagged = np.bincount(docs[[c in f for f in flags]], minlength=n).tolist() if flags else [0] * n
        assert m[f"steps_{c}"] == flagged, f"steps_{c} differs from the steps' flags"
    for name in UNIT_RATIOS:
        check_unit_interval(name, m[name])
    for i in range(n):
        assert (m["branch_step_ratio"][i] is None) == (m["n_steps"][i] == 0)
        assert (m["markers_per_1k_words"][i] is None) == (m["n_words"][i] == 0)
        assert m["markers_per_1k_words"][i] is None or m["markers_per_1k_words"][i] >= 0
        assert 0 <= m["longest_branch_run"][i] <= m["n_steps"][i]
        assert -1 <= m["first_answer_offset"][i] < max(1, len(items[i]))
        assert (m["first_answer_offset"][i] == -1) == (m["n_distinct_answers"][i] == 0)
        assert (m["tail_after_first_answer"][i] is None) == (m["first_answer_offset"][i] == -1)
    check_transitions(m, categories + ("progress",), n)


def run_all_ways(fdp: atheris.FuzzedDataProvider, patterns, extra, items, mode):
    """analyze/segments per engine, each on a random input form and thread count."""
    results = []
    for engine in scan_engines():
        ps = PatternSet(patterns, extra_categories=extra, engine=engine)
        batch = text_container(fdp, items)
        n = threads(fdp)
        results.append((
            engine,
            ps,
            cotsieve.analyze(batch, ps, steps=mode, threads=n),
            cotsieve.segments(batch, ps, steps=mode, threads=n),
        ))
    return results


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    patterns, extra = pattern_set_source(fdp)
    mode = pick(fdp, STEP_MODES)
    items = texts(fdp, [p[0] if isinstance(p[0], bytes) else p[0].encode() for p in patterns] + MARKER_WORDS)
    results = run_all_ways(fdp, patterns, extra, items, mode)
    _, ps, table, steps = results[0]
    check_steps(steps, items, ps.categories + ("progress",))
    check_metrics(table, steps, ps.count_categories(items), items, ps.categories)
    for engine, _, other_table, other_steps in results[1:]:
        assert table.equals(other_table), f"{engine} analyze differs from dfa"
        assert steps.equals(other_steps), f"{engine} segments differ from dfa"


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
