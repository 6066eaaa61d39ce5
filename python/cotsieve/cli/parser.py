"""The ``cotsieve`` argument parser, and the rules and options its arguments ask for."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import version
from pathlib import Path
from typing import NoReturn, Union

from ..analysis import STEP_MODES
from ..errors import UsageError
from ..io import FORMATS, THINK_MODES, Selection, TextSpec
from ..io.locations import is_url, local_path
from ..patterns import MAX_THREADS, PatternSet
from ..pipeline import KEPT_FORMATS, CurateOptions
from ..report import DEFAULT_TOP
from ..rules import LENGTH_COLUMN, TIE_KEY, TIES, DropShare, Rule, RuleSet, parse_rule, parse_share
from .console import err_console
from .exit_codes import EXIT_USAGE

SHELLS = ("bash", "zsh", "fish")

EXAMPLES = """\
examples:
  cotsieve scan traces.jsonl.gz
  cotsieve scan 'shards/*.parquet' --json > markers.json
  cotsieve analyze 'shards/*.parquet' --out metrics/
  cotsieve filter traces.jsonl.gz --out curated/ --by branch_step_ratio --drop-top 10% --per source
  cotsieve filter traces.jsonl.zst --out curated/ --where 'branch_step_ratio <= 0.3' --where 'repetition < 0.5'
  cotsieve filter data/ --out curated/ --rule 'step_count_ratio <= 1.5 vs gpt-oss' --text-field 'messages'
  cotsieve filter traces.jsonl.gz --out curated/ --field source --by branch_step_ratio --drop-top 10% --report
  cotsieve report curated/ --out report/
  cotsieve profile traces.jsonl --model SmolLM2 --gguf-file model.gguf --out loss/
  cotsieve demo --n 2000
  cotsieve completion bash > ~/.local/share/bash-completion/completions/cotsieve

exit codes: 0 ok, 1 bad input, 2 usage error (also: report without matplotlib), 3 output exists (use --force),
70 internal error (a bug), 130 interrupted
"""


INPUT_HELP = ("file(s), directory, glob or URL (s3://, gs://, hf://, https://, ...) of .jsonl/.ndjson/.json "
              "[.gz|.zst|.bz2|.xz] or .parquet; - reads standard input")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse exits 2 too; keep its message, add the hint
        self.print_usage(sys.stderr)
        err_console.print(f"[red]error:[/red] {message} (see --help)", soft_wrap=True)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cotsieve", description="Curate and profile long chain-of-thought corpora.",
                     epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"cotsieve {version('cotsieve')}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    reading = _reading_options(SKIP_LISTED)
    scan = commands.add_parser("scan", parents=[_reading_options(SKIP_COUNTED)],
                               help="count markers per category and print a table (or --json, --csv)",
                               epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    scan.add_argument("input", nargs="+", help=INPUT_HELP)
    printed = scan.add_mutually_exclusive_group()
    printed.add_argument("--json", dest="print_as", action="store_const", const="json", default="table",
                         help="print the counts as one JSON object on stdout instead of the table")
    printed.add_argument("--csv", dest="print_as", action="store_const", const="csv",
                         help="print the table as CSV on stdout, one row per category")
    analyze = commands.add_parser("analyze", parents=[reading, _output_options()], help="write per-trace metrics",
                                  epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    analyze.add_argument("input", nargs="+", help=INPUT_HELP)
    filt = commands.add_parser("filter", parents=[reading, _output_options()], help="write metrics and the kept corpus",
                               epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    filt.add_argument("input", nargs="+", help=INPUT_HELP)
    filt.add_argument("--kept-format", choices=KEPT_FORMATS, default="same",
                      help="same: the kept corpus in the input's format (default); parquet: as Parquet whatever "
                           "came in")
    filt.add_argument("--compression-level", type=int, help="gzip/zstd level of the kept corpus (default 1 / 3)")
    filt.add_argument("--report", action="store_true",
                      help="also write a visual report to OUT/report/ (needs pip install 'cotsieve[report]')")
    _rule_options(filt)
    report = commands.add_parser("report", parents=[_text_options()], help="write an HTML report with figures",
                                 epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    report.add_argument("metrics", type=Path, help="metrics.parquet, or the --out folder of analyze/filter")
    report.add_argument("--out", required=True, type=out_location, help="report folder (local)")
    report.add_argument("--force", action="store_true", help="overwrite an existing report")
    report.add_argument("--corpus", nargs="+", metavar="INPUT",
                        help="the input of analyze/filter, for trace views (default: the files the metrics name)")
    report.add_argument("--group", default="source", metavar="FIELD",
                        help="field to split distributions by (default source; carry it with --field)")
    report.add_argument("--top", type=int, default=DEFAULT_TOP,
                        help=f"traces per table of extremes (default {DEFAULT_TOP})")
    report.add_argument("--quiet", action="store_true", help="no progress lines")
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
    _add_summary_json(demo)
    _add_progress_options(demo)
    completion = commands.add_parser("completion", help="print a shell completion script (bash, zsh or fish)",
                                     description="Print a completion script for the shell; see docs/cli.md.")
    completion.add_argument("shell", choices=SHELLS)
    return parser


def _text_options() -> _Parser:
    p = _Parser(add_help=False)
    p.add_argument("--text-field", default="text", metavar="PATH",
                   help="field or path holding the trace: text, reasoning_content, messages (last assistant "
                        "turn), messages[-1].content (default: text)")
    p.add_argument("--think", choices=THINK_MODES, default="auto",
                   help="auto: use only the <think>...</think> part when present; keep: whole text")
    p.add_argument("--patterns", default="default", metavar="NAME_OR_TOML",
                   help=f"pattern set: {', '.join(PatternSet.available())} or a .toml file")
    p.add_argument("--steps", choices=STEP_MODES, default="paragraph", help="step segmentation (default paragraph)")
    return p


# What --on-error skip does with an unusable record, per command.
SKIP_LISTED = "list it in OUT/rejected.jsonl with its reason"
SKIP_COUNTED = "count it as rejected (in the table's title; --json counts each reason; no file is written)"


def _reading_options(skipped: str) -> _Parser:
    p = _Parser(add_help=False, parents=[_text_options()])
    p.add_argument("--threads", type=int, help="native threads (default: all cores)")
    p.add_argument("--on-error", choices=("fail", "skip"), default="fail",
                   help=f"fail: stop at the first unusable record (exit 1); skip: {skipped}, and go on")
    _add_progress_options(p)
    p.add_argument("--format", choices=FORMATS, help="read every input as this format, whatever its name says "
                                                     "(default: from the name; - and pipes: from the first bytes)")
    p.add_argument("--limit", type=int, metavar="N", help="read only the first N records")
    p.add_argument("--sample", type=int, metavar="N",
                   help="read a uniform sample of N records, the same for the same --seed (docs/cli.md)")
    p.add_argument("--seed", type=int, metavar="S", help="seed of --sample (default 0)")
    return p


def _add_progress_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.add_argument("--progress", action="store_true",
                   help="show the progress line even when stderr is not a terminal (a line every few seconds)")


def _add_summary_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--summary-json", metavar="PATH",
                   help="also write the run's summary.json to PATH; '-' writes it to stdout, and the "
                        "summary table goes to stderr")


def _output_options() -> _Parser:
    p = _Parser(add_help=False)
    p.add_argument("--out", required=True, type=out_location,
                   help="output folder, or a URL of one (s3://bucket/run/, uploaded when the run is done)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--field", action="append", default=[], dest="fields", metavar="NAME",
                   help="copy this record field into metrics.parquet (repeatable), e.g. id")
    p.add_argument("--shards-at-once", type=int, metavar="N",
                   help="read N JSON Lines shards at once (default: one per 8 threads for gzip, zstd and plain "
                        "files, per 2 for xz, per thread for bz2); the outputs keep the "
                        "inputs' order. Inputs are read one after another under --limit, --sample, Parquet "
                        "inputs and --kept-format parquet")
    _add_summary_json(p)
    return p


def _rule_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", metavar="METRIC", help=f"metric to rank by; 'length' means {LENGTH_COLUMN}")
    share = p.add_mutually_exclusive_group()
    share.add_argument("--drop-top", metavar="SHARE", help="drop this share with the highest --by (10%% or 0.1)")
    share.add_argument("--drop-bottom", metavar="SHARE", help="drop this share with the lowest --by")
    p.add_argument("--per", metavar="FIELD", help="rank within each group of this field, e.g. source")
    p.add_argument("--ties", choices=TIES, default="split",
                   help="records tied at a percentile cutoff: 'split' (default) drops exactly the share asked, "
                        "the tied taken in the order of a hash of their record_id; 'keep' never splits a tie "
                        "and may drop fewer")
    p.add_argument("--tie-key", metavar="FIELD", default=TIE_KEY,
                   help="field whose hash orders records tied at a percentile cutoff (default: record_id, the "
                        "record's file:line); a record id field keeps the choice when files move")
    p.add_argument("--where", "--rule", action="append", default=[], dest="rules", metavar="RULE",
                   help="extra rule (repeatable): 'METRIC OP NUMBER', 'drop-top 10%% METRIC [per FIELD]', "
                        "'step_count_ratio <= 1.5 vs SOURCE [problem FIELD] [source FIELD]'")


def out_location(text: str) -> Union[Path, str]:
    """An ``--out`` argument: a local folder as a ``Path`` (a ``file://`` URL
    too), any other URL as the string (a ``Path`` would fold its ``//``)."""
    return text if is_url(text) else Path(local_path(text))


def selection_from_args(args: argparse.Namespace) -> Selection:
    """The records ``--limit``, ``--sample`` and ``--seed`` ask for."""
    if args.seed is not None and args.sample is None:
        raise UsageError("--seed goes with --sample N")
    return Selection(args.limit, args.sample, args.seed or 0)


def rules_from_args(args: argparse.Namespace, required: bool = True) -> list[Rule]:
    """The rules the ``filter`` options ask for; ``UsageError`` if they make no sense."""
    rules = [parse_rule(spec) for spec in args.rules]
    share = args.drop_top or args.drop_bottom
    if bool(args.by) != bool(share):
        raise UsageError("--by and --drop-top/--drop-bottom go together")
    if args.per and not args.by:
        raise UsageError("--per needs --by and --drop-top/--drop-bottom")
    if args.by:
        column = LENGTH_COLUMN if args.by == "length" else args.by
        rules.insert(0, DropShare(column, parse_share(share), "top" if args.drop_top else "bottom", args.per))
    # The flags set what a percentile rule leaves at its default; a rule's own
    # "tie-key"/"ties" wins.
    rules = list(RuleSet(rules).with_tie_key(args.tie_key).with_ties(args.ties).rules)
    if not rules and required:
        raise UsageError("no rule given; use e.g. --by branch_step_ratio --drop-top 10% or --where 'METRIC <= X'")
    return rules


def options_from_args(args: argparse.Namespace) -> CurateOptions:
    """The curation options of a ``scan``, ``analyze`` or ``filter`` command line."""
    if args.threads is not None and not 1 <= args.threads <= MAX_THREADS:
        raise UsageError(f"--threads must be from 1 to {MAX_THREADS}, got {args.threads}")
    shards = getattr(args, "shards_at_once", None)
    if shards is not None and shards < 1:
        raise UsageError(f"--shards-at-once must be at least 1, got {shards}")
    return CurateOptions(
        text=TextSpec(args.text_field, args.think), patterns=PatternSet.load(args.patterns), steps=args.steps,
        fields=tuple(getattr(args, "fields", ())), threads=args.threads, on_error=args.on_error,
        force=getattr(args, "force", False), compression_level=getattr(args, "compression_level", None),
        input_format=args.format, kept_format=getattr(args, "kept_format", "same"), select=selection_from_args(args),
        shards_at_once=shards,
    )
