"""Deterministic synthetic reasoning traces for tests, examples and benchmarks.

The traces are written from templates that belong to this project; no model
output or third-party text goes into them. Each trace solves a small
arithmetic or algebra word problem whose answer is computed, so every record
carries the correct answer.

Two sources solve the same problems, which is what a step-count-ratio proxy
(Proxy 1 of arXiv 2604.01702) compares:

``synth-convergent``
    Deductive paragraphs separated by blank lines, almost no reasoning
    markers, and a closing ``So the final answer is \\boxed{...}.``

``synth-branchy``
    Paragraphs that open with ``Alternatively,``, ``Wait,``, ``Hmm,``,
    ``Perhaps`` or ``Another approach:``; wrong routes that are proposed and
    then refuted, a ``Let me double-check`` or two, several distinct
    candidate answers, a first boxed answer followed by more exploration
    (overthinking) and a closing boxed answer. A share of these traces
    (``loop_share``, 10% by default) falls into a greedy-decoding loop
    instead: a block of one to three paragraphs repeated verbatim until the
    trace stops, with no closing answer.

Lengths vary from about 1k to about 20k characters.

Example:

>>> from cotsieve.testing import generate_traces
>>> records = generate_traces(4, seed=7, branch_heavy_share=0.5)
>>> [r["source"] for r in records]
['synth-convergent', 'synth-branchy', 'synth-convergent', 'synth-branchy']
>>> records[0]["problem_id"] == records[1]["problem_id"]
True
>>> records[0]["text"].endswith("\\\\boxed{%s}." % records[0]["answer"])
True
>>> generate_traces(4, seed=7, branch_heavy_share=0.5) == records
True
"""

from __future__ import annotations

import gzip
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

T = TypeVar("T")

__all__ = [
    "generate_traces",
    "write_jsonl",
    "write_sample",
    "SAMPLE_SEED",
    "SAMPLE_SIZE",
]

CONVERGENT = "synth-convergent"
BRANCHY = "synth-branchy"

SAMPLE_SEED = 20260402
"""Seed of the shipped sample corpus ``cotsieve/data/sample_traces.jsonl.gz``."""
SAMPLE_SIZE = 300
"""Number of traces in the shipped sample corpus."""

PARAGRAPH_BREAK = "\n\n"


class _Dice:
    """Seeded choices built only on ``random.random()``.

    Python guarantees that ``random()`` yields the same sequence for the same
    seed across versions, but not the integer helpers (``randrange``,
    ``choice``, ``shuffle``), so those are rebuilt here to keep generated
    corpora byte-identical on every Python.
    """

    def __init__(self, *key: object) -> None:
        self._rng = random.Random(":".join(str(part) for part in ("cotsieve-synth", *key)))

    def below(self, n: int) -> int:
        return min(int(self._rng.random() * n), n - 1)

    def between(self, low: int, high: int) -> int:
        return low + self.below(high - low + 1)

    def pick(self, items: Sequence[T]) -> T:
        return items[self.below(len(items))]

    def chance(self, probability: float) -> bool:
        return self._rng.random() < probability

    def log_uniform(self, low: float, high: float) -> int:
        return int(math.exp(math.log(low) + self._rng.random() * (math.log(high) - math.log(low))))


@dataclass(frozen=True)
class _Slip:
    """A plausible wrong route: its reasoning, the value it reaches, its refutation."""

    reasoning: str
    value: int
    refutation: str


@dataclass(frozen=True)
class _Problem:
    text: str
    answer: int
    goal: str  # what is asked, phrased to follow "I need to" / "We need to"
    facts: str  # the given quantities, restated
    plan: str  # how the deduction will go
    products: tuple[tuple[int, int], ...]  # multiplications the solution relies on
    steps: tuple[str, ...]  # deductive paragraphs that reach the answer
    details: tuple[str, ...]  # further deductive paragraphs (arithmetic written out)
    alternative: str  # a second correct route, without its opening marker
    slips: tuple[_Slip, ...]
    check: str  # a sentence that confirms the answer by substitution


NAMES = ("Ava", "Bruno", "Chen", "Dara", "Elif", "Farid", "Greta", "Hugo", "Imani", "Jonas",
         "Keiko", "Luca", "Maya", "Nikhil", "Olga", "Pablo", "Rosa", "Sami", "Tariq", "Vera")
ITEMS = ("notebooks", "pencils", "apples", "tickets", "mugs", "plants", "candles", "maps",
         "folders", "lamps", "scarves", "puzzles")


def _product_in_words(a: int, b: int) -> str:
    """Write a × b out by splitting b into tens and units."""
    tens, units = b - b % 10, b % 10
    if tens == 0 or units == 0:
        return f"{a} × {b} = {a * b}."
    return (f"{a} × {b} = {a} × {tens} + {a} × {units} = {a * tens} + {a * units} = {a * b}.")


def _sloppy_quotient(numerator: int, denominator: int) -> tuple[str, int]:
    """A division as a hurried solver writes it, rounding when it is not exact."""
    value = round(numerator / denominator)
    if numerator % denominator == 0:
        return f"{numerator} / {denominator} = {value}", value
    return f"{numerator} / {denominator}, which is about {value}", value


def _linear(dice: _Dice) -> _Problem:
    x, a, b = dice.between(3, 60), dice.between(2, 12), dice.between(1, 99)
    c = a * x + b
    added, added_value = _sloppy_quotient(c + b, a)
    slips = [
        _Slip(f"I can just take {b} away from {c} and stop there, which leaves {c - b}.", c - b,
              f"{c - b} is {a} times the number, not the number itself: "
              f"{a} × {c - b} + {b} = {a * (c - b) + b}, not {c}."),
        _Slip(f"I should move {b} to the other side by adding it: {a}x = {c + b}, "
              f"and then x = {added}.", added_value,
              f"moving {b} across the equals sign changes its sign, so it is subtracted, "
              f"not added. {a} × {added_value} + {b} = {a * added_value + b}, not {c}."),
    ]
    if c % a == 0 and c // a - b > 0:
        slips.append(_Slip(f"dividing first is quicker: {c} / {a} = {c // a}, then take away {b} "
                           f"to get {c // a - b}.", c // a - b,
                           f"undoing the steps has to go in reverse order. With {c // a - b}: "
                           f"{a} × {c // a - b} + {b} = {a * (c // a - b) + b}, not {c}."))
    return _Problem(
        text=(f"When a number is multiplied by {a} and then increased by {b}, the result is {c}. "
              "What is the number?"),
        answer=x,
        goal=f"find the number that gives {c} after multiplying by {a} and adding {b}",
        facts=f"The number is multiplied by {a}, then {b} is added, and the result is {c}.",
        plan="This is a one-step linear equation: write it down, isolate the unknown term, "
             "then divide by its coefficient.",
        products=((a, x),),
        steps=(f"Call the unknown number x. The statement says {a}x + {b} = {c}.",
               f"Subtracting {b} from both sides leaves {a}x = {c} - {b} = {c - b}.",
               f"Dividing both sides by {a} gives x = {c - b} / {a} = {x}."),
        details=(f"The division is exact: {_product_in_words(a, x)} So {c - b} / {a} = {x} "
                 "with no remainder.",
                 f"In the original order the operations are: start from x, multiply by {a}, "
                 f"add {b}. Reversing them means subtracting {b} first and dividing by {a} second.",
                 f"As for the size: {c} is a bit more than {a} times the number, so the number "
                 f"is a bit less than {c} / {a}, roughly {c / a:.1f}. The value {x} fits."),
        alternative=(f"work backwards from {c}. Undo the addition: {c} - {b} = {c - b}. Undo the "
                     f"multiplication: {c - b} / {a} = {x}. So the number is {x}."),
        slips=tuple(s for s in slips if s.value != x and s.value > 0),
        check=(f"Substituting x = {x}: {_product_in_words(a, x)} Then {a * x} + {b} = {c}, "
               "which matches the statement."),
    )


def _change(dice: _Dice) -> _Problem:
    name, first, second = dice.pick(NAMES), dice.pick(ITEMS), dice.pick(ITEMS)
    while second == first:
        second = dice.pick(ITEMS)
    k, p, m, q = dice.between(2, 9), dice.between(2, 15), dice.between(2, 9), dice.between(2, 15)
    cost1, cost2 = k * p, m * q
    total = cost1 + cost2
    bill = next(b for b in (20, 50, 100, 200, 500) if b > total)
    change = bill - total
    slips = [
        _Slip(f"the change is {bill} minus the {first}: {bill} - {cost1} = {bill - cost1}.",
              bill - cost1, f"that leaves out the {m} {second} entirely. They cost {cost2}, "
              f"so {bill - cost1} is too much change."),
        _Slip(f"the {second} cost {q} in total, so the bill is {cost1} + {q} = {cost1 + q} and "
              f"the change is {bill - cost1 - q}.", bill - cost1 - q,
              f"{q} dollars is the price of one of the {second}, and {name} buys {m} of them, "
              f"so they cost {cost2}, not {q}."),
        _Slip(f"the change is {bill} - {cost1} + {cost2} = {bill - cost1 + cost2}.",
              bill - cost1 + cost2, f"both purchases reduce the money {name} keeps. Adding "
              f"{cost2} back has the sign of the second cost wrong."),
    ]
    return _Problem(
        text=(f"{name} buys {k} {first} at {p} dollars each and {m} {second} at {q} dollars each, "
              f"paying with a {bill}-dollar bill. How much change does {name} receive, in dollars?"),
        answer=change,
        goal=f"find how much change {name} gets from a {bill}-dollar bill",
        facts=(f"{name} buys {k} {first} at {p} dollars each and {m} {second} at {q} dollars "
               f"each, and pays with {bill} dollars."),
        plan="The change is the amount paid minus the total cost, and the total cost is the sum "
             "of quantity times unit price over both purchases.",
        products=((k, p), (m, q)),
        steps=(f"The {first} cost {k} × {p} = {cost1} dollars.",
               f"The {second} cost {m} × {q} = {cost2} dollars.",
               f"Together that is {cost1} + {cost2} = {total} dollars.",
               f"The change is {bill} - {total} = {change} dollars."),
        details=(f"Written out, {_product_in_words(p, k)} and {_product_in_words(q, m)}",
                 f"The bill of {bill} dollars is the smallest common note above the total of "
                 f"{total}, so the change is positive and less than the bill.",
                 f"Subtracting in two stages: {bill} - {cost1} = {bill - cost1}, and then "
                 f"{bill - cost1} - {cost2} = {change}."),
        alternative=(f"count down from the bill one purchase at a time. {bill} dollars minus "
                     f"{cost1} for the {first} leaves {bill - cost1}; minus {cost2} for the "
                     f"{second} leaves {change}. The change is {change} dollars."),
        slips=tuple(s for s in slips if s.value != change and s.value > 0),
        check=(f"Adding the change to the cost: {change} + {total} = {bill}, exactly the bill. "
               f"And {cost1} + {cost2} = {total} is the full cost."),
    )


def _rectangle(dice: _Dice) -> _Problem:
    width = dice.between(2, 30)
    length = width + dice.between(1, 25)
    half = length + width
    perimeter = 2 * half
    area = length * width
    slips = [
        _Slip(f"the width is the perimeter minus the length, {perimeter} - {length} = "
              f"{perimeter - length}, so the area is {length} × {perimeter - length} = "
              f"{length * (perimeter - length)}.", length * (perimeter - length),
              f"a width of {perimeter - length} gives a perimeter of 2 × ({length} + "
              f"{perimeter - length}) = {2 * (length + perimeter - length)}, not {perimeter}. "
              "The perimeter counts each side twice."),
        _Slip(f"half the perimeter is the width, {half}, so the area is {length} × {half} = "
              f"{length * half}.", length * half,
              f"half the perimeter is the length plus the width, {half}, not the width alone."),
        _Slip(f"the area is the sum of the two sides, {length} + {width} = {half}.", half,
              "adding the sides gives half the perimeter; the area multiplies them."),
    ]
    return _Problem(
        text=(f"A rectangle has a perimeter of {perimeter} cm and a length of {length} cm. "
              "What is its area in square centimetres?"),
        answer=area,
        goal=f"find the area of a rectangle with perimeter {perimeter} and length {length}",
        facts=f"The perimeter is {perimeter} cm and the length is {length} cm.",
        plan="The perimeter fixes the sum of length and width; the width follows, and the area "
             "is their product.",
        products=((length, width), (2, half)),
        steps=(f"The perimeter is twice the length plus twice the width, so the length plus the "
               f"width is {perimeter} / 2 = {half}.",
               f"The width is then {half} - {length} = {width} cm.",
               f"The area is length times width: {length} × {width} = {area} square centimetres."),
        details=(f"Written out, {_product_in_words(length, width)}",
                 f"The length {length} is larger than the width {width}, as a length should be, "
                 "and both are positive.",
                 f"As a formula: area = L × (P / 2 - L) = {length} × ({half} - {length}) = {area}."),
        alternative=(f"call the width w. Then 2 × ({length} + w) = {perimeter}, so {length} + w = "
                     f"{half} and w = {width}. The area is {length} × {width} = {area}."),
        slips=tuple(s for s in slips if s.value != area),
        check=(f"A {length} by {width} rectangle has perimeter 2 × ({length} + {width}) = "
               f"{perimeter}, as given, and area {area}."),
    )


def _series(dice: _Dice) -> _Problem:
    first, step, count = dice.between(1, 20), dice.between(2, 9), dice.between(8, 40)
    last = first + (count - 1) * step
    total = count * (first + last) // 2
    terms = [first + i * step for i in range(count)]
    overshoot = first + count * step
    overshoot_sum, overshoot_value = _sloppy_quotient(count * (first + overshoot), 2)
    running = []
    subtotal = 0
    for term in terms:
        subtotal += term
        running.append(f"{term} brings it to {subtotal}")
    slips = [
        _Slip(f"the last term is {first} + {count} × {step} = {overshoot}, and the sum is "
              f"{count} × ({first} + {overshoot}) / 2 = {overshoot_sum}.", overshoot_value,
              f"the first term already counts as term 1, so only {count - 1} steps of {step} "
              f"are added: the last term is {last}, not {overshoot}."),
        _Slip(f"the sum is the number of terms times first plus last: {count} × ({first} + "
              f"{last}) = {count * (first + last)}.", count * (first + last),
              "that pairs every term twice. The pairing formula divides by 2."),
    ]
    return _Problem(
        text=(f"An arithmetic sequence starts at {first} and each term is {step} more than the "
              f"one before. What is the sum of the first {count} terms?"),
        answer=total,
        goal=f"add up the first {count} terms of the sequence that starts {first}, "
             f"{first + step}, {first + 2 * step}",
        facts=f"The first term is {first}, the common difference is {step}, and there are "
              f"{count} terms.",
        plan="An arithmetic series sums to the number of terms times the mean of its first and "
             "last terms, so the last term comes first.",
        products=((count - 1, step), (count, first + last)),
        steps=(f"The last of the {count} terms is {first} + ({count} - 1) × {step} = "
               f"{first} + {(count - 1) * step} = {last}.",
               f"The sum of an arithmetic sequence is the number of terms times the average of "
               f"the first and last terms: {count} × ({first} + {last}) / 2.",
               f"That is {count} × {first + last} / 2 = {count * (first + last)} / 2 = {total}."),
        details=("The terms are " + ", ".join(str(t) for t in terms) + ".",
                 f"Pairing the first and last terms, the second and second-to-last, and so on, "
                 f"each pair adds to {first + last}, and there are {count} / 2 such pairs.",
                 "Adding them in order: " + "; ".join(running) + "."),
        alternative=("add the terms one by one. Starting from 0, " + "; ".join(running)
                     + f". The total is {total}."),
        slips=tuple(s for s in slips if s.value != total),
        check=(f"By pairing: {count} terms make {count} / 2 pairs of {first + last}, "
               f"and {count} × {first + last} / 2 = {total}."),
    )


def _ages(dice: _Dice) -> _Problem:
    elder, younger = dice.pick(NAMES), dice.pick(NAMES)
    while younger == elder:
        younger = dice.pick(NAMES)
    age, times, years = dice.between(3, 20), dice.between(2, 5), dice.between(2, 12)
    later_total = (times + 1) * age + 2 * years
    once, once_value = _sloppy_quotient(later_total - years, times + 1)
    unshifted, unshifted_value = _sloppy_quotient(later_total, times + 1)
    slips = [
        _Slip(f"the ages now add to {later_total} - {years} = {later_total - years}, so "
              f"{younger} is {once}.", once_value,
              f"both of them get {years} years older, so {2 * years} years must come off the "
              f"future total, not {years}."),
        _Slip(f"{elder} has {times} shares and {younger} has one, so {younger} is "
              f"{unshifted}.", unshifted_value,
              f"{later_total} is the total in {years} years, not today. The future years have to "
              "come off first."),
        _Slip(f"the answer is {elder}'s age, {times} × {age} = {times * age}.", times * age,
              f"the question asks for {younger}'s age, not {elder}'s."),
    ]
    return _Problem(
        text=(f"{elder} is {times} times as old as {younger}. In {years} years, the sum of their "
              f"ages will be {later_total}. How old is {younger} now?"),
        answer=age,
        goal=f"find {younger}'s age today",
        facts=(f"{elder} is {times} times as old as {younger}, and in {years} years their ages "
               f"will add to {later_total}."),
        plan=f"One unknown is enough: {younger}'s age. {elder}'s age is a multiple of it, and "
             "the future sum gives one linear equation.",
        products=((times, age), (times + 1, age)),
        steps=(f"Let {younger}'s age now be y. Then {elder} is {times}y.",
               f"In {years} years they will be y + {years} and {times}y + {years}, which add to "
               f"{times + 1}y + {2 * years}.",
               f"So {times + 1}y + {2 * years} = {later_total}, which gives {times + 1}y = "
               f"{later_total - 2 * years}.",
               f"Dividing by {times + 1}: y = {later_total - 2 * years} / {times + 1} = {age}."),
        details=(f"{elder} is {times} × {age} = {times * age} years old now.",
                 f"Each of the two people gains {years} years, which adds {2 * years} to the "
                 "sum of their ages.",
                 f"The division is exact: {_product_in_words(times + 1, age)}"),
        alternative=(f"take the passing years out first. Together they gain {2 * years} years, so "
                     f"today their ages add to {later_total} - {2 * years} = "
                     f"{later_total - 2 * years}. That total is {times + 1} equal shares of "
                     f"{younger}'s age, so {younger} is {later_total - 2 * years} / {times + 1} "
                     f"= {age}."),
        slips=tuple(s for s in slips if s.value != age and s.value > 0),
        check=(f"{younger} is {age} and {elder} is {times * age}. In {years} years they will be "
               f"{age + years} and {times * age + years}, and {age + years} + "
               f"{times * age + years} = {later_total}."),
    )


PROBLEM_KINDS: tuple[Callable[[_Dice], _Problem], ...] = (
    _linear, _change, _rectangle, _series, _ages)


def _make_problem(seed: int, index: int) -> _Problem:
    dice = _Dice(seed, "problem", index)
    while True:  # a few draws leave too few wrong routes to explore
        problem = dice.pick(PROBLEM_KINDS)(dice)
        if len(problem.slips) >= 2:
            return problem


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _boxed(value: int) -> str:
    return "\\boxed{%d}" % value


def _convergent_trace(problem: _Problem, dice: _Dice) -> str:
    """Deduction from the facts to the answer, with at most one check."""
    target = dice.log_uniform(900, 5000)
    paragraphs = [f"We need to {problem.goal}.", problem.facts, problem.plan, *problem.steps]
    elaborations = [*(f"Working out {a} × {b} in parts: {_product_in_words(a, b)}"
                      for a, b in problem.products),
                    *problem.details,
                    "A second route gives the same value: " + problem.alternative]
    for elaboration in elaborations:
        if len(PARAGRAPH_BREAK.join(paragraphs)) >= target:
            break
        paragraphs.append(elaboration)
    if dice.chance(0.4):
        paragraphs.append("Quick check. " + problem.check)
    paragraphs.append(f"So the final answer is {_boxed(problem.answer)}.")
    return PARAGRAPH_BREAK.join(paragraphs)


BRANCH_OPENERS = ("Alternatively, maybe ", "Perhaps ", "Maybe ", "Alternatively, perhaps ")
ALTERNATIVE_OPENERS = ("Alternatively, I could ", "Another approach: ", "Alternatively, let me ")
BACKTRACK_OPENERS = ("Wait, that doesn't seem right.", "Wait, no. That can't be right.",
                     "But wait, that doesn't work.", "Hold on, that's not right.")
HESITATIONS = (
    "Hmm, let me reread the problem. {facts}",
    "Hmm, I'm not sure I set this up right. {facts}",
    "Hmm. What exactly is being asked? I need to {goal}.",
    "Hmm, maybe I am overcomplicating this. {facts}",
)
VERIFY_OPENERS = ("Let me double-check. ", "Let me verify this. ", "Let me double-check that. ")
# Each candidate is stated with "the answer is" so that answer extraction sees it.
CANDIDATE_LINES = ("So the answer is {value}.", "Then the answer is {value}.",
                   "That means the answer is {value}.")


def _slip_episode(problem: _Problem, dice: _Dice) -> list[str]:
    slip = dice.pick(problem.slips)
    return [dice.pick(BRANCH_OPENERS) + slip.reasoning + " "
            + dice.pick(CANDIDATE_LINES).format(value=slip.value),
            dice.pick(BACKTRACK_OPENERS) + " " + _upper_first(slip.refutation)]


def _arithmetic_slip_episode(problem: _Problem, dice: _Dice) -> list[str]:
    """Recompute one product, get it wrong, and catch the error."""
    a, b = dice.pick(problem.products)
    error = dice.between(1, 12)
    wrong = a * b - error if a * b > error and dice.chance(0.5) else a * b + error
    return [f"Hmm, let me recompute {a} × {b}. That is {wrong}, I think.",
            f"Wait, {wrong} is off. {_product_in_words(a, b)} So {a} × {b} = {a * b}, "
            f"not {wrong}."]


def _alternative_episode(problem: _Problem, dice: _Dice) -> list[str]:
    return [dice.pick(ALTERNATIVE_OPENERS) + problem.alternative]


def _hesitation_episode(problem: _Problem, dice: _Dice) -> list[str]:
    return [dice.pick(HESITATIONS).format(facts=problem.facts, goal=problem.goal)]


def _verify_episode(problem: _Problem, dice: _Dice) -> list[str]:
    return [dice.pick(VERIFY_OPENERS) + problem.check]


def _deduce_episode(problem: _Problem, dice: _Dice) -> list[str]:
    return list(problem.steps[: dice.between(1, len(problem.steps))]) + [dice.pick(problem.details)]


EPISODES = (_slip_episode, _slip_episode, _arithmetic_slip_episode, _alternative_episode,
            _hesitation_episode, _verify_episode, _deduce_episode)


def _explore(problem: _Problem, dice: _Dice, paragraphs: list[str], until: int) -> None:
    """Append exploratory episodes until the trace reaches ``until`` characters."""
    while len(PARAGRAPH_BREAK.join(paragraphs)) < until:
        paragraphs.extend(dice.pick(EPISODES)(problem, dice))


def _opening(problem: _Problem, dice: _Dice) -> list[str]:
    return [f"Okay, so I need to {problem.goal}. Let me write down what I know.",
            problem.facts, *problem.steps[: dice.between(1, 2)]]


def _branchy_trace(problem: _Problem, dice: _Dice) -> str:
    """Exploration, a first boxed answer, more exploration (overthinking), a final answer."""
    target = dice.log_uniform(3000, 16000)
    paragraphs = _opening(problem, dice)
    first_answer_at = target * dice.between(30, 60) // 100
    _explore(problem, dice, paragraphs, until=first_answer_at)
    wrong_first = dice.chance(0.3)
    first_answer = dice.pick(problem.slips).value if wrong_first else problem.answer
    paragraphs.append(f"So the answer is {_boxed(first_answer)}.")
    # Overthinking always revisits at least one wrong route, so every branchy
    # trace states several distinct candidate answers.
    paragraphs.extend(_slip_episode(problem, dice))
    _explore(problem, dice, paragraphs, until=target)
    paragraphs.extend(_verify_episode(problem, dice))
    paragraphs.append(f"So the final answer is {_boxed(problem.answer)}.")
    return PARAGRAPH_BREAK.join(paragraphs)


def _looping_trace(problem: _Problem, dice: _Dice) -> str:
    """A short exploration, then one block of paragraphs repeated verbatim until cut off."""
    target = dice.log_uniform(6000, 20000)
    paragraphs = _opening(problem, dice)
    _explore(problem, dice, paragraphs, until=dice.between(800, 2500))
    block = _slip_episode(problem, dice)[: dice.between(1, 2)]
    if dice.chance(0.5):
        block += _hesitation_episode(problem, dice)
    while len(PARAGRAPH_BREAK.join(paragraphs)) < target:
        paragraphs.extend(block)
    return PARAGRAPH_BREAK.join(paragraphs)


def generate_traces(n: int, seed: int = 0, branch_heavy_share: float = 0.3,
                    loop_share: float = 0.1) -> list[dict[str, str]]:
    """Generate ``n`` synthetic reasoning traces, deterministically from ``seed``.

    ``n * branch_heavy_share`` traces (rounded half up) come from ``synth-branchy`` and
    the rest from ``synth-convergent``. Problem ``i`` is solved by both sources
    while both still have traces to give, so the two sources share problem
    ids. Of the branchy traces, about ``loop_share`` loop without a final
    answer.

    Each record is ``{"id", "source", "problem_id", "problem", "text",
    "answer"}``, where ``answer`` is the correct answer to the problem as a
    string (a looping trace never states it). Records are ordered by problem,
    the convergent trace first; ids run ``synth-000001``, ``synth-000002``, ...

    The output depends only on the arguments, not on the Python version or
    on hash randomisation.

    >>> records = generate_traces(10, seed=1)
    >>> len(records), sum(r["source"] == "synth-branchy" for r in records)
    (10, 3)
    >>> sorted(records[0])
    ['answer', 'id', 'problem', 'problem_id', 'source', 'text']
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    for name, share in (("branch_heavy_share", branch_heavy_share), ("loop_share", loop_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {share}")
    n_branchy = int(n * branch_heavy_share + 0.5)
    n_convergent = n - n_branchy
    records: list[dict[str, str]] = []
    for index in range(max(n_branchy, n_convergent)):
        problem = _make_problem(seed, index)
        if index < n_convergent:
            text = _convergent_trace(problem, _Dice(seed, CONVERGENT, index))
            records.append(_record(len(records) + 1, CONVERGENT, index, problem, text))
        if index < n_branchy:
            dice = _Dice(seed, BRANCHY, index)
            text = (_looping_trace if dice.chance(loop_share) else _branchy_trace)(problem, dice)
            records.append(_record(len(records) + 1, BRANCHY, index, problem, text))
    return records


def _record(number: int, source: str, index: int, problem: _Problem, text: str) -> dict[str, str]:
    return {"id": f"synth-{number:06d}", "source": source, "problem_id": f"p{index:04d}",
            "problem": problem.text, "text": text, "answer": str(problem.answer)}


def write_jsonl(records: Iterable[Mapping[str, object]], path: str | Path) -> None:
    """Write records as JSON lines; a ``.gz`` suffix gzips the file.

    The gzip header carries no file name or timestamp, so the same records
    always give the same bytes.
    """
    path = Path(path)
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    if path.suffix == ".gz":
        with open(path, "wb") as raw, gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as zipped:
            zipped.write(payload)
    else:
        path.write_bytes(payload)


def write_sample(path: str | Path) -> None:
    """Regenerate the shipped sample corpus (``SAMPLE_SIZE`` traces, ``SAMPLE_SEED``)."""
    write_jsonl(generate_traces(SAMPLE_SIZE, seed=SAMPLE_SEED), path)
