"""Fuzz scanning: random pattern sets and texts through ``count`` and ``matches``.

Checks, for every input:
- counts equal the per-pattern tallies of the match table;
- matches are in (doc, start) order, non-overlapping, in bounds, and cover
  bytes equal to their pattern (ASCII-folded unless case-sensitive);
- they equal the pure-Python reference of docs/semantics.md;
- the DFA and the prefilter engine, every thread count and every input
  container give identical results.

Usage: python fuzz/fuzz_scan.py [CORPUS_DIR] -max_total_time=60
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

# Imported before instrumenting: their coverage would only add noise.
import numpy as np
import pyarrow  # noqa: F401

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

with atheris.instrument_imports():
    from cotsieve import PatternSet
    from inputs import pattern_tuples, scan_engines, text_container, texts, threads
    from reference import RefPattern, ref_matches


def fold(data: bytes) -> bytes:
    return data.lower()  # bytes.lower folds ASCII only, as the engine does


def check_match_table(found, items: list[bytes], patterns: list[tuple]) -> None:
    doc, start, end, pattern = (found.column(c).to_numpy() for c in ("doc", "start", "end", "pattern"))
    order = np.lexsort((start, doc))
    assert (order == np.arange(len(doc))).all(), "matches not in (doc, start) order"
    previous_end = {}
    for d, s, e, p in zip(doc.tolist(), start.tolist(), end.tolist(), pattern.tolist()):
        text, (pattern_text, _, case, _, _) = items[d], patterns[p]
        assert 0 <= s < e <= len(text), f"match [{s}, {e}) out of bounds in doc {d}"
        assert s >= previous_end.get(d, 0), f"overlapping match at {s} in doc {d}"
        previous_end[d] = e
        covered = text[s:e]
        same = covered == pattern_text if case == "sensitive" else fold(covered) == fold(pattern_text)
        assert same, f"match [{s}, {e}) covers {covered!r}, not pattern {p} {pattern_text!r}"


def check_counts_tally(counts: np.ndarray, found, n_texts: int, n_patterns: int) -> None:
    assert counts.shape == (n_texts, n_patterns)
    tally = np.zeros((n_texts, n_patterns), np.int64)
    np.add.at(tally, (found.column("doc").to_numpy(), found.column("pattern").to_numpy()), 1)
    assert (tally == counts).all(), "counts differ from the tally of matches"


def check_reference(found, items: list[bytes], patterns: list[tuple]) -> None:
    ref_patterns = [RefPattern(*p) for p in patterns]
    expected = [(d, s, e, i) for d, text in enumerate(items) for s, e, i in ref_matches(text, ref_patterns)]
    got = list(zip(*(found.column(c).to_pylist() for c in ("doc", "start", "end", "pattern"))))
    assert got == expected, f"matches differ from the reference: {got[:8]} vs {expected[:8]}"


def scan_all_ways(fdp: atheris.FuzzedDataProvider, patterns, extra, items):
    """Counts and matches from each engine, in a random input form and thread count."""
    results = []
    for engine in scan_engines():
        ps = PatternSet(patterns, extra_categories=extra, engine=engine)
        batch = text_container(fdp, items)
        n = threads(fdp)
        results.append((engine, ps.count(batch, threads=n), ps.matches(batch, threads=n)))
    return results


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    patterns, extra = pattern_tuples(fdp)
    items = texts(fdp, [p[0] for p in patterns])
    results = scan_all_ways(fdp, patterns, extra, items)
    _, counts, found = results[0]
    check_counts_tally(counts, found, len(items), len(patterns))
    check_match_table(found, items, patterns)
    check_reference(found, items, patterns)
    for engine, other_counts, other_found in results[1:]:
        assert np.array_equal(counts, other_counts), f"{engine} counts differ from dfa"
        assert found.equals(other_found), f"{engine} matches differ from dfa"


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
