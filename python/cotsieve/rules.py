"""Filter rules over per-trace metric tables (semantics in ``docs/curation.md``).

A rule reads columns of a metrics table (the output of ``cotsieve.analyze``
plus carried fields such as ``source``) and says which rows to drop. A rule
that needs the whole corpus (a percentile or a per-problem reference) has
``corpus_wide = True`` and must be given the full table; the pipeline makes
two passes for it. A missing value (null, e.g. ``branch_step_ratio`` of a
trace with no steps) never makes a rule drop a record.

Example:
    >>> import pyarrow as pa
    >>> t = pa.table({"branch_step_ratio": [0.1, 0.5, None], "n_words": [10, 20, 30]})
    >>> rules = RuleSet([parse_rule("branch_step_ratio <= 0.3")])
    >>> decision = rules.decide(t)
    >>> decision.drop.tolist(), decision.reasons.to_pylist(), decision.counts
    ([False, True, False], [None, 'branch_step_ratio <= 0.3', None], {'branch_step_ratio <= 0.3': 1})
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import UsageError

OPERATORS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq,
             "!=": operator.ne}
LENGTH_COLUMN = "n_words"


def column_values(table: pa.Table, column: str) -> np.ndarray:
    """A numeric column as float64, null as NaN; a clear ``KeyError`` if absent."""
    if column not in table.column_names:
        raise UsageError(f"no column {column!r}; available: {', '.join(table.column_names)}")
    return np.asarray(pc.cast(table.column(column), pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def group_codes(table: pa.Table, column: Optional[str]) -> tuple[np.ndarray, list[Any]]:
    """Integer group codes for ``column`` (all 0 when ``None``); null is a group of its own."""
    if column is None:
        return np.zeros(table.num_rows, np.int64), [None]
    if column not in table.column_names:
        raise UsageError(f"no column {column!r} to group by; available: {', '.join(table.column_names)}")
    encoded = pc.dictionary_encode(table.column(column).combine_chunks(), null_encoding="encode")
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), encoded.dictionary.to_pylist()


class Rule:
    """Base of all rules: ``name`` (used as the drop reason), the metric
    ``columns`` and record ``fields`` it reads, ``corpus_wide``, and
    ``drops(table) -> bool ndarray``."""

    corpus_wide = False
    fields: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        raise NotImplementedError

    @property
    def columns(self) -> tuple[str, ...]:
        raise NotImplementedError

    def drops(self, table: pa.Table) -> np.ndarray:
        raise NotImplementedError

    def details(self, table: pa.Table) -> dict[str, Any]:
        """Extra facts for the summary, such as percentile cutoffs."""
        return {}

    def judge(self, table: pa.Table) -> tuple[np.ndarray, dict[str, Any]]:
        """``drops`` and ``details`` at once (a rule that derives both from
        one computation does it once)."""
        return self.drops(table), self.details(table)


@dataclass(frozen=True)
class Threshold(Rule):
    """Keep records where ``column op value`` holds; drop the others. Null is kept.

    Example:
        >>> Threshold("branch_step_ratio", "<=", 0.3).drops(pa.table({"branch_step_ratio": [0.3, 0.31]})).tolist()
        [False, True]
    """

    column: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"unknown operator {self.op!r}, expected one of {list(OPERATORS)}")
        _check_finite(self.value, f"{self.column} {self.op}")

    @property
    def name(self) -> str:
        return f"{self.column} {self.op} {self.value:g}"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def drops(self, table: pa.Table) -> np.ndarray:
        values = column_values(table, self.column)
        with np.errstate(invalid="ignore"):
            return np.asarray(~np.isnan(values) & ~OPERATORS[self.op](values, self.value), bool)


TIES = ("split", "keep")
# The column whose hash orders records tied at a cutoff (see DropShare).
TIE_KEY = "record_id"


@dataclass(frozen=True)
class DropShare(Rule):
    """Drop the top (or bottom) ``share`` of records by ``column``, over the
    corpus or within each group of ``per``.

    In a group with ``n`` non-null values, ``k = round(share * n)`` records
    (halves rounded up) are dropped: those above the cutoff, the ``k``-th
    highest value (lowest for ``side="bottom"``), and as many of the records
    that tie at the cutoff as make up ``k``. Tied records are taken in the
    order of a hash of their ``tie_key`` column (:func:`tie_order`; the
    pipeline's ``record_id``, ``file:line``, by default), so the choice
    depends neither on record order nor on threads, and reruns agree. With
    ``ties="keep"`` no tie is split: the records at the cutoff all stay, and
    fewer than ``k`` may go. Null values are kept and are not counted in ``n``.

    Example:
        >>> t = pa.table({"x": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]})
        >>> DropShare("x", 0.2).drops(t).tolist()[-3:]
        [False, True, True]
        >>> tied = pa.table({"x": [0.0] * 8 + [1.0, 2.0], "record_id": [f"f:{i}" for i in range(10)]})
        >>> int(DropShare("x", 0.3).drops(tied).sum()), int(DropShare("x", 0.3, ties="keep").drops(tied).sum())
        (3, 2)
    """

    column: str
    share: float
    side: str = "top"
    per: Optional[str] = None
    ties: str = "split"
    tie_key: str = TIE_KEY
    corpus_wide = True

    def __post_init__(self) -> None:
        if not 0 <= self.share <= 1:
            raise ValueError(f"share must lie in [0, 1], got {self.share}")
        if self.side not in ("top", "bottom"):
            raise ValueError(f"side must be 'top' or 'bottom', got {self.side!r}")
        if self.ties not in TIES:
            raise ValueError(f"ties must be one of {list(TIES)}, got {self.ties!r}")

    @property
    def name(self) -> str:
        per = f" per {self.per}" if self.per else ""
        ties = " ties keep" if self.ties == "keep" else ""
        key = f" tie-key {self.tie_key}" if self.tie_key != TIE_KEY else ""
        return f"drop-{self.side} {self.share * 100:g}% {self.column}{per}{ties}{key}"

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    @property
    def fields(self) -> tuple[str, ...]:  # type: ignore[override]
        own_key = (self.tie_key,) if self.tie_key != TIE_KEY else ()
        return ((self.per,) if self.per else ()) + own_key

    def drops(self, table: pa.Table) -> np.ndarray:
        return self._cut(table).drop

    def details(self, table: pa.Table) -> dict[str, Any]:
        """The cutoff of each group, and per group: records, the share asked,
        what was dropped, and how many records sat on the cutoff."""
        return self._details(self._cut(table))

    def judge(self, table: pa.Table) -> tuple[np.ndarray, dict[str, Any]]:
        cut = self._cut(table)  # one ranking of the corpus for both
        return cut.drop, self._details(cut)

    def _details(self, cut: _Cut) -> dict[str, Any]:
        sign = 1 if self.side == "top" else -1
        shown = [None if math.isinf(c) else sign * float(c) for c in cut.cutoffs]
        groups = [{"group": _json_label(label), "records": int(n), "asked": self.share,
                   "asked_count": int(k), "dropped": int(d), "dropped_share": (float(d) / n if n else None),
                   "cutoff": c, "at_cutoff": int(t)}
                  for label, n, k, d, c, t in zip(cut.labels, cut.counts, cut.asked, cut.dropped, shown, cut.tied)]
        return {"cutoffs": {str(g["group"]): g["cutoff"] for g in groups}, "groups": groups}

    def _cut(self, table: pa.Table) -> _Cut:
        values = column_values(table, self.column)
        signed = values if self.side == "top" else -values
        groups, labels = group_codes(table, self.per)
        return _share_cut(signed, groups, labels, self.share, self.ties == "split",
                          lambda rows: tie_order(table, self.tie_key, rows))


class _Cut(NamedTuple):
    """A percentile cut: the drop mask, and per group the cutoff (the largest
    value kept, in the ranking's sign; +inf keeps all, -inf drops all), the
    non-null count, the count asked, the count dropped and the count tied."""

    drop: np.ndarray
    labels: list[Any]
    cutoffs: np.ndarray
    counts: np.ndarray
    asked: np.ndarray
    dropped: np.ndarray
    tied: np.ndarray


def _share_cut(values: np.ndarray, groups: np.ndarray, labels: list[Any], share: float, split_ties: bool,
               tie_keys: Callable[[np.ndarray], np.ndarray]) -> _Cut:
    n_groups = len(labels)
    valid = ~np.isnan(values)
    counts = np.bincount(groups[valid], minlength=n_groups)
    asked = np.floor(share * counts + 0.5 + 1e-9).astype(np.int64)  # the epsilon guards 0.29 * 100
    cutoffs = _cutoffs(values, groups, valid, counts, asked)
    with np.errstate(invalid="ignore"):
        above = valid & (values > cutoffs[groups])
        at = valid & (values == cutoffs[groups])
    drop = above.copy()
    short = asked - np.bincount(groups[above], minlength=n_groups)  # how many of the tied must go
    tied_rows = np.flatnonzero(at & (short[groups] > 0))
    if split_ties and len(tied_rows):
        drop[_first_tied(tied_rows, groups, short, tie_keys(tied_rows))] = True
    return _Cut(drop, labels, cutoffs, counts, asked, np.bincount(groups[drop], minlength=n_groups),
                np.bincount(groups[at], minlength=n_groups))


def _cutoffs(values: np.ndarray, groups: np.ndarray, valid: np.ndarray, counts: np.ndarray,
             asked: np.ndarray) -> np.ndarray:
    """Per group, the ``asked``-th highest value: the lowest that may go."""
    v, g = values[valid], groups[valid]
    order = np.lexsort((v, g))
    v = v[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    cutoffs = np.full(len(counts), np.inf)
    cutoffs[(counts > 0) & (asked == counts)] = -np.inf
    partial = (asked > 0) & (asked < counts)
    cutoffs[partial] = v[starts[partial] + counts[partial] - asked[partial] - 1]
    return cutoffs


def _first_tied(rows: np.ndarray, groups: np.ndarray, short: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Of the tied ``rows`` (with their ``keys``), the first ``short[g]`` of each group ``g`` in key order."""
    order = np.lexsort((rows, keys, groups[rows]))  # the row breaks equal keys
    g = groups[rows[order]]
    rank = np.arange(len(g)) - np.searchsorted(g, g)  # position within its group
    chosen: np.ndarray = rows[order[rank < short[g]]]
    return chosen


def tie_order(table: pa.Table, key: str = TIE_KEY, rows: Optional[np.ndarray] = None) -> np.ndarray:
    """The order of records tied at a cutoff: a 64-bit hash (BLAKE2b) of each
    value of the ``key`` column as a string, so the records a tie gives up are
    the same whatever the order of the input or the number of threads; the
    row's position where the table has no such column (then the order of the
    rows decides). Only ``rows`` (all when None) are hashed: a cut needs the
    keys of the records tied at its cutoff alone.

    Example:
        >>> a = tie_order(pa.table({"record_id": ["x.jsonl:1", "x.jsonl:2"]}))
        >>> b = tie_order(pa.table({"record_id": ["x.jsonl:2", "x.jsonl:1"]}))
        >>> a.tolist() == b[::-1].tolist()
        True
    """
    rows = np.arange(table.num_rows) if rows is None else rows
    if key not in table.column_names:
        return rows.astype(np.uint64)
    ids = table.column(key).take(pa.array(rows, pa.int64())).to_pylist()
    return np.fromiter((_hash64(str(i)) for i in ids), np.uint64, count=len(ids))


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")


def _json_label(label: Any) -> Any:
    return label if label is None or isinstance(label, (str, int, float, bool)) else str(label)


def length_baseline(share: float, per: Optional[str] = None, column: str = LENGTH_COLUMN) -> DropShare:
    """The length-only filter the paper compares against: drop the longest ``share``.

    Example:
        >>> length_baseline(0.1).name
        'drop-top 10% n_words'
    """
    return DropShare(column, share, "top", per)


@dataclass(frozen=True)
class StepCountRatio(Rule):
    """Proxy 1 of arXiv 2604.01702: drop traces whose ``n_steps`` exceeds
    ``max_ratio`` times the mean ``n_steps`` of the ``reference`` source's
    traces on the same problem. Traces whose problem has no reference trace
    (or a reference with no steps) are kept. The ratio comes from
    ``cotsieve.step_count_ratio``.

    Example:
        >>> t = pa.table({"problem_id": ["p", "p"], "source": ["r1", "oss"], "n_steps": [30, 10]})
        >>> StepCountRatio("oss", 2.0).drops(t).tolist()
        [True, False]
    """

    reference: str
    max_ratio: float
    problem: str = "problem_id"
    source: str = "source"
    corpus_wide = True

    def __post_init__(self) -> None:
        _check_finite(self.max_ratio, "step_count_ratio <=")

    @property
    def name(self) -> str:
        return f"step_count_ratio <= {self.max_ratio:g} vs {self.reference}"

    @property
    def columns(self) -> tuple[str, ...]:
        return ("n_steps",)

    @property
    def fields(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.problem, self.source)

    def drops(self, table: pa.Table) -> np.ndarray:
        ratios = step_count_ratio(table.select([*self.fields, "n_steps"]), by=self.problem, source=self.source,
                                  reference=self.reference)
        return Threshold("step_count_ratio", "<=", self.max_ratio).drops(ratios)


class RuleSet:
    """Rules combined: a record is dropped if any rule drops it; its reason
    names every rule that does, joined by ``"; "``.

    Example:
        >>> RuleSet([Threshold("n_words", "<", 1000), length_baseline(0.1)]).corpus_wide
        True
    """

    def __init__(self, rules: Sequence[Rule] = ()) -> None:
        self.rules = tuple(rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    @property
    def corpus_wide(self) -> bool:
        return any(rule.corpus_wide for rule in self.rules)

    @property
    def columns(self) -> tuple[str, ...]:
        """Metric columns the rules read."""
        return tuple(dict.fromkeys(c for rule in self.rules for c in rule.columns))

    @property
    def fields(self) -> tuple[str, ...]:
        """Record fields the rules read (carried into the metrics table)."""
        return tuple(dict.fromkeys(f for rule in self.rules for f in rule.fields))

    def decide(self, table: pa.Table) -> Decision:
        """Apply every rule to ``table`` (the whole corpus if ``corpus_wide``)."""
        judged = [rule.judge(table) for rule in self.rules]
        masks = [mask for mask, _ in judged]
        names = [rule.name for rule in self.rules]
        drop = np.logical_or.reduce(masks) if masks else np.zeros(table.num_rows, bool)
        details = [{"rule": name, **facts} for name, (_, facts) in zip(names, judged)]
        return Decision(drop, _reasons(masks, names, drop), dict(zip(names, masks)), details)

    def with_tie_key(self, column: str) -> RuleSet:
        """These rules, with the percentile rules that break ties by the default
        ``record_id`` breaking them by ``column`` instead.

        Example:
            >>> RuleSet([parse_rule("drop-top 10% n_words")]).with_tie_key("id").rules[0].name
            'drop-top 10% n_words tie-key id'
        """
        return self._percentile_default("tie_key", TIE_KEY, column)

    def with_ties(self, ties: str) -> RuleSet:
        """These rules, with the percentile rules that split ties (the
        default) handling them by ``ties`` instead.

        Example:
            >>> RuleSet([parse_rule("drop-top 10% n_words")]).with_ties("keep").rules[0].name
            'drop-top 10% n_words ties keep'
        """
        return self._percentile_default("ties", "split", ties)

    def _percentile_default(self, field: str, default: str, value: str) -> RuleSet:
        """The percentile rules whose ``field`` is ``default`` get ``value``; a
        rule that set its own keeps it."""
        change: dict[str, Any] = {field: value}
        return RuleSet([replace(r, **change) if isinstance(r, DropShare) and getattr(r, field) == default else r
                        for r in self.rules])

    def details(self, table: pa.Table) -> list[dict[str, Any]]:
        """Per rule: its name and extra facts (cutoffs), for the summary."""
        return [{"rule": rule.name, **rule.details(table)} for rule in self.rules]


class Decision(NamedTuple):
    """What a ``RuleSet`` decided: ``drop`` mask, ``reasons`` (null where
    kept), ``by_rule``, the drop mask of each rule by its name (a record
    may be dropped by several), and ``details``, as :meth:`RuleSet.details`
    gives them.

    Example:
        >>> d = RuleSet([parse_rule("x < 2"), parse_rule("x > 0")]).decide(pa.table({"x": [0, 1, 2]}))
        >>> d.counts, d.rules_dropping(0)
        ({'x < 2': 1, 'x > 0': 1}, ['x > 0'])
    """

    drop: np.ndarray
    reasons: pa.Array
    by_rule: dict[str, np.ndarray]
    details: list[dict[str, Any]]

    @property
    def counts(self) -> dict[str, int]:
        """How many records each rule drops."""
        return {name: int(mask.sum()) for name, mask in self.by_rule.items()}

    def rules_dropping(self, row: int) -> list[str]:
        """The names of the rules that drop record ``row``."""
        return [name for name, mask in self.by_rule.items() if mask[row]]


def _reasons(masks: list[np.ndarray], names: list[str], drop: np.ndarray) -> pa.Array:
    reasons: list[Optional[str]] = [None] * len(drop)
    for i in np.flatnonzero(drop):
        reasons[i] = "; ".join(name for name, mask in zip(names, masks) if mask[i])
    return pa.array(reasons, pa.string())


_THRESHOLD = re.compile(r"^\s*([A-Za-z_]\w*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
_SHARE = re.compile(r"^\s*drop-(top|bottom)\s+(\S+)\s+([A-Za-z_]\w*)(?:\s+per\s+([A-Za-z_][\w.-]*))?"
                    r"(?:\s+ties\s+(keep|split))?(?:\s+tie-key\s+([A-Za-z_][\w.-]*))?\s*$")
_PROXY1 = re.compile(r"^\s*step_count_ratio\s*<=\s*(\S+)\s+vs\s+(\S+)"
                     r"(?:\s+problem\s+([A-Za-z_][\w.-]*))?(?:\s+source\s+([A-Za-z_][\w.-]*))?\s*$")


def parse_share(text: str) -> float:
    """``"10%"`` -> 0.1, ``"0.1"`` -> 0.1.

    Example:
        >>> parse_share("10%"), parse_share("0.25")
        (0.1, 0.25)
    """
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(f"bad share {text!r}; write e.g. 10% or 0.1") from None
    if not 0 <= share <= 1:
        raise ValueError(f"share {text!r} must lie between 0% and 100%")
    return share


def parse_rule(spec: str) -> Rule:
    """Build a rule from its text form (the form rules print as).

    - ``COLUMN OP NUMBER`` (``OP``: ``<= >= < > == !=``): keep where it holds.
    - ``drop-top SHARE COLUMN [per FIELD] [ties keep] [tie-key FIELD]`` / ``drop-bottom ...``.
    - ``step_count_ratio <= X vs SOURCE [problem FIELD] [source FIELD]``: Proxy 1.

    Example:
        >>> parse_rule("drop-top 10% branch_step_ratio per source")
        DropShare(column='branch_step_ratio', share=0.1, side='top', per='source', ties='split', tie_key='record_id')
    """
    proxy1 = _PROXY1.match(spec)
    if proxy1:
        ratio, reference, problem, source = proxy1.groups()
        return StepCountRatio(reference, _number(ratio, spec), problem or "problem_id", source or "source")
    share = _SHARE.match(spec)
    if share:
        side, amount, column, per, ties, tie_key = share.groups()
        return DropShare(column, parse_share(amount), side, per, ties or "split", tie_key or TIE_KEY)
    threshold = _THRESHOLD.match(spec)
    if threshold:
        column, op, value = threshold.groups()
        return Threshold(column, op, _number(value, spec))
    raise ValueError(f"cannot read rule {spec!r}; expected e.g. 'branch_step_ratio <= 0.3', "
                     "'drop-top 10% branch_step_ratio per source' or 'step_count_ratio <= 1.5 vs gpt-oss'")


def _check_finite(value: float, what: str) -> None:
    """A rule compares with a finite number: against NaN every comparison is
    false, so a rule with one would drop every record (or none) without a word."""
    if not math.isfinite(value):
        raise UsageError(f"{what} {value}: a rule needs a finite number")


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"rule {spec!r}: {text!r} is not a number") from None


RulesArg = Union[str, Rule, Sequence[Union[str, Rule]], RuleSet]


def as_rule_set(rules: RulesArg) -> RuleSet:
    """Rules in any accepted form (text, ``Rule``, a list of those, a ``RuleSet``) as a ``RuleSet``.

    Example:
        >>> [r.name for r in as_rule_set("branch_step_ratio <= 0.3").rules]
        ['branch_step_ratio <= 0.3']
    """
    if isinstance(rules, RuleSet):
        return rules
    items = [rules] if isinstance(rules, (str, Rule)) else list(rules)
    return RuleSet([parse_rule(r) if isinstance(r, str) else r for r in items])


def some_rules(rules: RulesArg) -> RuleSet:
    """:func:`as_rule_set`, refusing an empty list: a filter with no rule would
    decide nothing, and what it was given would vanish uncounted.

    Example:
        >>> some_rules([])
        Traceback (most recent call last):
        ValueError: no rule given; pass at least one, e.g. 'branch_step_ratio <= 0.3'
    """
    rule_set = as_rule_set(rules)
    if not rule_set.rules:
        raise ValueError("no rule given; pass at least one, e.g. 'branch_step_ratio <= 0.3'")
    return rule_set


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
            raise UsageError(f"column {name!r} not in table (columns: {table.column_names})")
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
