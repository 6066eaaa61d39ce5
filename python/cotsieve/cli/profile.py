"""``cotsieve profile``: per-token loss of a corpus under a causal LM, aligned
to reasoning steps (see ``docs/profiling.md``).

Writes four Parquet files into ``--out``: ``tokens.parquet`` (one row per
scored token), ``traces.parquet`` (one row per trace), ``labels.parquet`` (one
row per step label over the corpus) and ``trace_labels.parquet`` (one row per
trace and label).

Exit codes: 0 done, 1 unusable input, 2 bad usage, 3 outputs already exist
(use ``--force``) or another run holds ``--out``, 4 an output cannot be
written, 70 internal error, 130 interrupted (``cotsieve.cli.exit_codes``).

Example:
    >>> main(["traces.jsonl.zst", "--model", "/models/smollm2", "--gguf-file", "SmolLM2-135M-Instruct.Q4_1.gguf",
    ...       "--out", "profile/"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..analysis import STEP_MODES
from ..errors import BadInputError, OutputExistsError, UsageError
from ..io import EMPTY_LINE, THINK_MODES, Chunk, ReadOptions, Source, TextSpec, read_corpus, resolve_inputs
from ..io.outdir import OutputFolder
from ..io.writers import AtomicFile, commit_together
from ..profiling import (
    DEFAULT_BATCH_TOKENS,
    DEFAULT_MAX_TOKENS,
    ROUTINE_NLL,
    ProfileResult,
    load_model,
    profile,
    summarize,
)
from ..pipeline import record_ids
from .console import err_console
from .exit_codes import EXIT_OK, run_command
from .progress import StatusLine, profile_line

OUTPUT_NAMES = ("tokens", "traces", "labels", "trace_labels")
#: Per-token columns kept in memory for the corpus-wide label aggregates.
_LABEL_COLUMNS = ("label", "nll", "entropy", "top1", "marker")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cotsieve profile``."""
    parser = argparse.ArgumentParser(
        prog="cotsieve profile",
        description="Per-token NLL, entropy, top-1 and rank of every trace under a causal LM, "
                    "aligned to reasoning steps, written as Parquet.",
    )
    parser.add_argument("input", nargs="*", help="file(s), directory or glob of .jsonl[.gz|.zst] / .parquet")
    parser.add_argument("--data", nargs="+", metavar="INPUT", help="deprecated: give the inputs as arguments")
    parser.add_argument("--model", required=True, help="Hugging Face model name or local folder")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--gguf-file", help="GGUF checkpoint inside --model (or an absolute path)")
    parser.add_argument("--text-field", default="text",
                        help="field holding the trace, or a path such as 'messages[-1].content' (default: text)")
    parser.add_argument("--problem-field", help="field holding the prompt; scores the trace as the chat answer to it")
    parser.add_argument("--id-field", help="field used as trace_id (default: the record's position in the input)")
    parser.add_argument("--think", choices=THINK_MODES, default="auto",
                        help="auto (default): score only the <think>...</think> part when present; keep: the whole "
                             "text")
    parser.add_argument("--limit", type=int, metavar="N", help="profile only the first N records")
    parser.add_argument("--patterns", default="default", help="pattern set name or TOML path (default: default)")
    parser.add_argument("--steps", choices=STEP_MODES, default="paragraph", help="step mode (default: paragraph)")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                        help=f"longest model input, prompt included; longer inputs lose their end and are "
                             f"flagged 'truncated' (default: {DEFAULT_MAX_TOKENS})")
    parser.add_argument("--batch-tokens", type=int, default=DEFAULT_BATCH_TOKENS,
                        help=f"padded tokens per forward pass (default: {DEFAULT_BATCH_TOKENS})")
    parser.add_argument("--routine-nll", type=float, default=ROUTINE_NLL,
                        help=f"tokens below this NLL in nats are routine (default: {ROUTINE_NLL})")
    parser.add_argument("--device", help="torch device (default: cuda when present, else cpu)")
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                        help="model dtype (default: float32 on cpu, bfloat16 on cuda)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress line, and no loading bars or messages from transformers")
    parser.add_argument("--progress", action="store_true",
                        help="show the progress line even when stderr is not a terminal (a line every few seconds)")
    return parser


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """The arguments of ``cotsieve profile``; ``--data`` is an old spelling of
    the positional inputs, still taken, with a warning."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data:
        err_console.print("warning: --data is deprecated and goes in a later release; give the inputs as "
                          "arguments: cotsieve profile INPUT... --model ...", highlight=False, markup=False,
                          soft_wrap=True)
    args.input = [*args.input, *(args.data or [])]
    if not args.input:
        parser.error("give at least one input")  # exits 2, as every usage error
    return args


class _TracesAndTokens:
    """The progress line of ``profile``: traces done and tokens/s since the start."""

    def __init__(self, status: StatusLine):
        self.status, self.started = status, time.perf_counter()
        self.traces = self.tokens = 0

    def add(self, traces: int = 0, tokens: int = 0) -> None:
        self.traces += traces
        self.tokens += tokens
        self.status.show(self.line())

    def line(self) -> str:
        return profile_line(self.traces, self.tokens, time.perf_counter() - self.started)


@contextlib.contextmanager
def _loading(quiet: bool) -> Iterator[None]:
    """Load the model without transformers' progress bars and messages under
    ``quiet``: its GGUF de-quantising bar is a bare ``tqdm`` on stderr."""
    if not quiet:
        yield
        return
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]  # transformers leaves these unannotated
    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        with open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()  # type: ignore[no-untyped-call]


def _planned_outputs(out: Path, force: bool) -> dict[str, AtomicFile]:
    """The four outputs as files that appear only on commit; refuses existing ones without ``force``."""
    paths = {name: out / f"{name}.parquet" for name in OUTPUT_NAMES}
    for path in paths.values():
        if path.is_dir():
            raise OutputExistsError(f"{path} is a folder where an output file goes; move it away")
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not force:
        raise OutputExistsError(f"outputs exist (use --force): {', '.join(existing)}")
    return {name: AtomicFile(path) for name, path in paths.items()}


def _check_model_path(args: argparse.Namespace) -> None:
    """A model named by a path that does not exist is refused before the
    minute-long load; a name without a path's look goes to the loader."""
    model = Path(args.model).expanduser()
    looks_like_path = args.model.startswith(("/", "./", "../", "~")) or model.exists()
    if looks_like_path and not model.exists():
        raise UsageError(f"--model {args.model}: no such file or folder")
    if args.gguf_file and Path(args.gguf_file).is_absolute() and not Path(args.gguf_file).is_file():
        raise UsageError(f"--gguf-file {args.gguf_file}: no such file")
    if args.gguf_file and not Path(args.gguf_file).is_absolute() and model.is_dir() \
            and not (model / args.gguf_file).is_file():
        raise UsageError(f"--gguf-file {args.gguf_file}: not in {args.model}")


def _usable_rows(chunk: Chunk, wanted: Optional[int] = None) -> np.ndarray:
    """Rows of a chunk that hold a record, the first ``wanted`` of them (all
    when None); blank JSONL lines are skipped, any other unusable record is an
    error that names it. Rows after the wanted ones are not looked at, so a
    bad record past ``--limit`` does not stop the run."""
    rows: list[int] = []
    for i, reason in enumerate(chunk.reasons.to_pylist()):
        if wanted is not None and len(rows) == wanted:
            break
        if reason is None:
            rows.append(i)
        elif reason != EMPTY_LINE:
            raise BadInputError(f"{chunk.locate(i)}: {reason}")
    return np.array(rows, dtype=np.int64)


def _field_values(chunk: Chunk, name: str, rows: np.ndarray) -> list[str]:
    values: list[str] = chunk.fields.column(name).take(pa.array(rows)).to_pylist()
    for row, value in zip(rows.tolist(), values):
        if value is None:
            raise BadInputError(f"{chunk.locate(row)}: missing field {name!r}")
    return values


def _profiled_chunks(args: argparse.Namespace, sources: list[Source], model: Any, tokenizer: Any,
                     on_tokens: Any) -> Iterator[ProfileResult]:
    """Profile the corpus a chunk at a time, up to ``--limit`` records; each
    result's ``traces`` gains the ``record_id`` of ``metrics.parquet``."""
    fields = tuple(f for f in (args.problem_field, args.id_field) if f)
    options = ReadOptions(text=TextSpec(args.text_field, think=args.think), fields=fields)
    n_records = 0
    for chunk in read_corpus(sources, options):
        rows = _usable_rows(chunk, None if args.limit is None else args.limit - n_records)
        texts = chunk.texts.take(pa.array(rows)).to_pylist()
        problems = _field_values(chunk, args.problem_field, rows) if args.problem_field else None
        ids = _field_values(chunk, args.id_field, rows) if args.id_field \
            else list(range(n_records, n_records + len(rows)))
        n_records += len(rows)
        if texts:
            result = profile(model, tokenizer, texts, problems, ids, patterns=args.patterns, steps=args.steps,
                             max_tokens=args.max_tokens, batch_tokens=args.batch_tokens,
                             routine_nll=args.routine_nll, on_tokens=on_tokens)
            traces = result.traces.add_column(1, "record_id", record_ids(chunk, rows).column("record_id"))
            yield ProfileResult(result.tokens, traces, result.labels, result.trace_labels)
        if n_records == args.limit:
            return


def run(args: argparse.Namespace) -> dict[str, Path]:
    """Profile the corpus named by ``args`` and write the four Parquet files.

    Per-token rows are streamed to ``tokens.parquet`` chunk by chunk; the label
    aggregates keep five narrow columns (about 14 bytes per token) in memory.
    The four files appear together at the end, or not at all (a bad record,
    Ctrl-C), and the output folder is held against a second run meanwhile.
    """
    if args.max_tokens < 2 or args.batch_tokens < 1:
        raise UsageError("--max-tokens must be at least 2 and --batch-tokens at least 1")
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    _check_model_path(args)
    sources = resolve_inputs(args.input)  # a missing input stops the run before the model loads
    with OutputFolder(args.out):
        files = _planned_outputs(args.out, args.force)
        commit_together(list(files.values()), lambda: _write_profile(args, sources, files))
    return {name: file.path for name, file in files.items()}


def _write_profile(args: argparse.Namespace, sources: list[Source], files: dict[str, AtomicFile]) -> None:
    with _loading(args.quiet):
        model, tokenizer = load_model(args.model, args.gguf_file, args.device, args.dtype)
    traces, trace_labels, label_parts = [], [], []
    writer: Optional[pq.ParquetWriter] = None
    started = time.perf_counter()
    status = StatusLine(args.quiet, args.progress)
    progress = _TracesAndTokens(status)
    try:
        for result in _profiled_chunks(args, sources, model, tokenizer, lambda n: progress.add(tokens=n)):
            writer = writer or pq.ParquetWriter(str(files["tokens"].temp), result.tokens.schema)
            writer.write_table(result.tokens)
            traces.append(result.traces)
            trace_labels.append(result.trace_labels)
            label_parts.append(result.tokens.select(list(_LABEL_COLUMNS)))
            progress.add(traces=result.traces.num_rows)
    finally:
        if writer is not None:
            writer.close()
        status.close(progress.line())
    if writer is None:
        raise BadInputError(f"no records in {' '.join(args.input)}")
    pq.write_table(pa.concat_tables(traces), str(files["traces"].temp))
    pq.write_table(pa.concat_tables(trace_labels), str(files["trace_labels"].temp))
    pq.write_table(summarize(pa.concat_tables(label_parts), "label", args.routine_nll), str(files["labels"].temp))
    if not args.quiet:
        n_tokens = sum(t.num_rows for t in label_parts)
        err_console.print(f"{n_tokens:,} tokens from {sum(t.num_rows for t in traces):,} traces "
                          f"in {time.perf_counter() - started:.1f} s -> {args.out}", soft_wrap=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``cotsieve profile``; returns the exit code (see the module docstring)."""
    args = parse_args(argv)
    return run_command(lambda: _run_to_exit_code(args))


def _run_to_exit_code(args: argparse.Namespace) -> int:
    run(args)
    return EXIT_OK
