"""The native JSON Lines reader against the per-line Python parser.

The reader decodes the text and the carried fields of each line in the
native engine and hands every line it is not sure of to ``json.loads``. The
per-line parser is the reference: on any block, texts, reasons and fields
must come out exactly as if every line had gone through it.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cotsieve import _core
from jsonl_helpers import FIELDS, both_ways

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                           max_leaves=8)
# Texts with escapes of every kind: quotes, backslashes, controls, non-ASCII,
# astral characters (surrogate pairs when ASCII-escaped) and lone surrogates.
texts = st.lists(st.one_of(st.text(alphabet=st.one_of(st.sampled_from('"\\/\b\f\n\r\t\x00\x1f\x7fé中😀\ud800\udfff'),
                                                     st.characters(codec="utf-8")), max_size=12),
                           st.sampled_from(["<think>", "</think>", "think", ">", "thin>"])), max_size=5).map("".join)


carried = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), texts)


@st.composite
def records(draw) -> dict:
    """Mostly records the native reader takes (a string text, scalar fields),
    with other keys, key orders and value types mixed in."""
    record = {}
    keys = draw(st.permutations(["text", "source", "id", "meta"]))
    for key in keys[:draw(st.integers(1, 4))]:
        if key == "text":
            record[key] = draw(texts) if draw(st.integers(0, 9)) else draw(json_values)
        elif key in FIELDS:
            record[key] = draw(carried) if draw(st.integers(0, 4)) else draw(json_values)
        else:
            record[key] = draw(json_values)
    if draw(st.integers(0, 9)) == 0:
        record[draw(st.sampled_from(["tExt", "te\\u0078t", ""]))] = draw(texts)
    return record


def encode(record: dict, ascii_only: bool, spacing: str) -> bytes:
    separators = ("," + spacing, ":" + spacing)
    text = json.dumps(record, ensure_ascii=ascii_only, separators=separators, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


# Byte-level damage: each turns a good line into one the native reader must
# either decode as Python does or leave to Python.
DAMAGE = [
    lambda b: b,
    lambda b: b"\xef\xbb\xbf" + b,                       # byte-order mark
    lambda b: b[:-1],                                    # cut before the brace
    lambda b: b + b" {}",                                # extra data
    lambda b: b.replace(b"e", b"\xff", 1),               # invalid UTF-8
    lambda b: b.replace(b"e", b"\xed\xa0\x80", 1),       # an encoded surrogate
    lambda b: b.replace(b'"', b'"\\ud83d', 1),           # a lone high surrogate escape
    lambda b: b.replace(b":", b": \t", 1),               # whitespace
    lambda b: b.replace(b",", b",,", 1),                 # a doubled comma
    lambda b: b.replace(b"{", b'{"text": "dup", ', 1),   # a repeated key
    lambda b: b.replace(b"{", b'{"id": -0, ', 1),        # an integer that json.dumps rewrites
    lambda b: b.replace(b"{", b'{"id": 1.50, ', 1),      # a float in a carried field
    lambda b: b.replace(b"{", b'{"id": 0' + b"1" * 5 + b", ", 1),  # a leading zero
    lambda b: b.replace(b"{", b"[", 1),                  # not an object
    lambda b: b"  \t\r",                                 # blank
]

damage = st.one_of(st.just(0), st.integers(0, len(DAMAGE) - 1))  # half the lines undamaged
lines = st.builds(lambda r, a, s, d: DAMAGE[d](encode(r, a, s)) + b"\n",
                  records(), st.booleans(), st.sampled_from(["", " ", "\t "]), damage)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines, min_size=1, max_size=8))
def test_native_reader_equals_the_per_line_parser(block_lines):
    native, reference = both_ways(b"".join(block_lines))
    assert native == reference


@pytest.mark.parametrize("line", [
    b'{"text": "a\\u00e9\\ud83d\\ude00\\n", "source": "s", "id": 12}\n',
    b'{"id": true, "text": "", "source": null}\n',
    b'{"text": "x", "meta": {"a": [1, 2.5e-3, -0.0, NaN, -Infinity, {"b": null}]}}\n',
    b'{"text": "\\"\\\\\\/\\b\\f\\r\\t"}\r\n',
])
def test_clean_lines_take_the_native_path(line):
    """These lines are certain to parse as Python parses them, so no line goes to Python."""
    result = _core.extract_jsonl(line, np.array([0, len(line)], np.int64), ["text", *FIELDS])
    assert result["status"].tolist() == [0]
    native, reference = both_ways(line)
    assert native == reference


@pytest.mark.parametrize("line", [
    b'{"text": 1}\n', b'{"source": "s"}\n', b'\xef\xbb\xbf{"text": "a"}\n', b'{"text": "\\ud800"}\n',
    b'{"te\\u0078t": "a"}\n', b'{"text": "a", "text": "b"}\n', b'{"text": "a", "id": 1.5}\n',
    b'{"text": "a", "id": [1]}\n', b'{"text": "caf\xe9"}\n', b'{"text": "a\x01"}\n', b'{"text": "a"} x\n',
    b'{"text": "a", "id": ' + b"9" * 4301 + b"}\n",
])
def test_doubtful_lines_are_left_to_python(line):
    result = _core.extract_jsonl(line, np.array([0, len(line)], np.int64), ["text", *FIELDS], 4300)
    assert result["status"].tolist() == [2]
    native, reference = both_ways(line)
    assert native == reference


def test_nesting_deeper_than_pythons_limit_is_accepted():
    deep = b'{"text": "Deep.", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
    (texts, reasons, _, _), _ = both_ways(deep)
    assert (texts, reasons) == ([b"Deep."], [None])


def test_bad_offsets_are_refused():
    with pytest.raises(ValueError, match="outside"):
        _core.extract_jsonl(b"{}\n", np.array([0, 9], np.int64), ["text"])
    with pytest.raises(ValueError, match="decrease"):
        _core.extract_jsonl(b"{}\n{}\n", np.array([0, 3, 1], np.int64), ["text"])
    with pytest.raises(ValueError, match="text field"):
        _core.extract_jsonl(b"{}\n", np.array([0, 3], np.int64), [])


@pytest.mark.parametrize("special", [b'\\"', b"\\\\", b"\\n", b"\\u00e9", b"\\ud83d\\ude00", b"\xc3\xa9", b"\x1f", b"\x7f"])
def test_every_offset_of_a_long_string(special):
    """The reader checks UTF-8 32 bytes at a time and skips plain string
    content 16 (SSE2) or eight bytes at a time, taking the first special byte
    from the block's mask; an escape, a multi-byte character or a control
    byte must be seen at any offset of either."""
    lines = [b'{"text": "' + b"x" * k + special + b"y" * (k % 11) + b'"}\n' for k in range(72)]
    block = b"".join(lines)
    offsets = np.cumsum([0] + [len(line) for line in lines]).astype(np.int64)
    status = _core.extract_jsonl(block, offsets, ["text"])["status"].tolist()
    assert status == [2 if special == b"\x1f" else 0] * len(lines)
    native, reference = both_ways(block)
    assert native == reference


def test_a_field_asked_for_twice_is_read_once():
    from cotsieve.io import ReadOptions, TextSpec
    from cotsieve.io.jsonl import _line_offsets, _parse_block_native

    block = b'{"text": "x", "src": "a"}\n'
    offsets = _line_offsets(block)
    raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 1, [None, pa.py_buffer(offsets), pa.py_buffer(block)])
    options = ReadOptions(TextSpec("text"), fields=("src", "src", "text"))
    _, _, fields, _ = _parse_block_native(block, raw, offsets, np.zeros(1, bool), options)
    assert fields.to_pydict() == {"src": ["a"], "text": ["x"]}


def test_escaped_think_tags_are_cut_whatever_the_neighbours(tmp_path):
    """Some serializers escape '>' (Go's encoding/json writes \\u003e): the
    tag is found in the decoded text, not in the raw line."""
    from cotsieve.io import read_corpus

    escaped = b'{"text": "\\u003cthink\\u003eplan\\u003c/think\\u003eanswer"}\n'
    for name, lines in {"alone": [escaped], "beside-a-literal-tag": [escaped, b'{"text": "<think>a</think>b"}\n'],
                        "beside-a-bad-line": [escaped, b"not json\n"]}.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(b"".join(lines))
        texts = [t for chunk in read_corpus(str(path)) for t in chunk.texts.to_pylist()]
        assert texts[0] == b"plan", name


def test_pythons_integer_digit_limit_is_followed():
    line = b'{"text": "a", "meta": [' + b"7" * 1000 + b"]}\n"
    offsets = np.array([0, len(line)], np.int64)
    assert _core.extract_jsonl(line, offsets, ["text"], 0)["status"].tolist() == [0]
    assert _core.extract_jsonl(line, offsets, ["text"], 640)["status"].tolist() == [2]
    if not hasattr(sys, "set_int_max_str_digits"):
        pytest.skip("this Python has no integer digit limit")
    before = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        native, reference = both_ways(line)
    finally:
        sys.set_int_max_str_digits(before)
    assert native == reference
    assert native[1][0].startswith("malformed JSON: Exceeds the limit")


def test_a_strided_buffer_is_refused():
    line = b'{"text": "abc"}\n' * 2
    with pytest.raises(ValueError, match="contiguous"):
        _core.extract_jsonl(memoryview(line)[::-1], np.array([0, 16], np.int64), ["text"])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b.replace(b"a", b"\n")))
def test_line_offsets_match_splitting_on_newlines(block):
    """0, one past each LF, and the end if the last line has no LF."""
    expected = [0]
    for i, byte in enumerate(block):
        if byte == 10:
            expected.append(i + 1)
    if expected[-1] != len(block):
        expected.append(len(block))
    assert _core.line_offsets(block).tolist() == expected
