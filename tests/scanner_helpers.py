"""Shared helpers for the scanner tests: pattern/text generators, conversions
between engine results and reference results, and real-trace loading."""

from __future__ import annotations

import gzip
import io
import json
import os
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import strategies as st

from reference import ANCHORS, BOUNDARIES, CASES, RefPattern, from_library, ref_matches

BUILTIN_CATEGORIES = ("branch", "backtrack", "verify", "hesitate", "conclude")

# Pattern texts chosen to collide: shared prefixes, nesting ("but" inside
# "but wait"), non-ASCII, and non-word bytes at either end.
PATTERN_POOL = [
    "a", "aa", "ab", "but", "but wait", "wait", "wai", "ait", "hmm", "hmm hmm",
    "re-", "-check", "re-check", "check", "double-check", "Wait", "wait,",
    "等", "等等", "é", "café", "**Wait", "*", ". ", ".", "x_1", "_", "1",
    "let me", "Let me check", "\U0001f914", "o\u00e9",
]

# Small alphabet for freshly composed patterns: collisions stay likely.
PATTERN_ALPHABET = ["a", "b", "A", "B", " ", "-", ".", "_", "1", "é", "等", "*"]

TEXT_FRAGMENTS = [
    b".", b"!", b"?", b":", b",", b"*", b"#", b">", b"-", b"_",
    b" ", b"  ", b"\t", b"\n", b"\r", b"\r\n", b"\n\n",
    b"0", b"7", b"42", b"x", b"z", b"B",
    "é".encode(), "É".encode(), "等".encode(), "\U0001f914".encode(),
    b"\x00", b"\xff", b"\xc3", b"\xe7\xad",
]

CASE_CHANGES = [bytes, bytes.lower, bytes.upper, bytes.title, bytes.swapcase]


def random_case(raw: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return st.tuples(raw, st.sampled_from(CASE_CHANGES)).map(lambda pair: pair[1](pair[0]))


composed_pattern_text = st.lists(st.sampled_from(PATTERN_ALPHABET), min_size=1, max_size=5).map(
    lambda chars: "".join(chars).encode()
)

pattern_text = random_case(
    st.one_of(st.sampled_from(PATTERN_POOL).map(str.encode), composed_pattern_text)
)

ref_pattern = st.builds(
    RefPattern,
    text=pattern_text,
    category=st.sampled_from(BUILTIN_CATEGORIES),
    case=st.sampled_from(CASES),
    boundary=st.sampled_from(BOUNDARIES),
    anchor=st.sampled_from(ANCHORS),
)


@st.composite
def pattern_sets(draw, max_size: int = 8) -> list[RefPattern]:
    patterns = draw(st.lists(ref_pattern, min_size=1, max_size=max_size))
    # Re-insert some patterns verbatim so exact duplicates are common.
    for source in draw(st.lists(st.integers(0, max_size), max_size=2)):
        position = draw(st.integers(0, len(patterns)))
        patterns.insert(position, patterns[source % len(patterns)])
    return patterns


def texts_for(patterns: list[RefPattern], max_texts: int = 4) -> st.SearchStrategy[list[bytes]]:
    """Texts built mostly from the set's own pattern texts, so matches are likely."""
    pieces = [p.text for p in patterns] + [t.encode() for t in PATTERN_POOL]
    piece = random_case(st.sampled_from(pieces))
    # A separator after a piece keeps word boundaries satisfiable.
    separated = st.tuples(piece, st.sampled_from(TEXT_FRAGMENTS)).map(b"".join)
    fragment = st.one_of(separated, piece, st.sampled_from(TEXT_FRAGMENTS))
    # Hypothesis keeps plain lists short; an explicit length spreads sizes.
    text = st.integers(0, 40).flatmap(
        lambda n: st.lists(fragment, min_size=n, max_size=n).map(b"".join)
    )
    return st.lists(text, min_size=1, max_size=max_texts)


@st.composite
def scan_cases(draw, max_patterns: int = 8, max_texts: int = 4):
    patterns = draw(pattern_sets(max_patterns))
    texts = draw(texts_for(patterns, max_texts))
    return patterns, texts


# --- engine <-> reference -------------------------------------------------


def to_library(patterns: list[RefPattern]):
    from cotsieve import Pattern

    return [
        Pattern(p.text, p.category, case=p.case, boundary=p.boundary, anchor=p.anchor)
        for p in patterns
    ]


def engines() -> list[str]:
    """Every engine this CPU can run."""
    from cotsieve import _core

    return ["dfa", "prefilter"] if _core.prefilter_available() else ["dfa"]


def build_set(patterns: list[RefPattern], extra_categories=(), engine="auto"):
    from cotsieve import PatternSet

    return PatternSet(to_library(patterns), extra_categories=extra_categories, engine=engine)


def reference_of(pattern_set) -> list[RefPattern]:
    return [from_library(p) for p in pattern_set.patterns]


def engine_spans(table: pa.Table, n_texts: int) -> list[list[tuple[int, int, int]]]:
    """Group the engine's match table into one (start, end, pattern) list per text."""
    per_text: list[list[tuple[int, int, int]]] = [[] for _ in range(n_texts)]
    columns = table.select(["doc", "start", "end", "pattern"]).to_pydict()
    for doc, start, end, index in zip(
        columns["doc"], columns["start"], columns["end"], columns["pattern"]
    ):
        per_text[doc].append((start, end, index))
    return per_text


def reference_spans(texts: list[bytes], patterns: list[RefPattern]):
    return [ref_matches(text, patterns) for text in texts]


def reference_counts(texts: list[bytes], patterns: list[RefPattern]) -> list[list[int]]:
    counts = []
    for spans in reference_spans(texts, patterns):
        row = [0] * len(patterns)
        for _, _, index in spans:
            row[index] += 1
        counts.append(row)
    return counts


def first_difference(got, expected) -> str:
    """Describe the first text where the engine and the reference differ."""
    for doc, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            return f"text {doc}: engine {g} != reference {e}"
    return f"lengths differ: engine {len(got)} texts, reference {len(expected)}"


# --- input forms ---------------------------------------------------------


def as_str_list(texts: list[bytes]) -> list[str]:
    """str texts whose contract encoding gives back the same bytes."""
    return [text.decode("utf-8", "surrogateescape") for text in texts]


def sliced_binary(texts: list[bytes]) -> pa.Array:
    """A BinaryArray view with a non-zero offset into a larger buffer."""
    padded = pa.array([b"wait pad"] + texts + [b"but wait"], type=pa.binary())
    return padded.slice(1, len(texts))


def chunked_binary(texts: list[bytes]) -> pa.ChunkedArray:
    middle = len(texts) // 2
    chunks = [pa.array(texts[:middle], pa.binary()), pa.array(texts[middle:], pa.binary())]
    return pa.chunked_array(chunks, type=pa.binary())


def input_forms(texts: list[bytes]) -> dict[str, object]:
    """Every supported way of passing the same texts."""
    forms: dict[str, object] = {
        "list[bytes]": list(texts),
        "list[str]": as_str_list(texts),
        "binary": pa.array(texts, pa.binary()),
        "large_binary": pa.array(texts, pa.large_binary()),
        "sliced binary": sliced_binary(texts),
        "chunked binary": chunked_binary(texts),
    }
    try:
        decoded = [text.decode("utf-8") for text in texts]
    except UnicodeDecodeError:
        return forms
    forms["string"] = pa.array(decoded, pa.string())
    forms["large_string"] = pa.array(decoded, pa.large_string())
    forms["sliced string"] = pa.array(["x"] + decoded, pa.string()).slice(1)
    return forms


# --- real traces ---------------------------------------------------------


def shared_data_dir() -> Path:
    override = os.environ.get("COTSIEVE_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _open_lines(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    if path.suffix == ".zst":
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(path.open("rb"), closefd=True)
        return io.TextIOWrapper(stream, encoding="utf-8")
    return path.open("r", encoding="utf-8")


def load_traces(name: str, limit: int, stride: int) -> list[str]:
    """Every `stride`-th trace's `text`, up to `limit` of them: a fixed subset
    that spreads across the models a file holds."""
    with _open_lines(shared_data_dir() / name) as lines:
        chosen = islice(lines, 0, None, stride)
        return [json.loads(line)["text"] for line in islice(chosen, limit)]


# --- hand-computed examples of each rule in docs/semantics.md -----------


def pat(text, case="insensitive", boundary="word", anchor="any", category="branch"):
    raw = text.encode() if isinstance(text, str) else text
    return RefPattern(raw, category, case, boundary, anchor)


WAIT_LINE = [pat("wait", anchor="line_start")]
WAIT_SENTENCE = [pat("wait", anchor="sentence_start")]
TIED = [pat("wait"), pat("Wait", case="sensitive"), pat("wait")]

# (id, text, patterns, expected (start, end, pattern index) spans)
RULE_EXAMPLES = [
    ("longest at leftmost start", "but wait", [pat("but"), pat("wait"), pat("but wait")],
     [(0, 8, 2)]),
    ("longest regardless of order", "but wait", [pat("but wait"), pat("but"), pat("wait")],
     [(0, 8, 0)]),
    ("repeated word twice", "hmm hmm", [pat("hmm")], [(0, 3, 0), (4, 7, 0)]),
    ("restart at match end", "aaaa", [pat("aa", boundary="none")], [(0, 2, 0), (2, 4, 0)]),
    ("no overlap", "aaa", [pat("aa", boundary="none")], [(0, 2, 0)]),
    ("short earlier beats long later", "abcdef",
     [pat("bcdef", boundary="none"), pat("ab", boundary="none")], [(0, 2, 1)]),
    ("tie to lowest index", "Wait", TIED, [(0, 4, 0)]),
    ("sensitive first wins its tie", "Wait wait",
     [pat("Wait", case="sensitive"), pat("wait")], [(0, 4, 0), (5, 9, 1)]),
    ("insensitive folds ASCII", "WAIT", [pat("wait")], [(0, 4, 0)]),
    ("sensitive does not fold", "WAIT", [pat("wait", case="sensitive")], []),
    ("no folding outside ASCII", "CAFÉ", [pat("café")], []),
    ("ASCII folds beside non-ASCII", "CAFé", [pat("café")], [(0, 5, 0)]),
    ("CJK is a substring", "我们等等看", [pat("等等")], [(6, 12, 0)]),
    ("wait not inside awaited", "awaited", [pat("wait")], []),
    ("underscore is a word byte", "wait_", [pat("wait")], []),
    ("digit is a word byte", "2wait", [pat("wait")], []),
    ("punctuation is a boundary", "(wait)", [pat("wait")], [(1, 5, 0)]),
    ("boundary none", "awaited", [pat("wait", boundary="none")], [(1, 5, 0)]),
    ("boundary start rejects", "awaits", [pat("wait", boundary="start")], []),
    ("boundary start ignores end", "waits", [pat("wait", boundary="start")], [(0, 4, 0)]),
    ("boundary end ignores start", "await", [pat("wait", boundary="end")], [(1, 5, 0)]),
    ("boundary end rejects", "waits", [pat("wait", boundary="end")], []),
    ("re- at start of re-check", "re-check", [pat("re-")], [(0, 3, 0)]),
    ("re- not in are-", "are-", [pat("re-")], []),
    ("-check end side checked", "re-checked", [pat("-check")], []),
    ("-check start side unchecked", "re-check", [pat("-check")], [(2, 8, 0)]),
    ("non-ASCII neighbours", "éwaité", [pat("wait")], [(2, 6, 0)]),
    ("invalid UTF-8 and NUL neighbours", b"\xffwait\x00", [pat("wait")], [(1, 5, 0)]),
    ("NUL inside a pattern", b"a\x00b", [pat(b"\x00")], [(1, 2, 0)]),
    ("partial UTF-8 is not a match", b"caf\xc3 caf\xc3\xa9", [pat("café")], [(5, 10, 0)]),
    ("line start at offset 0", "wait", WAIT_LINE, [(0, 4, 0)]),
    ("line start after indent", "x\n  wait", WAIT_LINE, [(4, 8, 0)]),
    ("markdown bullet and bold", "- **Wait**", WAIT_LINE, [(4, 8, 0)]),
    ("quote and heading", "> # wait", WAIT_LINE, [(4, 8, 0)]),
    ("mid-line is not line start", "x wait", WAIT_LINE, []),
    ("numbered list is not a prefix", "x\n1. wait", WAIT_LINE, []),
    ("CR is not a line-prefix byte", "x\n\rwait", WAIT_LINE, []),
    ("CRLF line end", "x\r\nwait", WAIT_LINE, [(3, 7, 0)]),
    ("sentence start after '. '", "Done. Wait", WAIT_SENTENCE, [(6, 10, 0)]),
    ("sentence start after ':\\n'", "Note:\nWait", WAIT_SENTENCE, [(6, 10, 0)]),
    ("sentence start after mixed whitespace", "Really?! \t Wait", WAIT_SENTENCE,
     [(11, 15, 0)]),
    ("no sentence start without whitespace", "Done.Wait", WAIT_SENTENCE, []),
    ("comma is no sentence end", "Done, wait", WAIT_SENTENCE, []),
    ("sentence start via line start", "text\n- **Wait**", WAIT_SENTENCE, [(9, 13, 0)]),
    ("sentence start after numbered item", "x\n1. wait", WAIT_SENTENCE, [(5, 9, 0)]),
    ("leading CR alone is no sentence start", "\r wait", WAIT_SENTENCE, []),
    ("occurrence ignores failed neighbours", "aaa", [pat("aa", boundary="end")],
     [(1, 3, 0)]),
    ("later start when longest fails anchor", "x wait now",
     [pat("wait now", anchor="line_start"), pat("now")], [(7, 10, 1)]),
    ("empty text", "", [pat("wait")], []),
]


def rule_params():
    return [
        pytest.param(text.encode() if isinstance(text, str) else text, patterns, expected, id=name)
        for name, text, patterns, expected in RULE_EXAMPLES
    ]
