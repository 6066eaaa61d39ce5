"""Report rendering time and memory with many groups.

Builds a synthetic metrics table (default 100,000 traces in 1,000 groups of
Zipf-like sizes, heavy-tailed lengths, path-like group names), decides it
with the rules of a typical filter run (so it has ``kept`` and
``drop_reason``, as a ``filter`` run's metrics do), and renders it with the
real ``write_report``, without trace texts. Prints the wall time of
``write_report`` and the peak RSS of the process.

    python benchmarks/bench_report.py
    python benchmarks/bench_report.py --traces 20000 --groups 10000 --progress
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from cotsieve.report import write_report
from cotsieve.rules import as_rule_set

LABELS = ("branch", "backtrack", "verify", "hesitate", "conclude", "progress")
RULES = ["drop-top 10% branch_step_ratio per source", "repetition < 0.9"]


def synthetic_metrics(traces: int, groups: int, seed: int = 0) -> pa.Table:
    """Metric columns drawn with numpy: enough for every figure and table of the report."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, groups + 1)  # a few large groups, a long tail of small ones
    group = rng.choice(groups, traces, p=weights / weights.sum())
    n_steps = rng.lognormal(3, 1, traces).astype(np.int64) + 1
    branch_steps = rng.binomial(n_steps, rng.beta(1, 12, traces))
    columns = {
        "record_id": pa.array([f"shard-{g}.jsonl:{i + 1}" for i, g in enumerate(group)]),
        "source": pa.array([f"data/corpora/run-{g % 7}/model-{g}/traces-{g}.jsonl.gz" for g in group]),
        "n_words": rng.lognormal(6, 1.2, traces).astype(np.int64) + 1,
        "n_steps": n_steps,
        "steps_branch": branch_steps,
        "branch_step_ratio": branch_steps / n_steps,
        "markers_per_1k_words": rng.lognormal(2, 1, traces),
        "repetition": rng.beta(2, 8, traces),
        "tail_after_first_answer": rng.beta(1, 5, traces),
    }
    columns.update({f"count_{label}": rng.poisson(3, traces) for label in LABELS[:-1]})
    transitions = rng.dirichlet(np.ones(len(LABELS)), (traces, len(LABELS)))
    for a, src in enumerate(LABELS):
        for b, dst in enumerate(LABELS):
            columns[f"p_{src}_{dst}"] = transitions[:, a, b]
    table = pa.table(columns)
    decision = as_rule_set(RULES).decide(table)
    return table.append_column("kept", pa.array(~decision.drop)).append_column("drop_reason", decision.reasons)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--progress", action="store_true", help="print the report's progress lines to stderr")
    args = parser.parse_args()
    started = time.perf_counter()
    table = synthetic_metrics(args.traces, args.groups)
    built = time.perf_counter() - started
    say = (lambda line: print(line, file=sys.stderr)) if args.progress else None
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        write_report(table, Path(folder) / "report", cuts=RULES, group="source", progress=say)
        rendered = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(f"{args.traces:,} traces in {args.groups:,} groups: table built in {built:.1f} s, "
          f"write_report {rendered:.1f} s, peak RSS {peak_mib:,.0f} MiB")


if __name__ == "__main__":
    main()
