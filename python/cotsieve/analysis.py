"""Per-trace behaviour metrics and step segmentation (see ``docs/metrics.md``)."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import _core
from ._texts import TextInput, as_text_batch
from .patterns import PatternSet, _threads

STEP_MODES = ("paragraph", "line", "sentence", "marker")
PROGRESS = "progress"

PatternsArg = Union[str, PatternSet]


class Step(NamedTuple):
    """One reasoning step: a byte span of the trace with its label and flags."""

    start: int
    end: int
    label: str
    flags: tuple[str, ...]
    text: str


@lru_cache(maxsize=16)
def _shipped(name: str) -> PatternSet:
    return PatternSet.load(name)


def _pattern_set(patterns: PatternsArg) -> PatternSet:
    if isinstance(patterns, PatternSet):
        return patterns
    if isinstance(patterns, str):
        return _shipped(patterns)
    raise TypeError(f"patterns must be a PatternSet or the name/path of one, got {type(patterns).__name__}")


def simd_level() -> str:
    """The vector instruction set the engine's byte-classifying pass uses:
    ``"avx512"``, ``"avx2"`` or ``"none"`` (the portable path). It is the
    best the CPU has, capped by the ``COTSIEVE_SIMD`` environment variable
    when the library loads; every level gives identical results. The
    ``prefilter`` scan engine needs ``"avx2"`` or ``"avx512"``, and runs its
    AVX-512 kernel where the CPU also has VBMI; the byte-classifying pass
    runs its AVX-512 kernel where the CPU also has VBMI2, and the AVX2 one
    otherwise.

    Example:
        >>> import cotsieve
        >>> cotsieve.simd_level() in {"avx512", "avx2", "none"}
        True
    """
    return _core.simd_level()


def _analyzer(ps: PatternSet, steps: str) -> _core.Analyzer:
    if steps not in STEP_MODES:
        raise ValueError(f"unknown step mode {steps!r}, expected one of {list(STEP_MODES)}")
    if len(ps.categories) > 32:
        raise ValueError(f"at most 32 categories are supported, the set has {len(ps.categories)}")
    return _core.Analyzer(
        ps._scanner, ps.category_index.tolist(), len(ps.categories), ps.categories.index("branch"),
        STEP_MODES.index(steps),
    )


def _nullable_rows(values: np.ndarray) -> list[pa.Array]:
    """One float64 array per row of a C-contiguous 2-d array, null where the
    engine wrote NaN (an undefined ratio). The values are not copied: each
    array wraps its row and a validity bitmap packed for all rows at once,
    which took a fifth of the time of converting the rows one by one."""
    valid = np.packbits(~np.isnan(values), axis=1, bitorder="little")
    n = values.shape[1]
    return [
        pa.Array.from_buffers(pa.float64(), n, [pa.py_buffer(v), pa.py_buffer(row)]) for v, row in zip(valid, values)
    ]


def _nullable(values: np.ndarray) -> pa.Array:
    return _nullable_rows(values[np.newaxis, :])[0]


def analyze(
    texts: TextInput,
    patterns: PatternsArg = "default",
    steps: str = "paragraph",
    threads: Optional[int] = None,
) -> pa.Table:
    """Scan, segment and measure every trace in one native pass.

    Returns one row per text; every column and its formula is documented in
    ``docs/metrics.md``. Ratios with a zero denominator are null.

    Args:
        texts: a list of ``str``/``bytes`` or an Arrow string/binary array.
        patterns: a ``PatternSet``, or the name or TOML path of one.
        steps: ``"paragraph"``, ``"line"``, ``"sentence"`` or ``"marker"``.
        threads: native threads; ``None`` uses every core.

    Example:
        >>> t = analyze(["Let x = 2.\\n\\nAlternatively, x = 3.\\n\\nSo the answer is \\\\boxed{2}."])
        >>> t.column("n_steps")[0].as_py(), t.column("branch_step_ratio")[0].as_py()
        (3, 0.3333333333333333)
    """
    ps = _pattern_set(patterns)
    raw = _analyzer(ps, steps).analyze(as_text_batch(texts), _threads(threads))
    return _metrics_table(raw, ps.categories)


def _metrics_table(raw: dict, categories: tuple[str, ...]) -> pa.Table:
    labels = categories + (PROGRESS,)
    columns: dict[str, pa.Array] = {
        "n_bytes": pa.array(raw["n_bytes"]),
        "n_words": pa.array(raw["n_words"]),
        "n_steps": pa.array(raw["n_steps"]),
    }
    # Per-category and per-pair results come column-major: row i of the
    # native array is column i of the table.
    for i, cat in enumerate(categories):
        columns[f"count_{cat}"] = pa.array(raw["count"][i])
    for i, cat in enumerate(categories):
        columns[f"steps_{cat}"] = pa.array(raw["steps"][i])
    columns["branch_step_ratio"] = _nullable(raw["branch_step_ratio"])
    columns["markers_per_1k_words"] = _nullable(raw["markers_per_1k_words"])
    pairs = iter(_nullable_rows(raw["transitions"]))
    for src in labels:
        for dst in labels:
            columns[f"p_{src}_{dst}"] = next(pairs)
    columns["longest_branch_run"] = pa.array(raw["longest_branch_run"])
    columns["repetition"] = _nullable(raw["repetition"])
    columns["first_answer_offset"] = pa.array(raw["first_answer_offset"])
    columns["n_distinct_answers"] = pa.array(raw["n_distinct_answers"])
    columns["tail_after_first_answer"] = _nullable(raw["tail_after_first_answer"])
    return pa.table(columns)


def segments(
    texts: TextInput,
    patterns: PatternsArg = "default",
    steps: str = "paragraph",
    threads: Optional[int] = None,
) -> pa.Table:
    """Every step of every text as a table: ``doc``, ``start``, ``end`` (byte
    offsets), ``label`` (dictionary string) and ``flags`` (list of categories).

    Example:
        >>> segments(["Hmm.\\n\\nWait, no."]).column("label").to_pylist()
        ['hesitate', 'backtrack']
    """
    ps = _pattern_set(patterns)
    raw = _analyzer(ps, steps).segment(as_text_batch(texts), _threads(threads))
    labels = ps.categories + (PROGRESS,)
    label = pa.DictionaryArray.from_arrays(pa.array(raw["label"], pa.int32()), pa.array(labels))
    return pa.table(
        {
            "doc": raw["doc"],
            "start": raw["start"],
            "end": raw["end"],
            "label": label,
            "flags": pa.array(_flag_lists(raw["flags"], ps.categories), pa.list_(pa.string())),
        }
    )


def _flag_lists(flags: np.ndarray, categories: tuple[str, ...]) -> list[list[str]]:
    bits = [(1 << i, c) for i, c in enumerate(categories)]
    cache: dict[int, list[str]] = {}
    out = []
    for f in flags.tolist():
        if f not in cache:
            cache[f] = [c for bit, c in bits if f & bit]
        out.append(cache[f])
    return out


def segment(text: Union[str, bytes], patterns: PatternsArg = "default", steps: str = "paragraph") -> list[Step]:
    """The steps of one trace, for inspection and display.

    Example:
        >>> [(s.label, s.text) for s in segment("Alternatively, try 3.\\nIt works.", steps="line")]
        [('branch', 'Alternatively, try 3.'), ('progress', 'It works.')]
    """
    if not isinstance(text, (str, bytes)):
        raise TypeError(f"text must be str or bytes, got {type(text).__name__}")
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogateescape")
    table = segments([data], patterns, steps, threads=1)
    return [
        Step(row["start"], row["end"], row["label"], tuple(row["flags"]),
             data[row["start"]: row["end"]].decode("utf-8", "replace"))
        for row in table.to_pylist()
    ]


def step_count_ratio(table: pa.Table, by: str, source: str, reference: str) -> pa.Table:
    """Add Proxy 1 of arXiv 2604.01702: ``step_count_ratio``, each trace's
    ``n_steps`` divided by the mean ``n_steps`` of the ``reference`` source's
    traces on the same problem (null when there is none, or it is 0).

    Example:
        >>> t = pa.table({"problem": ["p1", "p1"], "src": ["r1", "oss"], "n_steps": [30, 10]})
        >>> step_count_ratio(t, by="problem", source="src", reference="oss").column("step_count_ratio").to_pylist()
        [3.0, 1.0]
    """
    for name in (by, source, "n_steps"):
        if name not in table.column_names:
            raise KeyError(f"column {name!r} not in table (columns: {table.column_names})")
    ref = table.filter(pc.equal(table.column(source), reference))
    if ref.num_rows == 0:
        raise ValueError(f"no rows with {source} == {reference!r}")
    means = ref.group_by(by).aggregate([("n_steps", "mean")])
    joined = table.append_column("_row", pa.array(np.arange(table.num_rows))).join(
        means, keys=by, join_type="left outer"
    ).sort_by("_row")
    ref_steps = joined.column("n_steps_mean")
    valid = pc.and_(pc.is_valid(ref_steps), pc.greater(ref_steps, 0))
    ratio = pc.if_else(valid, pc.divide(pc.cast(joined.column("n_steps"), pa.float64()), ref_steps), None)
    return table.append_column("step_count_ratio", ratio)
