"""A visual report of a metrics table, to look at before trusting a cut.

``write_report`` turns the ``metrics.parquet`` written by ``cotsieve analyze``
or ``cotsieve filter`` into a folder holding ``index.html`` and PNG figures
(drawn with matplotlib's Agg canvas, never through pyplot's global state):

- what the cut removed: kept and dropped counts per rule and per group, the
  percentile cutoffs, the traces just either side of each cutoff, and the
  traces the length filter removes set against those the branching filter
  removes (counts and Jaccard index);
- the distribution of each key metric per source, with the rules' cut lines;
- the mean step-label transition matrix of each source, as a heatmap;
- tables of the most extreme traces, each linked to a page that shows the
  trace with its steps coloured by label and its markers highlighted (when
  the corpus is at hand).

Any number of groups renders: the largest ``SHOWN_GROUPS`` are shown and the
rest pooled as "other (N groups)".

matplotlib is an optional dependency: ``pip install 'cotsieve[report]'``.
See ``docs/report.md``.

Example:
    >>> import tempfile, cotsieve
    >>> table = cotsieve.analyze(["Let x = 2.\\n\\nAlternatively, x = 3.", "So x = 2."])
    >>> write_report(table, tempfile.mkdtemp()).name
    'index.html'
"""

from __future__ import annotations

import html
import json
import math
import re
import warnings
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .analysis import PROGRESS, Analyzer
from .errors import OutputExistsError
from .integrations import require_extra
from .io import ReadOptions, TextSpec, read_corpus
from .io.outdir import OutputFolder
from .patterns import PatternSet, is_category_name
from .rules import LENGTH_COLUMN, DropShare, Rule, RulesArg, RuleSet, Threshold, as_rule_set, column_values, group_codes, \
    length_baseline

Progress = Callable[[str], None]

BRANCH_COLUMN = "branch_step_ratio"
# A trace page draws at most this much of its trace (drawn_part).
MAX_DRAWN_STEPS = 2000
MAX_DRAWN_BYTES = 1 << 20

KEY_METRICS = (BRANCH_COLUMN, "markers_per_1k_words", "repetition", "n_steps", "tail_after_first_answer",
               LENGTH_COLUMN)
EXTREME_BY = (BRANCH_COLUMN, "repetition", "tail_after_first_answer")
# Metrics with a long right tail: their histograms stop at CLIP_PERCENTILE and
# count the tail in the last bin, or one trace of 10^6 words flattens the rest.
HEAVY_TAILED = (LENGTH_COLUMN, "n_steps", "markers_per_1k_words")
CLIP_PERCENTILE = 99.0
DEFAULT_SHARE = 0.10
DEFAULT_TOP = 20
# Groups shown one by one (legends, heatmaps, tables); the rest are pooled.
SHOWN_GROUPS = 8
LABEL_WIDTH = 32
# Traces listed on each side of a percentile cutoff, per group.
NEAR_CUTOFF = 3
_METRIC_TITLES = {LENGTH_COLUMN: "length (n_words)"}
_ALL = "all traces"
# Colour per step label: the built-in categories first, extra ones cycle through the rest.
_LABEL_COLOURS = {"branch": "#d62728", "backtrack": "#ff7f0e", "verify": "#2ca02c", "hesitate": "#9467bd",
                  "conclude": "#1f77b4", PROGRESS: "#7f7f7f"}
_EXTRA_COLOURS = ("#8c564b", "#e377c2", "#bcbd22", "#17becf")


def require_matplotlib() -> None:
    """Raise ``MissingExtraError`` (with the pip command) unless matplotlib is installed."""
    require_extra("matplotlib", "report")


# ---------------------------------------------------------------- inputs


def load_metrics(metrics: Union[pa.Table, str, Path]) -> pa.Table:
    """A metrics table, a ``metrics.parquet`` path, or the folder that holds one."""
    if isinstance(metrics, pa.Table):
        return metrics
    path = Path(metrics)
    if path.is_dir():
        path = path / "metrics.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metrics file (write one with cotsieve analyze or filter)")
    return pq.read_table(path)


def rules_from_summary(metrics: Union[pa.Table, str, Path]) -> RuleSet:
    """The rules recorded in the ``summary.json`` beside a ``metrics.parquet``
    (none for a table, an ``analyze`` run, or a missing summary)."""
    return as_rule_set([entry["rule"] for entry in _summary_rules(metrics)])


@dataclass(frozen=True)
class Groups:
    """Rows split by a record field (``source``); one group when the field is absent.

    ``names`` are the groups shown one by one: the ``SHOWN_GROUPS`` largest
    (ties: first seen first), then, when more remain, one pooled group
    "other (N groups)". ``codes`` gives each row's index into ``names``;
    ``all_codes`` and ``all_names`` keep every group, unpooled.

    Example:
        >>> g = Groups.of(pa.table({"s": ["a", "b", "b", "c", "d"]}), "s", shown=2)
        >>> g.names, g.codes.tolist(), g.pooled
        (['b', 'a', 'other (2 groups)'], [1, 0, 0, 2, 2], 2)
    """

    codes: np.ndarray
    names: list[str]
    all_codes: np.ndarray
    all_names: list[str]
    pooled: int = 0

    @classmethod
    def of(cls, table: pa.Table, field: Optional[str], shown: int = SHOWN_GROUPS) -> Groups:
        if field is None or field not in table.column_names:
            zeros = np.zeros(table.num_rows, np.int64)
            return cls(zeros, [_ALL], zeros, [_ALL])
        codes, labels = group_codes(table, field)
        names = [str(label) for label in labels]
        counts = np.bincount(codes, minlength=len(names))
        order = np.argsort(-counts, kind="stable")
        # Pooling a single group would only hide its name.
        top = order if len(names) <= shown + 1 else order[:shown]
        pooled = len(names) - len(top)
        to_shown = np.full(len(names), len(top), np.int64)
        to_shown[top] = np.arange(len(top))
        shown_names = [names[i] for i in top] + ([f"other ({pooled:,} groups)"] if pooled else [])
        return cls(to_shown[codes], shown_names, codes, names, pooled)

    def masks(self) -> Iterator[tuple[str, np.ndarray]]:
        for i, name in enumerate(self.names):
            yield name, self.codes == i

    def is_pooled(self, name: str) -> bool:
        return bool(self.pooled) and name == self.names[-1]

    def sizes(self) -> np.ndarray:
        return np.bincount(self.codes, minlength=len(self.names))


def short_label(name: str, width: int = LABEL_WIDTH) -> str:
    """``name`` cut to ``width`` characters with an ellipsis: a path-like name
    keeps its end (the file name tells paths apart), any other its start.

    Example:
        >>> short_label("data/shards/2024/model-a/run-17/traces.jsonl", 24)
        '…/run-17/traces.jsonl'
        >>> short_label("a very long group name indeed", 12), short_label("short", 12)
        ('a very long…', 'short')
    """
    if len(name) <= width:
        return name
    if "/" in name or "\\" in name:
        tail = name[-(width - 1):]
        cut = min((tail.find(sep) for sep in "/\\" if tail.find(sep) > 0), default=0)
        return "…" + tail[cut:]
    return name[:width - 1] + "…"


def label_names(table: pa.Table) -> list[str]:
    """Step labels in column order: the categories of the ``count_<cat>`` columns, then ``progress``.
    A ``count_`` column whose rest is no category name (a lowercase
    identifier, as pattern sets require) is some other column, not a label."""
    names = [c[len("count_"):] for c in table.column_names if c.startswith("count_")]
    return [name for name in names if is_category_name(name)] + [PROGRESS]


def label_colours(labels: Sequence[str]) -> dict[str, str]:
    extra = [label for label in labels if label not in _LABEL_COLOURS]
    return {**_LABEL_COLOURS, **{label: _EXTRA_COLOURS[i % len(_EXTRA_COLOURS)] for i, label in enumerate(extra)}}


# ---------------------------------------------------------------- numbers


def cut_lines(rules: RuleSet, table: pa.Table, column: str) -> list[tuple[str, Optional[str], float]]:
    """``(rule name, group or None, value)`` for each cut a rule makes on ``column``.

    A ``DropShare`` cut is its percentile cutoff (per group with ``per``), the
    value rules.py computes; a ``Threshold`` cut is its value.

    Example:
        >>> t = pa.table({"x": [1.0, 2.0, 3.0, 4.0]})
        >>> cut_lines(RuleSet([DropShare("x", 0.25), Threshold("x", "<=", 3.5)]), t, "x")
        [('drop-top 25% x', None, 3.0), ('x <= 3.5', None, 3.5)]
    """
    lines: list[tuple[str, Optional[str], float]] = []
    for rule in rules.rules:
        if isinstance(rule, Threshold) and rule.column == column:
            lines.append((rule.name, None, rule.value))
        elif isinstance(rule, DropShare) and rule.column == column:
            for group, cutoff in rule.details(table)["cutoffs"].items():
                if cutoff is not None:
                    lines.append((rule.name, group if rule.per else None, cutoff))
    return lines


def transition_matrix(table: pa.Table, rows: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Mean of each ``p_<a>_<b>`` over the selected rows (nulls skipped; NaN where all are null)."""
    matrix = np.full((len(labels), len(labels)), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a label never followed by a step: all null
        for a, src in enumerate(labels):
            for b, dst in enumerate(labels):
                matrix[a, b] = np.nanmean(column_values(table, f"p_{src}_{dst}")[rows])
    return matrix


@dataclass(frozen=True)
class Overlap:
    """Which traces a length filter and a branching filter each remove."""

    length_rule: str
    branch_rule: str
    by_length: np.ndarray
    by_branch: np.ndarray

    @property
    def both(self) -> int:
        return int((self.by_length & self.by_branch).sum())

    @property
    def length_only(self) -> int:
        return int((self.by_length & ~self.by_branch).sum())

    @property
    def branch_only(self) -> int:
        return int((~self.by_length & self.by_branch).sum())

    @property
    def neither(self) -> int:
        return int((~self.by_length & ~self.by_branch).sum())

    @property
    def jaccard(self) -> Optional[float]:
        """|both| / |either|; ``None`` when neither filter removes anything."""
        either = int((self.by_length | self.by_branch).sum())
        return self.both / either if either else None


def overlap_rules(rules: RuleSet, table: pa.Table, group: Optional[str]) -> tuple[Rule, Rule]:
    """The branching and length filters to compare.

    Each is the first given rule on its column (``branch_step_ratio``,
    ``n_words``). Failing that, the branching filter is the paper's remedy
    (drop the top 10% per group) and the length filter drops the same share
    as the branching filter (per the same group), as in the paper's baseline.
    """
    def first_on(column: str) -> Optional[Rule]:
        return next((r for r in rules.rules if column in r.columns and isinstance(r, (Threshold, DropShare))), None)

    per = group if group in table.column_names else None
    branch = first_on(BRANCH_COLUMN) or DropShare(BRANCH_COLUMN, DEFAULT_SHARE, per=per)
    if isinstance(branch, DropShare):
        share, per = branch.share, branch.per
    else:
        share = float(branch.drops(table).mean()) if table.num_rows else 0.0
    return branch, first_on(LENGTH_COLUMN) or length_baseline(share, per)


def overlap(rules: RuleSet, table: pa.Table, group: Optional[str]) -> Overlap:
    branch, length = overlap_rules(rules, table, group)
    return Overlap(length.name, branch.name, length.drops(table), branch.drops(table))


@dataclass(frozen=True)
class Removed:
    """What a cut removed: ``kept`` per row, per rule name the rows it
    dropped, and each row's ``reasons`` (null where kept)."""

    kept: np.ndarray
    by_rule: dict[str, np.ndarray]
    reasons: pa.Array


def removed(table: pa.Table, rules: RuleSet) -> Removed:
    """The decision recorded in the metrics' ``kept`` and ``drop_reason``
    columns when they hold one made by ``rules`` (or ``rules`` is empty);
    otherwise the decision ``rules`` make on the table now.

    Example:
        >>> t = pa.table({"x": [1.0, 5.0, 9.0]})
        >>> r = removed(t, as_rule_set(["x < 8", "x > 2"]))
        >>> r.kept.tolist(), {name: m.tolist() for name, m in r.by_rule.items()}
        ([False, True, False], {'x < 8': [False, False, True], 'x > 2': [True, False, False]})
    """
    names = [rule.name for rule in rules.rules]
    if {"kept", "drop_reason"} <= set(table.column_names):
        reasons = table.column("drop_reason").combine_chunks()
        seen = _reason_names(reasons)
        if seen <= set(names) or not rules:
            kept = np.asarray(pc.fill_null(table.column("kept"), True).to_numpy(zero_copy_only=False), bool)
            return Removed(kept, reason_masks(reasons, names + sorted(seen - set(names))), reasons)
    decision = rules.decide(table)
    return Removed(~decision.drop, reason_masks(decision.reasons, names), decision.reasons)


def _reason_names(reasons: pa.Array) -> set[str]:
    return {name for value in pc.unique(reasons).to_pylist() if value for name in value.split("; ")}


def reason_masks(reasons: pa.Array, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Per rule name, the rows whose drop reason names it (a reason names
    every rule that dropped the row, joined by ``"; "``).

    Example:
        >>> reason_masks(pa.array(["a", None, "a; b"]), ["a", "b"])["b"].tolist()
        [False, False, True]
    """
    encoded = pc.dictionary_encode(reasons)
    codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    parts = [set(str(value).split("; ")) for value in encoded.dictionary.to_pylist()]
    return {name: np.isin(codes, [j for j, p in enumerate(parts) if name in p]) for name in names}


def percentile_cuts(metrics: Union[pa.Table, str, Path], rules: RuleSet, table: pa.Table, from_summary: bool
                    ) -> list[tuple[DropShare, dict[str, Optional[float]]]]:
    """Each ``DropShare`` rule with its cutoff per group: from the
    ``summary.json`` beside ``metrics`` (its ``groups``, else its ``cutoffs``)
    when ``from_summary`` and it records the rule, else computed by the rule.

    Example:
        >>> t = pa.table({"x": [1.0, 2.0, 3.0, 4.0]})
        >>> [(r.name, c) for r, c in percentile_cuts(t, as_rule_set(["drop-top 25% x"]), t, False)]
        [('drop-top 25% x', {'None': 3.0})]
    """
    recorded = {entry["rule"]: entry for entry in _summary_rules(metrics)} if from_summary else {}
    cuts = []
    for rule in rules.rules:
        if isinstance(rule, DropShare):
            entry = recorded.get(rule.name) or rule.details(table)
            if "groups" in entry:
                cutoffs = {str(g["group"]): g["cutoff"] for g in entry["groups"]}
            else:
                cutoffs = dict(entry.get("cutoffs", {}))
            cuts.append((rule, cutoffs))
    return cuts


def _summary_rules(metrics: Union[pa.Table, str, Path]) -> list[dict[str, Any]]:
    if isinstance(metrics, pa.Table):
        return []
    path = Path(metrics)
    summary = (path if path.is_dir() else path.parent) / "summary.json"
    return json.loads(summary.read_text()).get("rules", []) if summary.is_file() else []


@dataclass(frozen=True)
class NearCutoff:
    """A trace beside a percentile cutoff: its row, group, side and value."""

    rule: str
    group: str
    cutoff: float
    row: int
    dropped: bool
    value: float


def near_cutoff(table: pa.Table, cuts: Sequence[tuple[DropShare, dict[str, Optional[float]]]], groups: Groups,
                result: Removed, field: Optional[str], per_side: int = NEAR_CUTOFF) -> list[NearCutoff]:
    """For each percentile cut and each shown group it ranks within (the
    corpus for a rule without ``per``), the ``per_side`` traces the rule kept
    and the ``per_side`` it dropped whose values lie nearest the cutoff."""
    found: list[NearCutoff] = []
    for rule, cutoffs in cuts:
        if rule.per is not None and rule.per != field:
            continue  # ranked within another field's groups: no shown group to list
        values = column_values(table, rule.column)
        dropped = result.by_rule.get(rule.name, np.zeros(table.num_rows, bool))
        places = [(_ALL, np.ones(table.num_rows, bool), cutoffs.get("None"))] if rule.per is None else \
            [(name, mask, cutoffs.get(name)) for name, mask in groups.masks() if not groups.is_pooled(name)]
        for name, mask, cutoff in places:
            if cutoff is None:
                continue
            for side in (False, True):
                rows = np.flatnonzero(mask & (dropped == side) & ~np.isnan(values))
                nearest = rows[np.argsort(np.abs(values[rows] - cutoff), kind="stable")[:per_side]]
                found += [NearCutoff(rule.name, name, cutoff, int(i), side, float(values[i])) for i in nearest]
    return found


def extreme_rows(table: pa.Table, column: str, top: int) -> np.ndarray:
    """Rows with the ``top`` largest non-null values of ``column``, largest first (ties: first row first)."""
    values = column_values(table, column)
    valid = np.flatnonzero(~np.isnan(values))
    return valid[np.argsort(-values[valid], kind="stable")][:top]


# ---------------------------------------------------------------- figures


def _new_figure(width: float, height: float) -> Any:
    figure_module = require_extra("matplotlib.figure", "report")
    agg = require_extra("matplotlib.backends.backend_agg", "report")
    figure = figure_module.Figure(figsize=(width, height), layout="constrained")
    agg.FigureCanvasAgg(figure)
    return figure


def _save(figure: Any, path: Path) -> Path:
    figure.savefig(path, dpi=100)
    return path


def clip_limit(values: np.ndarray, column: str) -> Optional[float]:
    """The ``CLIP_PERCENTILE`` of a heavy-tailed column's non-null values when
    some lie above it (the histogram stops there); ``None`` otherwise.

    Example:
        >>> clip_limit(np.append(np.ones(200), 1e6), "n_words"), clip_limit(np.ones(5), "n_words")
        (1.0, None)
    """
    present = values[~np.isnan(values)]
    if column not in HEAVY_TAILED or not present.size:
        return None
    limit = float(np.percentile(present, CLIP_PERCENTILE))
    return limit if present.max() > limit else None


def distribution_figure(table: pa.Table, column: str, groups: Groups, rules: RuleSet, path: Path) -> Path:
    """Per-group histograms of ``column`` (density, shared bins) with the rules' cut lines.

    The legend sits outside the axes; a heavy-tailed column stops at its
    ``clip_limit``, its tail counted in the last bin, and the figure says so.
    Cut lines are drawn for the shown groups, not the pooled ones.
    """
    figure = _new_figure(9, 4)
    axes = figure.add_subplot()
    values = column_values(table, column)
    present = values[~np.isnan(values)]
    limit = clip_limit(values, column)
    if limit is not None:
        values = np.minimum(values, limit)
    bins = np.histogram_bin_edges(values[~np.isnan(values)], bins=40) if present.size else 10
    colours = {}
    for name, rows in groups.masks():
        mine = values[rows]
        mine = mine[~np.isnan(mine)]
        if mine.size:
            *_, patches = axes.hist(mine, bins=bins, density=True, histtype="step", linewidth=1.5,
                                    label=f"{short_label(name)} (n={mine.size:,})")
            colours[name] = patches[0].get_edgecolor()
    hidden = 0
    for rule_name, group, value in cut_lines(rules, table, column):
        if group is not None and group not in colours:
            hidden += 1
            continue
        colour = colours.get(group, "black") if group is not None else "black"
        where = f" [{short_label(group, 20)}]" if group is not None else ""
        beyond = " (beyond the clip)" if limit is not None and value > limit else ""
        axes.axvline(value, color=colour, linestyle="--", linewidth=1.2,
                     label=f"cut: {short_label(rule_name, 40)}{where} = {value:g}{beyond}")
    axes.set_title(_METRIC_TITLES.get(column, column))
    axes.set_xlabel(column)
    axes.set_ylabel("density")
    if limit is not None:
        axes.set_xlim(right=limit)
    notes = _clip_note(present, limit) + ([f"cut lines of {hidden:,} more groups: see the cut tables"] if hidden else [])
    if notes:
        axes.text(0.99, 0.98, "\n".join(notes), ha="right", va="top", fontsize="small", transform=axes.transAxes,
                  bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "#ccc"})
    if not present.size:
        axes.text(0.5, 0.5, "no values", ha="center", va="center", transform=axes.transAxes)
    if axes.get_legend_handles_labels()[0]:
        figure.legend(loc="outside right upper", fontsize="small")
    return _save(figure, path)


def _clip_note(present: np.ndarray, limit: Optional[float]) -> list[str]:
    if limit is None:
        return []
    above = int((present > limit).sum())
    return [f"clipped at p{CLIP_PERCENTILE:g} = {limit:g}: {above:,} traces ({above / present.size:.1%}) above it, "
            f"counted in the last bin; max {present.max():g}"]


def transitions_figure(table: pa.Table, groups: Groups, path: Path) -> Path:
    """One heatmap per group: mean P(next step's label | this step's label)."""
    labels = label_names(table)
    columns = min(len(groups.names), 3)
    rows = math.ceil(len(groups.names) / columns)
    figure = _new_figure(4.6 * columns, 4.2 * rows)
    for i, (name, mask) in enumerate(groups.masks()):
        axes = figure.add_subplot(rows, columns, i + 1)
        matrix = transition_matrix(table, mask, labels)
        image = axes.imshow(np.ma.masked_invalid(matrix), vmin=0, vmax=1, cmap="viridis")
        axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
        axes.set_yticks(range(len(labels)), labels)
        axes.set_xlabel("next step")
        axes.set_ylabel("step")
        axes.set_title(f"{short_label(name)} (n={int(mask.sum()):,})", fontsize="medium")
        for (a, b), value in np.ndenumerate(matrix):
            if not np.isnan(value):
                axes.text(b, a, f"{value:.2f}", ha="center", va="center", fontsize=7,
                          color="white" if value < 0.5 else "black")
        figure.colorbar(image, ax=axes, shrink=0.8)
    return _save(figure, path)


def overlap_figure(result: Overlap, path: Path) -> Path:
    """Bars: traces removed by the length filter only, by both, by the branching filter only."""
    figure = _new_figure(6, 3.2)
    axes = figure.add_subplot()
    counts = [result.length_only, result.both, result.branch_only]
    bars = axes.bar(["length only", "both", "branching only"], counts, color=["#7f7f7f", "#9467bd", "#d62728"])
    axes.bar_label(bars)
    jaccard = "n/a" if result.jaccard is None else f"{result.jaccard:.3f}"
    axes.set_title(f"traces removed (Jaccard = {jaccard})")
    axes.set_ylabel("traces")
    return _save(figure, path)


# ---------------------------------------------------------------- trace views


def _utf8_start(data: bytes, pos: int) -> int:
    """``pos``, moved back to the first byte of the UTF-8 character it falls inside, if any.

    Example:
        >>> _utf8_start("a©".encode(), 2), _utf8_start("a©".encode(), 1), _utf8_start(b"\\xa9\\xa9", 1)
        (1, 1, 1)
    """
    if pos >= len(data) or data[pos] & 0xC0 != 0x80:
        return pos
    for lead in range(pos - 1, max(pos - 4, -1), -1):
        byte = data[lead]
        if byte & 0xC0 != 0x80:
            width = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4 if byte >> 3 == 0b11110 else 1
            return lead if lead + width > pos else pos
    return pos


def highlighted_html(data: bytes, steps: pa.Table, marks: pa.Table, counted: Optional[str] = None) -> str:
    """The trace as HTML: each step a ``<span class="step label-…">``, each
    marker a ``<mark class="marker cat-…">`` inside it, all text escaped.
    Steps flagged ``counted`` (what the ranking metric counts) also get the
    class ``counted``.

    Cuts at step and marker edges are moved to UTF-8 character starts, so no
    character is split; invalid bytes decode to U+FFFD. A marker that crosses
    a step edge is split there, so the tags always nest.

    Example:
        >>> import cotsieve
        >>> ps = cotsieve.PatternSet([("wait", "backtrack")])
        >>> text = b"Wait, <b>."
        >>> print(highlighted_html(text, cotsieve.segments([text], ps), ps.matches([text])).replace("><", ">\\n<"))
        <span class="step label-backtrack" title="step 1: backtrack; flags: backtrack">
        <mark class="marker cat-backtrack">Wait</mark>, &lt;b&gt;.</span>
    """
    step_spans = list(zip(steps.column("start").to_pylist(), steps.column("end").to_pylist(),
                          steps.column("label").to_pylist(), steps.column("flags").to_pylist()))
    mark_spans = list(zip(marks.column("start").to_pylist(), marks.column("end").to_pylist(),
                          marks.column("category").to_pylist()))
    edges = {0, len(data)} | {e for s in step_spans for e in s[:2]} | {e for m in mark_spans for e in m[:2]}
    cuts = sorted({_utf8_start(data, e) for e in edges})
    out: list[str] = []
    step_in, mark_in = _span_lookup([s[:2] for s in step_spans]), _span_lookup([m[:2] for m in mark_spans])
    open_step = open_mark = None
    for start, end in zip(cuts, cuts[1:]):
        step, mark = step_in(start, end), mark_in(start, end)
        if open_mark is not None and (mark != open_mark or step != open_step):
            out.append("</mark>")
            open_mark = None
        if step != open_step:
            if open_step is not None:
                out.append("</span>")
            if step is not None:
                _, _, label, flags = step_spans[step]
                title = f"step {step + 1}: {label}; flags: {', '.join(flags) or 'none'}"
                extra = " counted" if counted is not None and counted in flags else ""
                out.append(f'<span class="step label-{css_name(label)}{extra}" title="{html.escape(title)}">')
            open_step = step
        if mark is not None and open_mark is None:
            out.append(f'<mark class="marker cat-{css_name(mark_spans[mark][2])}">')
            open_mark = mark
        out.append(html.escape(data[start:end].decode("utf-8", "replace")))
    out.append(("</mark>" if open_mark is not None else "") + ("</span>" if open_step is not None else ""))
    return "".join(out)


def _span_lookup(spans: list[tuple[int, int]]) -> Callable[[int, int], Optional[int]]:
    """A function from a piece ``[start, end)`` of the text to the index of
    the sorted, disjoint span that overlaps it (the last one, or None)."""
    starts = np.array([s for s, _ in spans], np.int64)
    ends = np.array([e for _, e in spans], np.int64)

    def overlapping(start: int, end: int) -> Optional[int]:
        i = int(np.searchsorted(starts, end, side="left")) - 1
        return i if i >= 0 and ends[i] > start else None

    return overlapping


def trace_texts(corpus: Any, table: pa.Table, rows: Sequence[int], text: TextSpec) -> dict[int, bytes]:
    """The texts of the given metric rows, read from ``corpus`` by their ``file`` and ``row`` columns.

    Files are matched by resolved path, so a corpus named with a different
    relative or absolute spelling still matches. Rows not found are left out.
    """
    if not {"file", "row"} <= set(table.column_names):
        return {}
    files, numbers = table.column("file").to_pylist(), table.column("row").to_pylist()
    wanted = {(str(Path(files[i]).resolve()), numbers[i]): i for i in rows}
    found: dict[int, bytes] = {}
    for chunk in read_corpus(corpus, ReadOptions(text)):
        name = str(Path(chunk.source.name).resolve())
        for row in range(chunk.first_row, chunk.first_row + len(chunk)):
            i = wanted.get((name, row))
            if i is not None and chunk.texts[row - chunk.first_row].is_valid:
                found[i] = chunk.texts[row - chunk.first_row].as_py()
        if len(found) == len(wanted):
            break
    return found


def default_corpus(table: pa.Table) -> list[str]:
    """The input files named in the metrics' ``file`` column that still exist."""
    if "file" not in table.column_names:
        return []
    return [f for f in dict.fromkeys(table.column("file").to_pylist()) if Path(f).is_file()]


# ---------------------------------------------------------------- HTML


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222;
       overflow-wrap: break-word; }
img { max-width: 100%; height: auto; box-sizing: border-box; border: 1px solid #ddd; margin: .5em 0; }
.scroll { max-width: 100%; overflow-x: auto; margin: .5em 0 1.5em; }
table { border-collapse: collapse; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.trace { white-space: pre-wrap; font-family: ui-monospace, monospace; font-size: 90%; line-height: 1.5;
         border: 1px solid #ddd; padding: 1em; }
.step { border-left: 4px solid; padding-left: 2px; }
.step.counted { background: #ffd54f88; }
mark.marker { font-weight: bold; border-radius: 2px; padding: 0 1px; }
.legend span { display: inline-block; margin-right: 1em; padding: 0 .4em; }
"""
_IMAGES_CHECK = """<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var ok = images.length > 0 && images.every(function (im) { return im.complete && im.naturalWidth > 0; });
  document.body.setAttribute("data-images-ok", ok ? "true" : "false");
});
</script>"""
# Sets data-overflow-ok="true" when nothing reaches past the window's width:
# a wide table may scroll inside its .scroll wrapper, the wrapper itself may not.
_OVERFLOW_CHECK = """<script>
window.addEventListener("load", function () {
  var width = window.innerWidth;
  var wide = Array.prototype.filter.call(document.body.querySelectorAll("*"), function (el) {
    var inside = el.parentElement && el.parentElement.closest(".scroll");
    return !inside && el.getBoundingClientRect().right > width + 0.5;
  });
  var ok = document.documentElement.scrollWidth <= width && wide.length === 0;
  document.body.setAttribute("data-overflow-ok", ok ? "true" : "false");
});
</script>"""


def css_name(name: str) -> str:
    """A CSS class fragment for a label or category name, which comes from a
    pattern set or a column and so from the user: the name itself when it is
    letters, digits, '-' and '_' only; otherwise those of its characters and a
    hash of the whole, so that no name can close a style block or an attribute.

    Example:
        >>> css_name("backtrack"), css_name("x</style><script>")
        ('backtrack', 'xstylescript-8512c345')
    """
    safe = re.sub(r"[^A-Za-z0-9_-]", "", name)
    return safe if safe == name and safe else f"{safe}-{zlib.crc32(name.encode('utf-8', 'surrogatepass')):08x}"


def _label_css(colours: dict[str, str]) -> str:
    return "".join(f".label-{css_name(label)} {{ border-color: {c}; background: {c}14; }} "
                   f".cat-{css_name(label)} {{ background: {c}55; }}\n" for label, c in colours.items())


def _page(title: str, body: str, colours: dict[str, str], script: str = "") -> str:
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>{_STYLE}{_label_css(colours)}</style>\n</head>\n<body>\n{body}\n{script}\n</body>\n</html>\n")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """An HTML table; cells are HTML already (escape text before)."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    return f'<div class="scroll"><table>\n<tr>{head}</tr>\n{body}</table></div>'


def _group_cell(name: str) -> str:
    """A group name for a table cell: shortened, the full name on hover."""
    return f'<span title="{html.escape(name)}">{html.escape(short_label(name))}</span>'


def _count_share(count: int, total: int) -> str:
    """``count (share of total)``, e.g. ``12 (4.0%)``; the share is blank for no records.

    Example:
        >>> _count_share(12, 300), _count_share(0, 0)
        ('12 (4.0%)', '0')
    """
    return f"{count:,} ({count / total:.1%})" if total else f"{count:,}"


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def _legend(colours: dict[str, str], labels: Sequence[str], ranked_by: str) -> str:
    items = "".join(f'<span class="label-{css_name(label)}">{html.escape(label)}</span>' for label in labels)
    counted = counted_flag(ranked_by)
    shaded = (f' · <span class="step counted">shaded</span> steps are those <code>{html.escape(ranked_by)}</code> '
              f"counts (flagged {html.escape(counted)})" if counted else "")
    return (f'<p class="legend">step labels: {items} · markers are <mark class="marker">highlighted</mark>'
            f"{shaded}</p>")


def _record_label(table: pa.Table, i: int) -> str:
    return str(table.column("record_id")[i].as_py()) if "record_id" in table.column_names else f"row {i}"


def carried_fields(table: pa.Table) -> list[str]:
    """The text columns of a metrics table, which are not metrics: ids, file
    names, and the record fields carried with ``--field`` (``model``, ``problem``…).

    Example:
        >>> carried_fields(pa.table({"record_id": ["a:1"], "n_words": [3], "model": ["m"]}))
        ['record_id', 'model']
    """
    return [field.name for field in table.schema
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
            or (pa.types.is_dictionary(field.type) and pa.types.is_string(field.type.value_type))]


def _trace_facts(table: pa.Table, i: int, group: Optional[str]) -> list[tuple[str, str]]:
    names = dict.fromkeys(c for c in (group, *KEY_METRICS, "kept", "drop_reason", *carried_fields(table))
                          if c and c in table.column_names)
    return [(html.escape(name), html.escape(_number(table.column(name)[i].as_py()) if name in KEY_METRICS
                                            else str(table.column(name)[i].as_py()))) for name in names]


def counted_flag(column: str) -> Optional[str]:
    """The step flag a metric counts: ``branch`` for ``branch_step_ratio``,
    ``<cat>`` for ``steps_<cat>``; ``None`` for a metric that counts no steps.

    Example:
        >>> counted_flag("branch_step_ratio"), counted_flag("steps_verify"), counted_flag("n_words")
        ('branch', 'verify', None)
    """
    if column == BRANCH_COLUMN:
        return "branch"
    return column[len("steps_"):] if column.startswith("steps_") and is_category_name(column[len("steps_"):]) else None


def trace_page(table: pa.Table, i: int, data: bytes, analyzer: Analyzer, group: Optional[str],
               ranked_by: str = BRANCH_COLUMN) -> str:
    """The view of one trace: its facts (metrics and carried fields), a label
    legend, and the highlighted text, the steps ``ranked_by`` counts shaded."""
    patterns = analyzer.patterns
    labels = list(patterns.categories) + [PROGRESS]
    colours = label_colours(labels)
    title = _record_label(table, i)
    counted = counted_flag(ranked_by)
    drawn, note = drawn_part(data, analyzer.segments([data], threads=1))
    text = highlighted_html(drawn, analyzer.segments([drawn], threads=1), patterns.matches([drawn], threads=1),
                            counted)
    body = (f'<p><a href="../index.html">← report</a></p>\n<h1>{html.escape(title)}</h1>\n'
            f"{_table(['field', 'value'], _trace_facts(table, i, group))}\n{_legend(colours, labels, ranked_by)}\n"
            f'{note}<div class="trace">{text}</div>')
    return _page(title, body, colours, _OVERFLOW_CHECK)


def drawn_part(data: bytes, steps: pa.Table) -> tuple[bytes, str]:
    """The start of a trace that its page draws, and the page's note when that
    is not all of it: at most ``MAX_DRAWN_STEPS`` steps and ``MAX_DRAWN_BYTES``
    bytes, so that a page (and the memory to build it) stays within a small
    multiple of what a reader can take in, whatever the trace's size.

    Example:
        >>> import cotsieve
        >>> text = b"a.\\n\\n" * 3000
        >>> part, note = drawn_part(text, cotsieve.segments([text]))
        >>> len(part), "first 2,000 of 3,000 steps" in note
        (7998, True)
    """
    cut = len(data)
    if steps.num_rows > MAX_DRAWN_STEPS:
        cut = int(steps.column("end")[MAX_DRAWN_STEPS - 1].as_py())
    cut = _utf8_start(data, min(cut, MAX_DRAWN_BYTES))
    if cut == len(data):
        return data, ""
    shown = int(np.searchsorted(steps.column("end").to_numpy(), cut, side="right"))
    return data[:cut], (f'<p class="note">This page draws the first {shown:,} of {steps.num_rows:,} steps '
                        f"({cut:,} of {len(data):,} bytes); the metrics above are of the whole trace.</p>\n")


def _extreme_table(table: pa.Table, column: str, rows: np.ndarray, links: dict[int, str], group: Optional[str]) -> str:
    header = ["trace", *([group] if group is not None and group in table.column_names else []), column, "n_words",
              "n_steps", "kept"]
    out = []
    for i in rows.tolist():
        label = html.escape(_record_label(table, i))
        cells = [f'<a href="{links[i]}">{label}</a>' if i in links else label]
        if group in table.column_names:
            cells.append(_group_cell(str(table.column(group)[i].as_py())))
        cells += [_number(table.column(c)[i].as_py()) for c in (column, "n_words", "n_steps")]
        cells.append(html.escape(str(table.column("kept")[i].as_py())) if "kept" in table.column_names else "–")
        out.append(cells)
    return _table([html.escape(h) for h in header], out)


def _overlap_section(result: Overlap, figure: str) -> str:
    rows = [["removed by length", str(result.both), str(result.length_only)],
            ["kept by length", str(result.branch_only), str(result.neither)]]
    jaccard = "n/a (neither removes a trace)" if result.jaccard is None else f"{result.jaccard:.3f}"
    return (f"<h3>Length filter vs branching filter</h3>\n<p>length: <code>{html.escape(result.length_rule)}</code>; "
            f"branching: <code>{html.escape(result.branch_rule)}</code>; Jaccard index of the removed sets: "
            f"<b>{jaccard}</b></p>\n"
            f"{_table(['', 'removed by branching', 'kept by branching'], rows)}\n"
            f'<img src="{figure}" alt="traces removed by each filter">')


def _rules_section(rules: RuleSet) -> str:
    if not rules:
        return "<p>No filter rules given: nothing is removed, and the overlap section uses the paper's defaults.</p>"
    items = "".join(f"<li><code>{html.escape(rule.name)}</code></li>" for rule in rules.rules)
    return f"<h3>Rules</h3>\n<ul>{items}</ul>"


def _removed_row(label: str, mask: np.ndarray, result: Removed) -> list[str]:
    n = int(mask.sum())
    kept = int((result.kept & mask).sum())
    return [label, f"{n:,}", _count_share(kept, n), _count_share(n - kept, n),
            *(_count_share(int((dropped & mask).sum()), n) for dropped in result.by_rule.values())]


def _removed_table(groups: Groups, result: Removed, field: Optional[str]) -> str:
    header = [html.escape(field or "group"), "records", "kept", "dropped",
              *(f"dropped by <code>{html.escape(name)}</code>" for name in result.by_rule)]
    rows = [_removed_row(_group_cell(name), mask, result) for name, mask in groups.masks()]
    rows.append(_removed_row("<b>all</b>", np.ones(len(result.kept), bool), result))
    return _table(header, rows)


def _cutoff_range(cutoffs: Sequence[Optional[float]]) -> str:
    present = [c for c in cutoffs if c is not None]
    if not present:
        return "–"
    low, high = min(present), max(present)
    return _number(low) if low == high else f"{_number(low)} – {_number(high)}"


def _cutoff_table(table: pa.Table, rule: DropShare, cutoffs: dict[str, Optional[float]], groups: Groups,
                  result: Removed) -> str:
    values = column_values(table, rule.column)
    dropped = result.by_rule.get(rule.name, np.zeros(table.num_rows, bool))
    shown = set(groups.names)
    rows = []
    for name, mask in groups.masks():
        if groups.is_pooled(name):
            cutoff = _cutoff_range([cutoffs.get(n) for n in groups.all_names if n not in shown])
            at = "–"
        else:
            value = cutoffs.get(name)
            cutoff = _number(value)
            at = "–" if value is None else f"{int((mask & (values == value)).sum()):,}"
        n = int(mask.sum())
        rows.append([_group_cell(name), f"{n:,}", _count_share(int((dropped & mask).sum()), n), cutoff, at])
    return _table([html.escape(rule.per or "group"), "records", "dropped by this rule", "cutoff", "at the cutoff"],
                  rows)


def _cutoff_part(table: pa.Table, rule: DropShare, cutoffs: dict[str, Optional[float]], groups: Groups,
                 result: Removed, field: Optional[str]) -> str:
    head = f"<h3>Cutoffs of <code>{html.escape(rule.name)}</code></h3>\n"
    if rule.per is None:
        return head + f"<p>cutoff: <b>{_number(cutoffs.get('None'))}</b> (one for the corpus)</p>"
    if rule.per != field:
        return head + (f"<p>{len(cutoffs):,} cutoffs, one per <code>{html.escape(rule.per)}</code>, from "
                       f"{_cutoff_range(list(cutoffs.values()))}.</p>")
    return head + _cutoff_table(table, rule, cutoffs, groups, result)


def _near_table(table: pa.Table, near: Sequence[NearCutoff], result: Removed, links: dict[int, str]) -> str:
    rows = []
    for item in near:
        label = html.escape(_record_label(table, item.row))
        reason = result.reasons[item.row].as_py()
        rows.append([_group_cell(item.group), "dropped" if item.dropped else "kept",
                     f'<a href="{links[item.row]}">{label}</a>' if item.row in links else label,
                     _number(item.value), _number(item.cutoff), html.escape(reason) if reason else "–"])
    return _table(["group", "side", "trace", "value", "cutoff", "drop_reason"], rows)


def _all_groups(groups: Groups, result: Removed, field: Optional[str]) -> str:
    """Every group with its counts, folded: the figures and tables above pool the small ones."""
    n = len(groups.all_names)
    records = np.bincount(groups.all_codes, minlength=n)
    kept = np.bincount(groups.all_codes, weights=result.kept, minlength=n).astype(np.int64)
    rows = [[html.escape(groups.all_names[g]), f"{records[g]:,}", _count_share(int(kept[g]), int(records[g])),
             _count_share(int(records[g] - kept[g]), int(records[g]))]
            for g in np.argsort(-records, kind="stable").tolist()]
    return (f"<details><summary>all {n:,} groups</summary>\n"
            f"{_table([html.escape(field or 'group'), 'records', 'kept', 'dropped'], rows)}</details>")


def _removed_section(table: pa.Table, rules: RuleSet, cuts: Sequence[tuple[DropShare, dict[str, Optional[float]]]],
                     groups: Groups, result: Removed, near: Sequence[NearCutoff], field: Optional[str],
                     links: dict[int, str]) -> str:
    """The first section: what the cut removed, per rule and group, where it cut, and what lies either side."""
    parts = ["<h2>What the cut removed</h2>", _rules_section(rules), _removed_table(groups, result, field)]
    if groups.pooled:
        parts.append(_all_groups(groups, result, field))
    for rule, cutoffs in cuts:
        parts.append(_cutoff_part(table, rule, cutoffs, groups, result, field))
        mine = [item for item in near if item.rule == rule.name]
        if mine:
            parts.append(f"<p>The traces nearest the cutoff on each side (up to {NEAR_CUTOFF} per group and side):"
                         f"</p>\n{_near_table(table, mine, result, links)}")
    return "\n".join(parts)


# ---------------------------------------------------------------- the report


def write_report(metrics: Union[pa.Table, str, Path], out_dir: Union[str, Path], corpus: Any = None,
                 cuts: Optional[RulesArg] = None, group: Optional[str] = "source", text: TextSpec = TextSpec(),
                 patterns: Union[str, PatternSet] = "default", steps: str = "paragraph", top: int = DEFAULT_TOP,
                 force: bool = False, progress: Optional[Progress] = None) -> Path:
    """Write ``index.html``, ``figures/*.png`` and ``traces/*.html`` into ``out_dir``; return the index path.

    Args:
        metrics: a metrics table, a ``metrics.parquet`` path, or the folder of one.
        out_dir: the report folder (created if needed).
        corpus: the input the metrics came from (anything ``read_corpus`` takes),
            for the trace views. ``None``: the files named in the ``file``
            column, if they still exist. Without texts the tables have no links.
        cuts: the rules whose cut lines to draw (text forms or ``Rule`` objects).
            ``None``: the rules in the ``summary.json`` beside ``metrics``.
        group: the record field to split by (carry it with ``--field source``);
            one group when the metrics lack it. Any number of groups: the
            largest ``SHOWN_GROUPS`` are shown, the rest pooled.
        text, patterns, steps: as given to ``analyze``/``filter``, so the
            trace views segment the text as the metrics did.
        top: traces per table of extremes.
        force: overwrite an existing report.
        progress: called with a line such as ``"report: figures 3/8"`` as
            each piece is written (the CLI prints them to stderr); ``None``: silent.

    Example:
        >>> import tempfile, cotsieve
        >>> t = cotsieve.analyze(["Perhaps 2.\\n\\nAnother idea: 3.", "2 + 2 = 4."])
        >>> lines = []
        >>> index = write_report(t, tempfile.mkdtemp(), cuts=["branch_step_ratio <= 0.5"], progress=lines.append)
        >>> sorted(p.name for p in (index.parent / "figures").iterdir())[:2], lines[-1]
        (['dist_branch_step_ratio.png', 'dist_markers_per_1k_words.png'], 'report: figures 8/8')
    """
    require_matplotlib()
    say = progress or _silent
    table = load_metrics(metrics)
    rules = rules_from_summary(metrics) if cuts is None else as_rule_set(cuts)
    folder = Path(out_dir)
    index = folder / "index.html"
    with OutputFolder(folder):
        if index.exists() and not force:
            raise OutputExistsError(f"{index} exists; pass --force (force=True) to overwrite it")
        (folder / "figures").mkdir(exist_ok=True)
        groups = Groups.of(table, group)
        result = removed(table, rules)
        percentile = percentile_cuts(metrics, rules, table, from_summary=cuts is None)
        near = near_cutoff(table, percentile, groups, result, group)
        figures = _write_figures(table, groups, rules, group, folder / "figures", say)
        ranked_by = next((rule.column for rule, _ in percentile), BRANCH_COLUMN)
        rows = {int(i) for picked in _extremes(table, top).values() for i in picked} | {item.row for item in near}
        links = _write_trace_views(table, folder, corpus, group, text, patterns, steps, sorted(rows), ranked_by, say)
        body = "\n".join([_header(table, groups, group),
                          _removed_section(table, rules, percentile, groups, result, near, group, links),
                          _index_body(table, groups, figures, links, top, group)])
        index.write_text(_page("cotsieve report", body, label_colours(label_names(table)),
                               _IMAGES_CHECK + _OVERFLOW_CHECK), "utf-8")
    return index


def _silent(line: str) -> None:
    """The default progress: say nothing."""


def _write_figures(table: pa.Table, groups: Groups, rules: RuleSet, group: Optional[str], folder: Path,
                   say: Progress) -> dict[str, Any]:
    matplotlib = require_extra("matplotlib", "report")
    # Group names, rule texts and column names are user text: "$5 and $6" is
    # prices, not math, and "$\\undefined$" must not stop the report.
    with matplotlib.rc_context({"text.parse_math": False}):
        return _draw_figures(table, groups, rules, group, folder, say)


def _draw_figures(table: pa.Table, groups: Groups, rules: RuleSet, group: Optional[str], folder: Path,
                  say: Progress) -> dict[str, Any]:
    columns = [c for c in KEY_METRICS if c in table.column_names]
    total = len(columns) + 2
    distributions = []
    for done, column in enumerate(columns, 1):
        distributions.append(distribution_figure(table, column, groups, rules, folder / f"dist_{column}.png"))
        say(f"report: figures {done}/{total}")
    transitions = transitions_figure(table, groups, folder / "transitions.png")
    say(f"report: figures {total - 1}/{total}")
    result = overlap(rules, table, group)
    figure = overlap_figure(result, folder / "overlap.png")
    say(f"report: figures {total}/{total}")
    return {"distributions": distributions, "transitions": transitions, "overlap": (result, figure)}


def _extremes(table: pa.Table, top: int) -> dict[str, np.ndarray]:
    return {c: extreme_rows(table, c, top) for c in EXTREME_BY if c in table.column_names}


def _write_trace_views(table: pa.Table, folder: Path, corpus: Any, group: Optional[str], text: TextSpec,
                       patterns: Union[str, PatternSet], steps: str, rows: Sequence[int], ranked_by: str,
                       say: Progress) -> dict[int, str]:
    """Write one page per given row whose text is found; return row -> relative link."""
    sources = corpus if corpus is not None else default_corpus(table)
    texts = trace_texts(sources, table, rows, text) if rows and sources else {}
    if not texts:
        return {}
    analyzer = Analyzer(patterns, steps)
    (folder / "traces").mkdir(exist_ok=True)
    links = {}
    for done, (i, data) in enumerate(sorted(texts.items()), 1):
        link = f"traces/trace-{i}.html"
        (folder / link).write_text(trace_page(table, i, data, analyzer, group, ranked_by), "utf-8")
        links[i] = link
        say(f"report: trace pages {done}/{len(texts)}")
    return links


def _relative(path: Path) -> str:
    return f"figures/{path.name}"


def _header(table: pa.Table, groups: Groups, field: Optional[str]) -> str:
    """The title and a one-line count: the number of groups and the largest, never a list of every group."""
    if len(groups.all_names) == 1:
        return f"<h1>cotsieve report</h1>\n<p>{table.num_rows:,} traces.</p>"
    sizes = ", ".join(f"{_group_cell(name)}: {int(n):,}" for name, n in zip(groups.names, groups.sizes()))
    return (f"<h1>cotsieve report</h1>\n<p>{table.num_rows:,} traces in {len(groups.all_names):,} groups by "
            f"<code>{html.escape(field or '')}</code> ({sizes}).</p>")


def _index_body(table: pa.Table, groups: Groups, figures: dict[str, Any], links: dict[int, str], top: int,
                group: Optional[str]) -> str:
    result, figure = figures["overlap"]
    parts = [_overlap_section(result, _relative(figure)), "<h2>Distributions</h2>"]
    parts += [f'<img src="{_relative(p)}" alt="distribution of {p.stem[len("dist_"):]}">'
              for p in figures["distributions"]]
    pooled = f" (the smallest {groups.pooled:,} pooled)" if groups.pooled else ""
    parts.append(f'<h2>Step-label transitions</h2>\n<p>Mean of the <code>p_&lt;a&gt;_&lt;b&gt;</code> columns per '
                 f"group{pooled}: row = a step's label, column = the next step's.</p>\n"
                 f'<img src="{_relative(figures["transitions"])}" alt="transition matrices">')
    if not links:
        parts.append("<p>Trace views are missing: the corpus was not given or not found.</p>")
    for column, rows in _extremes(table, top).items():
        parts.append(f"<h2>Highest {html.escape(column)}</h2>\n{_extreme_table(table, column, rows, links, group)}")
    return "\n".join(parts)
