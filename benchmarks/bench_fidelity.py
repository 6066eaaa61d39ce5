"""How faithfully the shipped pattern sets see branching, on real traces.

Two checks, for each shipped pattern set:

1. **Paired teachers** (``paired_teachers_dev.jsonl.gz``, every step mode):
   DeepSeek-R1, QwQ-32B and gpt-oss-120b answer the same prompts, and R1 and
   QwQ are known to branch more than gpt-oss. The script prints on how many
   prompts each of them gets a higher ``branch_step_ratio`` than gpt-oss,
   each teacher's share of branch steps, its pooled P(branch -> branch), and
   the paired ``step_count_ratio`` (Proxy 1) against gpt-oss.
2. **Agreement with GPT-4o sentence labels** (``gpt4o_step_labels_dev.jsonl.gz``,
   ``sentence`` steps): every labelled sentence is found in the trace, given
   cotsieve's label, and compared with GPT-4o's label through the mapping in
   ``TAXONOMY`` (docs/metrics.md, "Agreement with LLM step labels").
3. **What any opening-phrase rule could reach** against GPT-4o's
   ``backtracking``: rules "a sentence is backtracking when its first k
   words are one of these", fitted to GPT-4o's labels on a random half of
   the traces and scored on the other half (``opening_words_ceiling``).
   Marker patterns are rules of that kind, so this bounds what keywords can
   reach on these labels without fitting single traces.

The data folder is ``../shared/data`` beside the repository, or
``$COTSIEVE_SHARED_DATA``; without it the script says so and exits 0.

    python benchmarks/bench_fidelity.py
    python benchmarks/bench_fidelity.py --sets default paper-2604.01702 --steps paragraph --json fidelity.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import cotsieve
from cotsieve.io import ReadOptions

PAIRED_FILE = "paired_teachers_dev.jsonl.gz"
LABELLED_FILE = "gpt4o_step_labels_dev.jsonl.gz"

# The file spells QwQ's family "qwq-32b"; "qwq" is accepted too.
FAMILY_ALIASES = {"deepseek-r1": "r1", "qwq": "qwq", "qwq-32b": "qwq", "gpt-oss": "gpt-oss"}
TEACHERS = ("r1", "qwq", "gpt-oss")
REFERENCE = "gpt-oss"  # the teacher that branches least; the others are compared with it

# cotsieve label -> the GPT-4o label it stands for. `branch` has no GPT-4o
# counterpart: GPT-4o's taxonomy has no "try another approach" label.
TAXONOMY = {
    "backtrack": "backtracking",
    "verify": "example-testing",
    "hesitate": "uncertainty-estimation",
}
# Ordinary reasoning on both sides: compared as one group, "other".
OTHER_COTSIEVE = frozenset({"progress", "conclude"})
OTHER_GPT4O = frozenset({"deduction", "initializing", "adding-knowledge", "conclusion"})
GPT4O_LABELS = ("initializing", "deduction", "adding-knowledge", "example-testing",
                "uncertainty-estimation", "backtracking")

LABEL_TOKEN = re.compile(r'\["([A-Za-z_-]+)"\]')
END_SECTION = "end-section"


# ---------------------------------------------------------------- data


def shared_data_dir() -> Path:
    """``$COTSIEVE_SHARED_DATA``, or ``../shared/data`` beside the repository."""
    override = os.environ.get("COTSIEVE_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def read_records(path: Path, fields: tuple[str, ...]) -> tuple[list[bytes], dict[str, list[Optional[str]]]]:
    """The UTF-8 texts and the named fields of every usable record, read
    with cotsieve's own streaming reader (as users read a corpus)."""
    texts: list[bytes] = []
    columns: dict[str, list[Optional[str]]] = {name: [] for name in fields}
    for chunk in cotsieve.read_corpus(str(path), ReadOptions(fields=fields)):
        ok = chunk.ok
        texts.extend(t for t, keep in zip(chunk.texts.to_pylist(), ok) if keep)
        for name in fields:
            columns[name].extend(v for v, keep in zip(chunk.fields.column(name).to_pylist(), ok) if keep)
    return texts, columns


@dataclass
class PairedCorpus:
    """The paired-teacher traces: text, prompt id and teacher (``TEACHERS``) of each."""

    texts: list[bytes]
    question_ids: list[str]
    teachers: list[str]


def load_paired(folder: Path) -> PairedCorpus:
    texts, fields = read_records(folder / PAIRED_FILE, ("question_id", "model_family"))
    teachers = [FAMILY_ALIASES.get(f or "", f or "") for f in fields["model_family"]]
    return PairedCorpus(texts, [q or "" for q in fields["question_id"]], teachers)


@dataclass
class LabelledCorpus:
    """The GPT-4o-labelled traces: the thinking text and its annotation."""

    texts: list[bytes]
    annotations: list[str]


def load_labelled(folder: Path) -> LabelledCorpus:
    texts, fields = read_records(folder / LABELLED_FILE, ("annotated_thinking",))
    return LabelledCorpus(texts, [a or "" for a in fields["annotated_thinking"]])


# ---------------------------------------------------------------- paired teachers


def family_of_docs(corpus: PairedCorpus) -> np.ndarray:
    return np.array(corpus.teachers)


def metrics_by_prompt(metrics: pa.Table, corpus: PairedCorpus, column: str) -> dict[str, dict[str, Optional[float]]]:
    """``{question_id: {teacher: value}}``; a teacher with several traces on
    one prompt keeps its first (the paired file has one each)."""
    values = metrics.column(column).to_pylist()
    by_prompt: dict[str, dict[str, Optional[float]]] = {}
    for qid, teacher, value in zip(corpus.question_ids, corpus.teachers, values):
        by_prompt.setdefault(qid, {}).setdefault(teacher, value)
    return by_prompt


def share_greater(by_prompt: dict[str, dict[str, Optional[float]]], teacher: str) -> dict[str, Any]:
    """On the prompts where both ``teacher`` and the reference have a trace with
    a ratio (not null, i.e. at least one step), the share where ``teacher``'s is
    strictly greater; ties count as not greater and are reported apart."""
    greater = ties = compared = skipped = 0
    for values in by_prompt.values():
        a, b = values.get(teacher), values.get(REFERENCE)
        if a is None or b is None:
            skipped += teacher in values or REFERENCE in values
            continue
        compared += 1
        greater += a > b
        ties += a == b
    return {"share_greater": greater / compared if compared else None, "share_tied": ties / compared if compared else None,
            "compared": compared, "skipped_null_or_missing": skipped}


def branch_shares(metrics: pa.Table, teachers: np.ndarray) -> dict[str, dict[str, Optional[float]]]:
    """Per teacher: pooled share (sum of branch steps / sum of steps) and the
    mean of the per-trace ratios (traces without steps left out)."""
    steps = metrics.column("n_steps").to_numpy()
    branch = metrics.column("steps_branch").to_numpy() if "steps_branch" in metrics.column_names else np.zeros_like(steps)
    ratio = metrics.column("branch_step_ratio").to_numpy(zero_copy_only=False).astype(float)
    out = {}
    for teacher in TEACHERS:
        mine = teachers == teacher
        total = int(steps[mine].sum())
        ratios = ratio[mine][~np.isnan(ratio[mine])]
        out[teacher] = {"pooled": float(branch[mine].sum()) / total if total else None,
                        "mean_of_traces": float(ratios.mean()) if len(ratios) else None}
    return out


def pooled_branch_branch(segments: pa.Table, teachers: np.ndarray) -> dict[str, dict[str, Any]]:
    """P(branch -> branch) per teacher, pooled over its traces: branch steps
    followed by a branch step / branch steps followed by any step, counted from
    the ``segments`` labels (the same as each trace's ``p_branch_branch``
    weighted by its number of branch steps that have a successor)."""
    doc = segments.column("doc").to_numpy()
    labels = segments.column("label").combine_chunks()
    dictionary = labels.dictionary.to_pylist()
    is_branch = labels.indices.to_numpy() == dictionary.index("branch") if "branch" in dictionary else np.zeros(len(doc), bool)
    same_trace = doc[1:] == doc[:-1]
    from_branch = is_branch[:-1] & same_trace
    to_branch = from_branch & is_branch[1:]
    teacher_of_step = teachers[doc[:-1]] if len(doc) else np.array([], str)
    out = {}
    for teacher in TEACHERS:
        mine = teacher_of_step == teacher
        followed, repeated = int(from_branch[mine].sum()), int(to_branch[mine].sum())
        out[teacher] = {"p": repeated / followed if followed else None, "branch_followed": followed}
    return out


def mean_step_count_ratio(metrics: pa.Table, corpus: PairedCorpus) -> dict[str, dict[str, Any]]:
    """Per teacher, the mean over prompts of ``step_count_ratio`` against the
    reference (``cotsieve.step_count_ratio``; null ratios, where the reference
    has no steps, are left out)."""
    table = pa.table({"question_id": corpus.question_ids, "teacher": corpus.teachers, "n_steps": metrics.column("n_steps")})
    ratio = cotsieve.step_count_ratio(table, by="question_id", source="teacher", reference=REFERENCE)
    out = {}
    for teacher in TEACHERS:
        if teacher == REFERENCE:
            continue
        mine = ratio.filter(pc.equal(ratio.column("teacher"), teacher)).column("step_count_ratio")
        # The median too: a prompt where the reference thinks in one paragraph
        # gives a ratio in the hundreds, which dominates the mean.
        values = np.array(mine.drop_null().to_pylist(), float)
        out[teacher] = {"mean": float(values.mean()) if len(values) else None,
                        "median": float(np.median(values)) if len(values) else None, "prompts": len(values)}
    return out


def paired_summary(corpus: PairedCorpus, patterns: cotsieve.PatternSet, steps: str, threads: int) -> dict[str, Any]:
    """Every paired-teacher number for one pattern set and step mode."""
    analyzer = cotsieve.Analyzer(patterns, steps=steps)
    metrics = analyzer.analyze(corpus.texts, threads=threads)
    teachers = family_of_docs(corpus)
    by_prompt = metrics_by_prompt(metrics, corpus, "branch_step_ratio")
    return {
        "greater_than_reference": {t: share_greater(by_prompt, t) for t in TEACHERS if t != REFERENCE},
        "branch_step_share": branch_shares(metrics, teachers),
        "p_branch_branch_pooled": pooled_branch_branch(analyzer.segments(corpus.texts, threads=threads), teachers),
        "step_count_ratio": mean_step_count_ratio(metrics, corpus),
    }


# ---------------------------------------------------------------- GPT-4o sentence labels


def parse_annotated(annotated: str) -> list[tuple[str, str]]:
    """``(sentence, label)`` pairs of an ``annotated_thinking`` string.

    A sentence is the text after a ``["label"]`` token up to the next token
    (normally ``["end-section"]``), stripped. Reading up to the next token of
    any kind, not only ``["end-section"]``, keeps the few sentences whose
    closing token GPT-4o left out. Text outside a labelled sentence (the
    ```` ```plaintext ```` fence) is ignored; empty sentences are dropped.
    """
    tokens = list(LABEL_TOKEN.finditer(annotated))
    pairs = []
    for i, token in enumerate(tokens):
        label = token.group(1)
        if label == END_SECTION:
            continue
        end = tokens[i + 1].start() if i + 1 < len(tokens) else len(annotated)
        sentence = annotated[token.end():end].strip()
        if i + 1 == len(tokens):  # the last sentence may run into the closing fence
            sentence = sentence.removesuffix("```").strip()
        if sentence:
            pairs.append((sentence, label))
    return pairs


def find_sentence(text: bytes, sentence: str, pos: int) -> Optional[tuple[int, int]]:
    """The byte span of the first occurrence of ``sentence`` in ``text`` at or
    after ``pos``, any run of whitespace standing for any other (GPT-4o turns
    line breaks inside a sentence into spaces); None if absent. One pattern
    for both, so a verbatim copy further on never wins over a nearer match."""
    words = [re.escape(w) for w in sentence.encode("utf-8", "surrogateescape").split()]
    found = re.compile(rb"\s+".join(words)).search(text, pos) if words else None
    return (found.start(), found.end()) if found else None


def align_sentences(text: bytes, pairs: list[tuple[str, str]]) -> tuple[list[tuple[int, int, str]], int]:
    """``(start, end, label)`` of every sentence found in the text, in order,
    and the number not found. Each search starts after the previous sentence,
    so a sentence that occurs twice is placed at its own occurrence."""
    spans, missing, pos = [], 0, 0
    for sentence, label in pairs:
        span = find_sentence(text, sentence, pos)
        if span is None:
            missing += 1
            continue
        spans.append((span[0], span[1], label))
        pos = span[1]
    return spans, missing


@dataclass
class SentenceView:
    """One GPT-4o sentence as both sides see it."""

    gpt4o: str
    step_label: str  # label of the `sentence` step holding the sentence's first byte
    matched: frozenset[str]  # categories of the matches that start inside the sentence
    starts_step: bool  # the sentence begins exactly where a cotsieve step begins


def rows_by_doc(table: pa.Table) -> dict[int, tuple[np.ndarray, np.ndarray, list[str]]]:
    """``{doc: (starts, ends, labels)}`` of a ``segments`` or ``matches`` table."""
    doc = table.column("doc").to_numpy()
    starts, ends = table.column("start").to_numpy(), table.column("end").to_numpy()
    name = "label" if "label" in table.column_names else "category"
    labels = table.column(name).to_pylist()
    out: dict[int, tuple[np.ndarray, np.ndarray, list[str]]] = {}
    bounds = np.flatnonzero(np.diff(doc)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(doc)]):
        if hi > lo:
            out[int(doc[lo])] = (starts[lo:hi], ends[lo:hi], labels[lo:hi])
    return out


def sentence_views(corpus: LabelledCorpus, patterns: cotsieve.PatternSet, threads: int) -> tuple[list[SentenceView], dict[str, int]]:
    """cotsieve's view of every aligned GPT-4o sentence, and the parse counts."""
    steps = rows_by_doc(cotsieve.Analyzer(patterns, steps="sentence").segments(corpus.texts, threads=threads))
    hits = rows_by_doc(patterns.matches(corpus.texts, threads=threads))
    empty = (np.array([], np.int64), np.array([], np.int64), [])
    views, parsed, missing = [], 0, 0
    for doc, (text, annotated) in enumerate(zip(corpus.texts, corpus.annotations)):
        pairs = parse_annotated(annotated)
        spans, lost = align_sentences(text, pairs)
        parsed, missing = parsed + len(pairs), missing + lost
        step_starts, _, step_labels = steps.get(doc, empty)
        hit_starts, _, hit_categories = hits.get(doc, empty)
        for start, end, label in spans:
            k = int(np.searchsorted(step_starts, start, side="right")) - 1
            lo, hi = np.searchsorted(hit_starts, [start, end])
            views.append(SentenceView(label, step_labels[k] if k >= 0 else "progress",
                                      frozenset(hit_categories[lo:hi]), bool(k >= 0 and step_starts[k] == start)))
    return views, {"traces": len(corpus.texts), "sentences_parsed": parsed, "sentences_aligned": len(views),
                   "sentences_not_found": missing, "aligned_at_step_start": sum(v.starts_step for v in views)}


def precision_recall(predicted: np.ndarray, actual: np.ndarray) -> dict[str, Any]:
    """Precision, recall and F1 of a boolean prediction (None where undefined)."""
    tp, n_pred, n_true = int((predicted & actual).sum()), int(predicted.sum()), int(actual.sum())
    p = tp / n_pred if n_pred else None
    r = tp / n_true if n_true else None
    f1 = 2 * p * r / (p + r) if p is not None and r is not None and p + r > 0 else None
    return {"precision": p, "recall": r, "f1": f1, "predicted": n_pred, "support": n_true, "tp": tp}


def agreement(views: list[SentenceView], categories: tuple[str, ...]) -> dict[str, Any]:
    """Per mapped category: P/R/F1 of the step label and of "any match in the
    sentence" against GPT-4o; the same for the "other" group (step view only);
    and the confusion matrix of step label x GPT-4o label."""
    gold = np.array([v.gpt4o for v in views])
    step = np.array([v.step_label for v in views])
    scores: dict[str, Any] = {}
    for ours, theirs in TAXONOMY.items():
        if ours not in categories:
            continue
        any_match = np.array([ours in v.matched for v in views], bool)
        scores[ours] = {"gpt4o": theirs, "step": precision_recall(step == ours, gold == theirs),
                        "any_match": precision_recall(any_match, gold == theirs)}
    scores["other"] = {"gpt4o": "+".join(sorted(OTHER_GPT4O)),
                       "step": precision_recall(np.isin(step, list(OTHER_COTSIEVE)), np.isin(gold, list(OTHER_GPT4O))),
                       "any_match": None}
    rows = list(categories) + ["progress"]
    columns = list(GPT4O_LABELS) + sorted(set(gold.tolist()) - set(GPT4O_LABELS))
    matrix = {r: {c: int(((step == r) & (gold == c)).sum()) for c in columns} for r in rows}
    return {"scores": scores, "confusion": matrix, "confusion_rows": rows, "confusion_columns": columns}


WORD = re.compile(r"[a-z']+")


def opening_words(sentence: str, k: int) -> tuple[str, ...]:
    return tuple(WORD.findall(sentence.lower())[:k])


def best_opening_rule(sentences: list[tuple[str, str]], gold: str, k: int) -> set[tuple[str, ...]]:
    """The set of k-word openings that maximises F1 for ``gold`` on these
    sentences: openings added in order of their precision, best prefix kept."""
    counts: dict[tuple[str, ...], list[int]] = {}
    for sentence, label in sentences:
        c = counts.setdefault(opening_words(sentence, k), [0, 0])
        c[0] += label == gold
        c[1] += 1
    total = sum(c[0] for c in counts.values())
    ranked = sorted((key for key, c in counts.items() if c[0]), key=lambda key: -counts[key][0] / counts[key][1])
    best, best_f1, tp, predicted = set(), 0.0, 0, 0
    for i, key in enumerate(ranked):
        tp, predicted = tp + counts[key][0], predicted + counts[key][1]
        f1 = 2 * tp / (predicted + total)
        if f1 > best_f1:
            best, best_f1 = set(ranked[: i + 1]), f1
    return best


def opening_words_ceiling(corpus: LabelledCorpus, gold: str = "backtracking", ks: tuple[int, ...] = (1, 2, 3),
                          splits: int = 20) -> dict[str, Any]:
    """Per k: the F1 on held-out traces of the best "first k words" rule for
    ``gold`` fitted on the other half, over ``splits`` random halvings (seeded,
    so the numbers repeat), and the F1 of the same rule fitted on all traces
    and scored on them (no hold-out: what over-fitting reaches)."""
    by_trace = [parse_annotated(a) for a in corpus.annotations]
    every = [pair for pairs in by_trace for pair in pairs]
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"gold": gold, "splits": splits, "sentences": len(every),
                           "support": sum(label == gold for _, label in every)}
    for k in ks:
        held_out = []
        for _ in range(splits):
            order = rng.permutation(len(by_trace))
            fit = [pair for i in order[: len(order) // 2] for pair in by_trace[i]]
            test = [pair for i in order[len(order) // 2:] for pair in by_trace[i]]
            rule = best_opening_rule(fit, gold, k)
            predicted = np.array([opening_words(s, k) in rule for s, _ in test], bool)
            held_out.append(precision_recall(predicted, np.array([label == gold for _, label in test]))["f1"] or 0.0)
        rule = best_opening_rule(every, gold, k)
        fitted = precision_recall(np.array([opening_words(s, k) in rule for s, _ in every], bool),
                                  np.array([label == gold for _, label in every]))["f1"]
        out[f"k{k}"] = {"held_out_f1_mean": float(np.mean(held_out)), "held_out_f1_max": float(np.max(held_out)),
                        "fitted_on_all_f1": fitted}
    return out


def agreement_summary(corpus: LabelledCorpus, patterns: cotsieve.PatternSet, threads: int) -> dict[str, Any]:
    views, counts = sentence_views(corpus, patterns, threads)
    return {"counts": counts, **agreement(views, patterns.categories)}


# ---------------------------------------------------------------- printing


def pct(x: Optional[float]) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def num(x: Optional[float], digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def print_paired(results: dict[str, dict[str, Any]]) -> None:
    """One markdown row per (set, step mode)."""
    print("\n### Paired teachers (R1, QwQ vs gpt-oss)\n")
    print("| set | steps | R1>oss | QwQ>oss | ties R1/QwQ | branch steps pooled R1/QwQ/oss | mean of traces R1/QwQ/oss "
          "| P(b→b) R1/QwQ/oss | steps R1/oss mean (median) | steps QwQ/oss mean (median) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, by_mode in results.items():
        for mode, s in by_mode.items():
            g, b, p, r = s["greater_than_reference"], s["branch_step_share"], s["p_branch_branch_pooled"], s["step_count_ratio"]
            print(f"| {name} | {mode} | {pct(g['r1']['share_greater'])} | {pct(g['qwq']['share_greater'])} "
                  f"| {pct(g['r1']['share_tied'])}/{pct(g['qwq']['share_tied'])} "
                  f"| {'/'.join(pct(b[t]['pooled']) for t in TEACHERS)} "
                  f"| {'/'.join(pct(b[t]['mean_of_traces']) for t in TEACHERS)} "
                  f"| {'/'.join(num(p[t]['p']) for t in TEACHERS)} "
                  f"| {num(r['r1']['mean'], 1)} ({num(r['r1']['median'], 1)}) | {num(r['qwq']['mean'], 1)} ({num(r['qwq']['median'], 1)}) |")


def print_agreement(name: str, result: dict[str, Any]) -> None:
    """Scores and confusion matrix of one set."""
    c = result["counts"]
    print(f"\n### `{name}`: sentence labels against GPT-4o ({c['sentences_aligned']} sentences aligned of "
          f"{c['sentences_parsed']}; {c['aligned_at_step_start']} begin a cotsieve step)\n")
    print("| cotsieve | GPT-4o | support | step P | step R | step F1 | any-match P | any-match R | any-match F1 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for ours, s in result["scores"].items():
        a = s["any_match"] or {}
        print(f"| {ours} | {s['gpt4o']} | {s['step']['support']} | {num(s['step']['precision'])} | {num(s['step']['recall'])} "
              f"| {num(s['step']['f1'])} | {num(a.get('precision'))} | {num(a.get('recall'))} | {num(a.get('f1'))} |")
    columns = result["confusion_columns"]
    print("\n| step label \\ GPT-4o | " + " | ".join(columns) + " | total |")
    print("|---|" + "---:|" * (len(columns) + 1))
    for row in result["confusion_rows"]:
        counts = [result["confusion"][row][col] for col in columns]
        print(f"| {row} | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |")


def print_ceiling(result: dict[str, Any]) -> None:
    """What rules on a sentence's first words reach against one GPT-4o label."""
    print(f"\n### Opening-phrase rules against GPT-4o `{result['gold']}` ({result['support']} of "
          f"{result['sentences']} sentences; fitted on half the traces, scored on the other half, "
          f"{result['splits']} random halvings)\n")
    print("| first words | held-out F1, mean | held-out F1, best halving | F1 fitted and scored on all traces |")
    print("|---:|---:|---:|---:|")
    for key, r in result.items():
        if key.startswith("k"):
            print(f"| {key[1:]} | {num(r['held_out_f1_mean'])} | {num(r['held_out_f1_max'])} | {num(r['fitted_on_all_f1'])} |")


# ---------------------------------------------------------------- main


def run(folder: Path, sets: list[str], modes: list[str], threads: int) -> dict[str, Any]:
    """Every number, as one JSON-ready dict."""
    paired, labelled = load_paired(folder), load_labelled(folder)
    results: dict[str, Any] = {
        "data": {"folder": str(folder), PAIRED_FILE: len(paired.texts), LABELLED_FILE: len(labelled.texts),
                 "prompts": len(set(paired.question_ids))},
        "paired": {}, "agreement": {}, "opening_words_ceiling": opening_words_ceiling(labelled),
    }
    for name in sets:
        patterns = cotsieve.PatternSet.load(name)
        results["paired"][name] = {mode: paired_summary(paired, patterns, mode, threads) for mode in modes}
        results["agreement"][name] = agreement_summary(labelled, patterns, threads)
    return results


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=cotsieve.PatternSet.available(), help="pattern sets (default: all shipped)")
    parser.add_argument("--steps", nargs="+", default=list(cotsieve.STEP_MODES), help="step modes for the paired check")
    parser.add_argument("--json", type=Path, help="also write every number to this JSON file")
    parser.add_argument("--threads", type=int, default=1, help="engine threads (default 1: the machine is shared)")
    args = parser.parse_args(argv)
    folder = shared_data_dir()
    if not all((folder / f).is_file() for f in (PAIRED_FILE, LABELLED_FILE)):
        print(f"skipped: {PAIRED_FILE} and {LABELLED_FILE} not found in {folder} (set $COTSIEVE_SHARED_DATA)")
        return 0
    started = time.perf_counter()
    results = run(folder, args.sets, args.steps, args.threads)
    results["seconds"] = time.perf_counter() - started
    d = results["data"]
    print(f"data: {folder}\n  {PAIRED_FILE}: {d[PAIRED_FILE]} traces, {d['prompts']} prompts"
          f"\n  {LABELLED_FILE}: {d[LABELLED_FILE]} traces\nsets: {', '.join(args.sets)}; steps: {', '.join(args.steps)}; "
          f"cotsieve {cotsieve.__version__}; {results['seconds']:.1f} s")
    print_paired(results["paired"])
    for name, result in results["agreement"].items():
        print_agreement(name, result)
    print_ceiling(results["opening_words_ceiling"])
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
