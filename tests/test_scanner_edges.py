"""Edge cases of the scanner: empty inputs, a 100 MB text, 10,000 patterns,
and many Python threads sharing one pattern set."""

import random
import threading

import numpy as np
import pyarrow as pa
import pytest

from reference import ANCHORS, BOUNDARIES, CASES, RefPattern, ref_count
from scanner_helpers import (
    BUILTIN_CATEGORIES,
    PATTERN_POOL,
    TEXT_FRAGMENTS,
    build_set,
    engine_spans,
    first_difference,
    pat,
    reference_spans,
)

cotsieve = pytest.importorskip("cotsieve")

MIXED_SET = [
    pat("wait", category="backtrack"),
    pat("but wait", category="backtrack"),
    pat("hmm", category="hesitate", boundary="none"),
    pat("Wait", case="sensitive", anchor="line_start", category="backtrack"),
    pat("check", anchor="sentence_start", category="verify"),
    pat("re-", boundary="start", category="verify"),
    pat("等等", category="hesitate"),
    pat("alternatively", category="branch", boundary="end"),
    pat(". ", boundary="none", category="conclude"),
    pat("wait", category="backtrack"),
]


def synthetic_text(rng: random.Random, n_fragments: int) -> bytes:
    """Words from the pattern pool mixed with separators and odd bytes."""
    words = [w.encode() for w in PATTERN_POOL] + [b"alternatively", b"answer", b"so"]
    pieces = []
    for _ in range(n_fragments):
        if rng.random() < 0.5:
            word = rng.choice(words)
            pieces.append(word.upper() if rng.random() < 0.2 else word)
        else:
            pieces.append(rng.choice(TEXT_FRAGMENTS))
    return b"".join(pieces)


# --- empty inputs --------------------------------------------------------------


def test_empty_pattern_set():
    pattern_set = cotsieve.PatternSet([])
    assert len(pattern_set) == 0
    texts = ["wait", "", "hmm"]
    counts = pattern_set.count(texts)
    assert counts.shape == (3, 0)
    assert counts.dtype == np.uint32
    assert pattern_set.matches(texts).num_rows == 0
    categories = pattern_set.count_categories(texts)
    assert categories.column_names == list(BUILTIN_CATEGORIES)
    assert categories.to_pydict() == {name: [0, 0, 0] for name in BUILTIN_CATEGORIES}


def test_empty_text_has_zero_counts():
    pattern_set = build_set(MIXED_SET)
    assert pattern_set.count([""]).tolist() == [[0] * len(MIXED_SET)]
    assert pattern_set.count([b""]).tolist() == [[0] * len(MIXED_SET)]
    assert pattern_set.matches([""]).num_rows == 0


@pytest.mark.parametrize(
    "empty", [[], pa.array([], pa.string()), pa.array([], pa.binary()),
              pa.chunked_array([], pa.large_string())],
    ids=["list", "string", "binary", "chunked"],
)
def test_no_texts(empty):
    pattern_set = build_set(MIXED_SET)
    counts = pattern_set.count(empty)
    assert counts.shape == (0, len(MIXED_SET))
    assert counts.dtype == np.uint32
    matches = pattern_set.matches(empty)
    assert matches.num_rows == 0
    assert matches.column_names[:5] == ["doc", "start", "end", "pattern", "category"]
    assert pattern_set.count_categories(empty).num_rows == 0


# --- size --------------------------------------------------------------------------


@pytest.mark.slow
def test_100_mb_text_counts_scale_with_repetitions():
    # The block opens with a non-whitespace byte and ends with LF, so every
    # boundary and anchor condition inside a repeated block sees exactly what
    # it sees in the block alone.
    block = b"Q " + synthetic_text(random.Random(11), 4000) + b"\n"
    repetitions = 100_000_000 // len(block) + 1
    per_block = ref_count(block, MIXED_SET)
    assert sum(per_block) > 0
    counts = build_set(MIXED_SET).count([block * repetitions])
    assert counts.tolist() == [[n * repetitions for n in per_block]]


def random_patterns(rng: random.Random, n: int) -> list[RefPattern]:
    letters = "abcdefghijklmnop"
    patterns = []
    for _ in range(n):
        words = ["".join(rng.choices(letters, k=rng.randint(2, 7))) for _ in range(rng.randint(1, 2))]
        patterns.append(RefPattern(
            " ".join(words).encode(),
            rng.choice(BUILTIN_CATEGORIES),
            rng.choice(CASES),
            rng.choice(BOUNDARIES),
            rng.choice(ANCHORS),
        ))
    return patterns


def texts_from_patterns(rng: random.Random, patterns: list[RefPattern], n_texts: int):
    separators = [b" ", b". ", b"\n", b"-", b"", b", ", b"\n- "]
    texts = []
    for _ in range(n_texts):
        pieces = []
        for _ in range(600):
            word = rng.choice(patterns).text
            pieces.append(word.upper() if rng.random() < 0.3 else word)
            pieces.append(rng.choice(separators))
        texts.append(b"".join(pieces))
    return texts


def test_ten_thousand_patterns_match_reference():
    rng = random.Random(5)
    patterns = random_patterns(rng, 10_000)
    texts = texts_from_patterns(rng, patterns, 4)
    pattern_set = build_set(patterns)
    assert len(pattern_set) == 10_000
    got = engine_spans(pattern_set.matches(texts), len(texts))
    expected = reference_spans(texts, patterns)
    assert sum(map(len, expected)) > 100
    assert got == expected, first_difference(got, expected)


# --- threads -----------------------------------------------------------------------


def test_python_threads_share_one_pattern_set():
    rng = random.Random(3)
    texts = [synthetic_text(rng, rng.randint(0, 3000)) for _ in range(200)]
    pattern_set = build_set(MIXED_SET)
    expected_matches = pattern_set.matches(texts, threads=1)
    expected_counts = pattern_set.count(texts, threads=1)
    assert expected_matches.num_rows > 1000

    results = {}

    def worker(slot: int) -> None:
        runs = [(pattern_set.matches(texts), pattern_set.count(texts, threads=2))
                for _ in range(3)]
        results[slot] = runs

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == list(range(8))
    for runs in results.values():
        for matches, counts in runs:
            assert matches.equals(expected_matches)
            assert np.array_equal(counts, expected_counts)


def test_thread_count_does_not_change_results():
    rng = random.Random(4)
    texts = [synthetic_text(rng, 500) for _ in range(64)]
    pattern_set = build_set(MIXED_SET)
    single = pattern_set.matches(texts, threads=1)
    for threads in (2, 3, 4, 16):
        assert pattern_set.matches(texts, threads=threads).equals(single)
    assert engine_spans(single, len(texts)) == reference_spans(texts, MIXED_SET)


ZERO_COPY_PROBE = """
import resource, sys
import numpy as np, pyarrow as pa
import cotsieve
size = 400 << 20
# Filled piece by piece, so that building it leaves no peak above its own size.
data = np.empty(size, np.uint8)
piece = np.frombuffer(b"Wait, no. Alternatively, x = 2.\\n\\n" * 30000, np.uint8)
for at in range(0, size, len(piece)):
    data[at:at + len(piece)] = piece[:size - at]
offsets = np.arange(0, size + 1, size // 400, dtype=np.int64)
texts = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 400, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
ps = cotsieve.PatternSet.load("default")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
counts = ps.count(texts, threads=2)
metrics = cotsieve.analyze(texts, ps, threads=2)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(int(counts.sum()), metrics.num_rows, grown * 1024)
"""


def test_arrow_texts_are_read_in_place():
    """400 MB of Arrow texts through count and analyze: the peak memory grows
    by a small fraction of that, so the buffers were not copied."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", ZERO_COPY_PROBE], capture_output=True, text=True, check=True)
    total, rows, grown = map(int, done.stdout.split())
    assert total > 0 and rows == 400
    assert grown < (400 << 20) // 4, f"peak memory grew by {grown / 2**20:.0f} MiB for 400 MiB of texts"
