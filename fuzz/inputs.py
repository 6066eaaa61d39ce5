"""Decode fuzzer bytes into pattern sets and texts for the harnesses.

The pieces are chosen to collide: shared prefixes, patterns nested in other
patterns, word and non-word bytes at pattern ends, anchors' line prefixes and
sentence ends, answer openers, NUL and invalid UTF-8. Texts are built mostly
from the set's own pattern texts so that matches are common.
"""

from __future__ import annotations

import atheris
import pyarrow as pa
from cotsieve import _core

BUILTIN_CATEGORIES = ("branch", "backtrack", "verify", "hesitate", "conclude")
EXTRA_CATEGORIES = ("pivot", "x_1")
CASES = ("insensitive", "sensitive")
BOUNDARIES = ("word", "start", "end", "none")
ANCHORS = ("any", "line_start", "sentence_start")
ENGINES = ("auto", "dfa", "prefilter")

PATTERN_WORDS = [
    b"a", b"aa", b"ab", b"but", b"but wait", b"wait", b"wai", b"ait", b"hmm", b"hmm hmm",
    b"re-", b"-check", b"re-check", b"check", b"x_1", b"_", b"1", b". ", b".", b"*",
    b"let me", b"alternatively", b"the answer", b"\\boxed", "等".encode(), "等等".encode(),
    "é".encode(), "café".encode(), "\U0001f914".encode(), b"\x00", b"\xff", b"\xc3",
]
PATTERN_ALPHABET = [b"a", b"b", b"A", b"B", b" ", b"-", b".", b"_", b"1", b"*", "é".encode(), "等".encode()]

TEXT_FRAGMENTS = [
    b".", b"!", b"?", b":", b",", b"*", b"#", b">", b"-", b"_", b"{", b"}", b"\\", b"$",
    b" ", b"  ", b"\t", b"\n", b"\r", b"\r\n", b"\n\n", b"\n \n", b". ", b"- ", b"# ", b"> ",
    b"0", b"7", b"42", b"x", b"z", b"B", b"\x00", b"\x0b", b"\xff", b"\xc3", b"\xe7\xad", b"\x80",
    "é".encode(), "É".encode(), "等".encode(), "\U0001f914".encode(),
    b"\\boxed{", b"\\boxed{7}", b"\\fbox{", b"\\(", b"\\)", b"the answer is ", b"Final answer: ",
    b"Wait, ", b"Alternatively, ", b"Hmm. ", b"So x equals fifteen. ",
]

CASE_CHANGES = [bytes, bytes.lower, bytes.upper, bytes.title, bytes.swapcase]

# Long texts cross the scanner's 4 KiB prefilter batches and 16 KiB DFA
# segments; this bound keeps the pure-Python reference affordable.
MAX_TEXT_BYTES = 48 * 1024


def pick(fdp: atheris.FuzzedDataProvider, choices):
    return choices[fdp.ConsumeIntInRange(0, len(choices) - 1)]


def recased(fdp: atheris.FuzzedDataProvider, raw: bytes) -> bytes:
    return pick(fdp, CASE_CHANGES)(raw)


def pattern_bytes(fdp: atheris.FuzzedDataProvider) -> bytes:
    """A non-empty pattern text: a word, a composition, raw bytes or a long run."""
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        raw = pick(fdp, PATTERN_WORDS)
    elif kind == 1:
        raw = b"".join(pick(fdp, PATTERN_ALPHABET) for _ in range(fdp.ConsumeIntInRange(1, 6)))
    elif kind == 2:
        raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 8)) or b"a"
    else:
        raw = pick(fdp, PATTERN_ALPHABET) * fdp.ConsumeIntInRange(2, 300)
    return recased(fdp, raw)


def pattern_tuple(fdp: atheris.FuzzedDataProvider, categories) -> tuple:
    """A valid ``(text, category, case, boundary, anchor)``."""
    return (
        pattern_bytes(fdp),
        pick(fdp, categories),
        pick(fdp, CASES),
        pick(fdp, BOUNDARIES),
        pick(fdp, ANCHORS),
    )


def pattern_tuples(fdp: atheris.FuzzedDataProvider, max_patterns: int = 10) -> tuple[list[tuple], tuple[str, ...]]:
    """Valid patterns and the extra categories they may use; duplicates are common."""
    extra = EXTRA_CATEGORIES[: fdp.ConsumeIntInRange(0, len(EXTRA_CATEGORIES))]
    categories = BUILTIN_CATEGORIES + extra
    patterns = [pattern_tuple(fdp, categories) for _ in range(fdp.ConsumeIntInRange(0, max_patterns))]
    for _ in range(fdp.ConsumeIntInRange(0, 2)):
        if patterns:
            patterns.insert(fdp.ConsumeIntInRange(0, len(patterns)), pick(fdp, patterns))
    return patterns, extra


def text_bytes(fdp: atheris.FuzzedDataProvider, words: list[bytes]) -> bytes:
    """A text of fragments and the given words, sometimes repeated to be long."""
    pieces = []
    for _ in range(fdp.ConsumeIntInRange(0, 40)):
        kind = fdp.ConsumeIntInRange(0, 3)
        if kind == 0 and words:
            pieces.append(recased(fdp, pick(fdp, words)))
        elif kind == 1:
            pieces.append(pick(fdp, TEXT_FRAGMENTS))
        elif kind == 2:
            pieces.append(fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 6)))
        else:
            pieces.append(recased(fdp, pick(fdp, PATTERN_WORDS)) + pick(fdp, TEXT_FRAGMENTS))
    text = b"".join(pieces)
    if text and fdp.ConsumeIntInRange(0, 7) == 0:
        text *= fdp.ConsumeIntInRange(2, max(2, MAX_TEXT_BYTES // len(text)))
    return text[:MAX_TEXT_BYTES]


def texts(fdp: atheris.FuzzedDataProvider, words: list[bytes], max_texts: int = 4) -> list[bytes]:
    return [text_bytes(fdp, words) for _ in range(fdp.ConsumeIntInRange(0, max_texts))]


def text_container(fdp: atheris.FuzzedDataProvider, items: list[bytes]):
    """The same texts in one of the forms the library accepts; results must not depend on it."""
    form = fdp.ConsumeIntInRange(0, 5)
    if form == 0:
        return items
    if form == 1:
        return [t.decode("utf-8", "surrogateescape") for t in items]
    if form == 2:
        return pa.array(items, pa.binary())
    if form == 3:
        return pa.array(items, pa.large_binary())
    if form == 4:
        # A slice has a non-zero offset into shared buffers.
        padded = [b"<before>"] + items + [b"<after>"]
        return pa.array(padded, pa.binary()).slice(1, len(items))
    cut = fdp.ConsumeIntInRange(0, len(items))
    return pa.chunked_array([pa.array(items[:cut], pa.binary()), pa.array(items[cut:], pa.binary())])


def scan_engines() -> tuple[str, ...]:
    """Every engine this CPU can run; they must agree."""
    return ("dfa", "prefilter") if _core.prefilter_available() else ("dfa",)


def threads(fdp: atheris.FuzzedDataProvider) -> int:
    return fdp.ConsumeIntInRange(1, 4)
