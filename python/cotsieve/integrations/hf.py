"""Hugging Face ``datasets``: metric columns with ``Dataset.map``, rules with ``Dataset.filter``.

Both functions take batches (``batched=True``), in the default format (a
dict of lists) or the Arrow format (``dataset.with_format("arrow")``, read
without a copy). They pickle, so ``num_proc`` works, and each process
compiles the patterns once.

Example:
    >>> import datasets
    >>> ds = datasets.Dataset.from_dict({"text": ["Let x = 2.\\n\\nAlternatively, x = 3.", "x = 2."]})
    >>> ds = ds.map(cotsieve_map(columns=["n_steps", "branch_step_ratio"]), batched=True)
    >>> list(ds["branch_step_ratio"])
    [0.5, 0.0]
    >>> list(ds.filter(cotsieve_filter("branch_step_ratio <= 0.3"), batched=True)["text"])
    ['x = 2.']

Percentile rules (``drop-top 10% ...``) need the whole corpus, not a batch:
pass the dataset to ``cotsieve.filter_corpus``, which reads it in place.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import pyarrow as pa

from ..patterns import PatternSet
from ..rules import RulesArg, as_rule_set
from ._batch import TraceMetrics, append_columns

Batch = Union[dict[str, list[Any]], pa.Table]


def _texts(batch: Batch, column: str) -> Any:
    names = batch.column_names if isinstance(batch, pa.Table) else list(batch)
    if column not in names:
        raise KeyError(f"no text column {column!r} in the batch; columns: {', '.join(names)}")
    return batch.column(column) if isinstance(batch, pa.Table) else batch[column]


class MetricsMap:
    """A ``Dataset.map(batched=True)`` function that adds metric columns (see ``cotsieve_map``)."""

    def __init__(self, text_column: str, metrics: TraceMetrics):
        self.text_column = text_column
        self.metrics = metrics

    def __call__(self, batch: Batch) -> Batch:
        metrics = self.metrics(_texts(batch, self.text_column))
        if isinstance(batch, pa.Table):  # the Arrow format replaces the batch, so return it whole
            return append_columns(batch, metrics)
        return {name: column.to_pylist() for name, column in zip(metrics.column_names, metrics.columns)}


class RulePredicate:
    """A ``Dataset.filter(batched=True)`` predicate: ``True`` for rows the rules keep (see ``cotsieve_filter``)."""

    def __init__(self, text_column: str, rules: RulesArg, metrics_options: dict[str, Any]):
        self.text_column = text_column
        self.rules = as_rule_set(rules)
        wide = [r.name for r in self.rules.rules if r.corpus_wide]
        if wide:
            raise ValueError(f"{wide} need the whole corpus, not one batch; use cotsieve.filter_corpus(dataset, ...) "
                             "or add the metrics with cotsieve_map and rank them yourself")
        self.metrics = TraceMetrics(columns=self.rules.columns, **metrics_options)

    def __call__(self, batch: Batch) -> list[bool]:
        decision = self.rules.decide(self.metrics(_texts(batch, self.text_column)))
        kept: list[bool] = (~decision.drop).tolist()
        return kept


def cotsieve_map(text_column: str = "text", patterns: Union[str, PatternSet] = "default", steps: str = "paragraph",
                 think: str = "auto", columns: Optional[Sequence[str]] = None, prefix: str = "",
                 threads: Optional[int] = None) -> MetricsMap:
    """A function for ``Dataset.map(fn, batched=True)`` that adds the metric
    columns of ``cotsieve.analyze`` (all, or ``columns``), named ``prefix + metric``.

    The values equal those ``cotsieve analyze`` writes for the same records
    (same ``patterns``, ``steps`` and ``think``). A null text raises
    ``TypeError`` naming its index in the batch.
    """
    return MetricsMap(text_column, TraceMetrics(patterns, steps, think, columns, prefix, threads))


def cotsieve_filter(rules: RulesArg, text_column: str = "text", patterns: Union[str, PatternSet] = "default",
                    steps: str = "paragraph", think: str = "auto", threads: Optional[int] = None) -> RulePredicate:
    """A predicate for ``Dataset.filter(fn, batched=True)`` that keeps the rows
    the rules keep. ``rules``: text forms (``"branch_step_ratio <= 0.3"``),
    ``Rule`` objects, or a list of them; each row is judged alone, so
    percentile rules are refused (``ValueError``)."""
    return RulePredicate(text_column, rules, {"patterns": patterns, "steps": steps, "think": think,
                                              "threads": threads})
