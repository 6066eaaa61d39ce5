"""Concurrency: one compiled PatternSet shared by many Python threads.

A PatternSet is documented as thread-safe, with every scan releasing the GIL.
These tests run count, matches, count_categories, analyze and segments from
16 Python threads at once, each with its own native thread count and input
form, and require results identical to a single-threaded run; they check
that a Python thread keeps running while a long native scan is in flight, and
that compiling a set in one thread does not disturb scans in others.
"""

from __future__ import annotations

import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from itertools import product

import numpy as np
import pyarrow as pa
import pytest

cotsieve = pytest.importorskip("cotsieve")
from cotsieve import Pattern, PatternSet

PYTHON_THREADS = 16
NATIVE_THREADS = (1, 2, 4)

SENTENCES = [
    b"Wait, let me check that again. ", b"Alternatively, we could try x = 3.\n",
    b"Hmm. ", b"So the answer is \\boxed{7}.\n\n", b"We compute the sum of both sides. ",
    "等等，也许 ".encode(), b"\xff\x00 ", b"- but wait, no.\n", b"# Verify\n", b"\n\n\n",
]


def trace(rng: random.Random, n_bytes: int) -> bytes:
    pieces, size = [], 0
    while size < n_bytes:
        piece = rng.choice(SENTENCES)
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)


@pytest.fixture(scope="module")
def corpus() -> list[bytes]:
    """Hundreds of short traces, a few long ones (several scan blocks each) and empty ones."""
    rng = random.Random(20240611)
    short = [trace(rng, rng.randrange(0, 3000)) for _ in range(400)]
    long = [trace(rng, n) for n in (1_500_000, 700_000, 300_000)]
    texts = short + long + [b"", b" \n "]
    rng.shuffle(texts)
    return texts


@pytest.fixture(scope="module")
def shared_set() -> PatternSet:
    return PatternSet.load("default")


def as_form(texts: list[bytes], form: str):
    if form == "arrow":
        return pa.array(texts, pa.large_binary())
    return texts


def run_op(ps: PatternSet, op: str, texts, threads: int):
    if op == "count":
        return ps.count(texts, threads=threads)
    if op == "matches":
        return ps.matches(texts, threads=threads)
    if op == "count_categories":
        return ps.count_categories(texts, threads=threads)
    if op == "analyze":
        return cotsieve.analyze(texts, ps, steps="marker", threads=threads)
    return cotsieve.segments(texts, ps, steps="sentence", threads=threads)


OPS = ("count", "matches", "count_categories", "analyze", "segments")


def identical(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return a.equals(b)


def test_shared_pattern_set_matches_single_threaded_results(corpus, shared_set):
    expected = {op: run_op(shared_set, op, corpus, threads=1) for op in OPS}
    tasks = list(product(OPS, NATIVE_THREADS, ("list", "arrow")))
    start_together = threading.Barrier(PYTHON_THREADS)

    def task(index: int):
        # Every worker takes a slice of the tasks, all starting at once so
        # that the calls overlap instead of running one after another.
        start_together.wait()
        return [(op, n, form, run_op(shared_set, op, as_form(corpus, form), n))
                for op, n, form in tasks[index::PYTHON_THREADS]]

    with ThreadPoolExecutor(PYTHON_THREADS) as pool:
        results = [r for batch in pool.map(task, range(PYTHON_THREADS)) for r in batch]

    assert len(results) == len(tasks)
    for op, n, form, got in results:
        assert identical(got, expected[op]), f"{op} with {n} native threads on {form} input differs"


def test_same_call_from_many_threads_at_once(corpus, shared_set):
    # All threads make the very same call, so they hit the same scanner
    # state at the same moments.
    expected = cotsieve.analyze(corpus, shared_set, threads=2)
    start_together = threading.Barrier(PYTHON_THREADS)

    def task(_):
        start_together.wait()
        return cotsieve.analyze(corpus, shared_set, threads=2)

    with ThreadPoolExecutor(PYTHON_THREADS) as pool:
        results = list(pool.map(task, range(PYTHON_THREADS)))
    assert all(r.equals(expected) for r in results)


@pytest.fixture(scope="module")
def long_trace() -> bytes:
    return trace(random.Random(7), 4_000_000)


@contextmanager
def switch_interval(seconds: float):
    old = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


# Steps that show this thread ran Python code while a native call was in flight.
MIN_STEPS = 1000


def python_steps_during(call) -> int:
    """Steps this thread makes, up to MIN_STEPS, while another thread runs `call`.

    The other thread reads the step counter right before and right after the
    call. With a long switch interval a thread keeps the GIL until it blocks
    or releases it, so a call that holds the GIL sees no step in between,
    while one that releases it lets this thread take the GIL and spin. The
    spin stops at MIN_STEPS, so that it does not hold up the Python code that
    follows the native part of the call for a whole switch interval.
    """
    state = {"steps": 0, "done": False}
    seen = []

    def worker():
        before = state["steps"]
        call()
        seen.append(state["steps"] - before)
        state["done"] = True

    with switch_interval(0.5):
        thread = threading.Thread(target=worker)
        thread.start()
        while not state["done"] and state["steps"] < MIN_STEPS:
            state["steps"] += 1
        thread.join()
    return seen[0]


def most_steps_during(call, tries: int = 3) -> int:
    # A busy machine may deschedule this thread for a whole call; a held GIL
    # gives no step on any try.
    best = 0
    for _ in range(tries):
        best = max(best, python_steps_during(call))
        if best >= MIN_STEPS:
            break
    return best


def test_the_gil_probe_sees_a_call_that_holds_the_gil():
    # Builtin sum over a range runs in C without releasing the GIL.
    assert min(python_steps_during(lambda: sum(range(300_000))) for _ in range(3)) < MIN_STEPS


@pytest.mark.parametrize("op", ["count", "matches", "analyze", "segments"])
def test_native_scans_release_the_gil(long_trace, shared_set, op):
    steps = most_steps_during(lambda: run_op(shared_set, op, [long_trace], threads=1))
    assert steps >= MIN_STEPS, f"{op}: the Python thread made {steps} steps while the native scan ran"


def big_pattern_set(seed: int) -> list[Pattern]:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randrange(3, 12))) for _ in range(4000)]
    return [Pattern(w, rng.choice(cotsieve.BUILTIN_CATEGORIES)) for w in words]


def test_compiling_while_other_threads_scan(corpus, shared_set):
    expected = shared_set.count(corpus, threads=1)
    patterns = big_pattern_set(3)
    probe = [b"abc abcd " * 50, b"jihgfed cba"]
    compiled_alone = PatternSet(patterns).count(probe)
    stop = threading.Event()

    def scan_until_stopped():
        scans = 0
        while not stop.is_set() or scans == 0:
            assert identical(shared_set.count(corpus, threads=2), expected)
            scans += 1
        return scans

    def compile_several():
        try:
            return [PatternSet(patterns).count(probe) for _ in range(4)]
        finally:
            stop.set()

    with ThreadPoolExecutor(5) as pool:
        scanners = [pool.submit(scan_until_stopped) for _ in range(4)]
        compiled = pool.submit(compile_several).result()
        assert all(f.result() >= 1 for f in scanners)
    assert all(identical(c, compiled_alone) for c in compiled)
