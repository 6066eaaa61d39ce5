"""Hugging Face ``datasets``: metric columns with ``Dataset.map``, per-record
rules with ``Dataset.filter``, and any rules, percentile rules included, with
``filter_dataset``.

``cotsieve_map`` and ``cotsieve_filter`` take batches (``batched=True``), in
the default format (a dict of lists) or the Arrow format
(``dataset.with_format("arrow")``, read without a copy). They pickle, so
``num_proc`` works, and each process compiles the patterns once.

The text column is read as ``cotsieve filter --text-field`` reads it: a
string column as it is, a chat column (``messages``, a list of ``{role,
content}`` turns) as its last assistant turn, or a path such as
``messages[-1].content``; ``think="auto"`` then keeps the ``<think>`` part.

Example:
    >>> import datasets
    >>> ds = datasets.Dataset.from_dict({"text": ["Let x = 2.\\n\\nAlternatively, x = 3.", "x = 2."]})
    >>> ds = ds.map(cotsieve_map(columns=["n_steps", "branch_step_ratio"]), batched=True)
    >>> list(ds["branch_step_ratio"])
    [0.5, 0.0]
    >>> list(ds.filter(cotsieve_filter("branch_step_ratio <= 0.3"), batched=True)["text"])
    ['x = 2.']
    >>> list(filter_dataset(ds, "drop-top 50% branch_step_ratio")["text"])
    ['x = 2.']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa

from ..io import ReadOptions, read_corpus
from ..patterns import PatternSet
from ..rules import TIE_KEY, RulesArg, RuleSet, some_rules
from ._batch import Column, TraceMetrics, append_columns, refuse_unusable

Batch = Union[dict[str, list[Any]], pa.Table]


def _column(batch: Batch, name: str) -> Column:
    names = batch.column_names if isinstance(batch, pa.Table) else list(batch)
    if name not in names:
        raise KeyError(f"no text column {name!r} in the batch; columns: {', '.join(names)}")
    return batch.column(name) if isinstance(batch, pa.Table) else batch[name]


class MetricsMap:
    """A ``Dataset.map(batched=True)`` function that adds metric columns (see ``cotsieve_map``)."""

    def __init__(self, metrics: TraceMetrics):
        self.metrics = metrics

    def __call__(self, batch: Batch) -> Batch:
        metrics = self.metrics.of_column(_column(batch, self.metrics.text.column))
        if isinstance(batch, pa.Table):  # the Arrow format replaces the batch, so return it whole
            return append_columns(batch, metrics)
        return {name: column.to_pylist() for name, column in zip(metrics.column_names, metrics.columns)}


class RulePredicate:
    """A ``Dataset.filter(batched=True)`` predicate: ``True`` for rows the rules keep (see ``cotsieve_filter``)."""

    def __init__(self, rules: RulesArg, metrics_options: dict[str, Any]):
        self.rules = some_rules(rules)
        wide = [r.name for r in self.rules.rules if r.corpus_wide]
        if wide:
            raise ValueError(f"{wide} need the whole corpus, not one batch; use "
                             "cotsieve.integrations.hf.filter_dataset(dataset, rules), which returns a Dataset")
        self.metrics = TraceMetrics(columns=self.rules.columns, **metrics_options)

    def __call__(self, batch: Batch) -> list[bool]:
        decision = self.rules.decide(self.metrics.of_column(_column(batch, self.metrics.text.column)))
        kept: list[bool] = (~decision.drop).tolist()
        return kept


def cotsieve_map(text_column: str = "text", patterns: Union[str, PatternSet] = "default", steps: str = "paragraph",
                 think: str = "auto", columns: Optional[Sequence[str]] = None, prefix: str = "",
                 threads: Optional[int] = None) -> MetricsMap:
    """A function for ``Dataset.map(fn, batched=True)`` that adds the metric
    columns of ``cotsieve.analyze`` (all, or ``columns``), named ``prefix + metric``.

    ``text_column`` is what ``--text-field`` takes: a column (``"text"``, a
    chat column ``"messages"``) or a path (``"messages[-1].content"``). The
    values equal those ``cotsieve analyze`` writes for the same records (same
    ``patterns``, ``steps`` and ``think``). A record without a usable text (a
    null, a chat with no assistant turn) raises ``cotsieve.BadInputError``
    naming its row in the batch and the reason.
    """
    return MetricsMap(TraceMetrics(patterns, steps, think, columns, prefix, threads, text_column))


def cotsieve_filter(rules: RulesArg, text_column: str = "text", patterns: Union[str, PatternSet] = "default",
                    steps: str = "paragraph", think: str = "auto", threads: Optional[int] = None) -> RulePredicate:
    """A predicate for ``Dataset.filter(fn, batched=True)`` that keeps the rows
    the rules keep. ``rules``: text forms (``"branch_step_ratio <= 0.3"``),
    ``Rule`` objects, or a list of them; each row is judged alone, so
    percentile rules are refused (``ValueError``): use ``filter_dataset``."""
    return RulePredicate(rules, {"patterns": patterns, "steps": steps, "think": think, "threads": threads,
                                 "text_field": text_column})


def filter_dataset(ds: Any, rules: RulesArg, text_column: str = "text", tie_key: Optional[str] = None,
                   patterns: Union[str, PatternSet] = "default", steps: str = "paragraph", think: str = "auto",
                   threads: Optional[int] = None) -> Any:
    """The rows of the ``datasets.Dataset`` ``ds`` that ``rules`` keep, as a
    ``Dataset`` (a view of ``ds``, rows in their order). Any rules, percentile
    rules (``"drop-top 10% branch_step_ratio per source"``) included: the
    whole dataset is measured in memory, keeping only the metrics and fields
    the rules read, a few numbers per row.

    ``ds`` is read and decided by the code of ``cotsieve filter``, so the kept
    rows are those of ``cotsieve.filter_corpus(ds, ...)`` with the same
    options: records tied at a percentile cutoff are taken in the order of a
    hash of their ``record_id`` (``<dataset>#ROW``), or of the ``tie_key``
    column's value when given (then a JSONL export of ``ds`` filtered with
    ``cotsieve filter --tie-key FIELD`` keeps the same records).

    A record without a usable text raises ``cotsieve.BadInputError`` naming
    its row; a column that ``ds`` lacks (the text's, a rule's group field)
    raises ``KeyError``.

    Example:
        >>> import datasets
        >>> ds = datasets.Dataset.from_dict({"id": ["a", "b", "c", "d"], "n": [3, 1, 1, 2]})
        >>> ds = ds.map(lambda r: {"text": "Wait.\\n\\n" * r["n"]})
        >>> list(filter_dataset(ds, "drop-top 50% n_steps", tie_key="id")["id"])
        ['b', 'c']
    """
    rule_set = some_rules(rules)
    if tie_key is not None:
        rule_set = rule_set.with_tie_key(tie_key)
    metrics = TraceMetrics(patterns, steps, think, rule_set.columns, threads=threads, text_field=text_column)
    _column({name: [] for name in ds.column_names}, metrics.text.column)
    absent = [name for name in rule_set.fields if name not in ds.column_names]
    if absent:
        raise KeyError(f"no column {absent[0]!r}, which a rule reads; columns: {', '.join(ds.column_names)}")
    if len(ds) == 0:
        return ds
    decision = rule_set.decide(_rule_table(ds, rule_set, metrics))
    return ds.select(np.flatnonzero(~decision.drop))


def _rule_table(ds: Any, rule_set: RuleSet, metrics: TraceMetrics) -> pa.Table:
    """What ``rule_set`` reads of every row of ``ds``, read as ``cotsieve filter`` reads it: the
    texts and the fields (as strings) of its reader, and ``record_id``, where the reader locates a row."""
    tables = []
    for chunk in read_corpus(ds, ReadOptions(metrics.text, rule_set.fields)):
        refuse_unusable(chunk.reasons, chunk.locate)
        measured = metrics.analyzer.analyze(chunk.texts, metrics.threads).select(list(rule_set.columns))
        record_ids = pa.table({TIE_KEY: pa.array([chunk.locate(i) for i in range(len(chunk))], pa.string())})
        tables.append(append_columns(append_columns(measured, chunk.fields), record_ids))
    return pa.concat_tables(tables)
