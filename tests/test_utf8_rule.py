"""One str-to-UTF-8 rule: every entry point accepts the same strings, lone
surrogates included, and reads them as the bytes ``cotsieve._texts.utf8``
gives."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

cotsieve = pytest.importorskip("cotsieve")
from cotsieve import Analyzer, PatternSet  # noqa: E402
from cotsieve._texts import utf8  # noqa: E402

PATTERNS = PatternSet([("wait", "backtrack"), ("hmm", "hesitate"), ("é", "verify")])
ANALYZER = Analyzer(PATTERNS, "sentence")

PIECES = st.sampled_from(["\ud800", "\udc80", "\udcff", "\udfff", " Wait", "Hmm.", "\n\n", "é", "€", "\U0001f600"])
# st.characters leaves surrogates out; the pieces put them (and markers) in.
TEXTS = st.lists(st.one_of(st.characters(), PIECES), max_size=40).map("".join)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a Wait", b"a Wait"),
        ("a\udcff Wait", b"a\xff Wait"),  # surrogateescape: the byte it stands for
        ("a\ud800 Wait", b"a\xed\xa0\x80 Wait"),  # surrogatepass: no other way to keep it
        ("\udcff\ud800", b"\xed\xb3\xbf\xed\xa0\x80"),  # one rule for the whole string
        (b"\xff Wait", b"\xff Wait"),
    ],
)
def test_the_rule(text, expected):
    assert utf8(text) == expected


def entry_points(text):
    """What each entry point makes of one text, in comparable form."""
    return {
        "count": PATTERNS.count([text]).tolist(),
        "count_categories": PATTERNS.count_categories([text]).to_pylist(),
        "matches": PATTERNS.matches([text]).to_pylist(),
        "analyze": ANALYZER.analyze([text]).to_pylist(),
        "segments": ANALYZER.segments([text]).to_pylist(),
        "segment": ANALYZER.segment(text),
        "convenience segment": cotsieve.segment(text, PATTERNS, "sentence"),
    }


@settings(max_examples=150, deadline=None)
@given(TEXTS)
def test_every_entry_point_reads_a_str_as_its_utf8_bytes(text):
    data = utf8(text)
    assert entry_points(text) == entry_points(data)
    arrow = pa.array([data], pa.binary())
    assert ANALYZER.analyze(arrow).equals(ANALYZER.analyze([text]))
    assert ANALYZER.segments(arrow).equals(ANALYZER.segments([text]))
