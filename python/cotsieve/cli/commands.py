"""The commands ``scan``, ``analyze``, ``filter``, ``report`` and ``demo``;
each takes its parsed arguments and returns its exit code."""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..errors import BadInputError, UsageError
from ..io import ReadOptions, TextSpec, is_saved_dataset, read_corpus, resolve_inputs
from ..patterns import PatternSet
from ..pipeline import CurateOptions, Summary, analyze_corpus, check_rejects, filter_corpus
from ..report import DEFAULT_TOP, require_matplotlib, write_report
from ..rules import Rule
from .console import err_console, out_console
from .exit_codes import EXIT_OK
from .parser import options_from_args, rules_from_args

# ---------------------------------------------------------------- progress


class ProgressBar:
    """A rich progress line with traces/s and MB/s; use as a context manager."""

    def __init__(self, label: str, quiet: bool):
        self.quiet = quiet
        self.traces = self.bytes = 0
        self.start = time.perf_counter()
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                  TextColumn("{task.fields[stats]}"), console=err_console, transient=False)
        self._task = self._progress.add_task(label, total=None, stats="")

    def __enter__(self) -> ProgressBar:
        if not self.quiet:
            self._progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.quiet:
            self._progress.stop()

    def __call__(self, traces: int, nbytes: int) -> None:
        self.traces += traces
        self.bytes += nbytes
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        stats = (f"{self.traces:,} traces  {self.traces / elapsed:,.0f} traces/s  "
                 f"{self.bytes / 1e6:,.0f} MB  {self.bytes / 1e6 / elapsed:,.0f} MB/s")
        self._progress.update(self._task, stats=stats)


# ---------------------------------------------------------------- commands


def print_summary(summary: Summary, measured_only: bool = False) -> None:
    """Print the counts, the rules' drops, the throughput and the outputs of a
    run; ``measured_only`` for a run without rules (``analyze``), whose usable
    records are measured, not kept."""
    table = Table(title="cotsieve summary", show_header=False)
    rows = ("read", "measured", "rejected") if measured_only else ("read", "kept", "dropped", "rejected")
    for key in rows:
        table.add_row(key, f"{getattr(summary, 'kept' if key == 'measured' else key):,}")
    for rule in summary.rules:
        table.add_row(f"dropped by {rule['rule']}", f"{rule['dropped']:,}")
    for reason, count in summary.rejected_by_reason.items():
        table.add_row(f"rejected: {reason}", f"{count:,}")
    seconds = summary.seconds
    mb = summary.record_bytes / 1e6
    table.add_row("throughput", f"{mb:,.1f} MB in {seconds['total']:.2f} s = {mb / max(seconds['total'], 1e-9):,.0f} MB/s")
    out_console.print(table)
    for rule in summary.rules:
        if rule.get("groups"):
            print_share_groups(rule["rule"], rule["groups"])
    ok = "[red]MISMATCH[/red]" if not summary.balanced else "[red]nothing usable[/red]" if summary.nothing_usable \
        else "[green]ok[/green]"
    out_console.print(f"{summary.as_dict()['accounting']}  {ok}")
    for name, path in summary.outputs.items():
        out_console.print(f"  {name:9s} {path}")
    check_something_usable(summary)


def check_something_usable(summary: Summary) -> None:
    """A run that rejected every record it read (a wrong ``--text-field``,
    say) did not do what was asked, even under ``--on-error skip``: its
    outputs stay for inspection, and the command fails."""
    if summary.nothing_usable:
        reasons = ", ".join(f"{reason} ({count:,})" for reason, count in summary.rejected_by_reason.items())
        raise BadInputError(f"every record was rejected ({summary.read:,} of {summary.read:,}: {reasons}); "
                            f"see {summary.outputs.get('rejected', 'rejected.jsonl')}")


# Groups of a percentile rule shown on the screen, largest first; summary.json has all.
SHOWN_GROUPS = 12


def print_share_groups(rule: str, groups: list[dict[str, Any]]) -> None:
    """A percentile rule's cut per group: records, asked, dropped, the cutoff
    and the records on it; and a warning where a group lost a share other
    than the one asked by more than one record (``--ties keep``)."""
    table = Table(title=rule, title_justify="left")
    for column in ("group", "records", "asked", "dropped", "cutoff", "at cutoff"):
        table.add_column(column, justify="left" if column == "group" else "right")
    largest = sorted(groups, key=lambda g: -g["records"])
    for g in largest[:SHOWN_GROUPS]:
        share = "–" if g["dropped_share"] is None else f"{g['dropped_share']:.1%}"
        cutoff = "–" if g["cutoff"] is None else f"{g['cutoff']:.4g}"
        table.add_row(_group_name(g, groups), f"{g['records']:,}", f"{g['asked']:.1%} = {g['asked_count']:,}",
                      f"{g['dropped']:,} ({share})", cutoff, f"{g['at_cutoff']:,}")
    if len(groups) > SHOWN_GROUPS:
        table.caption = f"the {SHOWN_GROUPS} largest of {len(groups):,} groups; summary.json has every group"
    out_console.print(table)
    off = [g for g in groups if abs(g["dropped"] - g["asked_count"]) > 1]
    if off:
        names = ", ".join(f"{_group_name(g, groups)} ({g['dropped']:,} of {g['asked_count']:,})" for g in off[:5])
        more = f" and {len(off) - 5:,} more" if len(off) > 5 else ""
        err_console.print(f"warning: {rule}: {len(off):,} group(s) lost a share other than the one asked, because "
                          f"ties at the cutoff were kept: {names}{more}", highlight=False, markup=False,
                          soft_wrap=True)


def _group_name(group: dict[str, Any], groups: list[dict[str, Any]]) -> str:
    """A group's name on the screen: the one group of a rule without ``per`` is all records."""
    if group["group"] is None:
        return "(all records)" if len(groups) == 1 else "(no value)"
    return str(group["group"])


def cmd_scan(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    patterns: PatternSet = options.patterns  # type: ignore[assignment]
    matches = np.zeros(len(patterns.categories), np.int64)
    holding = np.zeros(len(patterns.categories), np.int64)
    read = rejected = text_bytes = 0
    with ProgressBar("scanning", args.quiet) as progress:
        for chunk in read_corpus(resolve_inputs(args.input, options.input_format),
                                 ReadOptions(options.text, selection=options.select)):
            check_rejects(chunk, options.on_error)
            counts = patterns.count_categories(chunk.texts.filter(chunk.reasons.is_null()), options.threads)
            if counts.num_rows:
                per_category = np.stack([c.to_numpy().astype(np.int64) for c in counts.columns], axis=1)
                matches += per_category.sum(axis=0)
                holding += (per_category > 0).sum(axis=0)
            read += len(chunk)
            rejected += int((~chunk.ok).sum())
            text_bytes += chunk.n_bytes
            progress(len(chunk), chunk.n_bytes)
    _print_scan(patterns.categories, matches, holding, read, rejected, text_bytes)
    return EXIT_OK


def _print_scan(categories: Sequence[str], matches: np.ndarray, holding: np.ndarray, read: int, rejected: int,
                nbytes: int) -> None:
    usable = read - rejected
    table = Table(title=f"markers in {usable:,} traces ({rejected:,} rejected)")
    for name in ("category", "matches", "traces with any", "share of traces", "per MB"):
        table.add_column(name, justify="left" if name == "category" else "right")
    for cat, m, h in zip(categories, matches, holding):
        share = f"{h / usable:.1%}" if usable else "-"
        table.add_row(cat, f"{m:,}", f"{h:,}", share, f"{m / max(nbytes / 1e6, 1e-9):,.1f}")
    out_console.print(table)


def cmd_analyze(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    with ProgressBar("analyzing", args.quiet) as progress:
        summary = analyze_corpus(args.input, args.out, options, progress)
    print_summary(summary, measured_only=True)
    return EXIT_OK


def cmd_filter(args: argparse.Namespace) -> int:
    rules = rules_from_args(args)
    options = options_from_args(args)
    if args.report:
        require_matplotlib()  # before the run, not after it
        if not isinstance(args.out, Path):
            raise UsageError(f"--report writes a local folder, and --out {args.out} is a URL; run cotsieve report "
                             f"on a local copy of its metrics")
    with ProgressBar("filtering", args.quiet) as progress:
        summary = filter_corpus(args.input, args.out, rules, options, progress)
    print_summary(summary)
    if args.report:
        _report(summary.outputs["metrics"], args.out / "report", args.input, rules, args.per or "source", options,
                args.force, DEFAULT_TOP, args.quiet)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    rules = rules_from_args(args, required=False)
    options = CurateOptions(text=TextSpec(args.text_field, args.think), patterns=PatternSet.load(args.patterns),
                            steps=args.steps)
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    if not isinstance(args.out, Path):
        raise UsageError(f"report writes a local folder; --out {args.out} is a URL")
    _report(args.metrics, args.out, args.corpus, rules or None, args.group, options, args.force, args.top,
            args.quiet)
    return EXIT_OK


def _report(metrics: Any, out: Path, corpus: Any, rules: Optional[list[Rule]], group: str, options: CurateOptions,
            force: bool, top: int, quiet: bool) -> None:
    """Write the report, with its progress lines on stderr unless ``quiet``;
    ``rules=None`` takes those in the summary.json beside the metrics."""
    progress = None if quiet else (lambda line: err_console.print(line, highlight=False, markup=False))
    index = write_report(metrics, out, corpus=corpus, cuts=rules, group=group, text=options.text,
                         patterns=options.patterns, steps=options.steps, top=top, force=force, progress=progress)
    out_console.print(f"  report    {index}")


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    folder = args.out or Path(tempfile.mkdtemp(prefix="cotsieve-demo-"))
    with ProgressBar("filtering the demo corpus", args.quiet) as progress:
        summary, by_source = run_demo(folder, args.n, args.seed, args.force, progress)
    print_summary(summary)
    table = Table(title="kept share per source (the filter should hit the branch-heavy source)")
    for name in ("source", "traces", "kept", "kept share"):
        table.add_column(name)
    for source, (total, kept) in sorted(by_source.items()):
        table.add_row(source, f"{total:,}", f"{kept:,}", f"{kept / max(total, 1):.1%}")
    out_console.print(table)
    return EXIT_OK


COMMANDS = {"scan": cmd_scan, "analyze": cmd_analyze, "filter": cmd_filter, "report": cmd_report, "demo": cmd_demo}


def reads_saved_dataset(args: argparse.Namespace) -> bool:
    """Whether a command's inputs (``input``, or ``report --corpus``) hold a
    saved Hugging Face dataset, whose library hands pandas objects to pyarrow."""
    inputs = [*(getattr(args, "input", None) or []), *(getattr(args, "corpus", None) or [])]
    return any(is_saved_dataset(item) for item in inputs)
