"""Checks of the pure-Python reference on its own, against hand-computed
expectations from docs/semantics.md, so that it is trusted before it is used
to judge the native engine. These run without the engine."""

import pytest

from reference import RefPattern, encode_text, ref_count, ref_matches
from scanner_helpers import TIED, pat, rule_params


@pytest.mark.parametrize(("text", "patterns", "expected"), rule_params())
def test_rule_example(text, patterns, expected):
    assert ref_matches(text, patterns) == expected


def test_counts_credit_only_the_winning_pattern():
    assert ref_count(b"Wait wait", TIED) == [2, 0, 0]
    assert ref_count(b"but wait, but", [pat("but"), pat("but wait")]) == [1, 1]


def test_empty_pattern_list():
    assert ref_count(b"wait", []) == []
    assert ref_matches(b"wait", []) == []


def test_str_encoding_keeps_surrogateescape_bytes():
    raw = b"wait \xff"
    assert encode_text(raw.decode("utf-8", "surrogateescape")) == raw
    assert encode_text("\ud800") == "\ud800".encode("utf-8", "surrogatepass")


@pytest.mark.parametrize(
    "change", [{"text": b""}, {"case": "upper"}, {"boundary": "both"}, {"anchor": "line"}]
)
def test_bad_reference_pattern_rejected(change):
    fields = {"text": b"x", "category": "branch", "case": "insensitive",
              "boundary": "word", "anchor": "any"} | change
    with pytest.raises(ValueError):
        RefPattern(**fields)
