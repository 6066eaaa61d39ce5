"""The ``cotsieve`` command line: ``scan``, ``analyze``, ``filter``, ``report``, ``profile``, ``demo``.

Exit codes: 0 success; 1 bad or unreadable input (under ``--on-error=fail``,
or a file that cannot be read at all); 2 usage error (bad option, rule or
column, or a missing optional dependency such as matplotlib for ``report``);
3 an output exists (without ``--force``) or would overwrite an input; 130
interrupted. See ``docs/cli.md`` and ``docs/report.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._malloc import hold_freed_memory
from ._pandas_probe import skip_pandas_probe
from .analysis import STEP_MODES
from .integrations import MissingExtraError
from .io import THINK_MODES, BadInputError, ReadOptions, TextSpec, is_saved_dataset, read_corpus
from .patterns import PatternSet
from .pipeline import CurateOptions, OutputExistsError, Summary, analyze_corpus, check_rejects, filter_corpus
from .report import DEFAULT_TOP, require_matplotlib, write_report
from .rules import DropShare, LENGTH_COLUMN, Rule, parse_rule, parse_share

EXIT_OK, EXIT_BAD_INPUT, EXIT_USAGE, EXIT_OUTPUT_EXISTS, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXAMPLES = """\
examples:
  cotsieve scan traces.jsonl.gz
  cotsieve analyze 'shards/*.parquet' --out metrics/
  cotsieve filter traces.jsonl.gz --out curated/ --by branch_step_ratio --drop-top 10% --per source
  cotsieve filter traces.jsonl.zst --out curated/ --where 'branch_step_ratio <= 0.3' --where 'repetition < 0.5'
  cotsieve filter data/ --out curated/ --rule 'step_count_ratio <= 1.5 vs gpt-oss' --text-field 'messages'
  cotsieve filter traces.jsonl.gz --out curated/ --field source --by branch_step_ratio --drop-top 10% --report
  cotsieve report curated/ --out report/
  cotsieve profile --model SmolLM2 --gguf-file model.gguf --data traces.jsonl --out loss/
  cotsieve demo --n 2000

exit codes: 0 ok, 1 bad input, 2 usage error (also: report without matplotlib), 3 output exists (use --force),
130 interrupted
"""

err_console = Console(stderr=True)
out_console = Console()


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 too; keep its message, add the hint
        self.print_usage(sys.stderr)
        err_console.print(f"[red]error:[/red] {message} (see --help)", soft_wrap=True)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cotsieve", description="Curate and profile long chain-of-thought corpora.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    reading = _reading_options()
    scan = commands.add_parser("scan", parents=[reading], help="count markers per category and print a table",
                               epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    scan.add_argument("input", nargs="+", help="file(s), directory or glob of .jsonl[.gz|.zst] / .parquet")
    analyze = commands.add_parser("analyze", parents=[reading, _output_options()], help="write per-trace metrics",
                                  epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    analyze.add_argument("input", nargs="+", help="file(s), directory or glob of .jsonl[.gz|.zst] / .parquet")
    filt = commands.add_parser("filter", parents=[reading, _output_options()], help="write metrics and the kept corpus",
                               epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    filt.add_argument("input", nargs="+", help="file(s), directory or glob of .jsonl[.gz|.zst] / .parquet")
    filt.add_argument("--compression-level", type=int, help="gzip/zstd level of the kept corpus (default 1 / 3)")
    filt.add_argument("--report", action="store_true",
                      help="also write a visual report to OUT/report/ (needs pip install 'cotsieve[report]')")
    _rule_options(filt)
    report = commands.add_parser("report", parents=[_text_options()], help="write an HTML report with figures",
                                 epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("metrics", type=Path, help="metrics.parquet, or the --out folder of analyze/filter")
    report.add_argument("--out", required=True, type=Path, help="report folder")
    report.add_argument("--force", action="store_true", help="overwrite an existing report")
    report.add_argument("--corpus", nargs="+", metavar="INPUT",
                        help="the input of analyze/filter, for trace views (default: the files the metrics name)")
    report.add_argument("--group", default="source", metavar="FIELD",
                        help="field to split distributions by (default source; carry it with --field)")
    report.add_argument("--top", type=int, default=DEFAULT_TOP,
                        help=f"traces per table of extremes (default {DEFAULT_TOP})")
    _rule_options(report)
    # Listed here for --help; main() hands `profile` to its own parser, which
    # needs torch and transformers only when it runs.
    commands.add_parser("profile", add_help=False,
                        help="per-token loss of a causal LM on traces, aligned to steps (cotsieve profile --help)")
    demo = commands.add_parser("demo", help="generate a synthetic corpus, filter it, print the summary")
    demo.add_argument("--n", type=int, default=2000, help="traces to generate (default 2000)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", type=Path, help="folder for the corpus and outputs (default: a new temp folder)")
    demo.add_argument("--force", action="store_true", help="overwrite earlier demo outputs")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _text_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--text-field", default="text", metavar="PATH",
                   help="field or path holding the trace: text, reasoning_content, messages (last assistant "
                        "turn), messages[-1].content (default: text)")
    p.add_argument("--think", choices=THINK_MODES, default="auto",
                   help="auto: use only the <think>...</think> part when present; keep: whole text")
    p.add_argument("--patterns", default="default", metavar="NAME_OR_TOML",
                   help=f"pattern set: {', '.join(PatternSet.available())} or a .toml file")
    p.add_argument("--steps", choices=STEP_MODES, default="paragraph", help="step segmentation (default paragraph)")
    return p


def _reading_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False, parents=[_text_options()])
    p.add_argument("--threads", type=int, help="native threads (default: all cores)")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                   help="fail: stop at the first unusable record (exit 1); skip: write it to rejected.jsonl")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _output_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--field", action="append", default=[], dest="fields", metavar="NAME",
                   help="copy this record field into metrics.parquet (repeatable), e.g. id")
    return p


def _rule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", metavar="METRIC", help=f"metric to rank by; 'length' means {LENGTH_COLUMN}")
    share = p.add_mutually_exclusive_group()
    share.add_argument("--drop-top", metavar="SHARE", help="drop this share with the highest --by (10%% or 0.1)")
    share.add_argument("--drop-bottom", metavar="SHARE", help="drop this share with the lowest --by")
    p.add_argument("--per", metavar="FIELD", help="rank within each group of this field, e.g. source")
    p.add_argument("--where", "--rule", action="append", default=[], dest="rules", metavar="RULE",
                   help="extra rule (repeatable): 'METRIC OP NUMBER', 'drop-top 10%% METRIC [per FIELD]', "
                        "'step_count_ratio <= 1.5 vs SOURCE [problem FIELD] [source FIELD]'")


def rules_from_args(args: argparse.Namespace, required: bool = True) -> list[Rule]:
    """The rules the ``filter`` options ask for; ``ValueError`` if they make no sense."""
    rules = [parse_rule(spec) for spec in args.rules]
    share = args.drop_top or args.drop_bottom
    if bool(args.by) != bool(share):
        raise ValueError("--by and --drop-top/--drop-bottom go together")
    if args.per and not args.by:
        raise ValueError("--per needs --by and --drop-top/--drop-bottom")
    if args.by:
        column = LENGTH_COLUMN if args.by == "length" else args.by
        rules.insert(0, DropShare(column, parse_share(share), "top" if args.drop_top else "bottom", args.per))
    if not rules and required:
        raise ValueError("no rule given; use e.g. --by branch_step_ratio --drop-top 10% or --where 'METRIC <= X'")
    return rules


def options_from_args(args: argparse.Namespace) -> CurateOptions:
    if args.threads is not None and args.threads < 1:
        raise ValueError("--threads must be at least 1")
    return CurateOptions(
        text=TextSpec(args.text_field, args.think), patterns=PatternSet.load(args.patterns), steps=args.steps,
        fields=tuple(getattr(args, "fields", ())), threads=args.threads, on_error=args.on_error,
        force=getattr(args, "force", False), compression_level=getattr(args, "compression_level", None),
    )


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


def print_summary(summary: Summary) -> None:
    table = Table(title="cotsieve summary", show_header=False)
    for key in ("read", "kept", "dropped", "rejected"):
        table.add_row(key, f"{getattr(summary, key):,}")
    for rule in summary.rules:
        table.add_row(f"dropped by {rule['rule']}", f"{rule['dropped']:,}")
    for reason, count in summary.rejected_by_reason.items():
        table.add_row(f"rejected: {reason}", f"{count:,}")
    seconds = summary.seconds
    mb = summary.record_bytes / 1e6
    table.add_row("throughput", f"{mb:,.1f} MB in {seconds['total']:.2f} s = {mb / max(seconds['total'], 1e-9):,.0f} MB/s")
    out_console.print(table)
    ok = "[green]ok[/green]" if summary.balanced else "[red]MISMATCH[/red]"
    out_console.print(f"{summary.as_dict()['accounting']}  {ok}")
    for name, path in summary.outputs.items():
        out_console.print(f"  {name:9s} {path}")


def cmd_scan(args: argparse.Namespace) -> int:
    options = options_from_args(args)
    patterns: PatternSet = options.patterns  # type: ignore[assignment]
    matches = np.zeros(len(patterns.categories), np.int64)
    holding = np.zeros(len(patterns.categories), np.int64)
    read = rejected = text_bytes = 0
    with ProgressBar("scanning", args.quiet) as progress:
        for chunk in read_corpus(args.input, ReadOptions(options.text)):
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
    print_summary(summary)
    return EXIT_OK


def cmd_filter(args: argparse.Namespace) -> int:
    rules = rules_from_args(args)
    options = options_from_args(args)
    if args.report:
        require_matplotlib()  # before the run, not after it
    with ProgressBar("filtering", args.quiet) as progress:
        summary = filter_corpus(args.input, args.out, rules, options, progress)
    print_summary(summary)
    if args.report:
        _report(summary.outputs["metrics"], args.out / "report", args.input, rules, args.per or "source", options,
                args.force, DEFAULT_TOP)
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    rules = rules_from_args(args, required=False)
    options = CurateOptions(text=TextSpec(args.text_field, args.think), patterns=PatternSet.load(args.patterns),
                            steps=args.steps)
    if args.top < 1:
        raise ValueError("--top must be at least 1")
    _report(args.metrics, args.out, args.corpus, rules or None, args.group, options, args.force, args.top)
    return EXIT_OK


def _report(metrics: Any, out: Path, corpus: Any, rules: Optional[list[Rule]], group: str, options: CurateOptions,
            force: bool, top: int) -> None:
    """Write the report; ``rules=None`` takes those in the summary.json beside the metrics."""
    index = write_report(metrics, out, corpus=corpus, cuts=rules, group=group, text=options.text,
                         patterns=options.patterns, steps=options.steps, top=top, force=force)
    out_console.print(f"  report    {index}")


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

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


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; returns the exit code (see the module docstring).

    It tunes the process for streaming: glibc's malloc thresholds
    (``cotsieve._malloc``) and, unless pandas is imported already, pyarrow
    left without pandas (``cotsieve._pandas_probe``). A program that calls it
    and then hands pandas objects to pyarrow should import pandas first.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    hold_freed_memory()  # the streaming commands allocate a block at a time (see cotsieve._malloc)
    if argv[:1] == ["profile"]:
        from . import profile_cli

        return profile_cli.main(argv[1:])
    args = build_parser().parse_args(argv)
    if not reads_saved_dataset(args):
        skip_pandas_probe()  # see cotsieve._pandas_probe
    try:
        return COMMANDS[args.command](args)
    except OutputExistsError as err:
        return _fail(err, EXIT_OUTPUT_EXISTS)
    except MissingExtraError as err:
        return _fail(err, EXIT_USAGE)
    except (BadInputError, FileNotFoundError) as err:
        return _fail(err, EXIT_BAD_INPUT)
    except KeyError as err:
        return _fail(err.args[0] if err.args else err, EXIT_USAGE)
    except ValueError as err:
        return _fail(err, EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _fail(message: Any, code: int) -> int:
    err_console.print(f"error: {message}", highlight=False, markup=False, style="red", soft_wrap=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
