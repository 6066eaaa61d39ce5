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
    python benchmarks/bench_pipeline.py --input my.jsonl.gz --rounds 3 --threads 1 2 --stages

Each corpus is first inflated alone (ISA-L, one thread, the rate the goals
are set against), then filtered with a one-pass and a two-pass rule; with
``--rounds`` the three take turns, so a busy shared machine slows each alike.
The goal lines compare them: one pass at least 60% of the inflate rate, two
passes at least 85% of one pass, peak RSS under 1.5 GB. ``--threads 1 2``
runs every case pinned to 1 core with ``--threads 1`` and to 2 with
``--threads 2``, and sets the speed-up beside the one the stage model
predicts. ``--stages`` measures each stage's single-core cost on the first
corpus and prints the model of the stage that limits at 8, 16 and 64 cores
(``pipeline_stages.py``).

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


def run_case(corpus: Path, rule: str, cores: int, out: Path, options: tuple[str, ...] = ()) -> dict:
    """One measured run of ``cotsieve filter`` (the command line, as users run
    it, with ``options`` added) in a fresh process; returns its summary.json
    plus ``peak_rss_mb``, the CPU seconds and those of the busiest thread."""
    code = f"""
import json, os, resource, sys
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > {cores}:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{cores}])
{THREAD_SAMPLER}
from cotsieve.cli import main
code = main(["filter", {str(corpus)!r}, "--out", {str(out)!r}, "--where", {rule!r}, "--threads", "{cores}",
             "--on-error", "skip", "--force", "--quiet", *{list(options)!r}])
if code:
    sys.exit(code)
d = json.load(open(os.path.join({str(out)!r}, "summary.json")))
usage = resource.getrusage(resource.RUSAGE_SELF)
d["peak_rss_mb"] = peak_rss_mb(usage)
d["cpu_seconds"] = usage.ru_utime + usage.ru_stime
d["busiest_thread_cpu_seconds"] = max(thread_ticks.values()) / os.sysconf("SC_CLK_TCK")
print(json.dumps(d))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


# The CPU time of each thread of the run, sampled from /proc every 0.1 s (a
# thread's last tenth of a second before it ends is missed). The busiest
# thread bounds the speed-up more cores can give: total CPU / busiest thread.
# Unlike wall time, this does not depend on what else the machine runs.
# VmHWM is the measured program's own peak; ru_maxrss would start at the RSS
# of the process it was forked from (this benchmark, which may hold a corpus).
PEAK_RSS = """
def peak_rss_mb(usage):
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return usage.ru_maxrss / 1024
"""
THREAD_SAMPLER = PEAK_RSS + """
import glob, threading, time
thread_ticks = {}
def _sample_threads():
    while True:
        for stat in glob.glob("/proc/self/task/*/stat"):
            try:
                fields = open(stat).read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            thread_ticks[stat] = max(thread_ticks.get(stat, 0), int(fields[11]) + int(fields[12]))
        time.sleep(0.1)
threading.Thread(target=_sample_threads, daemon=True).start()
"""


PEER_CODE = """
import json, os, resource, sys
{peak}
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > {cores}:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{cores}])
sys.path.insert(0, {folder!r})
from pipeline_peer import run
import time
start = time.perf_counter()
d = run(__import__("pathlib").Path({corpus!r}), __import__("pathlib").Path({out!r}), 0.3)
d["seconds"] = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_SELF)
d["peak_rss_mb"] = peak_rss_mb(usage)
print(json.dumps(d))
"""


def run_peer(corpus: Path, cores: int, out: Path) -> dict:
    """The hand-written Hyperscan script (``pipeline_peer.py``) on the same corpus, in a fresh process."""
    code = PEER_CODE.format(peak=PEAK_RSS, cores=cores, folder=str(Path(__file__).parent), corpus=str(corpus), out=str(out))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


INFLATE_CODE = """
import json, time
from cotsieve.io import resolve_inputs
from cotsieve.io.jsonl import _decompressed
source = resolve_inputs({corpus!r})[0]
start, cpu, size = time.perf_counter(), time.process_time(), 0
with _decompressed(source) as stream:
    while data := stream.read(16 << 20):
        size += len(data)
print(json.dumps({{"record_bytes": size, "seconds": time.perf_counter() - start,
                  "cpu_seconds": time.process_time() - cpu}}))
"""


def run_inflate(corpus: Path) -> dict:
    """Decompressing the corpus alone (ISA-L for gzip, as the reader does), one
    thread, in a fresh process: the rate the goals are set against."""
    result = subprocess.run([sys.executable, "-c", INFLATE_CODE.format(corpus=str(corpus))], capture_output=True,
                            text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def mb_per_s(s: dict) -> float:
    seconds = s["seconds"]["total"] if isinstance(s["seconds"], dict) else s["seconds"]
    return s["record_bytes"] / 1e6 / seconds


def best(runs: list[dict]) -> dict:
    """The fastest of runs taken in turns: the one least slowed by other load."""
    return max(runs, key=mb_per_s)


def goal_lines(name: str, inflate: dict, one: dict, two: dict) -> list[str]:
    """The issue's goals on 2 cores, from runs taken in turns: by wall time and by CPU time."""
    cpu = {k: s["record_bytes"] / 1e6 / s["cpu_seconds"] for k, s in (("inflate", inflate), ("one", one), ("two", two))}
    lines = []
    for what, ratio, goal, detail in (
            ("one pass >= 60% of inflate", mb_per_s(one) / mb_per_s(inflate), 0.60,
             f"{mb_per_s(one):,.0f} of {mb_per_s(inflate):,.0f} MB/s; per CPU s {cpu['one']:,.0f} of {cpu['inflate']:,.0f}"),
            ("two passes >= 85% of one pass", mb_per_s(two) / mb_per_s(one), 0.85,
             f"{mb_per_s(two):,.0f} of {mb_per_s(one):,.0f} MB/s; per CPU s {cpu['two'] / cpu['one']:.0%}")):
        lines.append(f"{name}: {what}: {ratio:.0%} ({detail}) -> {'met' if ratio >= goal else 'NOT met'}")
    rss = max(one["peak_rss_mb"], two["peak_rss_mb"])
    lines.append(f"{name}: peak RSS < 1.5 GB: {rss:,.0f} MB -> {'met' if rss < 1500 else 'NOT met'}")
    return lines


def print_stages(console: Console, corpus: Path, rounds: int) -> "StageCosts":
    """Each stage's single-core cost (the least of ``rounds``) and the model at 1, 2, 8, 16 and 64 cores."""
    from pipeline_stages import LANES, STAGES, model, measure_stages, run_in_turns
    from cotsieve.pipeline import MAX_PARSE_THREADS, TAIL_BYTES, parse_threads

    costs = run_in_turns(lambda: measure_stages(corpus), rounds)
    total = sum(costs.per_gb(s) for s in STAGES)
    table = Table(title=f"single-core cost of each stage, {corpus.name} ({costs.record_bytes / 1e6:,.0f} MB of "
                        f"records, {costs.kept_bytes / costs.record_bytes:.0%} kept by the one-pass rule; "
                        f"least of {rounds})")
    for name in ("stage", "thread (lane)", "CPU s per GB", "MB/s on one core", "share"):
        table.add_column(name, justify="left" if name in ("stage", "thread (lane)") else "right")
    for stage in STAGES:
        lane = next(lane for lane, stages in LANES.items() if stage in stages)
        cost = costs.per_gb(stage)
        table.add_row(stage, lane, f"{cost:.3f}", f"{1e3 / cost:,.0f}" if cost else "-", f"{cost / total:.0%}")
    console.print(table)
    bounds = Table(title=f"model: best MB/s and the limit, this corpus as one .jsonl.gz shard; before = 1 parse "
                         f"thread and pass 2 reading everything again, now = parse threads half the cores (at most "
                         f"{MAX_PARSE_THREADS}) and "
                         f"the last {TAIL_BYTES >> 20} MiB of pass 1 held for pass 2")
    for name in ("cores", "one pass, before", "one pass, now", "two passes, before", "two passes, now"):
        bounds.add_column(name, justify="right" if name == "cores" else "left")
    for cores in (1, 2, 8, 16, 64):
        now = parse_threads(cores)
        cells = [model(costs, cores, 1, False), model(costs, cores, now, False),
                 model(costs, cores, 1, True), model(costs, cores, now, True, TAIL_BYTES)]
        bounds.add_row(str(cores), *(f"{b.mb_per_s:,.0f} ({b.limit})" for b in cells))
    console.print(bounds)
    print_shards_model(console, costs)
    return costs


def print_shards_model(console: Console, costs: "StageCosts") -> None:
    """The model for a corpus of many such shards: read one after another,
    each chunk's members deflated before the next (before), and read as many
    at once as ``shards_at_once`` picks, with the members of several chunks
    deflated at once (now)."""
    from pipeline_stages import model
    from cotsieve.io.writers import _PENDING_MEMBERS
    from cotsieve.pipeline import TAIL_BYTES, THREADS_PER_SHARD, parse_threads

    table = Table(title="model: many .jsonl.gz shards of this corpus; before = one shard at a time, the writer "
                        "waiting for each chunk's members; now = shards read at once (one per "
                        f"{THREADS_PER_SHARD['gzip']} cores) and up to {_PENDING_MEMBERS} members deflated at once; "
                        f"the corpus far larger than the {TAIL_BYTES >> 20} MiB pass 1 holds for pass 2")
    for name in ("cores", "shards at once", "one pass, before", "one pass, now", "two passes, before",
                 "two passes, now"):
        table.add_column(name, justify="right" if name in ("cores", "shards at once") else "left")
    for cores in (8, 16, 64):
        shards = max(1, cores // THREADS_PER_SHARD["gzip"])
        lanes = dict(parse_threads=parse_threads(cores // shards), shards=shards, deflate_pieces=_PENDING_MEMBERS)
        cells = [model(costs, cores, parse_threads(cores), False), model(costs, cores, two_pass=False, **lanes),
                 model(costs, cores, parse_threads(cores), True), model(costs, cores, two_pass=True, **lanes)]
        table.add_row(str(cores), str(shards), *(f"{b.mb_per_s:,.0f} ({b.limit})" for b in cells))
    console.print(table)


def print_spool(console: Console, corpus: Path) -> None:
    """Pass 2 without inflating again: what each way costs (``pipeline_stages.spool_costs``)."""
    from pipeline_stages import spool_costs

    table = Table(title=f"pass 2 without a second inflate, on the first 640 MiB of {corpus.name} (one core)")
    for name in ("way", "CPU s per GB", "stored / records"):
        table.add_column(name, justify="left" if name == "way" else "right")
    for way, (seconds, stored) in spool_costs(corpus).items():
        table.add_row(way, f"{seconds:.3f}", f"{stored:.3f}")
    console.print(table)


def row(name: str, mode: str, s: dict) -> list[str]:
    mb = s["record_bytes"] / 1e6
    sec = s["seconds"]
    return [name, mode, f"{s['read']:,}", f"{mb:,.0f}", f"{sec['total']:.1f}", f"{mb / sec['total']:,.0f}",
            f"{s['text_bytes'] / 1e6 / sec['total']:,.0f}", f"{sec['read']:.1f}", f"{sec['engine']:.1f}",
            f"{sec['write']:.1f}", f"{s['cpu_seconds']:.1f}", f"{mb / s['cpu_seconds']:,.0f}",
            f"{s['peak_rss_mb']:,.0f}"]


def print_scaling(console: Console, cases: list, core_counts: list[int], rates: dict, runs: dict, costs) -> None:
    """Speed-up from the fewest to the most cores, measured and as the stage model predicts."""
    low, high = min(core_counts), max(core_counts)
    table = Table(title=f"{low} -> {high} cores: measured speed-up, the model's (stages of the first corpus), and "
                        f"at {high} cores the CPU time over the busiest thread's (the speed-up the serial work "
                        f"allows, whatever else the machine runs)")
    for name in ("corpus", "rule", f"MB/s, {low} core(s)", f"MB/s, {high} cores", "speed-up", "model speed-up",
                 "CPU s", "busiest thread CPU s", "CPU / busiest"):
        table.add_column(name, justify="left" if name in ("corpus", "rule") else "right")
    for name, _ in cases:
        for mode in RULES:
            predicted = ""
            if costs is not None:
                from pipeline_stages import model
                from cotsieve.pipeline import TAIL_BYTES, parse_threads

                two_pass = mode == "two-pass"
                bounds = [model(costs, c, parse_threads(c), two_pass, TAIL_BYTES).mb_per_s for c in (low, high)]
                predicted = f"{bounds[1] / bounds[0]:.2f}x"
            measured = rates[name, high, mode] / rates[name, low, mode]
            run = runs[name, high, mode]
            busiest = run["busiest_thread_cpu_seconds"]
            table.add_row(name, mode, f"{rates[name, low, mode]:,.0f}", f"{rates[name, high, mode]:,.0f}",
                          f"{measured:.2f}x", predicted, f"{run['cpu_seconds']:.1f}", f"{busiest:.1f}",
                          f"{run['cpu_seconds'] / busiest:.2f}x")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", action="append", default=[], type=Path, help="corpus to measure (repeatable)")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--size-mb", type=int, default=300, help="size the real and synthetic corpora are repeated to")
    parser.add_argument("--big", action="store_true", help="also run a >= 5 GB corpus (peak RSS check)")
    parser.add_argument("--big-gb", type=float, default=5.0)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "cotsieve-bench")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each case, taken in turns (best is shown)")
    parser.add_argument("--threads", type=int, nargs="+", help="run every case pinned to each of these core counts, "
                                                               "with as many --threads, e.g. 1 2")
    parser.add_argument("--stages", action="store_true", help="also measure each stage's single-core cost on the "
                                                              "first corpus and print the model at 8, 16, 64 cores")
    parser.add_argument("--no-peer", action="store_true", help="skip the hand-written Hyperscan script")
    parser.add_argument("--spool", action="store_true", help="also measure, on the first corpus, what spooling "
                                                             "pass 1 would cost against inflating again")
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

    console = Console(width=200)
    costs = print_stages(console, cases[0][1], args.rounds) if args.stages else None
    if args.spool:
        print_spool(console, cases[0][1])
    core_counts = args.threads or [args.cores]
    table = Table(title=f"cotsieve filter, end to end on {', '.join(map(str, core_counts))} cores "
                        f"(best of {args.rounds} taken in turns)")
    for name in ("corpus", "cores", "rule", "traces", "MB", "wall s", "MB/s", "text MB/s", "read+parse s",
                 "engine s", "write s", "CPU s", "MB per CPU s", "peak RSS MB"):
        table.add_column(name, justify="left" if name in ("corpus", "rule") else "right")
    results, goals, rates, chosen = [], [], {}, {}
    for name, corpus in cases:
        inflates, runs = [], {(cores, mode): [] for cores in core_counts for mode in RULES}
        for _ in range(args.rounds):  # in turns: inflate, then each rule on each core count
            inflates.append(run_inflate(corpus))
            for cores in core_counts:
                for mode, rule in RULES.items():
                    runs[cores, mode].append(run_case(corpus, rule, cores, args.work / "out"))
        inflate = best(inflates)
        table.add_row(name, "1", "decompress alone" if not corpus.name.endswith(".gz") else "ISA-L inflate alone", "", f"{inflate['record_bytes'] / 1e6:,.0f}",
                      f"{inflate['seconds']:.1f}", f"{mb_per_s(inflate):,.0f}", *[""] * 4,
                      f"{inflate['cpu_seconds']:.1f}", f"{inflate['record_bytes'] / 1e6 / inflate['cpu_seconds']:,.0f}", "")
        for (cores, mode), summaries in runs.items():
            summary = best(summaries)
            rates[name, cores, mode] = mb_per_s(summary)
            chosen[name, cores, mode] = summary
            results.append({"corpus": name, "mode": mode, "cores": cores, **summary})
            table.add_row(*row(name, mode, summary)[:1], str(cores), *row(name, mode, summary)[1:])
        cores = max(core_counts)
        goals += goal_lines(f"{name}, {cores} cores", inflate, best(runs[cores, "one-pass"]), best(runs[cores, "two-pass"]))
    console.print(table)
    for line in goals:
        console.print(line)
    if len(core_counts) > 1:
        print_scaling(console, cases, core_counts, rates, chosen, costs)
    if not args.no_peer:
        peers = Table(title="one-pass filter against the hand-written Hyperscan script (benchmarks/pipeline_peer.py), "
                            "same corpus, same cores")
        for name in ("corpus", "cotsieve MB/s", "peer MB/s", "cotsieve / peer", "peer peak RSS MB"):
            peers.add_column(name, justify="left" if name == "corpus" else "right")
        for name, corpus in cases:
            if not corpus.name.endswith(".jsonl.gz"):
                continue
            peer = run_peer(corpus, max(core_counts), args.work / "peer-out")
            ours = next(r for r in results if r["corpus"] == name and r["mode"] == "one-pass"
                        and r["cores"] == max(core_counts))
            ours_mbs, peer_mbs = ours["record_bytes"] / 1e6 / ours["seconds"]["total"], peer["record_bytes"] / 1e6 / peer["seconds"]
            results.append({"corpus": name, "mode": "peer", **peer})
            peers.add_row(name, f"{ours_mbs:,.0f}", f"{peer_mbs:,.0f}", f"{ours_mbs / peer_mbs:.1f}x",
                          f"{peer['peak_rss_mb']:,.0f}")
        console.print(peers)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
