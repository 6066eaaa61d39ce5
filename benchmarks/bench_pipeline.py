"""End-to-end curation throughput and memory.

Measures ``cotsieve filter`` from a compressed JSONL corpus to all outputs (kept
corpus, rejected records, metrics Parquet, summary), in MB/s of uncompressed
record bytes, with the busy time of each stage (read+parse, engine, write;
stages overlap, so they can add up to more than the wall time), the CPU time
(on a shared machine, ``cores x MB per CPU s`` bounds what dedicated cores
would give) and the peak RSS of the process. Each case runs in a fresh subprocess pinned to
``--cores`` CPUs, so its RSS and CPU use are its own.

    python benchmarks/bench_pipeline.py                 # real traces (../shared/data) + synthetic
    python benchmarks/bench_pipeline.py --big           # adds a >= 5 GB corpus: the peak-RSS check
    python benchmarks/bench_pipeline.py --input my.jsonl.gz --cores 2

Each ``.jsonl.gz`` corpus is also run through ``pipeline_peer.py``, the
script a team would write with Hyperscan for a one-threshold filter, in the
same conditions; the second table gives the ratio.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.table import Table

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
RULES = {"two-pass": "drop-top 10% branch_step_ratio", "one-pass": "branch_step_ratio <= 0.3"}


def repeat_to_size(source: Path, target: Path, min_bytes: int, compression: Optional[str]) -> Path:
    """Write the lines of ``source`` again and again into ``target`` until it holds ``min_bytes``."""
    import pyarrow as pa

    if target.exists():
        return target
    data = pa.input_stream(str(source), compression="detect").read()
    if not data.endswith(b"\n"):
        data += b"\n"
    temp = target.with_suffix(".part")
    with pa.output_stream(str(temp), compression=compression) as out:
        for _ in range(-(-min_bytes // len(data))):
            out.write(data)
    temp.rename(target)
    return target


def synthetic(folder: Path, n: int) -> Path:
    from cotsieve.testing import generate_traces, write_jsonl

    path = folder / f"synth-{n}.jsonl.gz"
    if not path.exists():
        write_jsonl(generate_traces(n, seed=1), path)
    return path


def run_case(corpus: Path, rule: str, cores: int, out: Path) -> dict:
    """One measured run of ``cotsieve filter`` (the command line, as users run
    it) in a fresh process; returns its summary.json plus ``peak_rss_mb``."""
    code = f"""
import json, os, resource, sys
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > {cores}:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{cores}])
from cotsieve.cli import main
code = main(["filter", {str(corpus)!r}, "--out", {str(out)!r}, "--where", {rule!r}, "--threads", "{cores}",
             "--on-error", "skip", "--force", "--quiet"])
if code:
    sys.exit(code)
d = json.load(open(os.path.join({str(out)!r}, "summary.json")))
usage = resource.getrusage(resource.RUSAGE_SELF)
d["peak_rss_mb"] = usage.ru_maxrss / 1024
d["cpu_seconds"] = usage.ru_utime + usage.ru_stime
print(json.dumps(d))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


PEER_CODE = """
import json, os, resource, sys
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > {cores}:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{cores}])
sys.path.insert(0, {folder!r})
from pipeline_peer import run
import time
start = time.perf_counter()
d = run(__import__("pathlib").Path({corpus!r}), __import__("pathlib").Path({out!r}), 0.3)
d["seconds"] = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
d["peak_rss_mb"] = usage.ru_maxrss / 1024
print(json.dumps(d))
"""


def run_peer(corpus: Path, cores: int, out: Path) -> dict:
    """The hand-written Hyperscan script (``pipeline_peer.py``) on the same corpus, in a fresh process."""
    code = PEER_CODE.format(cores=cores, folder=str(Path(__file__).parent), corpus=str(corpus), out=str(out))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def row(name: str, mode: str, s: dict) -> list[str]:
    mb = s["record_bytes"] / 1e6
    sec = s["seconds"]
    return [name, mode, f"{s['read']:,}", f"{mb:,.0f}", f"{sec['total']:.1f}", f"{mb / sec['total']:,.0f}",
            f"{s['text_bytes'] / 1e6 / sec['total']:,.0f}", f"{sec['read']:.1f}", f"{sec['engine']:.1f}",
            f"{sec['write']:.1f}", f"{s['cpu_seconds']:.1f}", f"{mb / s['cpu_seconds']:,.0f}",
            f"{s['peak_rss_mb']:,.0f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", action="append", default=[], type=Path, help="corpus to measure (repeatable)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--size-mb", type=int, default=300, help="size the real and synthetic corpora are repeated to")
    parser.add_argument("--big", action="store_true", help="also run a >= 5 GB corpus (peak RSS check)")
    parser.add_argument("--big-gb", type=float, default=5.0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cotsieve-bench")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    cases = [(p.name, p) for p in args.input]
    if not args.input:
        if (SHARED / "skythought_sky_t1_outputs.jsonl.gz").exists():
            real = repeat_to_size(SHARED / "skythought_sky_t1_outputs.jsonl.gz",
                                  args.work / f"sky-t1-x{args.size_mb}MB.jsonl.gz", args.size_mb << 20, "gzip")
            cases.append(("real: sky-t1 (repeated)", real))
        synth = repeat_to_size(synthetic(args.work, 5000), args.work / f"synth-x{args.size_mb}MB.jsonl.gz",
                               args.size_mb << 20, "gzip")
        cases.append(("synthetic (repeated)", synth))
    if args.big:
        big = repeat_to_size(synthetic(args.work, 5000), args.work / f"synth-{args.big_gb:g}GB.jsonl",
                             int(args.big_gb * (1 << 30)), None)
        cases.append((f"big: {big.stat().st_size / 2**30:.1f} GiB plain JSONL", big))

    table = Table(title=f"cotsieve filter, end to end on {args.cores} cores")
    for name in ("corpus", "rule", "traces", "MB", "wall s", "MB/s", "text MB/s", "read+parse s", "engine s",
                 "write s", "CPU s", "MB per CPU s", "peak RSS MB"):
        table.add_column(name, justify="left" if name in ("corpus", "rule") else "right")
    results = []
    for name, corpus in cases:
        for mode, rule in RULES.items():
            summary = run_case(corpus, rule, args.cores, args.work / "out")
            results.append({"corpus": name, "mode": mode, **summary})
            table.add_row(*row(name, mode, summary))
    console = Console(width=180)
    console.print(table)
    peers = Table(title="one-pass filter against the hand-written Hyperscan script (benchmarks/pipeline_peer.py), "
                        "same corpus, same cores")
    for name in ("corpus", "cotsieve MB/s", "peer MB/s", "cotsieve / peer", "peer peak RSS MB"):
        peers.add_column(name, justify="left" if name == "corpus" else "right")
    for name, corpus in cases:
        if not corpus.name.endswith(".jsonl.gz"):
            continue
        peer = run_peer(corpus, args.cores, args.work / "peer-out")
        ours = next(r for r in results if r["corpus"] == name and r["mode"] == "one-pass")
        ours_mbs, peer_mbs = ours["record_bytes"] / 1e6 / ours["seconds"]["total"], peer["record_bytes"] / 1e6 / peer["seconds"]
        results.append({"corpus": name, "mode": "peer", **peer})
        peers.add_row(name, f"{ours_mbs:,.0f}", f"{peer_mbs:,.0f}", f"{ours_mbs / peer_mbs:.1f}x",
                      f"{peer['peak_rss_mb']:,.0f}")
    console.print(peers)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
