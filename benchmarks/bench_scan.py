"""Scanner and analyzer throughput against peers, measured in one run.

Usage:
    python benchmarks/bench_scan.py                 # real traces in ../shared/data
    python benchmarks/bench_scan.py --sample        # the synthetic sample shipped with the package
    python benchmarks/bench_scan.py --patterns nowait --repeat 5

Prints one table: MB/s of UTF-8 text for cotsieve (each engine, one thread and
all threads; count and analyze) and for each peer, plus each row's speed as a
multiple of the slowest-to-fastest reference (``vs re``, ``vs hyperscan``).
Peers slower than 50 MB/s run on a prefix of the corpus so the run stays short;
throughput is per byte, so the rate is comparable. The other rows are timed in
turns, one run of each per round, so that the VM's speed changes touch all of
them alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cotsieve  # noqa: E402
from peers import PEERS, best_seconds, best_seconds_interleaved, real_traces, sample_traces  # noqa: E402

SLOW_PEER_BYTES = 8 * 1024 * 1024


NO_PATTERNS = "cotsieve analyze, no patterns (1 thread)"


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


def measure_sets(texts: list[bytes], repeat: int) -> None:
    """Count on every shipped set, one thread, each engine: where auto's threshold comes from."""
    arrow = pa.array(texts, pa.large_binary())
    nbytes = sum(map(len, texts))
    print("\n| pattern set | patterns | auto picks | " + " | ".join(f"{e} MB/s" for e in engines()) + " |")
    print("|---|---:|---|" + "---:|" * len(engines()))
    for name in cotsieve.PatternSet.available():
        base = cotsieve.PatternSet.load(name)
        timed = {}
        for engine in engines():
            ps = cotsieve.PatternSet(base.patterns, extra_categories=base.categories[5:], engine=engine)
            timed[engine] = partial(ps.count, arrow, threads=1)
        rates = [nbytes / secs / 1e6 for secs in best_seconds_interleaved(timed, repeat).values()]
        print(f"| {name} | {len(base)} | {base.engine} | " + " | ".join(f"{r:,.0f}" for r in rates) + " |")


def measure(texts: list[bytes], patterns: str, repeat: int) -> list[tuple[str, float, int]]:
    """Rows of (name, MB/s, bytes measured). The rows that run on the whole
    corpus are timed in turns (``best_seconds_interleaved``); peers slower
    than 50 MB/s run once, on a prefix."""
    arrow = pa.array(texts, pa.large_binary())
    nbytes = sum(map(len, texts))
    threads = os.cpu_count() or 1
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
    for name, make in PEERS.items():
        try:
            scan = make(ps)
        except ImportError as err:
            print(f"skipping {name}: {err}", file=sys.stderr)
            continue
        probe = prefix(texts, 1024 * 1024)
        rate = sum(map(len, probe)) / best_seconds(lambda: scan(probe), 1) / 1e6
        if rate >= 50:
            timed[name] = partial(scan, texts)
        else:
            subset = prefix(texts, SLOW_PEER_BYTES)
            size = sum(map(len, subset))
            slow_rows.append((name, size / best_seconds(lambda: scan(subset), 1) / 1e6, size))
    seconds = best_seconds_interleaved(timed, repeat)
    rows = [(name, nbytes / secs / 1e6, nbytes) for name, secs in seconds.items()]
    return rows + slow_rows


def print_table(rows: list[tuple[str, float, int]]) -> None:
    ref = {name: rate for name, rate, _ in rows}
    re_rate, hs_rate = ref.get("python re"), ref.get("hyperscan")
    print(f"| engine | MB/s | vs re | vs hyperscan | MB measured |")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", action="store_true", help="use the shipped synthetic sample corpus")
    parser.add_argument("--patterns", default="default", help="shipped pattern set name or TOML path")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is kept")
    args = parser.parse_args()
    texts = sample_traces() if args.sample else real_traces()
    if not texts:
        sys.exit("no traces found (is ../shared/data present? try --sample)")
    print(f"{len(texts):,} traces, {sum(map(len, texts)) / 1e6:.1f} MB, pattern set {args.patterns!r}, "
          f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"vector path: {cotsieve.simd_level()} (cap it with COTSIEVE_SIMD=avx2 or none), "
          f"prefilter available: {cotsieve._core.prefilter_available()}")
    rows = measure(texts, args.patterns, args.repeat)
    print_table(rows)
    print_analyze_overhead(rows)
    measure_sets(texts, args.repeat)


if __name__ == "__main__":
    main()
