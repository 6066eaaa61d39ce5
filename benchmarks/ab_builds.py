"""Time two or more builds of cotsieve against each other, in turns.

A change to the engine is judged against the build before it on the same
machine in the same minutes: each round runs every build once, in a fresh
process with that build first on ``PYTHONPATH``, so a shared machine's
changes of speed touch every build alike. Each process times, on the real
traces (``../shared/data``), ``count`` and ``analyze`` with the ``default``
set and ``analyze`` with no patterns (the work ``count`` does not do), one
thread, best of ``--repeat``.

    pip install --no-build-isolation --no-deps --target /tmp/before .   # on the old commit
    pip install --no-build-isolation --no-deps --target /tmp/after .    # on the new one
    python benchmarks/ab_builds.py /tmp/before /tmp/after --rounds 3

Prints one line per build and round: milliseconds for each of the three.
``COTSIEVE_SIMD`` in the environment passes on to every process.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parent

CHILD = """
import sys
sys.path.insert(0, {folder!r})
import pyarrow as pa, cotsieve
from peers import best_seconds_interleaved, real_traces
texts = pa.array(real_traces(), pa.large_binary())
default, none = cotsieve.PatternSet.load("default"), cotsieve.PatternSet([])
best = best_seconds_interleaved({{
    "count": lambda: default.count(texts, threads=1),
    "analyze": lambda: cotsieve.analyze(texts, default, threads=1),
    "no patterns": lambda: cotsieve.analyze(texts, none, threads=1),
}}, {repeat})
print("  ".join(f"{{name}} {{seconds * 1e3:.1f}} ms" for name, seconds in best.items()),
      f"({{cotsieve.simd_level()}}, {{sum(len(t) for t in real_traces()) / 1e6:.1f}} MB)")
"""


def run_build(build: str, repeat: int) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [build, os.environ.get("PYTHONPATH")]))}
    code = CHILD.format(folder=str(FOLDER), repeat=repeat)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{build}: the timing process failed:\n{result.stderr[-2000:]}")
    return result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="+", help="folders holding an installed cotsieve (pip install --target)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=15, help="runs per timing within one process")
    args = parser.parse_args()
    for build in args.builds:
        if not (Path(build) / "cotsieve").is_dir():
            sys.exit(f"{build}: no cotsieve package inside (install one with pip install --target {build} .)")
    for round_number in range(1, args.rounds + 1):
        for build in args.builds:
            print(f"round {round_number}  {build}:  {run_build(build, args.repeat)}", flush=True)


if __name__ == "__main__":
    main()
