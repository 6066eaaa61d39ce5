"""Per-trace behaviour metrics and step segmentation (see ``docs/metrics.md``).

``Analyzer`` is the compiled form: a pattern set and a step mode, ready to
measure and segment any number of batches. ``analyze``, ``segments`` and
``segment`` are one-line conveniences over a cached ``Analyzer``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple, Optional, Union

import numpy as np
import pyarrow as pa

from . import _core
from ._texts import TextInput, as_text_batch, utf8
from .patterns import PatternsArg, PatternSet, _threads

STEP_MODES = ("paragraph", "line", "sentence", "marker")
PROGRESS = "progress"

__all__ = ["PROGRESS", "STEP_MODES", "Analyzer", "Step", "analyze", "analyzer_for", "metric_schema", "segment",
           "segments", "simd_level"]


class Step(NamedTuple):
    """One reasoning step: a byte span of the trace with its label and flags."""

    start: int
    end: int
    label: str
    flags: tuple[str, ...]
    text: str


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


_ARROW_TYPES = {_core.MetricType.INT64: pa.int64(), _core.MetricType.FLOAT64: pa.float64()}


def _column_names(field: _core.MetricField, categories: tuple[str, ...]) -> list[str]:
    """The table columns of one native metric (``csrc/analyzer_metrics.h`` names the shapes)."""
    if field.shape == _core.MetricShape.PER_TEXT:
        return [field.name]
    if field.shape == _core.MetricShape.PER_CATEGORY:
        return [f"{field.name}_{c}" for c in categories]
    labels = categories + (PROGRESS,)
    return [f"{field.name}_{a}_{b}" for a in labels for b in labels]


@lru_cache(maxsize=64)
def metric_schema(categories: tuple[str, ...]) -> pa.Schema:
    """The columns of ``analyze`` for a set with ``categories``, as the engine exports them.

    Example:
        >>> metric_schema(("branch",)).names[:5]
        ['n_bytes', 'n_words', 'n_steps', 'count_branch', 'steps_branch']
    """
    return pa.schema(
        [pa.field(name, _ARROW_TYPES[f.type]) for f in _core.METRIC_FIELDS for name in _column_names(f, categories)]
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


def _metric_arrays(field: _core.MetricField, values: np.ndarray) -> list[pa.Array]:
    """The Arrow columns of one native metric: row i of its [columns, texts]
    array is column i; a float NaN is null."""
    if field.type == _core.MetricType.FLOAT64:
        return _nullable_rows(values)
    return [pa.array(row) for row in values]


class Analyzer:
    """A pattern set and a step mode compiled for analysis: measure and
    segment as many batches as you like.

    Built once, immutable and thread-safe: any number of threads may call its
    methods at once; each call releases the GIL and spreads the batch over
    ``threads`` native threads. An ``Analyzer`` pickles (it is rebuilt from its
    patterns on the other side), so it can travel to worker processes.

    Args:
        patterns: a ``PatternSet``, or the name or TOML path of one.
        steps: ``"paragraph"``, ``"line"``, ``"sentence"`` or ``"marker"``.

    Example:
        >>> import cotsieve
        >>> analyzer = cotsieve.Analyzer("default", steps="paragraph")
        >>> t = analyzer.analyze(["Let x = 2.\\n\\nAlternatively, x = 3."])
        >>> t.column("n_steps").to_pylist(), t.schema == analyzer.schema
        ([2], True)
        >>> [s.label for s in analyzer.segment("Hmm.\\n\\nWait, no.")]
        ['hesitate', 'backtrack']
    """

    def __init__(self, patterns: PatternsArg = "default", steps: str = "paragraph") -> None:
        if steps not in STEP_MODES:
            raise ValueError(f"unknown step mode {steps!r}, expected one of {list(STEP_MODES)}")
        pattern_set = PatternSet.resolve(patterns)
        categories = pattern_set.categories
        if len(categories) > 32:
            raise ValueError(f"at most 32 categories are supported, the set has {len(categories)}")
        self._patterns = pattern_set
        self._steps = steps
        self._schema = metric_schema(categories)
        self._native = _core.Analyzer(
            pattern_set._scanner,
            len(categories),
            categories.index("branch"),
            categories.index("hesitate"),
            _core.StepMode.__members__[steps.upper()],
        )

    @property
    def patterns(self) -> PatternSet:
        """The compiled pattern set."""
        return self._patterns

    @property
    def steps(self) -> str:
        """The step mode."""
        return self._steps

    @property
    def schema(self) -> pa.Schema:
        """The columns ``analyze`` returns, in order, with their types.

        Example:
            >>> Analyzer().schema.field("branch_step_ratio").type
            DataType(double)
        """
        return self._schema

    def __repr__(self) -> str:
        return f"<Analyzer {self._patterns!r}, steps={self._steps!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Analyzer, (self._patterns, self._steps))

    def analyze(self, texts: TextInput, threads: Optional[int] = None) -> pa.Table:
        """Scan, segment and measure every trace in one native pass.

        Returns one row per text, with the columns of ``schema``; every column
        and its formula is documented in ``docs/metrics.md``. Ratios with a
        zero denominator are null.

        Args:
            texts: a list of ``str``/``bytes`` or an Arrow string/binary array.
            threads: native threads; ``None`` uses every core.

        Example:
            >>> t = Analyzer().analyze(["Let x = 2.\\n\\nAlternatively, x = 3.\\n\\nSo the answer is \\\\boxed{2}."])
            >>> t.column("n_steps")[0].as_py(), t.column("branch_step_ratio")[0].as_py()
            (3, 0.3333333333333333)
        """
        raw = self._native.analyze(as_text_batch(texts), _threads(threads))
        columns = [a for field, values in zip(_core.METRIC_FIELDS, raw) for a in _metric_arrays(field, values)]
        return pa.Table.from_arrays(columns, schema=self._schema)

    def segments(self, texts: TextInput, threads: Optional[int] = None) -> pa.Table:
        """Every step of every text as a table: ``doc``, ``start``, ``end`` (byte
        offsets), ``label`` (dictionary string) and ``flags`` (list of categories).

        Example:
            >>> Analyzer().segments(["Hmm.\\n\\nWait, no."]).column("label").to_pylist()
            ['hesitate', 'backtrack']
        """
        raw = self._native.segment(as_text_batch(texts), _threads(threads))
        categories = self._patterns.categories
        label = pa.DictionaryArray.from_arrays(pa.array(raw["label"], pa.int32()), pa.array(categories + (PROGRESS,)))
        return pa.table(
            {
                "doc": raw["doc"],
                "start": raw["start"],
                "end": raw["end"],
                "label": label,
                "flags": pa.array(_flag_lists(raw["flags"], categories), pa.list_(pa.string())),
            }
        )

    def segment(self, text: Union[str, bytes]) -> list[Step]:
        """The steps of one trace, for inspection and display.

        Example:
            >>> [(s.label, s.text) for s in Analyzer(steps="line").segment("Alternatively, try 3.\\nIt works.")]
            [('branch', 'Alternatively, try 3.'), ('progress', 'It works.')]
        """
        if not isinstance(text, (str, bytes)):
            raise TypeError(f"text must be str or bytes, got {type(text).__name__}")
        data = utf8(text)
        table = self.segments([data], threads=1)
        return [
            Step(row["start"], row["end"], row["label"], tuple(row["flags"]),
                 data[row["start"]: row["end"]].decode("utf-8", "replace"))
            for row in table.to_pylist()
        ]


@lru_cache(maxsize=16)
def _named_analyzer(patterns: str, steps: str) -> Analyzer:
    return Analyzer(patterns, steps)


def analyzer_for(patterns: Union[PatternsArg, Analyzer] = "default", steps: str = "paragraph") -> Analyzer:
    """An ``Analyzer`` for the conveniences: the one given, one cached per
    (shipped set's name, steps), or a new one otherwise. A ``.toml`` path is
    loaded anew each time, as ``PatternSet.resolve`` does, since the file may
    have changed; building over a compiled ``PatternSet`` is cheap.

    Example:
        >>> analyzer_for("default") is analyzer_for("default")
        True
    """
    if isinstance(patterns, Analyzer):
        return patterns
    if isinstance(patterns, str) and not patterns.endswith(".toml"):
        return _named_analyzer(patterns, steps)
    return Analyzer(patterns, steps)


def analyze(
    texts: TextInput,
    patterns: PatternsArg = "default",
    steps: str = "paragraph",
    threads: Optional[int] = None,
) -> pa.Table:
    """``Analyzer(patterns, steps).analyze(texts, threads)``, with the analyzer cached.

    Example:
        >>> t = analyze(["Let x = 2.\\n\\nAlternatively, x = 3.\\n\\nSo the answer is \\\\boxed{2}."])
        >>> t.column("n_steps")[0].as_py(), t.column("branch_step_ratio")[0].as_py()
        (3, 0.3333333333333333)
    """
    return analyzer_for(patterns, steps).analyze(texts, threads)


def segments(
    texts: TextInput,
    patterns: PatternsArg = "default",
    steps: str = "paragraph",
    threads: Optional[int] = None,
) -> pa.Table:
    """``Analyzer(patterns, steps).segments(texts, threads)``, with the analyzer cached.

    Example:
        >>> segments(["Hmm.\\n\\nWait, no."]).column("label").to_pylist()
        ['hesitate', 'backtrack']
    """
    return analyzer_for(patterns, steps).segments(texts, threads)


def segment(text: Union[str, bytes], patterns: PatternsArg = "default", steps: str = "paragraph") -> list[Step]:
    """``Analyzer(patterns, steps).segment(text)``, with the analyzer cached.

    Example:
        >>> [(s.label, s.text) for s in segment("Alternatively, try 3.\\nIt works.", steps="line")]
        [('branch', 'Alternatively, try 3.'), ('progress', 'It works.')]
    """
    return analyzer_for(patterns, steps).segment(text)


def _flag_lists(flags: np.ndarray, categories: tuple[str, ...]) -> list[list[str]]:
    bits = [(1 << i, c) for i, c in enumerate(categories)]
    cache: dict[int, list[str]] = {}
    out = []
    for f in flags.tolist():
        if f not in cache:
            cache[f] = [c for bit, c in bits if f & bit]
        out.append(cache[f])
    return out
