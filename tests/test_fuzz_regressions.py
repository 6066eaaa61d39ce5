"""Regression tests for what fuzzing and adversarial inputs turned up, and for
the engines' internal size boundaries, which random sizes seldom hit exactly.

Each input is inlined at its smallest known form. The harnesses live in
fuzz/; docs/reliability.md lists what was tried and found.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from reference import RefPattern, ref_matches
from scanner_helpers import build_set, engines

cotsieve = pytest.importorskip("cotsieve")
from cotsieve import Pattern, PatternSet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_adversarial import units_sharing_a_key  # noqa: E402
from peers import best_seconds  # noqa: E402

# The prefilter reads text in 64-byte windows, each with 4 bytes of look-ahead
# and one byte before it, 64 windows per batch; the DFA cuts texts into
# 16 KiB segments that re-read the longest pattern's length before them.
WINDOW, LOOKAHEAD, BATCH, SEGMENT = 64, 4, 64 * 64, 16 * 1024
BOUNDARY_SIZES = sorted(
    {n for base in (WINDOW, 2 * WINDOW, BATCH, SEGMENT) for n in range(base - 6, base + 7)}
    | set(range(2 * LOOKAHEAD + 2))
)
EDGE_SET = [
    RefPattern(b"wait", "backtrack"),
    RefPattern(b"but wait", "backtrack"),
    RefPattern(b"a", "branch", boundary="none"),
    RefPattern(b"aaaaa", "branch", case="sensitive", boundary="none"),
    RefPattern(b"Hmm", "hesitate", anchor="line_start"),
    RefPattern(b"so", "conclude", anchor="sentence_start"),
    RefPattern("等".encode(), "hesitate", boundary="none"),
]
FILLERS = [b"x", b" ", b"a", b"\n", b"\xff", "等".encode()]


def text_ending_in_matches(size: int, filler: bytes) -> bytes:
    """`size` bytes of filler whose last bytes hold matches, so that the final
    window or segment, read through padding, has something to find."""
    tail = b" but wait.\nHmm. so aaaaa"[:size]
    body = (filler * size)[: size - len(tail)]
    return body + tail


def matches_by_text(found, n_texts: int) -> list[list[tuple[int, int, int]]]:
    """A match table as the reference gives it: (start, end, pattern) per text."""
    got = [[] for _ in range(n_texts)]
    for d, s, e, i in zip(*(found.column(c).to_pylist() for c in ("doc", "start", "end", "pattern"))):
        got[d].append((s, e, i))
    return got


@pytest.mark.parametrize("filler", FILLERS, ids=repr)
def test_matches_at_internal_size_boundaries_equal_reference(filler):
    texts = [text_ending_in_matches(n, filler) for n in BOUNDARY_SIZES]
    expected = [ref_matches(t, EDGE_SET) for t in texts]
    for engine in engines():
        found = build_set(EDGE_SET, engine=engine).matches(texts)
        assert matches_by_text(found, len(texts)) == expected, engine


@pytest.mark.parametrize("steps", cotsieve.STEP_MODES)
def test_answers_straddling_the_layout_block_seam_are_found_once(steps):
    # The layout pass reads 64-byte blocks plus two bytes of look-ahead and
    # leaves the rest to a scalar loop; an answer or sentence end straddling
    # that seam must be seen once, whatever the text's length.
    seam_texts = [b"x" * pad + b"ok. The answer is 7.\n\\boxed{7}" for pad in range(40, 140)]
    ps = PatternSet.load("default")
    table = cotsieve.analyze(seam_texts, ps, steps=steps, threads=1)
    offsets = table.column("first_answer_offset").to_pylist()
    assert offsets == [pad + 4 for pad in range(40, 140)]
    assert table.column("n_distinct_answers").to_pylist() == [1] * len(seam_texts)


ONE_MARKER = [Pattern("wait", "backtrack")]


@pytest.mark.parametrize(
    "text, spans",
    [
        # Found by fuzz_analyze with the default set: b" -alternatively".
        (b" -wait", [(1, 6)]),
        (b"  # wait", [(2, 8)]),
        # The everyday form: an indented bullet opening a paragraph.
        (b"x\n\n  - Wait, no.", [(0, 1), (5, 16)]),
    ],
)
def test_marker_mode_makes_no_step_before_an_indented_bullet(text, spans):
    steps = cotsieve.segments([text], PatternSet(ONE_MARKER), steps="marker")
    assert list(zip(steps.column("start").to_pylist(), steps.column("end").to_pylist())) == spans
    metrics = cotsieve.analyze([text], PatternSet(ONE_MARKER), steps="marker")
    assert metrics.column("n_steps").to_pylist() == [len(spans)]


def test_dfa_anchor_checks_stay_linear_in_a_run_of_line_prefix_bytes():
    # Found by adversarial corpora: 32 KiB of '-' took 0.7 s, 200 KB of ' '
    # with " " and "   " 33 s. The prefilter engine scans both in linear time.
    ps = PatternSet(
        [Pattern(t, "branch", boundary="none", anchor="line_start") for t in ("-", "---")], engine="dfa"
    )
    small, large = 4096, 8 * 4096
    ratio = best_seconds(lambda: ps.count([b"-" * large], threads=1), 3) / best_seconds(
        lambda: ps.count([b"-" * small], threads=1), 3
    )
    # Linear work gives a ratio near 8 and quadratic near 64; noise stays far
    # from the threshold either way.
    assert ratio < 24, f"8x the text took {ratio:.0f}x the time"


def test_anchored_runs_of_spaces_in_long_whitespace_equal_reference():
    # Found by the scan fuzzer: a 264-space pattern anchored at sentence
    # starts occurs at every offset of a long run of spaces. Each occurrence
    # checks its anchor by looking back over the run, which made the
    # reference quadratic (30 s for a 12 KB text); the engines must agree
    # with it on every overlapping candidate.
    spaces = RefPattern(b" " * 264, "verify", "insensitive", "end", "sentence_start")
    dashes = RefPattern(b"- -", "verify", "insensitive", "word", "line_start")
    patterns = [spaces, dashes]
    texts = [b"Wait." + b" " * 20_000 + b"zzz", b"- " * 10_000 + b"\n- - x", b"zzz" + b" " * 5_000 + b". " + b" " * 300]
    expected = [ref_matches(t, patterns) for t in texts]
    assert expected[0], "the run after a sentence end holds matches"
    for engine in engines():
        found = build_set(patterns, engine=engine).matches(texts)
        assert matches_by_text(found, len(texts)) == expected, engine


def test_units_sharing_a_key_count_exactly():
    units = units_sharing_a_key(500)
    repeats = units[::7] + units[3::50]
    text = b"\n".join(units + repeats)
    repetition = cotsieve.analyze([text], threads=1).column("repetition")[0].as_py()
    assert repetition == pytest.approx(len(repeats) / (len(units) + len(repeats)))


def test_units_sharing_a_key_take_linear_time():
    # Each such unit is unlike the first of its key; a list of those scanned
    # per unit made the work quadratic in their number.
    small, large = (b"\n".join(units_sharing_a_key(n)) for n in (2_000, 16_000))
    ratio = best_seconds(lambda: cotsieve.analyze([large], threads=1), 3) / best_seconds(
        lambda: cotsieve.analyze([small], threads=1), 3
    )
    # Linear work gives a ratio near 8 and quadratic near 64.
    assert ratio < 24, f"8x the units took {ratio:.0f}x the time"
