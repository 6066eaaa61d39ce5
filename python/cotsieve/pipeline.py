"""The curation pipeline: read -> extract text -> analyze -> rules -> write.

``analyze_corpus`` writes per-trace metrics; ``filter_corpus`` also writes the
kept corpus. Both stream bounded chunks, write every output atomically, and
account for every record: ``kept + dropped + rejected == read``. Rules that
need the whole corpus (percentiles, Proxy 1) take two passes: the first
writes the metrics, the second copies the kept records. See
``docs/curation.md``.

Example:
    >>> import json, os, tempfile
    >>> from cotsieve.rules import parse_rule
    >>> folder = tempfile.mkdtemp()
    >>> corpus = os.path.join(folder, "in.jsonl")
    >>> with open(corpus, "w") as f:
    ...     for t in ["x = 1.", "Alternatively, x = 2.", "Perhaps 3?\\n\\nAnother idea."]:
    ...         _ = f.write(json.dumps({"text": t}) + "\\n")
    >>> s = filter_corpus(corpus, os.path.join(folder, "out"), [parse_rule("branch_step_ratio <= 0.5")])
    >>> s.read, s.kept, s.dropped, s.rejected
    (3, 1, 2, 0)
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter, deque
from collections.abc import Generator, Sequence
from contextlib import closing, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .analysis import Analyzer, analyzer_for
from .errors import OutputExistsError, UsageError
from .io import EMPTY_LINE, BadInputError, Chunk, ReadOptions, Selection, Source, TextSpec, arrow_schema, \
    input_state, prefetched, read_corpus, reread_streams, resolve_inputs, shard_lanes
from .io.chunks import null_fields
from .io.kept_parquet import JsonlAsParquetWriter
from .io.staged import output_folder
from .io.writers import AtomicFile, JsonlKeptWriter, MetricsPart, MetricsWriter, ParquetKeptWriter, RejectedWriter, \
    WriteBehind, commit_together, write_json
from .patterns import PatternSet, suggest
from .progress import Progress, RunProgress, run_progress
from .rules import TIE_KEY, Rule, RuleSet

ON_ERROR = ("fail", "skip")
KEPT_FORMATS = ("same", "parquet")
# bz2 and xz are read, but written ten to a hundred times slower than zstd:
# the kept corpus of such an input is zstd.
KEPT_COMPRESSION = {None: None, "gzip": "gzip", "zstd": "zstd", "bz2": "zstd", "xz": "zstd"}
_ORDINAL = "_ordinal"
_SHARD = "_shard"
T = TypeVar("T")
# Columns of metrics.parquet that the pipeline itself writes, beside the metrics.
ID_COLUMNS = ("record_id", "file", "row")
DECISION_COLUMNS = ("kept", "drop_reason")


@dataclass(frozen=True)
class CurateOptions:
    """Options shared by ``analyze_corpus`` and ``filter_corpus``.

    ``fields`` are record fields copied (as strings) into ``metrics.parquet``
    next to the metrics; fields the rules group by are added automatically.
    ``on_error="fail"`` stops at the first unusable record (empty lines
    excepted) and writes nothing; ``"skip"`` records it in ``rejected.jsonl``.
    ``compression_level`` applies to a gzip/zstd kept corpus. ``threads``
    (None: every core) runs the engine and the kept corpus's compressors,
    and half of them, at most 4, parse JSON Lines blocks (:func:`parse_threads`).
    ``input_format`` (``"jsonl"``/``"parquet"``) overrides what input names
    say; ``kept_format="parquet"`` writes the kept corpus as Parquet whatever
    came in (``"same"``: in the input's format). ``select`` reads only the
    first records, or a sample of them (:class:`~cotsieve.io.Selection`).
    ``shards_at_once`` JSON Lines shards are read at once (None: as many as
    the threads keep busy, :func:`shards_at_once`); the outputs keep the
    inputs' order.
    """

    text: TextSpec = TextSpec()
    patterns: Union[str, PatternSet] = "default"
    steps: str = "paragraph"
    fields: tuple[str, ...] = ()
    threads: Optional[int] = None
    on_error: str = "fail"
    force: bool = False
    compression_level: Optional[int] = None
    block_bytes: int = 16 << 20
    input_format: Optional[str] = None
    kept_format: str = "same"
    select: Selection = Selection()
    shards_at_once: Optional[int] = None

    def __post_init__(self) -> None:
        if self.shards_at_once is not None and self.shards_at_once < 1:
            raise ValueError(f"shards_at_once must be at least 1, got {self.shards_at_once}")
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {list(ON_ERROR)}, got {self.on_error!r}")
        if self.kept_format not in KEPT_FORMATS:
            raise ValueError(f"kept_format must be one of {list(KEPT_FORMATS)}, got {self.kept_format!r}")


@dataclass
class Summary:
    """Counts and timings of one run; ``kept + dropped + rejected == read``."""

    inputs: list[str]
    read: int = 0
    kept: int = 0
    dropped: int = 0
    rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    dropped_by_rule: dict[str, int] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    record_bytes: int = 0
    text_bytes: int = 0
    passes: int = 1
    seconds: dict[str, float] = field(default_factory=lambda: {"read": 0.0, "engine": 0.0, "write": 0.0})
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        return self.kept + self.dropped + self.rejected == self.read

    @property
    def nothing_usable(self) -> bool:
        """Whether the run read records and rejected every one of them."""
        return bool(self.read) and self.rejected == self.read

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "accounting": f"{self.kept} kept + {self.dropped} dropped + {self.rejected} "
                                              f"rejected == {self.read} read", "balanced": self.balanced}


# ---------------------------------------------------------------- outputs


@dataclass(frozen=True)
class OutputPaths:
    kept: Optional[Path]
    rejected: Path
    metrics: Path
    summary: Path

    def all(self) -> list[Path]:
        return [p for p in (self.kept, self.rejected, self.metrics, self.summary) if p is not None]


def kept_name(sources: Sequence[Source], kept_format: str = "same") -> str:
    """``kept.jsonl``, ``kept.jsonl.gz``, ``kept.jsonl.zst`` or ``kept.parquet``, after the first input
    (``kept.parquet`` whatever it is under ``kept_format="parquet"``)."""
    first = sources[0]
    if first.kind != "jsonl" or kept_format == "parquet":
        return "kept.parquet"
    return {None: "kept.jsonl", "gzip": "kept.jsonl.gz", "zstd": "kept.jsonl.zst"}[KEPT_COMPRESSION[first.compression]]


def plan_outputs(out_dir: Union[str, Path], sources: Sequence[Source], with_kept: bool, force: bool,
                 kept_format: str = "same") -> OutputPaths:
    """Output paths inside ``out_dir``; refuses to touch an input, or an existing output without ``force``."""
    folder = Path(out_dir)
    kept = folder / kept_name(sources, kept_format) if with_kept and sources else None
    paths = OutputPaths(kept, folder / "rejected.jsonl", folder / "metrics.parquet", folder / "summary.json")
    inputs = {Path(s.name).resolve() for s in sources if s.kind != "dataset"}
    for path in paths.all():
        if path.resolve() in inputs:
            raise OutputExistsError(f"{path} is an input; choose another --out directory")
        if path.is_dir():  # --force replaces files, never a folder and what it holds
            raise OutputExistsError(f"{path} is a folder where an output file goes; move it away")
        if path.exists() and not force:
            raise OutputExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
    return paths


def reserved_columns(analyzer: Optional[Analyzer] = None) -> frozenset[str]:
    """The column names the pipeline writes itself: ids, decisions, the
    two-pass ordinal and every metric of ``analyzer`` (the default one when
    None). A carried field or a rule's group field may not take one of them.

    Example:
        >>> {"record_id", "kept", "branch_step_ratio"} <= reserved_columns()
        True
    """
    metrics = (analyzer or analyzer_for()).schema.names
    return frozenset((*ID_COLUMNS, *DECISION_COLUMNS, _SHARD, _ORDINAL, *metrics))


def check_field_names(fields: Sequence[str], analyzer: Analyzer) -> None:
    """Refuse a carried field named like a column the pipeline writes: it would
    overwrite the record's id, its decision or a metric in ``metrics.parquet``."""
    taken = reserved_columns(analyzer)
    clashes = [name for name in fields if name in taken]
    if clashes:
        raise UsageError(f"field(s) {clashes} are reserved: metrics.parquet already has a column of that name "
                         f"(reserved: {', '.join(ID_COLUMNS + DECISION_COLUMNS)}, {_SHARD}, {_ORDINAL} and every "
                         f"metric); "
                         f"carry another field, or rename it in the records")


class Outputs:
    """The writers of one run; their ``files`` commit together (``commit_together``)."""

    def __init__(self, paths: OutputPaths, sources: Sequence[Source], options: CurateOptions):
        self.paths = paths
        # First, because merging Parquet schemas can fail, and it fails before any file is created.
        self.kept = _kept_writer(paths.kept, sources, options) if paths.kept else None
        self.metrics = MetricsWriter(paths.metrics)
        self.rejected = RejectedWriter(paths.rejected)
        self.files = [w.file for w in (self.rejected, self.metrics, self.kept) if w is not None]

    def close(self, empty_metrics: pa.Table) -> None:
        self.rejected.close()
        self.metrics.close(empty_metrics)
        if self.kept is not None:
            self.kept.close()


_KeptWriter = Union[JsonlKeptWriter, ParquetKeptWriter, JsonlAsParquetWriter]


def _kept_writer(path: Path, sources: Sequence[Source], options: CurateOptions) -> _KeptWriter:
    if sources[0].kind != "jsonl":
        return ParquetKeptWriter(path, _unified_schema(sources))
    if options.kept_format == "parquet":
        return JsonlAsParquetWriter(path)
    return JsonlKeptWriter(path, KEPT_COMPRESSION[sources[0].compression], options.compression_level, options.threads)


def _unified_schema(sources: Sequence[Source]) -> pa.Schema:
    schemas = [arrow_schema(s) for s in sources]
    try:
        return pa.unify_schemas(schemas, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
        names = ", ".join(s.name for s in sources)
        raise BadInputError(f"the schemas of {names} cannot be merged into one kept Parquet file: {err}") from None


# ---------------------------------------------------------------- steps


# Blocks of one file framed and parsed at once. One parse thread limits a run
# past about 4 cores; on fewer, every core is busy anyway and a second block
# in work would only hold memory (16 MiB and its decoded texts), so a run
# parses on half its threads, at most 4 (benchmarks/RESULTS.md, issue 23).
MAX_PARSE_THREADS = 4


def parse_threads(threads: Optional[int]) -> int:
    """The blocks of one JSON Lines file parsed at once for a run on ``threads``
    native threads (None: every core).

    Example:
        >>> parse_threads(2), parse_threads(4), parse_threads(64)
        (1, 2, 4)
    """
    return max(1, min((threads or os.cpu_count() or 1) // 2, MAX_PARSE_THREADS))


# The threads one shard's reader keeps busy: its decoder's cost per GB plus
# the other stages' (about 4.3 CPU s per GB of records), over the decoder's.
# ISA-L inflates at about 1.6 GB/s on one core and zstd faster: about 8
# (one shard's parse threads, at most 4, keep about as many busy for plain
# JSON Lines); xz decodes at about 190 MB/s: 2; bz2 at about 37 MB/s: 1
# (benchmarks/RESULTS.md, issue 23).
THREADS_PER_SHARD = {None: 8, "gzip": 8, "zstd": 8, "xz": 2, "bz2": 1}


def shards_at_once(options: CurateOptions, sources: Sequence[Source]) -> int:
    """How many shards a run reads at once: ``options.shards_at_once``, or
    its threads over those one shard keeps busy (``THREADS_PER_SHARD``, by
    the slowest codec among the inputs), at most one per input. A run reads
    its inputs one after another where order is the point: ``select`` (the
    first N, a sample: counted across the inputs in order), an input that is
    not JSON Lines, or a kept corpus in Parquet.

    Example:
        >>> gz = [Source(f"{i}.jsonl.gz", "jsonl", "gzip") for i in range(8)]
        >>> shards_at_once(CurateOptions(threads=32), gz), shards_at_once(CurateOptions(threads=2), gz)
        (4, 1)
        >>> bz2 = [Source(f"{i}.jsonl.bz2", "jsonl", "bz2") for i in range(8)]
        >>> shards_at_once(CurateOptions(threads=2), bz2), shards_at_once(CurateOptions(shards_at_once=3), gz)
        (2, 3)
    """
    per_shard = min((THREADS_PER_SHARD.get(s.compression, 1) for s in sources), default=1)
    wanted = options.shards_at_once or (options.threads or os.cpu_count() or 1) // per_shard
    in_order = options.select != Selection() or options.kept_format != "same" or \
        any(s.kind != "jsonl" for s in sources)
    return 1 if in_order else max(1, min(wanted, len(sources)))


def check_rejects(chunk: Chunk, on_error: str) -> None:
    """Under ``on_error="fail"``, raise on the chunk's first unusable record (not an empty line)."""
    if on_error == "skip" or chunk.reasons.null_count == len(chunk):
        return
    for i, reason in enumerate(chunk.reasons.to_pylist()):
        if reason is not None and reason != EMPTY_LINE:
            raise BadInputError(f"{chunk.locate(i)}: {reason} (use --on-error=skip to set such records aside)")


def record_ids(chunk: Chunk, rows: np.ndarray) -> pa.Table:
    """``record_id`` (``file:line``, 1-based, for JSONL; ``file#row``, 0-based, otherwise), ``file``, ``row``."""
    absolute = chunk.row_numbers(rows)
    jsonl = chunk.source.kind == "jsonl"
    shown = pc.cast(pa.array(absolute + 1 if jsonl else absolute), pa.string())
    separator = ":" if jsonl else "#"
    ids = pc.binary_join_element_wise(chunk.source.name + separator, shown, "")
    return pa.table({"record_id": ids, "file": pa.repeat(chunk.source.name, len(rows)), "row": pa.array(absolute)})


def measure(chunk: Chunk, analyzer: Analyzer, options: CurateOptions, fields: Sequence[str]) -> pa.Table:
    """Metrics of the chunk's usable records, with their ids and carried fields."""
    ok = chunk.ok
    rows = np.flatnonzero(ok)
    texts = chunk.texts if len(rows) == len(chunk) else chunk.texts.filter(pa.array(ok))
    metrics = analyzer.analyze(texts, options.threads)
    carried = chunk.fields.select(list(fields)).filter(pa.array(ok))
    columns = {**_columns(record_ids(chunk, rows)), **_columns(carried), **_columns(metrics)}
    return pa.table(columns)


def _columns(table: pa.Table) -> dict[str, pa.ChunkedArray]:
    return dict(zip(table.column_names, table.columns))


def _with_decision(metrics: pa.Table, drop: np.ndarray, reasons: pa.Array) -> pa.Table:
    return metrics.append_column("kept", pa.array(~drop)).append_column("drop_reason", reasons)


# Stages are timed from the reader, engine and writer threads at once.
_SECONDS_LOCK = threading.Lock()


def _add_seconds(summary: Summary, stage: str, seconds: float) -> None:
    _add_to(summary.seconds, stage, seconds)


def _add_to(seconds: dict[str, float], stage: str, value: float) -> None:
    with _SECONDS_LOCK:
        seconds[stage] += value


class _Clock:
    def __init__(self, seconds: dict[str, float], stage: str):
        self.seconds, self.stage = seconds, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        _add_to(self.seconds, self.stage, time.perf_counter() - self.start)


# ---------------------------------------------------------------- runs


def analyze_corpus(inputs: Any, out_dir: Union[str, Path], options: CurateOptions = CurateOptions(),
                   progress: Optional[Progress] = None) -> Summary:
    """Write ``metrics.parquet``, ``rejected.jsonl`` and ``summary.json`` for a corpus.

    ``inputs``: a path, directory, glob, list of those, or a ``datasets.Dataset``.
    """
    return _run(inputs, out_dir, RuleSet(), options, progress, with_kept=False)


def filter_corpus(inputs: Any, out_dir: Union[str, Path], rules: Union[RuleSet, Sequence[Rule]],
                  options: CurateOptions = CurateOptions(), progress: Optional[Progress] = None) -> Summary:
    """Like ``analyze_corpus``, and also write the kept corpus (``kept.*``) in
    the input's format; ``metrics.parquet`` gains ``kept`` and ``drop_reason``."""
    return _run(inputs, out_dir, rules if isinstance(rules, RuleSet) else RuleSet(rules), options, progress,
                with_kept=True)


def _run(inputs: Any, out_dir: Union[str, Path], rules: RuleSet, options: CurateOptions,
         progress: Optional[Progress], with_kept: bool) -> Summary:
    started = time.perf_counter()
    sources = resolve_inputs(inputs, options.input_format)
    analyzer = Analyzer(options.patterns, options.steps)
    _check_rule_columns(rules, analyzer)
    fields = tuple(dict.fromkeys(options.fields + rules.fields))
    check_field_names(fields, analyzer)
    with output_folder(out_dir, options.force) as folder:
        paths = plan_outputs(folder.local, sources, with_kept, options.force, options.kept_format)
        folder.check_free(paths.all(), [s.name for s in sources])
        if rules.corpus_wide:  # once the outputs are known to be free
            sources = reread_streams(sources, "a rule over the whole corpus reads the input twice")
        summary = Summary([s.name for s in sources],
                          outputs={k: folder.shown(v) for k, v in asdict(paths).items() if v})
        _write_all(Outputs(paths, sources, options), rules, analyzer, options, fields, summary, progress, sources)
        summary.seconds["total"] = time.perf_counter() - started
        _check_balance(summary)
        write_json(paths.summary, summary.as_dict())
        folder.publish(paths.all())
    return summary


def _write_all(outputs: Outputs, rules: RuleSet, analyzer: Analyzer, options: CurateOptions, fields: tuple[str, ...],
               summary: Summary, progress: Optional[Progress], sources: list[Source]) -> None:
    """Run the passes into temporary files, then commit them all, or discard them all."""
    def write() -> None:
        run = _TwoPass if rules.corpus_wide else _ShardsAtOnce if shards_at_once(options, sources) > 1 else _OnePass
        run(sources, outputs, rules, analyzer, options, fields, summary, progress).execute()
        # summary.json marks a finished run: drop an old one before the new
        # outputs replace the old, so a crash in between leaves no summary
        # describing files it does not match.
        outputs.paths.summary.unlink(missing_ok=True)

    commit_together(outputs.files, write)


def _check_rule_columns(rules: RuleSet, analyzer: Analyzer) -> None:
    known = analyzer.schema.names
    unknown = [c for c in rules.columns if c not in known]
    if unknown:
        hints = "".join(suggest(c, known) for c in unknown)
        raise UsageError(f"rules read unknown metric(s) {unknown}{hints}; docs/metrics.md lists the "
                         f"{len(known)} metrics")


def _check_balance(summary: Summary) -> None:
    if not summary.balanced:
        raise RuntimeError(f"accounting error: {summary.as_dict()['accounting']} does not hold")


class _OnePass:
    """Rules that judge each record alone: decide and write as chunks stream by."""

    def __init__(self, sources: list[Source], outputs: Outputs, rules: RuleSet, analyzer: Analyzer,
                 options: CurateOptions, fields: tuple[str, ...], summary: Summary, progress: Optional[Progress]):
        self.sources, self.outputs, self.rules, self.analyzer = sources, outputs, rules, analyzer
        self.options, self.fields, self.summary = options, fields, summary
        self.progress: RunProgress = run_progress(progress)
        self.dropped_by_rule: Counter[str] = Counter()
        self.rejected_by_reason: Counter[str] = Counter()
        self.writes: Optional[WriteBehind] = None  # set while a pass reads and measures
        self.lanes = shards_at_once(options, sources)

    def read_options(self, parse: bool = True) -> ReadOptions:
        o = self.options
        return ReadOptions(o.text, self.fields, parse, o.block_bytes, o.select, parse_threads(o.threads))

    def chunks(self, parse: bool = True) -> Generator[Chunk, None, None]:
        return prefetched(read_corpus(self.sources, self.read_options(parse)), busy=self.reading_took)

    def read_in_turns(self, turns: _ShardTurns, work: _ChunkWork, parse: bool = True,
                      read: Optional[Callable[[int, ReadOptions], Generator[Chunk, None, None]]] = None) -> None:
        """Read the shards at once (:func:`shard_lanes`; ``read(index, options)``
        gives a shard's chunks, by default all of them), handing each chunk to
        ``work`` through ``turns``."""
        threads_per_lane = max(1, (self.options.threads or os.cpu_count() or 1) // self.lanes)
        options = replace(self.read_options(parse), parse_threads=parse_threads(threads_per_lane))
        shard = (lambda index: read(index, options)) if read is not None else None
        with closing(shard_lanes(self.sources, options, self.lanes, self.reading_took, shard,
                                 turn=lambda: turns.turn)) as items:
            for index, item in items:
                turns.take(index, item, work)

    def reading_took(self, seconds: float) -> None:
        _add_seconds(self.summary, "read", seconds)

    def execute(self) -> None:
        self.start_one_pass()
        with WriteBehind() as self.writes:
            for chunk in self.chunks():
                self.take(chunk, self.outputs)
        self.finish(self.rules.details(pa.table({})))  # row-local rules report no corpus facts

    def start_one_pass(self) -> None:
        self.progress.start_pass("measuring" if self.outputs.kept is None else "measuring and writing kept", 1, 1,
                                 self.sources)

    def take(self, chunk: Chunk, into: Union[Outputs, _ShardParts]) -> None:
        """Measure and judge a chunk, and write what it gives ``into`` the outputs or a shard's parts of them."""
        rejects, metrics_out = into.rejected, into.metrics
        assert rejects is not None and metrics_out is not None, "a one-pass run writes rejects and metrics"
        metrics = self.measured(chunk, rejects)
        decision = self.rules.decide(metrics)
        self.dropped_by_rule.update(decision.counts)
        if self.rules:
            metrics = _with_decision(metrics, decision.drop, decision.reasons)
        self.write(metrics_out.write, metrics)
        keep = _keep_mask(chunk, decision.drop)
        if into.kept is not None:
            self.write(into.kept.write, chunk, keep)
        self.summary.kept += int(keep.sum())
        self.summary.dropped += int(decision.drop.sum())

    def write(self, job: Callable[..., None], *args: Any) -> None:
        """Run ``job`` on the write-behind thread, timed as the write stage."""
        assert self.writes is not None, "writes go through a pass's write-behind thread"
        self.writes.submit(self._timed, job, args)

    def _timed(self, job: Callable[..., None], args: tuple[Any, ...]) -> None:
        with _Clock(self.summary.seconds, "write"):
            job(*args)

    def measured(self, chunk: Chunk, rejects: RejectedWriter) -> pa.Table:
        """Account for a freshly read chunk, write its rejects to ``rejects``, and measure the rest."""
        check_rejects(chunk, self.options.on_error)
        rejected = np.flatnonzero(~chunk.ok)
        self.rejected_by_reason.update(r.split(":", 1)[0] for r in chunk.reasons.drop_null().to_pylist())
        self.write(rejects.write, chunk, rejected)
        with _Clock(self.summary.seconds, "engine"):
            metrics = measure(chunk, self.analyzer, self.options, self.fields)
        self.summary.read += len(chunk)
        self.summary.rejected += len(rejected)
        self.summary.record_bytes += chunk.n_bytes
        self.summary.text_bytes += int(pc.sum(metrics.column("n_bytes")).as_py() or 0)
        self.progress.advance(chunk)
        return metrics

    def finish(self, rule_details: list[dict[str, Any]]) -> None:
        empty = measure_empty(self.analyzer, self.fields)
        if self.rules:
            empty = _with_decision(empty, np.zeros(0, bool), pa.array([], pa.string()))
        self.outputs.close(empty)
        # In the rules' order and the reasons' sorted order, however the chunks came.
        order = {d["rule"]: i for i, d in enumerate(rule_details)}
        self.summary.dropped_by_rule = dict(sorted(self.dropped_by_rule.items(),
                                                   key=lambda item: (order.get(item[0], len(order)), item[0])))
        self.summary.rejected_by_reason = dict(sorted(self.rejected_by_reason.items()))
        self.summary.rules = [{**d, "dropped": self.dropped_by_rule.get(d["rule"], 0)} for d in rule_details]


class _ShardParts:
    """What a shard read ahead of its turn writes to each of ``kept``,
    ``metrics`` and ``rejected`` (those given), in temporaries beside them,
    appended to them at the shard's turn (:meth:`append`): compressed kept
    members and rejected lines are copied as they are, the metrics read back
    from Arrow IPC. The same three attributes as :class:`Outputs`, so a pass
    writes a chunk to either alike."""

    def __init__(self, index: int, kept: Optional[_KeptWriter], metrics: Optional[MetricsWriter],
                 rejected: Optional[RejectedWriter]):
        name = f"shard{index}"
        assert kept is None or isinstance(kept, JsonlKeptWriter), "shards at once: a JSON Lines kept corpus"
        self._outputs = (kept, metrics, rejected)
        self.kept: Optional[JsonlKeptWriter] = None
        self.metrics: Optional[MetricsPart] = None
        self.rejected: Optional[RejectedWriter] = None
        try:  # a part opened before a failing one is removed, not left behind
            self.kept = kept.part(name) if kept is not None else None
            self.metrics = metrics.part(name) if metrics is not None else None
            self.rejected = rejected.part(name) if rejected is not None else None
        except BaseException:
            self.discard()
            raise

    def append(self) -> None:
        """Append each part to the output it was opened for, then remove the parts' files."""
        kept, metrics, rejected = self._outputs
        if self.rejected is not None and rejected is not None:
            rejected.append(self.rejected)
        if self.metrics is not None and metrics is not None:
            metrics.append(self.metrics)
        if self.kept is not None:
            assert isinstance(kept, JsonlKeptWriter), "a kept part goes to a JSON Lines kept corpus"
            kept.append(self.kept)
        self.discard()

    def close(self) -> None:
        """Finish writing the parts (the shard is read to its end): their files stay until appended."""
        for part in (self.rejected, self.metrics, self.kept):
            if part is not None:
                part.close()

    def discard(self) -> None:
        """Remove the parts' files, whatever state their writers are in."""
        for part in (self.rejected, self.metrics, self.kept):
            if part is not None:
                with suppress(Exception):  # a failed write fails its close again; the file goes anyway
                    part.close()
                part.file.discard()


# What a pass does with a chunk of shard ``index``: write to the outputs
# (``parts`` None: the shard's turn) or to the shard's parts.
_ChunkWork = Callable[[int, Chunk, Optional[_ShardParts]], None]


class _ShardTurns:
    """Shards read at once (:func:`shards_at_once`), written in their order.

    The shard whose turn it is (every shard before it is written) writes to
    the outputs; a shard ahead of its turn writes to its parts
    (``open_parts(index)``), handed to ``at_turn`` when its turn comes. A
    shard's failure (an unusable record under ``on_error="fail"``, a read
    error, one raised by ``at_end`` when it is read to its end) is raised at
    its turn, so a run fails on the same record, with the same message, as
    when it reads its shards one after another. The parts of a shard read to
    its end are closed (``close_parts``), so only the shards being read hold
    open files; :func:`shard_lanes` starts no shard far past the turn."""

    def __init__(self, open_parts: Callable[[int], _ShardParts], at_turn: Callable[[_ShardParts], None],
                 close_parts: Callable[[_ShardParts], None], at_end: Callable[[int], None] = lambda index: None):
        self.open_parts, self.at_turn, self.close_parts, self.at_end = open_parts, at_turn, close_parts, at_end
        self.turn = 0
        self.parts: dict[int, _ShardParts] = {}  # of the shards ahead of their turn
        self.every_part: list[_ShardParts] = []  # discarded at the end, appended or not
        self.read: set[int] = set()
        self.failures: dict[int, BaseException] = {}

    def __enter__(self) -> _ShardTurns:
        return self

    def __exit__(self, *exc: Any) -> None:
        for parts in self.every_part:
            parts.discard()  # never raises: every part's file goes

    def take(self, index: int, item: Union[Chunk, None, BaseException], work: _ChunkWork) -> None:
        """Hand a chunk of shard ``index`` to ``work`` (or note its end, or its failure), then move the turn on."""
        if index in self.failures:
            pass  # what a failed shard read after its failure is never used
        elif isinstance(item, BaseException):
            self.failures[index] = item
        else:
            try:
                if item is None:
                    self.at_end(index)
                    self.read.add(index)
                    if index in self.parts:
                        self.close_parts(self.parts[index])
                else:
                    work(index, item, None if index == self.turn else self.parts_of(index))
            except BadInputError as err:  # its traceback would hold the chunk until the turn comes
                self.failures[index] = err.with_traceback(None)
        self.next_turn()

    def parts_of(self, index: int) -> _ShardParts:
        if index not in self.parts:
            self.parts[index] = self.open_parts(index)
            self.every_part.append(self.parts[index])
        return self.parts[index]

    def next_turn(self) -> None:
        """Move the turn past the shards read to their end, handing on each one's parts as its turn comes."""
        while True:
            if self.turn in self.failures:
                raise self.failures[self.turn]
            if self.turn in self.parts:
                self.at_turn(self.parts.pop(self.turn))
            if self.turn not in self.read:
                return
            self.turn += 1


class _ShardsAtOnce(_OnePass):
    """A one-pass run that reads several shards at once (:class:`_ShardTurns`)."""

    def execute(self) -> None:
        self.start_one_pass()
        o = self.outputs
        turns = _ShardTurns(lambda index: _ShardParts(index, o.kept, o.metrics, o.rejected),
                            lambda parts: self.write(parts.append),
                            lambda parts: self.write(parts.close))
        with turns, WriteBehind() as self.writes:  # the parts outlive the writes that append them
            self.read_in_turns(turns, lambda _, chunk, parts: self.take(chunk, parts or o))
        self.finish(self.rules.details(pa.table({})))


def _present(part: Optional[T]) -> T:
    assert part is not None, "the parts of a shard hold what its pass writes"
    return part


def _check_fields_present(table: pa.Table, fields: Sequence[str]) -> None:
    """A rule field that no record has is a typo, not a group of nulls."""
    for name in fields:
        if table.num_rows and table.column(name).null_count == table.num_rows:
            raise UsageError(f"no record has the field {name!r} that a rule reads")


def _keep_mask(chunk: Chunk, drop: np.ndarray) -> np.ndarray:
    keep: np.ndarray = chunk.ok.copy()
    keep[keep] = ~drop
    return keep


def measure_empty(analyzer: Analyzer, fields: Sequence[str]) -> pa.Table:
    """A zero-row metrics table with the full schema."""
    ids = pa.table({"record_id": pa.array([], pa.string()), "file": pa.array([], pa.string()),
                    "row": pa.array([], pa.int64())})
    carried = pa.table({f: pa.array([], pa.string()) for f in fields}) if fields else None
    metrics = analyzer.schema.empty_table()
    return pa.table({**_columns(ids), **(_columns(carried) if carried else {}), **_columns(metrics)})


# Pass 1's last chunks of a compressed JSON Lines corpus stay in memory, up to
# this many bytes of records, and pass 2 copies them from there instead of
# inflating that part of the input again: a corpus this small is inflated
# once, a larger one this much less. Memory stays bounded whatever the size
# of the corpus (benchmarks/RESULTS.md, issue 23).
TAIL_BYTES = 256 << 20


class _Tail:
    """The last chunks of pass 1 in input order (their records, not their
    texts), at most ``limit`` bytes of them. Each shard (all of a run that
    reads in order: shard 0) holds the end of its chunks, from its chunk
    ``first_index[shard]`` and its record ``first_ordinal[shard]`` on; the
    earliest chunk held, of the first shard that holds any, goes first."""

    def __init__(self, limit: int):
        self.limit = limit
        self.held: dict[int, deque[Chunk]] = {}  # only shards holding chunks
        self.bytes = 0
        self.first_index: Counter[int] = Counter()
        self.first_ordinal: Counter[int] = Counter()

    def add(self, index: int, chunk: Chunk) -> None:
        if chunk.source.compression is None:  # plain JSON Lines and Parquet are read again cheaply
            while index in self.held:
                self.drop_first(index)
            self.first_index[index] += 1
            self.first_ordinal[index] += len(chunk)
            return
        self.held.setdefault(index, deque()).append(
            Chunk(chunk.source, chunk.first_row, pa.nulls(len(chunk), pa.binary()), chunk.reasons,
                  null_fields(len(chunk), ()), chunk.raw, chunk.n_bytes, chunk.rows, chunk.position))
        self.bytes += chunk.n_bytes
        while self.bytes > self.limit:
            self.drop_first(min(self.held))

    def drop_first(self, index: int) -> None:
        dropped = self.held[index].popleft()
        if not self.held[index]:
            del self.held[index]
        self.bytes -= dropped.n_bytes
        self.first_index[index] += 1
        self.first_ordinal[index] += len(dropped)


class _TwoPass(_OnePass):
    """Rules that need the whole corpus: pass 1 measures into a temporary
    metrics file, each row with its shard and its ordinal there; the rules
    then see the needed columns of all rows at once; pass 2 re-reads the
    input only to copy the kept records, up to the last chunks of pass 1,
    which it takes from memory (``TAIL_BYTES``). With several shards read at
    once (:class:`_ShardTurns`) both passes read them so."""

    def execute(self) -> None:
        self.summary.passes = 2
        self.file_states = _file_states(self.sources)
        self.progress.start_pass("measuring", 1, 2, self.sources)
        self.staging = MetricsWriter(self.outputs.paths.metrics.with_name("metrics.pass1.parquet"))
        self.shard_records: Counter[int] = Counter()  # records pass 1 read of each shard (all in 0, in order)
        self.tail = _Tail(TAIL_BYTES)
        try:
            if self.lanes > 1:
                self.measure_shards_at_once()
            else:
                self.measure_in_order()
            self.decide_and_copy(self.staging.file if self.staging.close() else None)
        finally:
            self.staging.file.discard()

    def measure_in_order(self) -> None:
        with WriteBehind() as self.writes:
            for chunk in self.chunks():
                self.stage(0, chunk, None)

    def measure_shards_at_once(self) -> None:
        o = self.outputs
        turns = _ShardTurns(lambda index: _ShardParts(index, None, self.staging, o.rejected),
                            lambda parts: self.write(parts.append),
                            lambda parts: self.write(parts.close))
        with turns, WriteBehind() as self.writes:
            self.read_in_turns(turns, self.stage)

    def stage(self, index: int, chunk: Chunk, parts: Optional[_ShardParts]) -> None:
        """Measure a chunk of shard ``index`` into the staging file, or into the shard's ``parts``."""
        metrics = self.measured(chunk, _present(parts.rejected) if parts else self.outputs.rejected)
        self.tail.add(index, chunk)
        ordinals = self.shard_records[index] + np.flatnonzero(chunk.ok)
        self.shard_records[index] += len(chunk)
        metrics = metrics.append_column(_SHARD, pa.array(np.full(len(ordinals), index, np.int32))) \
            .append_column(_ORDINAL, pa.array(ordinals))
        self.write(_present(parts.metrics).write if parts else self.staging.write, metrics)

    def decide_and_copy(self, staging: Optional[AtomicFile]) -> None:
        # record_id orders the records that tie at a percentile cutoff (rules.tie_order).
        columns = list(dict.fromkeys(self.rules.columns + self.rules.fields + (TIE_KEY,))) + [_SHARD, _ORDINAL]
        table = pq.read_table(str(staging.temp), columns=columns) if staging else measure_empty(
            self.analyzer, self.fields).append_column(_SHARD, pa.array([], pa.int32())) \
            .append_column(_ORDINAL, pa.array([], pa.int64()))
        _check_fields_present(table, self.rules.fields)
        decision = self.rules.decide(table)
        self.dropped_by_rule.update(decision.counts)
        self.summary.dropped = int(decision.drop.sum())
        # Where each shard's records start among all of pass 1's.
        counts = [self.shard_records[index] for index in range(len(self.sources))]
        self.shard_starts = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
        positions = self.shard_starts[table.column(_SHARD).to_numpy()] + table.column(_ORDINAL).to_numpy()
        keep = np.zeros(self.summary.read, bool)
        keep[positions[~decision.drop]] = True
        # The metrics are rewritten in the write-behind thread while pass 2
        # reads the input again: both cores stay busy.
        with WriteBehind() as self.writes:
            if staging is not None:
                self.write(self.copy_metrics, staging, decision.drop, decision.reasons)
            self.copy_kept(keep)
        self.finish(decision.details)

    def copy_metrics(self, staging: AtomicFile, drop: np.ndarray, reasons: pa.Array) -> None:
        start = 0
        for batch in pq.ParquetFile(str(staging.temp)).iter_batches(batch_size=65536):
            stop = start + batch.num_rows
            table = pa.Table.from_batches([batch]).drop([_SHARD, _ORDINAL])
            self.outputs.metrics.write(_with_decision(table, drop[start:stop], reasons.slice(start, stop - start)))
            start = stop

    def copy_kept(self, keep: np.ndarray) -> None:
        self.check_files_unchanged()
        self.progress.start_pass("writing kept", 2, 2, self.sources)
        if self.lanes > 1:
            self.copy_shards_at_once(keep)
        else:
            self.copy_in_order(keep)
        self.check_files_unchanged()
        self.summary.kept = int(keep.sum())

    def copy_in_order(self, keep: np.ndarray) -> None:
        start = 0
        for chunk in self.second_pass_chunks(0, self.chunks(parse=False)):
            stop = start + len(chunk)
            if stop > len(keep):  # name the first record pass 1 did not have
                raise _changed_between_passes(chunk.locate(len(keep) - start), len(keep))
            self.copy(chunk, keep[start:stop], self.outputs.kept)
            start = stop
        if start != len(keep):
            raise _changed_between_passes(f"the end, after {start} records,", len(keep))

    def copy_shards_at_once(self, keep: np.ndarray) -> None:
        kept = self.outputs.kept
        copied: Counter[int] = Counter()  # records pass 2 read of each shard

        def copy(index: int, chunk: Chunk, parts: Optional[_ShardParts]) -> None:
            start, counted = copied[index], self.shard_records[index]
            if start + len(chunk) > counted:  # name the first record pass 1 did not have
                raise _changed_between_passes(chunk.locate(counted - start), counted)
            copied[index] += len(chunk)
            first = int(self.shard_starts[index]) + start
            self.copy(chunk, keep[first:first + len(chunk)], parts.kept if parts else kept)

        def at_end(index: int) -> None:
            if copied[index] != self.shard_records[index]:
                where = f"the end of {self.sources[index].name}, after {copied[index]} records,"
                raise _changed_between_passes(where, self.shard_records[index])

        # The kept corpus is written here, in the main thread: the write-behind thread rewrites the metrics.
        turns = _ShardTurns(lambda index: _ShardParts(index, kept, None, None),
                            _ShardParts.append, _ShardParts.close, at_end)
        with turns:
            self.read_in_turns(turns, copy, parse=False, read=lambda index, options: self.second_pass_chunks(
                index, read_corpus([self.sources[index]], options)))

    def copy(self, chunk: Chunk, keep: np.ndarray, kept: Optional[_KeptWriter]) -> None:
        """Pass 2: write a chunk's kept records to ``kept``."""
        assert self.writes is not None, "pass 2 copies while the metrics rewrite runs"
        if kept is not None:
            with _Clock(self.summary.seconds, "write"):
                kept.write(chunk, keep)
        self.writes.check()  # a failed metrics rewrite stops the copy now, not at its end
        self.progress.advance(chunk)

    def second_pass_chunks(self, index: int, chunks: Generator[Chunk, None, None]) -> Generator[Chunk, None, None]:
        """Shard ``index`` (in order: the whole input, 0) read again from
        ``chunks``, up to the chunks pass 1 held of it; then those."""
        read, first_index, first_ordinal = 0, self.tail.first_index[index], self.tail.first_ordinal[index]
        held = self.tail.held.get(index, deque())
        with closing(chunks):
            for number, chunk in enumerate(chunks if first_index else (), 1):
                read += len(chunk)
                yield chunk
                if number == first_index:
                    break
        if held and read != first_ordinal:
            of = f" of {self.sources[index].name}" if self.lanes > 1 else ""
            where = f"the end{of}, after {read} records," if read < first_ordinal else \
                f"{read} records in the first {first_index} blocks{of}"
            raise _changed_between_passes(where, first_ordinal)
        yield from held

    def check_files_unchanged(self) -> None:
        """A file rewritten in place with as many records, or reordered, still
        shows in its size or modification time."""
        now = _file_states(self.sources)
        for name, state in self.file_states.items():
            if now.get(name) != state:
                raise _input_changed(f"{name} was modified (size and modification time {state} before, "
                                     f"{now.get(name)} now)")


def _file_states(sources: Sequence[Source]) -> dict[str, Optional[tuple[Any, Any]]]:
    """Size and modification stamp of each input file or object (None once it is gone)."""
    return {source.name: input_state(source) for source in sources if source.kind != "dataset"}


def _changed_between_passes(where: str, first_count: int) -> BadInputError:
    """Pass 2 framed a different number of records than pass 1 counted: the
    keep mask would pick the wrong lines, so the run stops."""
    return _input_changed(f"pass 2 read {where} where pass 1 read {first_count} records")


def _input_changed(detail: str) -> BadInputError:
    return BadInputError(f"the input changed between the two passes: {detail}; nothing was written")
