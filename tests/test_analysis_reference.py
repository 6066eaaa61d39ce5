"""Property tests: `analyze` and `segments` equal the pure-Python reference of
docs/metrics.md, and keep the invariants that the doc promises."""

from __future__ import annotations

from functools import cache

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metrics_reference import (
    PROGRESS,
    WHITESPACE,
    answer_columns,
    differing_columns,
    reference_matches,
    reference_metrics,
    reference_steps,
)

cotsieve = pytest.importorskip("cotsieve")

PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

SHIPPED = [n for n in ("paper-2604.01702", "default") if n in cotsieve.PatternSet.available()]

# Marker words of the shipped sets and the random sets below, so that steps
# get labels and flags.
MARKER_WORDS = [
    "wait", "Wait,", "but wait", "Alternatively,", "alternatively", "another approach",
    "Another", "Perhaps", "maybe", "or maybe", "Or", "instead", "actually", "hmm", "Hmm.",
    "Oh", "well,", "check", "double-check", "verify", "verified", "confirm", "therefore",
    "so the answer", "\\boxed", "等等，", "也许", "嗯", "let me",
]

# Phrase answers end on a sentence end and whitespace, so that their values
# are short and hold no whitespace but the one space after the phrase: the
# engine trims values, the doc does not (see test_analysis_examples.py).
TEXT_FRAGMENTS = [
    "\n", "\n\n", "  \n", "\r\n", "\t", " ", ". ", "! ", "? ", "...", ":", ": ",
    "- ", "* ", "# ", "> ", "x", "42", "é", "等", "\x00", "\x0b", "\x0c", "$",
    "\\boxed{12}", "\\boxed{a{b}c}", "\\boxed{", "}", "\\fbox{12.}", "\\boxed{\\(12\\)}",
    "The answer is 7. ", "the answer is $7$.\n", "final answer: x\n", "Final answer is 12!\n",
    "So the answer is 7. ", "final answer:" + "9" * 210 + ".\n", "ok.Wait, ", "note:perhaps ",
]
SEPARATORS = [b"\n", b"\n\n", b"  \n", b"\n \n", b". ", b" "]
# Whole steps and sentences: repeated ones make repetition and label runs.
STEPS = [
    "\n\nAlternatively, try 3. ", "\n\nPerhaps x = 2.", "\nWait, no. ", "\n\nHmm. ",
    "We compute the sum of both sides. ", "Then we divide by two and simplify.\n",
    "So x equals 15. ", "So x equals 150. ",  # 15 and 16 bytes: the repetition threshold
]
# Kept in this exact case: the engine skips a phrase over a box only when the
# box is spelled in lowercase (see test_analysis_examples.py).
PHRASE_OVER_BOX = [b"the answer is \\boxed{5}. ", b"Final answer: \\boxed{"]
INVALID_UTF8 = [b"\xff", b"\xc3", b"\xe7\xad", b"\x80"]

# Random pattern sets use these texts: none begins with whitespace (see
# test_marker_match_starting_with_whitespace in test_analysis_examples.py).
PATTERN_TEXTS = [
    "wait", "but wait", "alternatively", "another", "perhaps", "or", "hmm", "check",
    "so", "the answer", "\\boxed", "等", "é", "x", ".", "- ", "wait,", "Then", "we",
]
CATEGORIES = ("branch", "backtrack", "verify", "hesitate", "conclude", "pivot")

CASE_CHANGES = [str, str.lower, str.upper, str.title, str.swapcase]


def random_case(words: list[str]) -> st.SearchStrategy[bytes]:
    return st.tuples(st.sampled_from(words), st.sampled_from(CASE_CHANGES)).map(
        lambda pair: pair[1](pair[0]).encode()
    )


fragment = st.one_of(
    random_case(MARKER_WORDS),
    random_case(TEXT_FRAGMENTS),
    random_case(STEPS),
    st.sampled_from(SEPARATORS),
    st.sampled_from(INVALID_UTF8 + PHRASE_OVER_BOX),
)
# Texts built from an explicit count: plain lists stay short in hypothesis.
trace = st.integers(0, 40).flatmap(lambda n: st.lists(fragment, min_size=n, max_size=n).map(b"".join))
batches = st.lists(trace, min_size=1, max_size=4)
modes = st.sampled_from(cotsieve.STEP_MODES)

pattern_spec = st.tuples(
    st.sampled_from(PATTERN_TEXTS),
    st.sampled_from(CATEGORIES),
    st.sampled_from(["insensitive", "sensitive"]),
    st.sampled_from(["word", "start", "end", "none"]),
    st.sampled_from(["any", "line_start", "sentence_start"]),
)
# A set is named by a shipped name or a tuple of pattern tuples, so that a
# failing example prints everything needed to rebuild it.
set_specs = st.one_of(
    *([st.sampled_from(SHIPPED)] if SHIPPED else []),
    st.lists(pattern_spec, min_size=0, max_size=6).map(tuple),
)


@cache
def pattern_set(spec):
    if isinstance(spec, str):
        return cotsieve.PatternSet.load(spec)
    patterns = [cotsieve.Pattern(*p) for p in spec]
    return cotsieve.PatternSet(patterns, extra_categories=["pivot"])


def expected_rows(batch: list[bytes], ps, mode: str) -> list[dict]:
    return [reference_metrics(t, reference_matches(t, ps), ps.categories, mode) for t in batch]


@PROPERTY_SETTINGS
@given(batches, set_specs, modes)
def test_analyze_equals_reference(batch, spec, mode):
    ps = pattern_set(spec)
    rows = cotsieve.analyze(batch, ps, mode).to_pylist()
    for doc, (got, expected) in enumerate(zip(rows, expected_rows(batch, ps, mode))):
        assert list(got) == list(expected), "column names or order"
        assert not differing_columns(got, expected), (doc, differing_columns(got, expected))


def engine_steps(batch: list[bytes], ps, mode: str) -> list[list[tuple]]:
    per_doc: list[list[tuple]] = [[] for _ in batch]
    for row in cotsieve.segments(batch, ps, mode).to_pylist():
        per_doc[row["doc"]].append((row["start"], row["end"], row["label"], tuple(row["flags"])))
    return per_doc


@PROPERTY_SETTINGS
@given(batches, set_specs, modes)
def test_segments_equal_reference(batch, spec, mode):
    ps = pattern_set(spec)
    for doc, (got, text) in enumerate(zip(engine_steps(batch, ps, mode), batch)):
        steps = reference_steps(text, reference_matches(text, ps), ps.categories, mode)
        assert got == [(s.start, s.end, s.label, s.flags) for s in steps], doc


def check_step_invariants(text: bytes, spans: list[tuple[int, int]]) -> None:
    covered = [0] * len(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text), "ordered, disjoint, inside, non-empty"
        assert text[start] not in WHITESPACE and text[end - 1] not in WHITESPACE
        for pos in range(start, end):
            covered[pos] += 1
        previous_end = end
    for pos, byte in enumerate(text):
        if byte not in WHITESPACE:
            assert covered[pos] == 1, f"byte {pos} covered {covered[pos]} times"


@PROPERTY_SETTINGS
@given(batches, set_specs, modes)
def test_steps_cover_every_non_whitespace_byte_once(batch, spec, mode):
    ps = pattern_set(spec)
    for steps, text in zip(engine_steps(batch, ps, mode), batch):
        check_step_invariants(text, [(s, e) for s, e, _, _ in steps])


@PROPERTY_SETTINGS
@given(batches, set_specs, modes)
def test_category_counts_equal_pattern_set_counts(batch, spec, mode):
    ps = pattern_set(spec)
    table = cotsieve.analyze(batch, ps, mode)
    counts = ps.count(batch)
    for i, cat in enumerate(ps.categories):
        expected = counts[:, ps.category_index == i].sum(axis=1)
        assert table.column(f"count_{cat}").to_pylist() == expected.tolist(), cat


def check_ratio_ranges(row: dict, labels: tuple[str, ...]) -> None:
    for name in ("branch_step_ratio", "repetition", "tail_after_first_answer"):
        assert row[name] is None or 0.0 <= row[name] <= 1.0, name
    for a in labels:
        probabilities = [row[f"p_{a}_{b}"] for b in labels]
        if all(p is None for p in probabilities):
            continue
        assert all(p is not None and 0.0 <= p <= 1.0 for p in probabilities), a
        assert sum(probabilities) == pytest.approx(1.0, rel=1e-12), a


@PROPERTY_SETTINGS
@given(batches, set_specs, modes)
def test_ratios_and_probabilities_are_in_range(batch, spec, mode):
    ps = pattern_set(spec)
    for row in cotsieve.analyze(batch, ps, mode).to_pylist():
        check_ratio_ranges(row, ps.categories + (PROGRESS,))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(trace, min_size=1, max_size=12), set_specs, modes)
def test_threads_and_input_forms_do_not_change_results(batch, spec, mode):
    ps = pattern_set(spec)
    single = cotsieve.analyze(batch, ps, mode, threads=1)
    assert cotsieve.analyze(batch, ps, mode, threads=4).equals(single)
    assert cotsieve.analyze(pa.array(batch, pa.binary()), ps, mode).equals(single)
    as_str = [t.decode("utf-8", "surrogateescape") for t in batch]
    assert cotsieve.analyze(as_str, ps, mode).equals(single)
    utf8 = [t for t in batch if _is_utf8(t)]
    assert cotsieve.analyze(pa.array([t.decode() for t in utf8], pa.string()), ps, mode).equals(
        cotsieve.analyze([t.decode() for t in utf8], ps, mode)
    )
    segmented = cotsieve.segments(batch, ps, mode, threads=1)
    assert cotsieve.segments(batch, ps, mode, threads=4).equals(segmented)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True



# The engine classifies bytes 64 at a time; what a block's last bytes mean can
# depend on the next block's first bytes. The last piece is a whitespace run
# holding several cuts and blank lines, so that some offset puts a cut on a
# block's first byte while a cut before it carries over the edge.
BLOCK_EDGE_PIECES = [
    b"The ANSWER is 7. ", b"\\boxed{5}", b"\\fbox{6}", b"done. x", b"done.\n", b"a\n\nb", b"w  w",
    b"x. \n \n\n \ny",
]


@pytest.mark.parametrize("piece", BLOCK_EDGE_PIECES)
def test_pieces_at_every_offset_around_block_edges(piece):
    ps = cotsieve.PatternSet.load("default")
    batch = [b"y" * offset + b" " + piece + b" z" * 40 for offset in range(40, 200)]
    for mode in cotsieve.STEP_MODES:
        rows = cotsieve.analyze(batch, ps, mode).to_pylist()
        for text, got, expected in zip(batch, rows, expected_rows(batch, ps, mode)):
            assert not differing_columns(got, expected), (text, mode, differing_columns(got, expected))


# Boxes that open inside open boxes, close late or never, and escapes, in
# texts long enough for the 4096-byte limit: the engine walks the braces of
# overlapping boxes once for all of them.
BOX_PIECES = [
    b"\\boxed{", b"\\fbox{", b"\\boxed{. ", b"\\\\boxed{", b"{", b"}", b"\\{", b"\\}", b"\\", b"5",
    b"x" * 700, b"y" * 2000, b"z" * 4090, b" ",
]
box_trace = st.lists(st.sampled_from(BOX_PIECES), min_size=0, max_size=30).map(b"".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(box_trace, min_size=1, max_size=3))
def test_box_answers_in_long_texts_equal_reference(batch):
    rows = cotsieve.analyze(batch, cotsieve.PatternSet([])).to_pylist()
    for text, row in zip(batch, rows):
        expected = answer_columns(text)
        assert {name: row[name] for name in expected} == expected, text[:200]
