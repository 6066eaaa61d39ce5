"""Several shards read at once: ``cotsieve filter --shards-at-once``.

One thread inflates each compressed shard (the formats are serial), so the
inflate of one stream is the stage that limits a run once the other stages
have enough cores (``bench_pipeline.py --stages`` prints that model). This
benchmark writes ``--shards`` shards of the real Sky-T1 traces (repeated to
``--shard-mb`` MB of records each) in each ``--compression``, inflates one
shard alone (one thread, the serial stage's rate), then runs the one-pass
and the two-pass filter over the shards with ``--shards-at-once 1`` and
with one per shard, pinned to each of ``--threads`` cores, all in turns for
``--rounds`` rounds.

    python benchmarks/bench_shards.py --threads 1 2 --rounds 2
    python benchmarks/bench_shards.py --compression gzip bz2 --shards 4 --shard-mb 100

gzip inflates at over 1 GB/s on one core, so on a few cores the rest of the
run limits and reading shards at once can only match reading them in order
(both cores are already busy); bz2 inflates at tens of MB/s, so there the
inflate limits even on 2 cores, and reading shards at once is what lifts it.
The two settings give the same metrics and rejected files and the same kept
records (checked here on each pair of runs, once decompressed, and by
``tests/test_shards_at_once.py``).
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from bench_pipeline import RULES, SHARED, best, mb_per_s, repeat_to_size, run_case, run_inflate  # noqa: E402

SUFFIX = {"gzip": ".jsonl.gz", "bz2": ".jsonl.bz2", "zstd": ".jsonl.zst", None: ".jsonl"}


def write_shards(folder: Path, compression: str, shards: int, shard_mb: int) -> Path:
    """``shards`` copies of the real traces, each repeated to ``shard_mb`` MB of records."""
    target = folder / f"shards-{compression}-{shards}x{shard_mb}MB"
    target.mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        repeat_to_size(SHARED / "skythought_sky_t1_outputs.jsonl.gz", target / f"part-{i:03d}{SUFFIX[compression]}",
                       shard_mb << 20, compression)
    return target


def same_outputs(a: Path, b: Path) -> bool:
    """The same metrics and rejected files, and the same kept records (once decompressed)."""
    import pyarrow as pa

    kept = [pa.input_stream(str(next(folder.glob("kept.*"))), compression="detect").read() for folder in (a, b)]
    return kept[0] == kept[1] and all(filecmp.cmp(a / name, b / name, shallow=False)
                                      for name in ("metrics.parquet", "rejected.jsonl"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compression", nargs="+", default=["gzip", "bz2"], choices=[c for c in SUFFIX if c])
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--shard-mb", type=int, default=150, help="MB of records in each shard")
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="cores (and --threads) of each run")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each case, taken in turns (best is shown)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cotsieve-bench")
    args = parser.parse_args()
    if not (SHARED / "skythought_sky_t1_outputs.jsonl.gz").exists():
        sys.exit(f"needs the real traces in {SHARED}")

    console = Console(width=200)
    table = Table(title=f"cotsieve filter over {args.shards} shards of {args.shard_mb} MB, "
                        f"best of {args.rounds} taken in turns")
    for name in ("compression", "rule", "cores", "shards at once", "MB/s", "CPU s", "MB per CPU s",
                 "busiest thread CPU s", "speed-up", "peak RSS MB", "same outputs"):
        table.add_column(name, justify="left" if name == "compression" else "right")
    lanes = (1, args.shards)
    for compression in args.compression:
        folder = write_shards(args.work, compression, args.shards, args.shard_mb)
        runs: dict[tuple[str, int, int], list[dict]] = {
            (mode, cores, n): [] for mode in RULES for cores in args.threads for n in lanes}
        inflates, same = [], {mode: True for mode in RULES}
        for _ in range(args.rounds):
            inflates.append(run_inflate(next(folder.iterdir())))
            for mode, cores, n in runs:
                out = args.work / f"out-{compression}-{mode}-{n}"
                runs[mode, cores, n].append(run_case(folder, RULES[mode], cores, out, ("--shards-at-once", str(n))))
            for mode in RULES:
                same[mode] &= same_outputs(*(args.work / f"out-{compression}-{mode}-{n}" for n in lanes))
        inflate = best(inflates)
        table.add_row(compression, "", "1", "one shard inflated alone", f"{mb_per_s(inflate):,.0f}",
                      f"{inflate['cpu_seconds']:.1f}", f"{inflate['record_bytes'] / 1e6 / inflate['cpu_seconds']:,.0f}",
                      "", "", "", "")
        for mode in reversed(RULES):  # one pass first
            for cores in args.threads:
                alone = mb_per_s(best(runs[mode, cores, 1]))
                for n in lanes:
                    s = best(runs[mode, cores, n])
                    table.add_row(compression, mode, str(cores), str(n), f"{mb_per_s(s):,.0f}",
                                  f"{s['cpu_seconds']:.1f}", f"{s['record_bytes'] / 1e6 / s['cpu_seconds']:,.0f}",
                                  f"{s['busiest_thread_cpu_seconds']:.1f}", f"{mb_per_s(s) / alone:.2f}x",
                                  f"{s['peak_rss_mb']:,.0f}", "yes" if same[mode] else "NO")
    console.print(table)


if __name__ == "__main__":
    main()
