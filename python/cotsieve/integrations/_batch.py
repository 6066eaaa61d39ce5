"""Metric columns for a batch of texts, shared by every integration.

Integrations run in worker processes (``Dataset.map(num_proc=...)``,
datatrove tasks, Ray actors), so the callable they carry must pickle. A
compiled ``Analyzer`` holds native state, so ``TraceMetrics`` carries its
patterns (a name, a path or a ``PatternSet``, which pickles as its patterns)
and builds its analyzer once per process, on first use.

A column of a batch is read as ``cotsieve filter --text-field`` reads it
(``cotsieve.io.arrow``, one code for both): a string column as it is, a chat
column (a list of ``{role, content}`` turns) as its last assistant turn, a
path such as ``messages[-1].content`` into the nested value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from ..analysis import STEP_MODES, Analyzer
from ..io import BadInputError, TextSpec
from ..io.arrow import _arrow_texts
from ..patterns import PatternsArg, PatternSet

__all__ = ["Column", "TraceMetrics", "append_columns", "refuse_unusable"]

# One column of a batch: Arrow (the ``arrow``/``pyarrow`` batch formats) or a Python list (the default format).
Column = Union[Sequence[Any], pa.Array, pa.ChunkedArray]


def append_columns(table: pa.Table, columns: pa.Table) -> pa.Table:
    """``table`` with every column of ``columns`` added at the end (same number of rows)."""
    for name, column in zip(columns.column_names, columns.columns):
        table = table.append_column(name, column)
    return table


def refuse_unusable(reasons: pa.Array, where: Callable[[int], str]) -> None:
    """Raise ``BadInputError`` for the first record with a reason (unusable), named by ``where(row)``."""
    if reasons.null_count != len(reasons):
        row = int(pc.index(pc.is_valid(reasons), True).as_py())
        raise BadInputError(f"{where(row)}: {reasons[row].as_py()}")


class TraceMetrics:
    """A picklable function from texts to the metric columns of ``cotsieve.analyze``.

    The text is chosen as the pipeline does (``think="auto"`` keeps only the
    ``<think>`` part when there is one), so the numbers equal those of
    ``cotsieve analyze`` on the same records.

    Args:
        patterns: a ``PatternSet``, or the name or TOML path of one.
        steps: step segmentation, as for ``cotsieve.analyze``.
        think: ``"auto"`` or ``"keep"`` (see ``cotsieve.TextSpec``).
        columns: the metric columns to return (default: all).
        prefix: put before every returned column name.
        threads: native threads per call (``None``: all cores).
        text_field: what :meth:`of_column` reads, as ``--text-field``: a
            column name (``"text"``, ``"messages"``) or a path into it.

    Example:
        >>> m = TraceMetrics(columns=["n_steps", "branch_step_ratio"], prefix="cs_")
        >>> m(["<think>Wait.\\n\\nAlternatively, 3.</think>The answer is 3."]).to_pylist()
        [{'cs_n_steps': 2, 'cs_branch_step_ratio': 0.5}]
    """

    def __init__(self, patterns: PatternsArg = "default", steps: str = "paragraph", think: str = "auto",
                 columns: Optional[Sequence[str]] = None, prefix: str = "", threads: Optional[int] = None,
                 text_field: str = "text"):
        if steps not in STEP_MODES:
            raise ValueError(f"unknown step mode {steps!r}, expected one of {list(STEP_MODES)}")
        self._patterns = patterns
        self.steps = steps
        self._analyzer: Optional[Analyzer] = None
        self.text = TextSpec(text_field, think)
        self.prefix = prefix
        self.threads = threads
        self.columns = tuple(columns) if columns is not None else self.metric_names
        unknown = sorted(set(self.columns) - set(self.metric_names))
        if unknown:
            raise ValueError(f"unknown metric(s) {unknown}; metrics are: {', '.join(self.metric_names)}")

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_analyzer": None}

    @property
    def analyzer(self) -> Analyzer:
        """The compiled analyzer (built once per process)."""
        if self._analyzer is None:
            self._analyzer = Analyzer(self._patterns, self.steps)
        return self._analyzer

    @property
    def patterns(self) -> PatternSet:
        """The compiled pattern set (compiled once per process)."""
        return self.analyzer.patterns

    @property
    def metric_names(self) -> tuple[str, ...]:
        """Every column ``cotsieve.analyze`` gives for these patterns."""
        return tuple(self.analyzer.schema.names)

    def __call__(self, texts: Union[Sequence[Union[str, bytes]], pa.Array, pa.ChunkedArray]) -> pa.Table:
        metrics = self.analyzer.analyze(self.thinking_part(texts), self.threads)
        return pa.table({self.prefix + name: metrics.column(name) for name in self.columns})

    def of_column(self, column: Column) -> pa.Table:
        """The metrics of the records whose ``text.column`` field holds ``column``.

        A record without a usable text (null, a chat with no assistant turn)
        raises ``BadInputError`` with its row in the batch and the reason
        ``cotsieve filter`` gives for it.

        Example:
            >>> chat = [{"role": "user", "content": "2 + 3?"},
            ...         {"role": "assistant", "content": "<think>Hmm.\\n\\nWait, 5.</think>5"}]
            >>> TraceMetrics(columns=["n_steps"], text_field="messages").of_column([chat]).to_pylist()
            [{'n_steps': 2}]
            >>> TraceMetrics(text_field="messages").of_column([chat[:1]])
            Traceback (most recent call last):
            ...
            cotsieve.errors.BadInputError: row 0 of the batch: no assistant turn in 'messages'
        """
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        elif not isinstance(column, pa.Array):
            column = pa.array(list(column))
        texts, reasons = _arrow_texts(pa.record_batch({self.text.column: column}), self.text)
        refuse_unusable(reasons, lambda row: f"row {row} of the batch")
        return self(texts)

    def thinking_part(self, texts: Union[Sequence[Union[str, bytes]], pa.Array, pa.ChunkedArray]) -> pa.Array:
        """The texts as one Arrow array, cut to their thinking part under ``think="auto"``."""
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks()
        elif not isinstance(texts, pa.Array):
            values = list(texts)
            texts = pa.array(values) if values else pa.array([], pa.string())
        return self.text.cut_thinking(texts)
