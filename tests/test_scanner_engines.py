"""Both engines on texts long enough to reach every code path.

Hypothesis texts are short, so they never reach the DFA's lockstep lanes,
its 16 KiB segments (each re-read from a warm-up before its start), or the
prefilter's full 64-byte windows far from a text's ends. These tests build
long texts whose matches straddle those seams and compare with the reference.
"""

import random

import pytest

from reference import RefPattern, ref_matches
from scanner_helpers import build_set, engine_spans, engines

PATTERNS = [
    RefPattern(b"wait", "backtrack", "insensitive", "word", "any"),
    RefPattern(b"but wait", "backtrack", "insensitive", "word", "any"),
    RefPattern(b"alternatively", "branch", "insensitive", "word", "sentence_start"),
    RefPattern(b"Another", "branch", "sensitive", "word", "any"),
    RefPattern(b"hmm", "hesitate", "insensitive", "none", "any"),
    RefPattern("等等".encode(), "backtrack", "insensitive", "word", "any"),
    RefPattern(b"let me check", "verify", "insensitive", "word", "line_start"),
    RefPattern(b"x" * 40, "verify", "insensitive", "none", "any"),
]
FRAGMENTS = [b"wait", b"But wait", b"Alternatively", b"another", b"Another", b"hmmm", "等等".encode(),
             b"let me check", b"- Let me check", b"x" * 45, b". ", b"\n", b"\n\n", b"  ", b"awaited",
             b"the", b"value", b"\xff", b"\x00", b"42", b":", b"_"]


def long_text(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    parts, total = [], 0
    while total < size:
        piece = rng.choice(FRAGMENTS) + rng.choice([b" ", b"", b"\n"])
        parts.append(piece)
        total += len(piece)
    return b"".join(parts)


@pytest.fixture(scope="module")
def texts():
    # Sizes around multiples of 16 KiB and 64 bytes, plus many short ones so
    # the lanes refill mid-run.
    sizes = [16 * 1024 - 3, 16 * 1024 + 5, 3 * 16 * 1024 + 17, 200_000, 64, 65, 127, 1]
    sizes += [random.Random(i).randint(0, 5000) for i in range(40)]
    return [long_text(i, n) for i, n in enumerate(sizes)]


@pytest.mark.parametrize("engine", engines())
def test_long_texts_equal_reference(engine, texts):
    table = build_set(PATTERNS, engine=engine).matches(texts)
    expected = [[(s, e, i) for s, e, i in ref_matches(t, PATTERNS)] for t in texts]
    assert engine_spans(table, len(texts)) == expected


def test_dfa_lane_counts_agree(texts):
    from cotsieve._texts import as_text_batch

    ps = build_set(PATTERNS, engine="dfa")
    batch = as_text_batch(texts)
    baseline = ps._scanner.count(batch, 1, 1)
    for lanes in (2, 4, 8):
        for threads in (1, 3):
            assert (ps._scanner.count(batch, threads, lanes) == baseline).all()


# More than 16 patterns, so the prefilter fills all 16 buckets, the second
# half (buckets 8-15) included: non-ASCII first bytes, short words whose next
# byte must not be a word byte, anchors, and case-sensitive patterns.
MANY_WORDS = [b"wait", b"hmm", b"alternatively", b"check", b"verify", b"maybe", b"perhaps", b"actually",
              b"instead", b"however", b"recheck", b"mistake", b"oops", b"wrong", b"again", b"retry",
              b"suppose", b"so", b"no", "ещё".encode(), "等等".encode(), b"Wait", b"let me", b"or"]
MANY_PATTERNS = [
    RefPattern(word, ["backtrack", "branch", "hesitate", "verify"][i % 4],
               "sensitive" if word[:1].isupper() else "insensitive",
               "word" if i % 3 else "none", ["any", "any", "sentence_start", "line_start"][i % 4])
    for i, word in enumerate(MANY_WORDS)
]
MANY_FRAGMENTS = [*MANY_WORDS, b"WAIT", b"Hmmm", b"sorry", b"order", b"note", b"checked", "ещё раз".encode(),
                  b". ", b"\n", b"- ", b"  ", b"\xff", b"_", b"42"]


def test_many_patterns_fill_every_bucket_and_equal_reference():
    rng = random.Random(7)
    texts = [b"".join(rng.choice(MANY_FRAGMENTS) + rng.choice([b" ", b"", b"\n"]) for _ in range(rng.randint(0, 900)))
             for _ in range(30)]
    expected = [ref_matches(t, MANY_PATTERNS) for t in texts]
    for engine in engines():
        table = build_set(MANY_PATTERNS, engine=engine).matches(texts)
        assert engine_spans(table, len(texts)) == [[tuple(m) for m in e] for e in expected], engine


# Patterns nested forty deep: every end has dozens of candidates, starting
# before the dozens found at earlier ends. The DFA's resolver keeps only the
# longest at each start (a ring of slots, no sorted pile); the matches must
# still be the reference's leftmost-longest ones.
def test_deeply_nested_patterns_equal_reference():
    patterns = [RefPattern(b"a" * k, "verify", boundary="none") for k in range(1, 41)]
    patterns += [RefPattern(b"a" * k + b"b", "branch", boundary="none") for k in (1, 5, 20)]
    rng = random.Random(3)
    texts = [b"a" * 3000, b"a" * 39 + b"b"]
    texts += [b"".join(b"a" * rng.randint(0, 60) + rng.choice([b"b", b" ", b"ab"]) for _ in range(rng.randint(0, 200)))
              for _ in range(20)]
    expected = [[tuple(m) for m in ref_matches(t, patterns)] for t in texts]
    for engine in engines():
        table = build_set(patterns, engine=engine).matches(texts)
        assert engine_spans(table, len(texts)) == expected, engine


# Sets of at most 8 patterns take the AVX2 prefilter's lean kernels: one
# bucket half, no vector word-start test when every pattern that needs one
# is at least 4 bytes long, and raw-byte table lookups when no pattern has a
# byte >= 0x80 in its first 4. Near misses put each pattern's bytes next to
# bytes that share a nibble with them (other case, top bit set, other
# column), after word bytes, and at the texts' ends.
LEAN_SETS = {
    "ascii, long": [RefPattern(b"Perhaps", "branch"), RefPattern(b"Another", "branch", "sensitive"),
                    RefPattern(b"alternatively", "branch", anchor="sentence_start"),
                    RefPattern(b"re-check", "verify", boundary="none")],
    "non-ascii prefix": [RefPattern(b"perhaps", "branch"), RefPattern("ещё раз".encode(), "verify"),
                         RefPattern(b"try again", "backtrack", boundary="end")],
    "short word start": [RefPattern(b"or", "branch"), RefPattern(b"maybe", "branch")],
}


def near_misses(word: bytes) -> list[bytes]:
    out = [word, word.upper(), word.swapcase(), b"super" + word, b"_" + word, b"9" + word, word + b"s"]
    for i in range(min(4, len(word))):
        for flip in (0x80, 0x40, 0x20, 0x10):
            out.append(word[:i] + bytes([word[i] ^ flip]) + word[i + 1:])
    return out


@pytest.mark.parametrize("name", sorted(LEAN_SETS))
def test_small_sets_equal_reference_on_near_misses(name):
    patterns = LEAN_SETS[name]
    fragments = [m for p in patterns for m in near_misses(p.text)] + [b". ", b"\n", b" ", b"\xff", b"\x7f"]
    rng = random.Random(name)
    texts = [b"".join(rng.choice(fragments) + rng.choice([b" ", b"", b"\n", b". "]) for _ in range(rng.randint(0, 400)))
             for _ in range(40)]
    texts += [p.text for p in patterns] + [b"x" + p.text for p in patterns]  # matches at the very end
    expected = [[tuple(m) for m in ref_matches(t, patterns)] for t in texts]
    assert sum(map(len, expected)) > 100  # the texts do hold matches
    for engine in engines():
        table = build_set(patterns, engine=engine).matches(texts)
        assert engine_spans(table, len(texts)) == expected, engine
