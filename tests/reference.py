"""Pure-Python reference for the scanner's matching semantics.

This module restates docs/semantics.md as directly as possible, with no regard
for speed, so that the native engine can be checked against it. It is written
independently of the engine: only the documented contract is used.

Everything works on bytes. Positions are byte offsets.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

WORD_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
WHITESPACE = frozenset(b" \t\r\n")
LINE_PREFIX = frozenset(b" \t*#>-")
SENTENCE_END = frozenset(b".!?:")
LF = 0x0A

CASES = ("insensitive", "sensitive")
BOUNDARIES = ("word", "start", "end", "none")
ANCHORS = ("any", "line_start", "sentence_start")


@dataclass(frozen=True)
class RefPattern:
    text: bytes
    category: str
    case: str = "insensitive"
    boundary: str = "word"
    anchor: str = "any"

    def __post_init__(self) -> None:
        if not isinstance(self.text, bytes) or not self.text:
            raise ValueError(f"pattern text must be non-empty bytes: {self.text!r}")
        if self.case not in CASES:
            raise ValueError(f"bad case {self.case!r}")
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"bad boundary {self.boundary!r}")
        if self.anchor not in ANCHORS:
            raise ValueError(f"bad anchor {self.anchor!r}")


def encode_text(text: str | bytes) -> bytes:
    """Encode a text the way the contract says the engine does."""
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def from_library(pattern) -> RefPattern:
    """Convert a `cotsieve.Pattern` (duck-typed) to a RefPattern."""
    return RefPattern(
        text=encode_text(pattern.text),
        category=pattern.category,
        case=pattern.case,
        boundary=pattern.boundary,
        anchor=pattern.anchor,
    )


def is_word_byte(byte: int) -> bool:
    return byte in WORD_BYTES


def start_side_ok(text: bytes, start: int, pattern: RefPattern) -> bool:
    checked = pattern.boundary in ("word", "start") and is_word_byte(pattern.text[0])
    if not checked or start == 0:
        return True
    return not is_word_byte(text[start - 1])


def end_side_ok(text: bytes, end: int, pattern: RefPattern) -> bool:
    checked = pattern.boundary in ("word", "end") and is_word_byte(pattern.text[-1])
    if not checked or end == len(text):
        return True
    return not is_word_byte(text[end])


def run_start(text: bytes, end: int, members: frozenset[int]) -> int:
    """The first offset of the run of `members` bytes that ends just before `end`."""
    # Stripped in windows that double, rather than walked back byte by byte:
    # a pattern of spaces occurs at every offset of a long run of spaces,
    # and a Python walk from each occurrence to the run's start was too slow.
    strip, window = bytes(sorted(members)), 64
    while True:
        begin = max(0, end - window)
        kept = text[begin:end].rstrip(strip)
        if kept or begin == 0:
            return begin + len(kept)
        window *= 2


def at_line_start(text: bytes, start: int) -> bool:
    """Only line-prefix bytes lie between the previous LF (or offset 0) and start."""
    pos = run_start(text, start, LINE_PREFIX)
    return pos == 0 or text[pos - 1] == ord("\n")


def after_sentence_end(text: bytes, start: int) -> bool:
    """At least one whitespace byte, then (going back) a sentence-end byte."""
    pos = run_start(text, start, WHITESPACE)
    skipped_whitespace = pos < start
    return skipped_whitespace and pos > 0 and text[pos - 1] in SENTENCE_END


def anchor_ok(text: bytes, start: int, pattern: RefPattern) -> bool:
    if pattern.anchor == "any":
        return True
    if pattern.anchor == "line_start":
        return at_line_start(text, start)
    return at_line_start(text, start) or after_sentence_end(text, start)


# Cached: sets of thousands of patterns are rescanned over many texts.
@functools.lru_cache(maxsize=1 << 16)
def literal_regex(pattern: RefPattern) -> re.Pattern[bytes]:
    # For bytes regexes, IGNORECASE folds ASCII letters only, which is
    # exactly the contract's case folding.
    flags = re.IGNORECASE if pattern.case == "insensitive" else 0
    return re.compile(re.escape(pattern.text), flags)


def literal_starts(text: bytes, regex: re.Pattern[bytes]) -> list[int]:
    """Every start where the literal equals the text, overlapping ones included."""
    starts = []
    found = regex.search(text)
    while found is not None:
        starts.append(found.start())
        found = regex.search(text, found.start() + 1)
    return starts


def occurrences(text: bytes, patterns: list[RefPattern]) -> list[tuple[int, int, int]]:
    """All (start, end, index) where a pattern occurs, ignoring other matches."""
    found = []
    for index, pattern in enumerate(patterns):
        for start in literal_starts(text, literal_regex(pattern)):
            end = start + len(pattern.text)
            if (
                start_side_ok(text, start, pattern)
                and end_side_ok(text, end, pattern)
                and anchor_ok(text, start, pattern)
            ):
                found.append((start, end, index))
    return found


def ref_matches(text: bytes, patterns: list[RefPattern]) -> list[tuple[int, int, int]]:
    """Leftmost-longest non-overlapping matches, ties to the lowest index."""
    # Sorted by start, then longest first, then lowest index: the first
    # occurrence at or after the current offset is the one the rule picks.
    preferred = sorted(occurrences(text, patterns), key=lambda o: (o[0], o[0] - o[1], o[2]))
    chosen = []
    offset = 0
    for start, end, index in preferred:
        if start >= offset:
            chosen.append((start, end, index))
            offset = end
    return chosen


def ref_count(text: bytes, patterns: list[RefPattern]) -> list[int]:
    counts = [0] * len(patterns)
    for _, _, index in ref_matches(text, patterns):
        counts[index] += 1
    return counts
