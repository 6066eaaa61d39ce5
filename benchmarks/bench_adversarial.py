"""``analyze`` on texts built to hit slow paths, at two sizes, every step mode.

Each input is one text of repeated pieces: runs of spaces, LFs and NULs,
``. `` and ``- `` runs, ``ans`` and ``\\b`` (answer and box hints that are
neither), open braces after ``\\boxed{``, ``\\boxed{`` repeated with no
closing brace, answer phrases with and without values, one sentence
repeated, and units that all share repetition's key but not their bytes.
Last, a set of patterns nested a hundred deep counted over a text that
matches them all at every byte.
Synthetic reasoning traces (``cotsieve.testing``) run beside them as the peer.

For each input it prints MB/s at each size with the ``default`` set on one
thread, in the step mode that is slowest at the largest size, and the
ratios of the times from one size to the next: linear work gives about the
ratio of the sizes, quadratic work its square. (From a size that fits the
caches to one that does not, a linear pass can still lose half its speed.)

    python benchmarks/bench_adversarial.py [--megabytes 1 8] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cotsieve  # noqa: E402
import pyarrow as pa  # noqa: E402
from peers import best_seconds  # noqa: E402


def units_sharing_a_key(n: int) -> list[bytes]:
    """Distinct 40-byte units with one length and the same first, middle and
    last eight bytes: all share repetition's key and differ elsewhere."""
    return [b"A" * 8 + b"%08x" % k + b"M" * 8 + b"%08x" % (k * 7919) + b"Z" * 8 for k in range(n)]


def prose() -> bytes:
    """Synthetic reasoning traces, the shipped generator's."""
    from cotsieve.testing import generate_traces

    return b"\n\n".join(r["text"].encode() for r in generate_traces(200))


def repeated(piece: bytes) -> Callable[[int], bytes]:
    """A text of `size` bytes made of `piece` over and over."""
    return lambda size: (piece * (size // len(piece) + 1))[:size]


# Each input: its name, and how to make a text of about `size` bytes.
INPUTS: dict[str, Callable[[int], bytes]] = {
    "spaces": repeated(b" "),
    "LFs": repeated(b"\n"),
    "NULs": repeated(b"\0"),
    "'. '": repeated(b". "),
    "'- '": repeated(b"- "),
    "'ans'": repeated(b"ans "),
    "'\\b'": repeated(b"\\b"),
    "braces after \\boxed{": lambda size: b"\\boxed{" + b"{" * size,
    "unclosed \\boxed{": repeated(b"\\boxed{1 "),
    "answer phrases": repeated(b"The answer is 7. final answer: "),
    "one sentence repeated": repeated(b"Let me compute the sum of the first ten terms again. "),
    "units sharing a key": lambda size: b"\n".join(units_sharing_a_key(size // 41)),
    "prose": lambda size: repeated(prose())(size),
}


# A set whose patterns nest inside each other, "a" to "a" * 100, over a text
# of "a": every byte ends a hundred candidates, and the resolver must keep
# its work per byte bounded by the patterns, not by how many it holds.
NESTED_DEPTH = 100


def nested_patterns() -> cotsieve.PatternSet:
    return cotsieve.PatternSet([cotsieve.Pattern("a" * k, "verify", boundary="none")
                                for k in range(1, NESTED_DEPTH + 1)])


def seconds(text: pa.Array, patterns: cotsieve.PatternSet, mode: str, repeat: int) -> float:
    return best_seconds(lambda: cotsieve.analyze(text, patterns, steps=mode, threads=1), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=float, nargs="+", default=[1.0, 8.0], help="text sizes, ascending")
    parser.add_argument("--repeat", type=int, default=3, help="timed repetitions; the best is kept")
    args = parser.parse_args()
    sizes = [int(mb * 1e6) for mb in args.megabytes]
    patterns = cotsieve.PatternSet.load("default")
    mb = " / ".join(f"{n / 1e6:g}" for n in sizes)
    steps = " / ".join(f"{b / a:g}" for a, b in zip(sizes, sizes[1:]))
    print(f"default set, one thread; MB/s at {mb} MB, in the mode slowest at the largest size")
    print(f"| input | slowest mode | MB/s | time ratios (linear: {steps}) |")
    print("|---|---|---:|---:|")
    for name, make in INPUTS.items():
        # Arrow arrays made once, so that the copy of a list of bytes is not timed.
        texts = [pa.array([make(n)], pa.large_binary()) for n in sizes]
        mode = max(cotsieve.STEP_MODES, key=lambda m: seconds(texts[-1], patterns, m, 1))
        times = [seconds(t, patterns, mode, args.repeat) for t in texts]
        rates = " / ".join(f"{n / 1e6 / t:,.0f}" for n, t in zip(sizes, times))
        ratios = " / ".join(f"{b / a:.1f}" for a, b in zip(times, times[1:]))
        print(f"| {name} | {mode} | {rates} | {ratios} |")
    nested = nested_patterns()
    texts = [pa.array([b"a" * n], pa.large_binary()) for n in sizes]
    times = [best_seconds(lambda t=t: nested.count(t, threads=1), args.repeat) for t in texts]
    rates = " / ".join(f"{n / 1e6 / t:,.2f}" for n, t in zip(sizes, times))
    ratios = " / ".join(f"{b / a:.1f}" for a, b in zip(times, times[1:]))
    print(f"\npatterns 'a' to 'a' * {NESTED_DEPTH} over 'a', count, one thread: MB/s {rates}, "
          f"time ratios {ratios}")


if __name__ == "__main__":
    main()
