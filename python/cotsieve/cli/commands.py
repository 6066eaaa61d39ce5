"""The commands ``scan``, ``analyze``, ``filter``, ``report`` and ``demo``;
each takes its parsed arguments and returns its exit code."""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from ..errors import BadInputError, OutputExistsError, OutputWriteError, UsageError
from ..io import Chunk, ReadOptions, TextSpec, is_saved_dataset, read_corpus, resolve_inputs
from ..io.locations import is_url, local_path
from ..io.outdir import write_error
from ..io.writers import write_json
from ..patterns import PatternSet
from ..pipeline import CurateOptions, Summary, analyze_corpus, check_rejects, filter_corpus
from ..report import DEFAULT_TOP, require_matplotlib, write_report
from ..rules import Rule
from .console import err_console, out_console
from .exit_codes import EXIT_OK
from .parser import options_from_args, rules_from_args
from .progress import CorpusProgress, StatusLine

# ---------------------------------------------------------------- progress


def corpus_progress(args: argparse.Namespace) -> CorpusProgress:
    """The progress line a command's ``--quiet`` and ``--progress`` ask for."""
    return CorpusProgress(StatusLine(args.quiet, getattr(args, "progress", False)),
                          reads_to_the_end=getattr(args, "limit", None) is None)


# ---------------------------------------------------------------- commands


def finish_run(summary: Summary, args: argparse.Namespace, measured_only: bool = False) -> Console:
    """Show a finished run: its summary on the screen, and as JSON where
    ``--summary-json`` asks (``-``: stdout, and the screen moves to stderr so
    that stdout holds the JSON alone); fail a run that used no record. Returns
    the console the screen went to."""
    to_stdout = args.summary_json == "-"
    screen = err_console if to_stdout else out_console
    print_summary(summary, measured_only, screen)
    if to_stdout:
        sys.stdout.write(json.dumps(summary.as_dict(), indent=2, default=str) + "\n")
        sys.stdout.flush()
    elif args.summary_json:
        write_summary_copy(summary, Path(args.summary_json), args.force)
    check_something_usable(summary)
    return screen


def write_summary_copy(summary: Summary, path: Path, force: bool) -> None:
    """A copy of ``summary.json`` at ``path`` (checked before the run by
    :func:`check_summary_copy`; an existing file still needs ``--force``)."""
    if path.exists() and not force:
        raise OutputExistsError(f"{path} exists; pass --force to overwrite it")
    try:
        write_json(path, summary.as_dict())
    except OSError as err:
        raise write_error(err, path.parent) from None


def check_summary_copy(args: argparse.Namespace) -> None:
    """Refuse, before any record is read, a ``--summary-json PATH`` the run
    could not or must not write: an empty path, a folder, an existing file
    without ``--force``, one of the inputs, the run's own ``summary.json``,
    or a place that cannot be written."""
    if args.summary_json is None or args.summary_json == "-":
        return
    if not args.summary_json:
        raise UsageError("--summary-json needs a path, or - for standard output")
    path = Path(args.summary_json)
    if path.is_dir():
        raise OutputExistsError(f"--summary-json {path} is a folder; name a file")
    out = getattr(args, "out", None)
    if isinstance(out, Path) and path.resolve() == (out / "summary.json").resolve():
        raise UsageError(f"--summary-json {path} is the run's own summary.json; name another file or leave it out")
    if path.resolve() in _local_input_files(getattr(args, "input", None) or []):
        raise OutputExistsError(f"--summary-json {path} is an input; name another file")
    if path.exists() and not args.force:
        raise OutputExistsError(f"--summary-json {path} exists; pass --force to overwrite it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise OutputWriteError(f"cannot write --summary-json {path}: {folder} is not a writable folder")


def _is_stream(spec: str) -> bool:
    """Whether an input argument is standard input, a pipe or a device: bytes that can be read once."""
    return spec == "-" or (os.path.exists(spec) and not os.path.isfile(spec) and not os.path.isdir(spec))


def _local_input_files(inputs: Sequence[str]) -> set[Path]:
    """The local files the input arguments name, directly, in a folder or by a glob."""
    files: set[Path] = set()
    for spec in map(local_path, inputs):
        if spec == "-" or is_url(spec):
            continue
        found = [Path(p) for p in glob.glob(spec, recursive=True)] or [Path(spec)]
        for path in found:
            files.update(p.resolve() for p in path.rglob("*") if p.is_file()) if path.is_dir() \
                else files.add(path.resolve())
    return files


def print_summary(summary: Summary, measured_only: bool = False, screen: Console = out_console) -> None:
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
    screen.print(table)
    for rule in summary.rules:
        if rule.get("groups"):
            print_share_groups(rule["rule"], rule["groups"], screen)
    ok = "[red]MISMATCH[/red]" if not summary.balanced else "[red]nothing usable[/red]" if summary.nothing_usable \
        else "[green]ok[/green]"
    accounting = f"{summary.kept:,} measured + {summary.rejected:,} rejected == {summary.read:,} read" \
        if measured_only else summary.as_dict()["accounting"]
    screen.print(f"{accounting}  {ok}")
    for name, path in summary.outputs.items():
        screen.print(f"  {name:9s} {path}")


def check_something_usable(summary: Summary) -> None:
    """A run that rejected every record it read (a wrong ``--text-field``,
    say) did not do what was asked, even under ``--on-error skip``: its
    outputs stay for inspection, and the command fails."""
    refuse_all_rejected(summary.read, summary.rejected, summary.rejected_by_reason,
                        f"see {summary.outputs.get('rejected', 'rejected.jsonl')}")


def refuse_all_rejected(read: int, rejected: int, by_reason: Mapping[str, int], where: str) -> None:
    """Fail a run that read records and rejected every one of them."""
    if read and rejected == read:
        reasons = ", ".join(f"{reason} ({count:,})" for reason, count in by_reason.items())
        raise BadInputError(f"every record was rejected ({read:,} of {read:,}: {reasons}); {where}")


# Groups of a percentile rule shown on the screen, largest first; summary.json has all.
SHOWN_GROUPS = 12


def print_share_groups(rule: str, groups: list[dict[str, Any]], screen: Console = out_console) -> None:
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
    screen.print(table)
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


@dataclass
class ScanCounts:
    """What ``scan`` counts: matches and traces holding any, per category."""

    categories: Sequence[str]
    inputs: list[str]
    read: int = 0
    rejected: int = 0
    record_bytes: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.matches = np.zeros(len(self.categories), np.int64)
        self.holding = np.zeros(len(self.categories), np.int64)

    def add(self, chunk: Chunk, counts: pa.Table) -> None:
        """Count a chunk, given the per-category counts of its usable records."""
        if counts.num_rows:
            per_category = np.stack([c.to_numpy().astype(np.int64) for c in counts.columns], axis=1)
            self.matches += per_category.sum(axis=0)
            self.holding += (per_category > 0).sum(axis=0)
        self.read += len(chunk)
        self.rejected += int((~chunk.ok).sum())
        self.rejected_by_reason.update(r.split(":", 1)[0] for r in chunk.reasons.drop_null().to_pylist())
        self.record_bytes += chunk.n_bytes

    def rows(self) -> list[dict[str, Any]]:
        """One row per category, as the table, ``--json`` and ``--csv`` show it
        (a share or rate without a denominator is None)."""
        usable, mb = self.read - self.rejected, self.record_bytes / 1e6
        return [{"category": cat, "matches": int(m), "traces_with_any": int(h),
                 "share_of_traces": h / usable if usable else None, "per_mb": m / mb if mb else None}
                for cat, m, h in zip(self.categories, self.matches, self.holding)]

    def as_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "read": self.read, "traces": self.read - self.rejected,
                "rejected": self.rejected, "rejected_by_reason": dict(self.rejected_by_reason),
                "record_bytes": self.record_bytes, "categories": self.rows()}


def cmd_scan(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    patterns: PatternSet = options.patterns  # type: ignore[assignment]
    sources = resolve_inputs(args.input, options.input_format)
    counts = ScanCounts(patterns.categories, [s.name for s in sources])
    with corpus_progress(args) as progress:
        progress.start_pass("scanning", 1, 1, sources)
        for chunk in read_corpus(sources, ReadOptions(options.text, selection=options.select)):
            check_rejects(chunk, options.on_error)
            counts.add(chunk, patterns.count_categories(chunk.texts.filter(chunk.reasons.is_null()), options.threads))
            progress.advance(chunk)
    SCAN_PRINTERS[args.print_as](counts)
    refuse_all_rejected(counts.read, counts.rejected, counts.rejected_by_reason,
                        "analyze lists each with its reason in OUT/rejected.jsonl")
    return EXIT_OK


def _print_scan_table(counts: ScanCounts) -> None:
    table = Table(title=f"markers in {counts.read - counts.rejected:,} traces ({counts.rejected:,} rejected)")
    for name in ("category", "matches", "traces with any", "share of traces", "per MB"):
        table.add_column(name, justify="left" if name == "category" else "right")
    for row in counts.rows():
        share, per_mb = row["share_of_traces"], row["per_mb"]
        table.add_row(row["category"], f"{row['matches']:,}", f"{row['traces_with_any']:,}",
                      "-" if share is None else f"{share:.1%}", "-" if per_mb is None else f"{per_mb:,.1f}")
    out_console.print(table)


def _print_scan_json(counts: ScanCounts) -> None:
    sys.stdout.write(json.dumps(counts.as_dict(), indent=2) + "\n")


def _print_scan_csv(counts: ScanCounts) -> None:
    rows = counts.rows()
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["category"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


SCAN_PRINTERS = {"table": _print_scan_table, "json": _print_scan_json, "csv": _print_scan_csv}


def cmd_analyze(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    check_summary_copy(args)
    with corpus_progress(args) as progress:
        summary = analyze_corpus(args.input, args.out, options, progress)
    finish_run(summary, args, measured_only=True)
    return EXIT_OK


def cmd_filter(args: argparse.Namespace) -> int:
    rules = rules_from_args(args)
    options = options_from_args(args)
    check_summary_copy(args)
    if args.report:
        require_matplotlib()  # before the run, not after it
        if not isinstance(args.out, Path):
            raise UsageError(f"--report writes a local folder, and --out {args.out} is a URL; run cotsieve report "
                             f"on a local copy of its metrics")
        streams = [spec for spec in args.input if _is_stream(spec)]
        if streams:
            raise UsageError(f"--report reads the corpus again for its trace views, and {streams[0]} can be read "
                             f"once; save it to a file first, or run cotsieve report on the metrics with --corpus")
    with corpus_progress(args) as progress:
        summary = filter_corpus(args.input, args.out, rules, options, progress)
    screen = finish_run(summary, args)
    if args.report:
        _report(summary.outputs["metrics"], args.out / "report", args.input, rules, args.per or "source", options,
                args.force, DEFAULT_TOP, args.quiet, screen)
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
            force: bool, top: int, quiet: bool, screen: Console = out_console) -> None:
    """Write the report, with its progress lines on stderr unless ``quiet``;
    ``rules=None`` takes those in the summary.json beside the metrics."""
    progress = None if quiet else (lambda line: err_console.print(line, highlight=False, markup=False))
    index = write_report(metrics, out, corpus=corpus, cuts=rules, group=group, text=options.text,
                         patterns=options.patterns, steps=options.steps, top=top, force=force, progress=progress)
    screen.print(f"  report    {index}")


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    if args.n < 1:
        raise UsageError(f"--n must be at least 1, got {args.n}")
    check_summary_copy(args)
    folder = args.out or Path(tempfile.mkdtemp(prefix="cotsieve-demo-"))
    with corpus_progress(args) as progress:
        summary, by_source = run_demo(folder, args.n, args.seed, args.force, progress)
    screen = finish_run(summary, args)
    table = Table(title="kept share per source (the filter should hit the branch-heavy source)")
    for name in ("source", "traces", "kept", "kept share"):
        table.add_column(name)
    for source, (total, kept) in sorted(by_source.items()):
        table.add_row(source, f"{total:,}", f"{kept:,}", f"{kept / max(total, 1):.1%}")
    screen.print(table)
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    from . import profile
    from .completion import completion_script
    from .parser import build_parser

    sys.stdout.write(completion_script(args.shell, build_parser(), {"profile": profile.build_parser()}))
    return EXIT_OK


COMMANDS = {"scan": cmd_scan, "analyze": cmd_analyze, "filter": cmd_filter, "report": cmd_report, "demo": cmd_demo,
            "completion": cmd_completion}


def reads_saved_dataset(args: argparse.Namespace) -> bool:
    """Whether a command's inputs (``input``, or ``report --corpus``) hold a
    saved Hugging Face dataset, whose library hands pandas objects to pyarrow."""
    inputs = [*(getattr(args, "input", None) or []), *(getattr(args, "corpus", None) or [])]
    return any(is_saved_dataset(item) for item in inputs)
