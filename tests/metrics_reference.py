"""Pure-Python reference for steps, labels and per-trace metrics.

This module restates docs/metrics.md as directly as possible, with no regard
for speed, so that `cotsieve.analyze` and `cotsieve.segments` can be checked
against it. It is written from the documented contract only.

Everything works on bytes; positions are byte offsets. Matches come in as
`(start, end, category)` triples in increasing start order, as the matcher
(or its own reference, `reference.ref_matches`) reports them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from reference import RefPattern, from_library, ref_matches

WHITESPACE = frozenset(b" \t\r\n")
LF = 0x0A
PROGRESS = "progress"
BRANCH = "branch"
HESITATE = "hesitate"

# docs/metrics.md: a sentence end is one of these, followed by whitespace or
# the end of the text.
METRIC_SENTENCE_END = frozenset(b".!?")
# docs/semantics.md (the `sentence_start` anchor used by marker mode) also
# counts ':' and needs no byte after it.
ANCHOR_SENTENCE_END = frozenset(b".!?:")
LINE_PREFIX = frozenset(b" \t*#>-")

REPEAT_MIN_BYTES = 16
PHRASE_VALUE_MAX_BYTES = 200
BOX_MAX_BYTES = 4096
BOX_OPENERS = (b"\\boxed{", b"\\fbox{")
ANSWER_PHRASES = (b"final answer is", b"final answer:", b"the answer is")
# Boxes are exact bytes with no word boundary; phrases ignore ASCII case and
# need word boundaries. The category only satisfies RefPattern's signature.
ANSWER_PATTERNS = [RefPattern(t, "conclude", case="sensitive", boundary="none") for t in BOX_OPENERS] + [
    RefPattern(t, "conclude") for t in ANSWER_PHRASES
]
# Skipped between a phrase and its value: whitespace other than LF, and ':'.
VALUE_LEAD = frozenset(b" \t\r:")
# Removed from answer values before they are compared, with whitespace and `$`.
ANSWER_DELIMITERS = (b"\\(", b"\\)", b"\\[", b"\\]")

Match = tuple[int, int, str]
Span = tuple[int, int]


@dataclass(frozen=True)
class RefStep:
    start: int
    end: int
    label: str
    flags: tuple[str, ...]  # in the pattern set's category order


# --- matches ---------------------------------------------------------------


def reference_matches(text: bytes, pattern_set) -> list[Match]:
    """The matches of a `cotsieve.PatternSet`, found by the matcher reference."""
    patterns = [from_library(p) for p in pattern_set.patterns]
    return [(s, e, patterns[i].category) for s, e, i in ref_matches(text, patterns)]


# --- byte rules ------------------------------------------------------------


def is_sentence_end(text: bytes, pos: int) -> bool:
    if text[pos] not in METRIC_SENTENCE_END:
        return False
    return pos + 1 == len(text) or text[pos + 1] in WHITESPACE


def trim(text: bytes, start: int, end: int) -> Span | None:
    """The span without whitespace at either end, or None if nothing is left."""
    while start < end and text[start] in WHITESPACE:
        start += 1
    while end > start and text[end - 1] in WHITESPACE:
        end -= 1
    return (start, end) if start < end else None


def line_spans(text: bytes) -> list[Span]:
    """Every maximal run of bytes without LF, empty ones included."""
    spans = []
    start = 0
    for pos, byte in enumerate(text):
        if byte == LF:
            spans.append((start, pos))
            start = pos + 1
    spans.append((start, len(text)))
    return spans


def is_blank(text: bytes, span: Span) -> bool:
    return all(b in WHITESPACE for b in text[span[0] : span[1]])


def sentence_start_holds(text: bytes, pos: int) -> bool:
    """The `sentence_start` anchor condition of docs/semantics.md at `pos`."""
    line_begin = text.rfind(b"\n", 0, pos) + 1
    if all(b in LINE_PREFIX for b in text[line_begin:pos]):
        return True
    before = pos
    while before > 0 and text[before - 1] in WHITESPACE:
        before -= 1
    return before < pos and before > 0 and text[before - 1] in ANCHOR_SENTENCE_END


# --- segmentation ----------------------------------------------------------


def paragraph_spans(text: bytes) -> list[Span]:
    spans = []
    run: Span | None = None
    for line in line_spans(text):
        if is_blank(text, line):
            if run:
                spans.append(run)
            run = None
        else:
            run = (run[0] if run else line[0], line[1])
    if run:
        spans.append(run)
    return [trim(text, s, e) for s, e in spans]


def nonblank_line_spans(text: bytes) -> list[Span]:
    return [trim(text, s, e) for s, e in line_spans(text) if not is_blank(text, (s, e))]


def sentence_spans(text: bytes) -> list[Span]:
    spans = []
    for line_start, line_end in line_spans(text):
        piece_start = line_start
        for pos in range(line_start, line_end):
            if is_sentence_end(text, pos):
                spans.append((piece_start, pos + 1))
                piece_start = pos + 1
        spans.append((piece_start, line_end))
    return [t for t in (trim(text, s, e) for s, e in spans) if t]


def marker_spans(text: bytes, matches: list[Match]) -> list[Span]:
    spans = []
    for start, end in paragraph_spans(text):
        current = start
        for match_start, _, _ in matches:
            if not current < match_start < end:
                continue
            line_begin = text.rfind(b"\n", 0, match_start) + 1
            if all(b in LINE_PREFIX for b in text[line_begin:match_start]):
                cut = line_begin  # a bullet or heading mark stays with its step
            elif sentence_start_holds(text, match_start):
                cut = match_start
            else:
                continue
            before = trim(text, current, cut)
            if before is None:
                continue
            spans.append(before)
            current = trim(text, cut, end)[0]
        spans.append((current, end))
    return spans


def step_spans(text: bytes, matches: list[Match], mode: str) -> list[Span]:
    if mode == "paragraph":
        return paragraph_spans(text)
    if mode == "line":
        return nonblank_line_spans(text)
    if mode == "sentence":
        return sentence_spans(text)
    if mode == "marker":
        return marker_spans(text, matches)
    raise ValueError(f"unknown step mode {mode!r}")


# --- flags and labels ------------------------------------------------------


def first_sentence_end(text: bytes, span: Span) -> int:
    """Exclusive end of the step's first sentence."""
    start, end = span
    for pos in range(start, end):
        if text[pos] == LF or is_sentence_end(text, pos):
            return pos + 1
    return end


def reference_steps(
    text: bytes, matches: list[Match], categories: tuple[str, ...], mode: str
) -> list[RefStep]:
    steps = []
    for start, end in step_spans(text, matches, mode):
        inside = {c for s, _, c in matches if start <= s < end}
        sentence_end = first_sentence_end(text, (start, end))
        opening = [c for s, _, c in matches if start <= s < sentence_end]
        # A hesitation yields the label to a later match of another category.
        label = next((c for c in opening if c != HESITATE), opening[0]) if opening else PROGRESS
        steps.append(RefStep(start, end, label, tuple(c for c in categories if c in inside)))
    return steps


# --- answers ---------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    start: int
    end: int
    value: bytes


def box_answer(text: bytes, start: int, content_start: int) -> Answer | None:
    """The box whose `{` sits just before `content_start`, if its braces balance in time."""
    depth = 1
    pos = content_start
    limit = min(len(text), content_start + BOX_MAX_BYTES)
    while pos < limit:
        if text[pos] == ord("\\"):
            pos += 2  # the escaped byte is literal
            continue
        depth += {ord("{"): 1, ord("}"): -1}.get(text[pos], 0)
        if depth == 0:
            return Answer(start, pos + 1, text[content_start:pos])
        pos += 1
    return None


def phrase_answer(text: bytes, start: int, phrase_end: int) -> Answer | None:
    value_start = phrase_end
    while value_start < len(text) and text[value_start] in VALUE_LEAD:
        value_start += 1
    limit = min(len(text), value_start + PHRASE_VALUE_MAX_BYTES)
    stop = value_start
    while stop < limit and text[stop] != LF and not is_sentence_end(text, stop):
        stop += 1
    value = text[value_start:stop].rstrip(bytes(WHITESPACE))
    if not value or any(box in value for box in BOX_OPENERS):
        return None  # empty, or left to the box it holds
    return Answer(start, value_start + len(value), value)


def find_answers(text: bytes) -> list[Answer]:
    answers = []
    covered = 0  # an answer starting inside an earlier one is ignored
    for start, end, index in ref_matches(text, ANSWER_PATTERNS):
        if start < covered:
            continue
        is_box = index < len(BOX_OPENERS)
        answer = box_answer(text, start, end) if is_box else phrase_answer(text, start, end)
        if answer:
            answers.append(answer)
            covered = answer.end
    return answers


def normalized_answer(value: bytes) -> bytes:
    # One pass over the value as written: dropping a space or `$` does not
    # make a new `\(` to drop.
    kept = bytearray()
    pos = 0
    while pos < len(value):
        if value[pos : pos + 2] in ANSWER_DELIMITERS:
            pos += 2
            continue
        if value[pos] not in WHITESPACE and value[pos] != ord("$"):
            kept.append(value[pos])
        pos += 1
    return bytes(kept).rstrip(b".")


# --- metrics ---------------------------------------------------------------


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def word_count(text: bytes) -> int:
    # Not bytes.split(): it also splits on vertical tab and form feed.
    return len(re.findall(rb"[^ \t\r\n]+", text))


def transition_columns(labels: list[str], names: tuple[str, ...]) -> dict[str, float | None]:
    pairs = list(pairwise(labels))
    columns = {}
    for a in names:
        leaving = [b for first, b in pairs if first == a]
        for b in names:
            columns[f"p_{a}_{b}"] = ratio(leaving.count(b), len(leaving))
    return columns


def longest_run(labels: list[str], wanted: str) -> int:
    best = run = 0
    for label in labels:
        run = run + 1 if label == wanted else 0
        best = max(best, run)
    return best


def repetition(text: bytes) -> float | None:
    seen: set[bytes] = set()
    repeated = total = 0
    for start, end in sentence_spans(text):
        unit = text[start:end]
        total += len(unit)
        if len(unit) >= REPEAT_MIN_BYTES and unit in seen:
            repeated += len(unit)
        seen.add(unit)
    return ratio(repeated, total)


def answer_columns(text: bytes) -> dict:
    answers = find_answers(text)
    if not answers:
        return {"first_answer_offset": -1, "n_distinct_answers": 0, "tail_after_first_answer": None}
    first = answers[0]
    return {
        "first_answer_offset": first.start,
        "n_distinct_answers": len({normalized_answer(a.value) for a in answers}),
        "tail_after_first_answer": (len(text) - first.end) / len(text),
    }


def reference_metrics(
    text: bytes, matches: list[Match], categories: tuple[str, ...], mode: str
) -> dict:
    """One row of `cotsieve.analyze`, column by column, in its column order."""
    steps = reference_steps(text, matches, categories, mode)
    labels = [s.label for s in steps]
    n_words = word_count(text)
    row = {"n_bytes": len(text), "n_words": n_words, "n_steps": len(steps)}
    match_categories = [c for _, _, c in matches]
    row.update({f"count_{c}": match_categories.count(c) for c in categories})
    row.update({f"steps_{c}": sum(c in s.flags for s in steps) for c in categories})
    row["branch_step_ratio"] = ratio(row["steps_branch"], len(steps))
    row["markers_per_1k_words"] = ratio(1000 * len(matches), n_words)
    row.update(transition_columns(labels, categories + (PROGRESS,)))
    row["longest_branch_run"] = longest_run(labels, BRANCH)
    row["repetition"] = repetition(text)
    row.update(answer_columns(text))
    return row


# --- comparison ------------------------------------------------------------


def same_value(got, expected, rel: float = 1e-12) -> bool:
    if got is None or expected is None or isinstance(expected, int):
        return got == expected
    return abs(got - expected) <= rel * max(abs(got), abs(expected))


def differing_columns(got: dict, expected: dict) -> dict[str, tuple]:
    """Columns whose engine value differs from the reference: name -> (got, expected)."""
    names = list(dict.fromkeys([*expected, *got]))
    return {
        name: (got.get(name, "<missing>"), expected.get(name, "<missing>"))
        for name in names
        if name not in got or name not in expected or not same_value(got[name], expected[name])
    }
