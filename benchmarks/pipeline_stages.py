"""The single-core cost of each stage of ``cotsieve filter`` on a JSONL corpus,
and from it a model of the stage that limits at more cores.

Each stage runs in this process, one after another on one core (native
threads 1), on the corpus's own 16 MiB blocks, timed in CPU seconds
(``time.process_time``), so other load on a shared machine costs wall time but
not these numbers. Costs are in CPU seconds per GB of uncompressed records.

The model: a stage that the pipeline runs on at most ``p`` threads at once
takes at least ``cost / p``; all of them together take at least ``sum / C`` on
``C`` cores. The larger of those is the time per GB; the stage that sets it
is the one that limits. How many threads each stage may use is
:func:`parallelism`, read from the pipeline's structure.

Used by ``bench_pipeline.py --stages``.
"""

from __future__ import annotations

import itertools
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pyarrow as pa

from cotsieve.analysis import Analyzer
from cotsieve.cli.process import hold_freed_memory, skip_pandas_probe
from cotsieve.io import ReadOptions, resolve_inputs
from cotsieve.io.chunks import Chunk
from cotsieve.io.jsonl import _Lines, _blank_lines, _decompressed, _line_offsets, _parse_block_native
from cotsieve.io.writers import _MEMBER_BYTES as MEMBER_BYTES, JsonlKeptWriter, MetricsWriter, _kept_runs, _pieces
from cotsieve.pipeline import CurateOptions, _with_decision, measure
from cotsieve.rules import RuleSet, parse_rule

STAGES = ("inflate", "line cut", "framing", "JSON", "analysis", "rule (one pass)", "rule (two passes)",
          "deflate kept", "write kept file", "Parquet metrics")
BLOCK_BYTES = 16 << 20


@dataclass
class StageCosts:
    """CPU seconds of each stage over ``record_bytes`` bytes of records."""

    record_bytes: int
    seconds: dict[str, float]
    kept_bytes: int = 0

    def per_gb(self, stage: str) -> float:
        return self.seconds[stage] / (self.record_bytes / 1e9)


class _Stopwatch:
    """Adds the CPU time of each ``with watch(stage):`` block to ``seconds[stage]``."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    def __call__(self, stage: str) -> "_Stopwatch":
        self._stage = stage
        return self

    def __enter__(self) -> None:
        self._start = time.process_time()

    def __exit__(self, *exc: Any) -> None:
        self.seconds[self._stage] += time.process_time() - self._start


def _blocks(path: Path, watch: _Stopwatch) -> Iterator[bytes]:
    """Whole-line blocks of the decompressed corpus, cut as ``io/jsonl.py`` cuts
    them: the reads timed as inflate, finding the last newline as line cut
    (both in the reader thread), the join of the carried line start to the
    block as framing (in the parse threads)."""
    source = resolve_inputs(str(path))[0]
    carry = b""
    with _decompressed(source) as stream:
        while True:
            with watch("inflate"):
                data = stream.read(BLOCK_BYTES)
            if not data:
                break
            with watch("line cut"):
                cut = data.rfind(b"\n") + 1
                lines, carry = _Lines(carry, data, cut), data[cut:]
            with watch("framing"):
                block = lines.block()
            yield block
    if carry:
        yield carry + b"\n"


def measure_stages(path: Path, rule: str = "branch_step_ratio <= 0.3", two_pass_rule: str =
                   "drop-top 10% branch_step_ratio") -> StageCosts:
    """Every stage of a filter run over ``path``, one core, each timed alone."""
    hold_freed_memory()  # the command line's process tuning, so the stages cost what they cost there
    skip_pandas_probe()
    watch = _Stopwatch()
    options = CurateOptions(threads=1)
    analyzer = Analyzer(options.patterns, options.steps)
    source = resolve_inputs(str(path))[0]
    read_options = ReadOptions(options.text)
    one_pass, two_pass = RuleSet([parse_rule(rule)]), RuleSet([parse_rule(two_pass_rule)])
    folder = Path(tempfile.mkdtemp(prefix="cotsieve-stages-"))
    metrics_writer = MetricsWriter(folder / "metrics.parquet")
    kept_writer = JsonlKeptWriter(folder / "kept.jsonl.gz", "gzip", threads=1)
    compress = kept_writer._compress
    record_bytes = kept_bytes = first_row = 0
    two_pass_columns: list[pa.Table] = []
    for block in _blocks(path, watch):
        with watch("framing"):
            offsets = _line_offsets(block)
            blank = _blank_lines(block, offsets)
            raw = pa.LargeBinaryArray.from_buffers(pa.large_binary(), len(offsets) - 1,
                                                   [None, pa.py_buffer(offsets), pa.py_buffer(block)])
        with watch("JSON"):
            texts, reasons, fields, tagged = _parse_block_native(block, raw, offsets, blank, read_options)
            texts = read_options.text.cut_thinking(texts, tagged)
        chunk = Chunk(source, first_row, texts, reasons, fields, raw, len(block))
        first_row += len(chunk)
        record_bytes += len(block)
        with watch("analysis"):
            metrics = measure(chunk, analyzer, options, ())
        with watch("rule (one pass)"):
            decision = one_pass.decide(metrics)
        two_pass_columns.append(metrics.select([*two_pass.columns, "record_id"]))
        keep = chunk.ok.copy()
        keep[keep] = ~decision.drop
        data, runs = _kept_runs(chunk.raw, keep)
        kept_bytes += sum(end - start for start, end in runs)
        with watch("deflate kept"):
            members = [compress(piece) for piece in _pieces(data, runs, MEMBER_BYTES)]
        with watch("write kept file"):
            for member in members:
                kept_writer._stream.write(member)
        with watch("Parquet metrics"):
            metrics_writer.write(_with_decision(metrics, decision.drop, decision.reasons))
    with watch("rule (two passes)"):
        two_pass.decide(pa.concat_tables(two_pass_columns))
    with watch("write kept file"):
        kept_writer.close()
    metrics_writer.close(metrics.slice(0, 0))
    for file in (kept_writer.file, metrics_writer.file):
        file.discard()
    folder.rmdir()
    return StageCosts(record_bytes, watch.seconds, kept_bytes)


# The threads of a filter run and the stages each runs, in order (pipeline.py, io/jsonl.py, io/writers.py).
LANES = {
    "reader (inflate, line cut)": ("inflate", "line cut"),
    "parse (framing, JSON)": ("framing", "JSON"),
    "engine (analysis, rule)": ("analysis", "rule (one pass)", "rule (two passes)"),
    "writer (Parquet, kept file, deflate)": ("Parquet metrics", "write kept file", "deflate kept"),
}


def parallelism(stage: str, cores: int, parse_threads: int, deflate_pieces: int, shards: int = 1) -> int:
    """How many threads run ``stage`` at once on ``cores`` cores: inflating one
    gzip stream is serial, and ``shards`` are read at once, each with its own
    reader and ``parse_threads`` blocks framed and parsed at once; the
    analysis runs on every core; the writer's compressors deflate
    ``deflate_pieces`` 4 MiB pieces at once."""
    if stage in ("inflate", "line cut"):
        return shards
    if stage in ("framing", "JSON"):
        return min(cores, parse_threads * shards)
    if stage == "analysis":
        return cores
    if stage == "deflate kept":
        return min(cores, deflate_pieces)
    return 1


@dataclass
class Bound:
    cores: int
    mb_per_s: float
    limit: str


def model(costs: StageCosts, cores: int, parse_threads: int, two_pass: bool, tail_bytes: int = 0, shards: int = 1,
          deflate_pieces: Optional[int] = None) -> Bound:
    """The best throughput on ``cores`` cores, and what sets it: one thread
    (lane) of the pipeline, or all cores busy. A lane's time per GB is the sum
    of its stages' costs, each divided by the threads it runs on. Pass 2 of a
    two-pass run inflates and frames again all but the last ``tail_bytes``.
    ``shards`` are read at once; the writer deflates ``deflate_pieces`` at
    once (default: one chunk's pieces, as when it waited for each chunk)."""
    per_gb = {s: costs.per_gb(s) for s in STAGES}
    per_gb["rule (one pass)" if two_pass else "rule (two passes)"] = 0.0
    if two_pass:
        again = max(0.0, 1 - tail_bytes / costs.record_bytes)
        for stage in ("inflate", "line cut", "framing"):
            per_gb[stage] *= 1 + again
    pieces = deflate_pieces or math.ceil(BLOCK_BYTES * costs.kept_bytes / costs.record_bytes / MEMBER_BYTES)
    lanes = {lane: sum(per_gb[s] / parallelism(s, cores, parse_threads, pieces, shards) for s in stages)
             for lane, stages in LANES.items()}
    lane, slowest = max(lanes.items(), key=lambda item: item[1])
    everything = sum(per_gb.values()) / cores
    seconds, limit = (slowest, lane) if slowest > everything else (everything, "all cores busy")
    return Bound(cores, 1e3 / seconds if seconds else math.inf, limit)


def run_in_turns(measure: Callable[[], StageCosts], rounds: int) -> StageCosts:
    """The per-stage minimum over ``rounds`` measurements (the least disturbed by other load)."""
    runs = [measure() for _ in range(rounds)]
    return StageCosts(runs[0].record_bytes, {s: min(r.seconds[s] for r in runs) for s in STAGES},
                      runs[0].kept_bytes)



SPOOL_CODECS = ("lz4", "snappy", "zstd")


def spool_costs(path: Path, blocks: int = 40) -> dict[str, tuple[float, float]]:
    """What pass 2 of a two-pass run would pay to skip inflating the input
    again, measured on the first ``blocks`` 16 MiB blocks of ``path``: for each
    way, (CPU seconds per GB of records, bytes stored per byte of records).
    Inflating again is the yardstick. The alternatives: spooling pass 1's
    blocks to a temporary file and reading them back, plain or compressed
    with a fast codec (pyarrow's; zstd at level 1); or deflating every record
    once as its own full-flushed piece, so that pass 2 would only copy the
    kept pieces into the gzip kept corpus (each record then pays a flush and
    loses its predecessor's history), set beside deflating the stream whole
    as the kept writer does today."""
    from isal import isal_zlib

    hold_freed_memory()
    watch = _Stopwatch()
    data = list(itertools.islice(_blocks(path, watch), blocks))
    gb = sum(map(len, data)) / 1e9
    costs = {"inflate again (ISA-L)": (watch.seconds["inflate"] / gb, 0.0)}  # stores nothing
    spool = Path(tempfile.mkdtemp(prefix="cotsieve-spool-")) / "spool"
    for name in ("plain", *SPOOL_CODECS):
        codec = None if name == "plain" else pa.Codec(name, compression_level=1 if name == "zstd" else None)
        start = time.process_time()
        with open(spool, "wb") as out:
            lengths = [out.write(block if codec is None else codec.compress(block)) for block in data]
        with open(spool, "rb") as back:
            for block, length in zip(data, lengths):
                piece = back.read(length)
                if codec is not None:
                    codec.decompress(piece, decompressed_size=len(block))
        costs[f"spool to a file, {name}"] = ((time.process_time() - start) / gb, sum(lengths) / gb / 1e9)
    spool.unlink()
    spool.parent.rmdir()
    records = [line for block in data for line in block.splitlines(keepends=True)]
    start = time.process_time()
    deflate = isal_zlib.compressobj(1, isal_zlib.DEFLATED, -15)
    pieces = sum(len(deflate.compress(r)) + len(deflate.flush(isal_zlib.Z_FULL_FLUSH)) for r in records)
    middle = time.process_time()
    whole = sum(len(isal_zlib.compress(block, 1, -15)) for block in data)
    end = time.process_time()
    costs["deflate each record once (full flush)"] = ((middle - start) / gb, pieces / gb / 1e9)
    costs["deflate the stream (the kept writer)"] = ((end - middle) / gb, whole / gb / 1e9)
    return costs
