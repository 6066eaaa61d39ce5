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

The same code runs on one machine and on a cluster: connect with
``ray.init(address=...)`` first (``docs/integrations.md``).

Example (Ray Data starts a local instance when none is running):
    >>> import ray
    >>> ds = ray.data.from_items([{"id": i, "text": t} for i, t in
    ...                           enumerate(["Perhaps 2.\\n\\nAlternatively, 3.", "2 + 2 = 4.", "x = 1."])])
    >>> result = filter_dataset(ds, "drop-top 34% branch_step_ratio", id_column="id",
    ...                         compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.5)  # CPUs left for readers
    >>> sorted(row["id"] for row in result.kept.take_all())
    [1, 2]
    >>> result.decisions.column("drop_reason").to_pylist()
    ['drop-top 34% branch_step_ratio tie-key id', None, None]
"""

from __future__ import annotations

from collections.abc import Sequence
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Union

import pyarrow as pa
import pyarrow.compute as pc

from . import require_extra

require_extra("ray.data", "ray")

import ray  # noqa: E402

from ..patterns import PatternSet  # noqa: E402
from ..rules import RulesArg, some_rules  # noqa: E402
from ._batch import TraceMetrics, append_columns  # noqa: E402


class CotsieveMetrics:
    """Add metric columns to Arrow batches; use as ``ds.map_batches(CotsieveMetrics,
    fn_constructor_kwargs={...}, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=N))``.

    Args:
        text_column: the trace, as ``--text-field`` takes it: a column
            (``"text"``, a chat column ``"messages"``) or a path into one.
        patterns, steps, think: as for ``cotsieve.analyze``.
        columns: the metrics to add (default: all); ``prefix`` goes before each name.
        keep: the input columns to pass on (default: all).
        threads: native threads per batch (default 1: Ray gives each actor one CPU).
    """

    def __init__(self, text_column: str = "text", patterns: Union[str, PatternSet] = "default",
                 steps: str = "paragraph", think: str = "auto", columns: Optional[Sequence[str]] = None,
                 prefix: str = "", keep: Optional[Sequence[str]] = None, threads: Optional[int] = 1):
        self.keep = list(keep) if keep is not None else None
        self.metrics = TraceMetrics(patterns, steps, think, columns, prefix, threads, text_column)
        _ = self.metrics.patterns  # compile in the actor's constructor, once

    def __call__(self, batch: pa.Table) -> pa.Table:
        column = self.metrics.text.column
        if column not in batch.column_names:
            raise KeyError(f"no text column {column!r}; columns: {', '.join(batch.column_names)}")
        metrics = self.metrics.of_column(batch.column(column))
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
                   compute: Optional[Any] = None, num_cpus: float = 1.0,
                   concurrency: Optional[int] = None) -> FilterResult:
    """Apply ``rules`` to a Ray dataset of traces across the cluster (two passes, see the module docs).

    ``id_column`` must hold a unique id per row (ids that repeat raise
    ``ValueError`` with one of them and how to make one): pass 2 finds the
    kept rows by it, so the result does not depend on how Ray splits or
    orders blocks. The rules and their semantics
    are those of ``cotsieve.rules``; with the same text choice the kept set
    equals that of ``cotsieve filter`` on the same records.

    Records tied at a percentile cutoff are taken in the order of a hash of
    their ``id_column`` (a rule's own ``tie_key`` aside), so ``cotsieve
    filter --tie-key ID_FIELD`` keeps the same set.

    ``compute`` is the metric actors' pool, a ``ray.data.ActorPoolStrategy``
    (default: Ray's, which grows with the cluster), and ``num_cpus`` the CPUs
    each actor reserves. Leave the reading tasks room: on a 2-CPU machine, 2
    actors of 1 CPU each starve the reader. ``concurrency=N``, deprecated as
    in Ray Data, stands for ``compute=ray.data.ActorPoolStrategy(size=N)``.
    """
    compute = _actor_pool(compute, concurrency)
    rule_set = some_rules(rules).with_tie_key(id_column)
    carried = list(dict.fromkeys([id_column, *rule_set.fields]))
    options = {"text_column": text_column, "patterns": patterns, "steps": steps, "think": think,
               "columns": rule_set.columns, "keep": carried}
    measured = ds.map_batches(CotsieveMetrics, fn_constructor_kwargs=options, batch_format="pyarrow",
                              compute=compute, num_cpus=num_cpus)
    table = _collect(measured, id_column, rule_set.fields)
    decision = rule_set.decide(table)
    decisions = table.append_column("kept", pa.array(~decision.drop)).append_column("drop_reason", decision.reasons)
    kept_ids = table.column(id_column).filter(pa.array(~decision.drop)).combine_chunks()
    kept = ds.map_batches(_rows_with_ids, fn_kwargs={"id_column": id_column, "kept": kept_ids},
                          batch_format="pyarrow")
    return FilterResult(kept, decisions)


def _actor_pool(compute: Optional[Any], concurrency: Optional[int]) -> Optional[Any]:
    """``compute``, or the pool the deprecated ``concurrency`` stands for."""
    if concurrency is None:
        return compute
    if compute is not None:
        raise ValueError("pass compute= or concurrency=, not both")
    warnings.warn(f"filter_dataset(concurrency={concurrency}) is deprecated, as in Ray Data; pass "
                  f"compute=ray.data.ActorPoolStrategy(size={concurrency})", DeprecationWarning, stacklevel=3)
    return ray.data.ActorPoolStrategy(size=concurrency)


def _collect(measured: Any, id_column: str, fields: Sequence[str]) -> pa.Table:
    """Pass 1's small table on the driver, sorted by id so that it is the same however Ray ordered the blocks."""
    tables = [t for t in ray.get(measured.to_arrow_refs()) if t.num_rows]
    if not tables:
        raise ValueError("the dataset is empty")
    table = pa.concat_tables(tables, promote_options="permissive").sort_by(id_column)
    _check_unique_ids(table, id_column, fields)
    return table


def _check_unique_ids(table: pa.Table, id_column: str, fields: Sequence[str]) -> None:
    """Refuse null or repeated ids, naming one, with its records' ``fields``, and saying how to make unique ones.

    Example:
        >>> _check_unique_ids(pa.table({"id": ["p1", "p1", "p2"], "source": ["r1", "oss", "r1"]}), "id", ["source"])
        Traceback (most recent call last):
        ...
        ValueError: ids in 'id' repeat: 'p1' is the id of 2 records (source 'oss', 'r1'), and 1 id(s) repeat in all. ...
    """
    ids = table.column(id_column)
    fix = ("filter_dataset finds the kept rows by id, so each record needs its own. When records of several models "
           "share a problem's id, combine the fields that tell them apart into one: "
           f"ds = ds.map(lambda r: {{**r, 'uid': f\"{{r['source']}}/{{r['{id_column}']}}\"}}), then pass "
           "id_column='uid' here (and --tie-key uid to cotsieve filter for the same kept set)")
    if ids.null_count:
        raise ValueError(f"{ids.null_count} record(s) have a null {id_column!r}. {fix}")
    counts = pc.value_counts(ids)
    repeated = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(repeated):
        example, n = repeated[0]["values"], repeated[0]["counts"].as_py()
        rows = table.filter(pc.equal(ids, example))
        # Sorted: records of one id arrive in whatever order Ray's blocks came.
        told = "".join(f" ({name} {', '.join(sorted(repr(v) for v in rows.column(name).to_pylist())[:3])})"
                       for name in fields if name != id_column)
        raise ValueError(f"ids in {id_column!r} repeat: {example.as_py()!r} is the id of {n} records{told}, "
                         f"and {len(repeated)} id(s) repeat in all. {fix}")
