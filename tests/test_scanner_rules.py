"""Targeted engine tests: one per rule in docs/semantics.md, the API's result
shapes, and its errors."""

import numpy as np
import pyarrow as pa
import pytest

from scanner_helpers import (
    BUILTIN_CATEGORIES,
    build_set,
    engine_spans,
    rule_params,
)

cotsieve = pytest.importorskip("cotsieve")
Pattern = cotsieve.Pattern
PatternSet = cotsieve.PatternSet


@pytest.mark.parametrize(("text", "patterns", "expected"), rule_params())
def test_rule_example(text, patterns, expected):
    table = build_set(patterns).matches([text])
    assert engine_spans(table, 1) == [expected]


@pytest.mark.parametrize(("text", "patterns", "expected"), rule_params())
def test_rule_example_counts(text, patterns, expected):
    counts = build_set(patterns).count([text])
    expected_row = [sum(1 for _, _, i in expected if i == index) for index in range(len(patterns))]
    assert counts.tolist() == [expected_row]


def test_defaults_are_insensitive_word_any():
    pattern = Pattern("wait", "backtrack")
    assert (pattern.case, pattern.boundary, pattern.anchor) == ("insensitive", "word", "any")
    counts = PatternSet([pattern]).count(["WAIT awaited x wait"])
    assert counts.tolist() == [[2]]


def test_str_and_bytes_pattern_texts_are_equivalent():
    as_str = PatternSet([Pattern("等等", "hesitate")])
    as_bytes = PatternSet([Pattern("等等".encode(), "hesitate")])
    texts = ["嗯，等等，再想想等等"]
    assert as_str.count(texts).tolist() == as_bytes.count(texts).tolist() == [[2]]


def test_lone_surrogate_texts_are_encoded_per_contract():
    pattern_set = PatternSet([Pattern("wait", "backtrack")])
    escaped = b"\xffwait".decode("utf-8", "surrogateescape")
    assert engine_spans(pattern_set.matches([escaped]), 1) == [[(1, 5, 0)]]
    # A surrogate that surrogateescape cannot encode falls back to
    # surrogatepass: three bytes before the match.
    assert engine_spans(pattern_set.matches(["\ud800wait"]), 1) == [[(3, 7, 0)]]


def test_patterns_keep_their_order():
    patterns = [Pattern("b", "verify"), Pattern("a", "branch"), Pattern("b", "verify")]
    pattern_set = PatternSet(patterns)
    assert len(pattern_set) == 3
    assert [p.text for p in pattern_set.patterns] == ["b", "a", "b"]
    assert pattern_set.categories == BUILTIN_CATEGORIES


def test_match_table_schema():
    pattern_set = PatternSet([Pattern("wait", "backtrack"), Pattern("hmm", "hesitate")])
    table = pattern_set.matches(["hmm wait", "", "wait"])
    assert table.schema.field("doc").type == pa.int64()
    assert table.schema.field("start").type == pa.int64()
    assert table.schema.field("end").type == pa.int64()
    assert table.schema.field("pattern").type == pa.int32()
    category_type = table.schema.field("category").type
    assert category_type == pa.string() or (
        pa.types.is_dictionary(category_type) and category_type.value_type == pa.string()
    )
    assert table.to_pydict() == {
        "doc": [0, 0, 2],
        "start": [0, 4, 0],
        "end": [3, 8, 4],
        "pattern": [1, 0, 0],
        "category": ["hesitate", "backtrack", "backtrack"],
    }


def test_count_categories_columns_and_sums():
    patterns = [
        Pattern("wait", "backtrack"),
        Pattern("hmm", "hesitate"),
        Pattern("check", "verify"),
        Pattern("so", "mood"),
        Pattern("hold on", "backtrack"),
    ]
    pattern_set = PatternSet(patterns, extra_categories=("mood", "unused"))
    assert pattern_set.categories == (*BUILTIN_CATEGORIES, "mood", "unused")
    table = pattern_set.count_categories(["wait, hold on. hmm so so check", "nothing"])
    assert table.column_names == [*BUILTIN_CATEGORIES, "mood", "unused"]
    assert all(column.type == pa.uint32() for column in table.columns)
    assert table.to_pydict() == {
        "branch": [0, 0],
        "backtrack": [2, 0],
        "verify": [1, 0],
        "hesitate": [1, 0],
        "conclude": [0, 0],
        "mood": [2, 0],
        "unused": [0, 0],
    }


# --- errors ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 7, 3.5, ["wait"]])
@pytest.mark.parametrize("method", ["count", "matches", "count_categories"])
def test_non_text_item_raises_type_error_naming_index(method, bad):
    pattern_set = PatternSet([Pattern("wait", "backtrack")])
    texts = ["wait", b"wait", "x", bad, "wait"]
    with pytest.raises(TypeError, match=r"\b3\b"):
        getattr(pattern_set, method)(texts)


def test_null_in_arrow_array_raises_type_error_naming_index():
    pattern_set = PatternSet([Pattern("wait", "backtrack")])
    with pytest.raises(TypeError, match=r"\b2\b"):
        pattern_set.count(pa.array(["wait", "x", None, "y"]))
    chunked = pa.chunked_array([pa.array(["a", "b"]), pa.array(["c", None])])
    with pytest.raises(TypeError, match=r"\b3\b"):
        pattern_set.matches(chunked)


def test_empty_pattern_text_raises_value_error():
    with pytest.raises(ValueError, match="empty"):
        PatternSet([Pattern("", "branch")])
    with pytest.raises(ValueError, match="empty"):
        PatternSet([Pattern(b"", "branch")])
    # In a set given as tuples or dicts, the error names the pattern's position.
    with pytest.raises(ValueError, match=r"pattern #1 \(b?'', 'branch'\): pattern text is empty"):
        PatternSet([("wait", "backtrack"), ("", "branch")])
    with pytest.raises(ValueError, match="pattern #2 .*'Wurd'"):
        PatternSet([("wait", "backtrack"), ("hmm", "hesitate"), {"text": "so", "category": "conclude",
                                                                   "boundary": "Wurd"}])


@pytest.mark.parametrize(
    "mode", [{"case": "upper"}, {"boundary": "both"}, {"anchor": "line"}, {"case": "Sensitive"}]
)
def test_bad_mode_spelling_raises_value_error_naming_pattern(mode):
    with pytest.raises(ValueError, match="recheck"):
        PatternSet([Pattern("recheck", "verify", **mode)])


def test_unknown_category_raises_value_error_naming_pattern():
    with pytest.raises(ValueError, match="recheck"):
        PatternSet([Pattern("wait", "backtrack"), Pattern("recheck", "mood")])


def test_declared_extra_category_gets_its_own_column():
    pattern_set = PatternSet([Pattern("recheck", "mood")], extra_categories=("mood",))
    table = pattern_set.count_categories(["recheck, then recheck"])
    assert table.column("mood").to_pylist() == [2]
    assert table.column("verify").to_pylist() == [0]


@pytest.mark.parametrize("extra", ["progress", "Mood", "1st", "has-dash"])
def test_invalid_extra_category_raises_value_error(extra):
    with pytest.raises(ValueError):
        PatternSet([Pattern("wait", "backtrack")], extra_categories=(extra,))


def test_counts_are_uint32_numpy():
    counts = PatternSet([Pattern("wait", "backtrack")]).count(["wait wait"])
    assert isinstance(counts, np.ndarray)
    assert counts.dtype == np.uint32
