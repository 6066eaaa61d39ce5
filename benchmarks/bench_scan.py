"""Scanner and analyzer throughput against peers, measured in one run.

Usage:
    python benchmarks/bench_scan.py                 # real traces in ../shared/data
    python benchmarks/bench_scan.py --sample        # the synthetic sample shipped with the package
    python benchmarks/bench_scan.py --patterns nowait --repeat 5
    python benchmarks/bench_scan.py --cpu-time      # one-thread rows by CPU time (a busy shared machine)

Prints one table: MB/s of UTF-8 text for cotsieve (each engine, one thread and
all threads; count and analyze) and for each peer (peers.py says what each
does), plus each row's speed as a multiple of Python ``re`` and of native
Hyperscan (the C++ driver in native/, counting every match with a counting
callback; it needs ``libhyperscan-dev`` and a C++ compiler, and its rows are
skipped with a message without them). Then a table per shipped pattern set,
each engine against native Hyperscan, and the goal lines. Peers slower than
50 MB/s run on a prefix of the corpus so the run stays short; throughput is
per byte, so the rate is comparable. The other rows are timed in turns, one
run of each per round, so that the VM's speed changes touch all of them
alike. The polars and duckdb rows need ``pip install polars duckdb``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cotsieve  # noqa: E402
from peers import (PEERS, NativeHyperscan, best_seconds_interleaved, native_hyperscan_scan,  # noqa: E402
                   real_traces, sample_traces)

SLOW_PEER_BYTES = 8 * 1024 * 1024
Clock = Callable[[], float]

NO_PATTERNS = "cotsieve analyze, no patterns (1 thread)"
NATIVE_HS = "native hyperscan (all matches, counting callback)"
NATIVE_HS_EXACT = "native hyperscan + leftmost-longest (cotsieve's counts)"
# Goals of issue 23, against native Hyperscan's throughput on one thread.
COUNT_GOAL = 1.5    # cotsieve count, engine="auto", every shipped set
ANALYZE_GOAL = 1.3  # cotsieve analyze (every metric), `default`


def prefix(texts: list[bytes], limit: int) -> list[bytes]:
    out, total = [], 0
    for t in texts:
        if total >= limit:
            break
        out.append(t)
        total += len(t)
    return out


def engines() -> list[str]:
    return ["dfa", "prefilter"] if cotsieve._core.prefilter_available() else ["dfa"]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def goal_line(what: str, ratio: float | None, goal: float) -> str:
    if ratio is None:
        return f"goal {what} >= {goal}x native hyperscan: not measured (no native hyperscan row)"
    return f"goal {what} >= {goal}x native hyperscan: {'met' if ratio >= goal else 'NOT met'} ({ratio:.2f}x)"


def native_hyperscan(ps: cotsieve.PatternSet) -> NativeHyperscan | None:
    try:
        return native_hyperscan_scan(ps)
    except ImportError as err:
        print(f"skipping native hyperscan: {err}", file=sys.stderr)
        return None


def measure_sets(texts: list[bytes], repeat: int, clock: Clock) -> None:
    """Count on every shipped set, one thread, each engine and native
    Hyperscan, in turns: where auto's choice comes from, and the count goal."""
    arrow = pa.array(texts, pa.large_binary())
    nbytes = sum(map(len, texts))
    print("\n| pattern set | patterns | auto picks | " + " | ".join(f"{e} MB/s" for e in engines())
          + " | native hyperscan MB/s | auto / native hyperscan |")
    print("|---|---:|---|" + "---:|" * (len(engines()) + 2))
    goals = []
    for name in cotsieve.PatternSet.available():
        base = cotsieve.PatternSet.load(name)
        timed: dict[str, Callable[[], object]] = {}
        for engine in engines():
            ps = cotsieve.PatternSet(base.patterns, extra_categories=base.categories[5:], engine=engine)
            timed[engine] = partial(ps.count, arrow, threads=1)
        hs = native_hyperscan(base)
        if hs is not None:
            timed[NATIVE_HS] = partial(hs, texts)
        rates = {row: nbytes / secs / 1e6 for row, secs in best_seconds_interleaved(timed, repeat, clock).items()}
        hs_rate = rates.get(NATIVE_HS)
        ratio = rates[base.engine] / hs_rate if hs_rate else None
        print(f"| {name} | {len(base)} | {base.engine} | " + " | ".join(f"{rates[e]:,.0f}" for e in engines())
              + (f" | {hs_rate:,.0f} | {ratio:.2f}× |" if hs_rate and ratio else " | - | - |"))
        goals.append(goal_line(f"count on {name!r} (auto, 1 thread)", ratio, COUNT_GOAL))
    print("\n" + "\n".join(goals))


def measure(texts: list[bytes], patterns: str, repeat: int, clock: Clock) -> list[tuple[str, float, int]]:
    """Rows of (name, MB/s, bytes measured). The rows that run on the whole
    corpus are timed in turns (``best_seconds_interleaved``); peers slower
    than 50 MB/s run once, on a prefix. Timed by CPU time, only the
    one-thread rows are measured."""
    arrow = pa.array(texts, pa.large_binary())
    nbytes = sum(map(len, texts))
    threads = 1 if clock is time.process_time else os.cpu_count() or 1
    timed: dict[str, Callable[[], object]] = {}
    for engine in engines():
        ps = cotsieve.PatternSet(cotsieve.PatternSet.load(patterns).patterns, engine=engine)
        for n in sorted({1, threads}):
            timed[f"cotsieve count ({engine}, {n} thread{'s' * (n > 1)})"] = partial(ps.count, arrow, threads=n)
    ps = cotsieve.PatternSet.load(patterns)
    for n in sorted({1, threads}):
        timed[f"cotsieve analyze ({ps.engine}, {n} thread{'s' * (n > 1)})"] = partial(cotsieve.analyze, arrow, ps,
                                                                                   threads=n)
    # With no patterns the pass still segments, hashes units, finds answers
    # and writes every metric: the part of analyze's time that count lacks.
    timed[NO_PATTERNS] = partial(cotsieve.analyze, arrow, cotsieve.PatternSet([]), threads=1)
    slow_rows = []
    exact: NativeHyperscan | None = None
    for name, make in PEERS.items():
        try:
            scan = make(ps)
        except ImportError as err:
            print(f"skipping {name}: {err}", file=sys.stderr)
            continue
        probe = prefix(texts, 1024 * 1024)
        rate = sum(map(len, probe)) / best_seconds_interleaved({name: partial(scan, probe)}, 1, clock)[name] / 1e6
        if rate >= 50:
            timed[name] = partial(scan, texts)
        else:
            subset = prefix(texts, SLOW_PEER_BYTES)
            size = sum(map(len, subset))
            seconds_subset = best_seconds_interleaved({name: partial(scan, subset)}, 1, clock)[name]
            slow_rows.append((name, size / seconds_subset / 1e6, size))
        if isinstance(scan, NativeHyperscan) and name == NATIVE_HS_EXACT:
            exact = scan
    seconds = best_seconds_interleaved(timed, repeat, clock)
    if exact is not None:
        ours = int(ps.count(arrow, threads=1).sum())
        print(f"{NATIVE_HS_EXACT} found {exact.matches:,} matches, cotsieve {ours:,}: "
              + ("the same" if exact.matches == ours else "DIFFERENT"))
    rows = [(name, nbytes / secs / 1e6, nbytes) for name, secs in seconds.items()]
    return rows + slow_rows


def print_table(rows: list[tuple[str, float, int]]) -> None:
    ref = {name: rate for name, rate, _ in rows}
    re_rate, hs_rate = ref.get("python re"), ref.get(NATIVE_HS)
    print("| engine | MB/s | vs re | vs native hyperscan | MB measured |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, size in rows:
        vs_re = f"{rate / re_rate:.0f}×" if re_rate else "-"
        vs_hs = f"{rate / hs_rate:.2f}×" if hs_rate else "-"
        shown = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2f}"
        print(f"| {name} | {shown} | {vs_re} | {vs_hs} | {size / 1e6:.1f} |")


def print_analyze_overhead(rows: list[tuple[str, float, int]]) -> None:
    rate = {name: r for name, r, _ in rows}
    for name, r in rate.items():
        if name.startswith("cotsieve analyze ("):
            engine_threads = name[len("cotsieve analyze "):]
            count = rate.get(f"cotsieve count {engine_threads}")
            if count:
                print(f"analyze takes {count / r:.2f}x the time of count {engine_threads}")
    count, alone = rate.get("cotsieve count (dfa, 1 thread)"), rate.get(NO_PATTERNS)
    if count and alone:
        print(f"steps, units, answers and metrics alone ({NO_PATTERNS}) take {count / alone:.2f}x "
              "the time of count (dfa, 1 thread)")


def print_analyze_goal(rows: list[tuple[str, float, int]], patterns: str) -> None:
    rate = {name: r for name, r, _ in rows}
    analyze = next((r for name, r in rate.items() if name.startswith("cotsieve analyze (") and "1 thread" in name), None)
    hs = rate.get(NATIVE_HS)
    ratio = analyze / hs if analyze and hs else None
    print(goal_line(f"analyze (every metric, 1 thread) on {patterns!r}", ratio, ANALYZE_GOAL))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", action="store_true", help="use the shipped synthetic sample corpus")
    parser.add_argument("--patterns", default="default", help="shipped pattern set name or TOML path")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is kept")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time rows by CPU time, not wall time (less disturbed by other work on a shared "
                             "machine); only one-thread rows are measured")
    args = parser.parse_args()
    clock: Clock = time.process_time if args.cpu_time else time.perf_counter
    texts = sample_traces() if args.sample else real_traces()
    if not texts:
        sys.exit("no traces found (is ../shared/data present? try --sample)")
    print(f"{len(texts):,} traces, {sum(map(len, texts)) / 1e6:.1f} MB, pattern set {args.patterns!r}, "
          f"{os.cpu_count()} CPUs, {cpu_model()}, "
          f"vector path: {cotsieve.simd_level()} (cap it with COTSIEVE_SIMD=avx2 or none), "
          f"prefilter available: {cotsieve._core.prefilter_available()}, "
          f"timed by {'CPU' if args.cpu_time else 'wall'} time, best of {args.repeat} in turns")
    rows = measure(texts, args.patterns, args.repeat, clock)
    print_table(rows)
    print_analyze_overhead(rows)
    print_analyze_goal(rows, args.patterns)
    measure_sets(texts, args.repeat, clock)


if __name__ == "__main__":
    main()
