"""Ray Data: metric columns with ``map_batches``, and the whole filter across a cluster.

``CotsieveMetrics`` is a callable class for
``Dataset.map_batches(..., batch_format="pyarrow")``: each actor compiles the
patterns once, in its constructor, and then analyzes Arrow batches in place.

``filter_dataset`` runs any rules, percentile rules included, in two passes,
as ``cotsieve filter`` does on one machine:

1. ``map_batches`` computes the metrics the rules read, keyed by a stable
   record id; only the ids, those metrics and the rules' group fields come
   back to the driver (a few numbers per record);
2. the driver decides with ``cotsieve.rules`` (the same code, so the same
   percentile cutoffs), and a second ``map_batches`` keeps the rows whose
   id was kept.

Example (Ray Data starts a local instance when none is running):
    >>> import ray
    >>> ds = ray.data.from_items([{"id": i, "text": t} for i, t in
    ...                           enumerate(["Perhaps 2.\\n\\nAlternatively, 3.", "2 + 2 = 4.", "x = 1."])])
    >>> result = filter_dataset(ds, "drop-top 34% branch_step_ratio", id_column="id",
    ...                         concurrency=1, num_cpus=0.5)  # leave CPUs for Ray's readers
    >>> sorted(row["id"] for row in result.kept.take_all())
    [1, 2]
    >>> result.decisions.column("drop_reason").to_pylist()
    ['drop-top 34% branch_step_ratio tie-key id', None, None]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from . import require_extra

require_extra("ray.data", "ray")

import ray  # noqa: E402

from ..patterns import PatternSet  # noqa: E402
from ..rules import RulesArg, as_rule_set  # noqa: E402
from ._batch import TraceMetrics, append_columns  # noqa: E402


class CotsieveMetrics:
    """Add metric columns to Arrow batches; use as
    ``ds.map_batches(CotsieveMetrics, fn_constructor_kwargs={...}, batch_format="pyarrow", concurrency=N)``.

    Args:
        text_column: the column holding the trace.
        patterns, steps, think: as for ``cotsieve.analyze``.
        columns: the metrics to add (default: all); ``prefix`` goes before each name.
        keep: the input columns to pass on (default: all).
        threads: native threads per batch (default 1: Ray gives each actor one CPU).
    """

    def __init__(self, text_column: str = "text", patterns: Union[str, PatternSet] = "default",
                 steps: str = "paragraph", think: str = "auto", columns: Optional[Sequence[str]] = None,
                 prefix: str = "", keep: Optional[Sequence[str]] = None, threads: Optional[int] = 1):
        self.text_column = text_column
        self.keep = list(keep) if keep is not None else None
        self.metrics = TraceMetrics(patterns, steps, think, columns, prefix, threads)
        _ = self.metrics.patterns  # compile in the actor's constructor, once

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.text_column not in batch.column_names:
            raise KeyError(f"no text column {self.text_column!r}; columns: {', '.join(batch.column_names)}")
        metrics = self.metrics(batch.column(self.text_column))
        return append_columns(batch if self.keep is None else batch.select(self.keep), metrics)


def _rows_with_ids(batch: pa.Table, id_column: str, kept: pa.Array) -> pa.Table:
    return batch.filter(pc.is_in(batch.column(id_column), value_set=kept))


@dataclass(frozen=True)
class FilterResult:
    """``kept``: the kept rows, all columns, as a lazy Ray dataset.
    ``decisions``: one row per record: the id, the rules' metrics and fields, ``kept`` and ``drop_reason``."""

    kept: Any
    decisions: pa.Table


def filter_dataset(ds: Any, rules: RulesArg, id_column: str, text_column: str = "text",
                   patterns: Union[str, PatternSet] = "default", steps: str = "paragraph", think: str = "auto",
                   concurrency: Optional[int] = None, num_cpus: float = 1.0) -> FilterResult:
    """Apply ``rules`` to a Ray dataset of traces across the cluster (two passes, see the module docs).

    ``id_column`` must hold a unique id per row (ids that repeat raise
    ``ValueError``): pass 2 finds the kept rows by it, so the result does not
    depend on how Ray splits or orders blocks. The rules and their semantics
    are those of ``cotsieve.rules``; with the same text choice the kept set
    equals that of ``cotsieve filter`` on the same records.

    Records tied at a percentile cutoff are taken in the order of a hash of
    their ``id_column`` (a rule's own ``tie_key`` aside), so ``cotsieve
    filter --tie-key ID_FIELD`` keeps the same set.

    ``concurrency`` is the number of metric actors (default: Ray's choice)
    and ``num_cpus`` the CPUs each reserves. Leave the reading tasks room:
    on a 2-CPU machine, 2 actors of 1 CPU each starve the reader.
    """
    rule_set = as_rule_set(rules).with_tie_key(id_column)
    carried = list(dict.fromkeys([id_column, *rule_set.fields]))
    options = {"text_column": text_column, "patterns": patterns, "steps": steps, "think": think,
               "columns": rule_set.columns, "keep": carried}
    measured = ds.map_batches(CotsieveMetrics, fn_constructor_kwargs=options, batch_format="pyarrow",
                              concurrency=concurrency, num_cpus=num_cpus)
    table = _collect(measured, id_column)
    decision = rule_set.decide(table)
    decisions = table.append_column("kept", pa.array(~decision.drop)).append_column("drop_reason", decision.reasons)
    kept_ids = table.column(id_column).filter(pa.array(~decision.drop)).combine_chunks()
    kept = ds.map_batches(_rows_with_ids, fn_kwargs={"id_column": id_column, "kept": kept_ids},
                          batch_format="pyarrow")
    return FilterResult(kept, decisions)


def _collect(measured: Any, id_column: str) -> pa.Table:
    """Pass 1's small table on the driver, sorted by id so that it is the same however Ray ordered the blocks."""
    tables = [t for t in ray.get(measured.to_arrow_refs()) if t.num_rows]
    if not tables:
        raise ValueError("the dataset is empty")
    table = pa.concat_tables(tables, promote_options="permissive").sort_by(id_column)
    if pc.count_distinct(table.column(id_column)).as_py() != table.num_rows:
        raise ValueError(f"ids in {id_column!r} repeat or are null; filter_dataset needs a unique id per record")
    return table
