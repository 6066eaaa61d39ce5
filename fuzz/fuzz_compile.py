"""Fuzz compilation: random, often invalid, pattern sets through ``PatternSet``.

Pattern texts are random bytes or str (empty, NUL, invalid UTF-8, lone
surrogates, very long), categories and modes are valid or misspelt, patterns
come as tuples, dicts or ``Pattern`` objects. Building the set must either
succeed or raise ``ValueError``/``TypeError``; a set that builds must then scan
and analyze a text without error (or, past 32 categories, refuse to analyze
with ``ValueError``).

Usage: python fuzz/fuzz_compile.py [CORPUS_DIR] -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

# Imported before instrumenting: their coverage would only add noise.
import numpy  # noqa: F401
import pyarrow  # noqa: F401

with atheris.instrument_imports():
    import cotsieve
    from cotsieve import Pattern, PatternSet
    from inputs import (
        ANCHORS,
        BOUNDARIES,
        BUILTIN_CATEGORIES,
        CASES,
        ENGINES,
        PATTERN_ALPHABET,
        pattern_bytes,
        pick,
    )

CATEGORY_NAMES = BUILTIN_CATEGORIES + ("pivot", "x_1", "progress", "Branch", "", "1st", "a-b", "bränch", "branch ")
MODE_MISSPELLINGS = ("", "Word", "words", "sensitive ", "line-start", "ANY", "none\x00")
NOT_TEXT = (None, 7, 1.5, ["wait"], bytearray(b"wait"))
EXPECTED_ERRORS = (ValueError, TypeError)


def any_text(fdp: atheris.FuzzedDataProvider):
    """Usually a usable pattern text; sometimes empty, undecodable, huge or not text."""
    kind = fdp.ConsumeIntInRange(0, 6)
    if kind == 0:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 12))
    if kind == 1:
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 12))  # may hold lone surrogates
    if kind == 2:
        return pick(fdp, (b"", "", b"\x00", "\x00", b"\xff\xfe", "\udcff", b"\xed\xa0\x80"))
    if kind == 3:
        # Long but over few distinct bytes, so the automaton stays small.
        return pick(fdp, PATTERN_ALPHABET) * fdp.ConsumeIntInRange(1, 8192)
    if kind == 4:
        return pick(fdp, NOT_TEXT)
    return pattern_bytes(fdp)


def any_choice(fdp: atheris.FuzzedDataProvider, valid: tuple) -> object:
    if fdp.ConsumeIntInRange(0, 5):
        return pick(fdp, valid)
    return pick(fdp, MODE_MISSPELLINGS + NOT_TEXT[:2] + (fdp.ConsumeUnicode(4),))


def any_pattern(fdp: atheris.FuzzedDataProvider) -> object:
    fields = {
        "text": any_text(fdp),
        "category": pick(fdp, CATEGORY_NAMES) if fdp.ConsumeIntInRange(0, 7) else fdp.ConsumeUnicode(6),
        "case": any_choice(fdp, CASES),
        "boundary": any_choice(fdp, BOUNDARIES),
        "anchor": any_choice(fdp, ANCHORS),
    }
    form = fdp.ConsumeIntInRange(0, 3)
    if form == 0:
        return tuple(fields.values())[: fdp.ConsumeIntInRange(1, 6)]
    if form == 1:
        return fields
    if form == 2:
        return Pattern(**fields)  # may raise; that is the error under test
    return pick(fdp, NOT_TEXT)


def extra_categories(fdp: atheris.FuzzedDataProvider) -> object:
    kind = fdp.ConsumeIntInRange(0, 4)
    if kind == 0:
        return ()
    if kind == 1:
        return "pivot"  # a single string, not a sequence of names
    if kind == 2:
        return [f"c{i}" for i in range(fdp.ConsumeIntInRange(25, 40))]  # around the 32-category limit
    return [pick(fdp, CATEGORY_NAMES) for _ in range(fdp.ConsumeIntInRange(0, 3))]


def use(ps: PatternSet) -> None:
    """A set that compiled must scan; analyze may only refuse too many categories."""
    text = b"Wait, alternatively: \x00 \xff hmm.\n\nThe answer is \\boxed{7}."
    assert ps.count([text]).shape == (1, len(ps))
    assert ps.matches([text]).num_rows <= len(text)
    try:
        cotsieve.analyze([text], ps)
    except ValueError:
        assert len(ps.categories) > 32, "analyze refused a set with at most 32 categories"


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    try:
        patterns = [any_pattern(fdp) for _ in range(fdp.ConsumeIntInRange(0, 6))]
        extra = extra_categories(fdp)
        engine = pick(fdp, ENGINES) if fdp.ConsumeIntInRange(0, 7) else fdp.ConsumeUnicode(3)
        ps = PatternSet(patterns, extra_categories=extra, engine=engine)
    except EXPECTED_ERRORS:
        return
    use(ps)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
