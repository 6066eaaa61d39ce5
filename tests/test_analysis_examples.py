"""Hand-computed examples for every step mode and metric of docs/metrics.md,
for `segment`, `step_count_ratio`, and the documented errors."""

from __future__ import annotations

import pyarrow as pa
import pytest

cotsieve = pytest.importorskip("cotsieve")
from cotsieve import (
    Pattern,
    PatternSet,
    Step,
    analyze,
    segment,
    segments,
    step_count_ratio,
)
from cotsieve.errors import UsageError

# One pattern per built-in category; "so" only where it opens a sentence.
SMALL = PatternSet(
    [
        Pattern("alternatively", "branch"),
        Pattern("wait", "backtrack"),
        Pattern("check", "verify"),
        Pattern("hmm", "hesitate"),
        Pattern("so", "conclude", anchor="sentence_start"),
    ]
)


def step_texts(text: bytes, mode: str, patterns=SMALL) -> list[bytes]:
    return [text[s.start : s.end] for s in segment(text, patterns, mode)]


def labels(text: bytes, mode: str, patterns=SMALL) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.label, s.flags) for s in segment(text, patterns, mode)]


def row(text, mode: str = "paragraph", patterns=SMALL) -> dict:
    return analyze([text], patterns, mode).to_pylist()[0]


# --- step modes ------------------------------------------------------------

MIXED = b"Hmm. Let x = 2.\nWait, check it.  \n \t\nAlternatively, x = 3! so done?\n\n\nok"


def test_paragraph_steps_are_runs_of_non_blank_lines():
    assert step_texts(MIXED, "paragraph") == [
        b"Hmm. Let x = 2.\nWait, check it.",
        b"Alternatively, x = 3! so done?",
        b"ok",
    ]


def test_line_steps_are_trimmed_non_blank_lines():
    assert step_texts(MIXED, "line") == [
        b"Hmm. Let x = 2.", b"Wait, check it.", b"Alternatively, x = 3! so done?", b"ok",
    ]


def test_sentence_steps_cut_after_sentence_ends():
    assert step_texts(MIXED, "sentence") == [
        b"Hmm.", b"Let x = 2.", b"Wait, check it.", b"Alternatively, x = 3!", b"so done?", b"ok",
    ]


def test_marker_steps_cut_paragraphs_before_sentence_opening_matches():
    # "Hmm" and "Alternatively" already start their paragraphs; "check" does
    # not open a sentence.
    assert step_texts(MIXED, "marker") == [
        b"Hmm. Let x = 2.", b"Wait, check it.", b"Alternatively, x = 3!", b"so done?", b"ok",
    ]


def test_sentence_end_needs_whitespace_or_end_of_text_after_it():
    text = b"Pi is 3.14 here...  Really?No! Yes."
    assert step_texts(text, "sentence") == [b"Pi is 3.14 here...", b"Really?No!", b"Yes."]


def test_blank_lines_hold_only_whitespace_and_crlf_is_whitespace():
    text = b"a\r\n\r\nb\r\n \t \r\nc\r\nd"
    assert step_texts(text, "paragraph") == [b"a", b"b", b"c\r\nd"]
    assert step_texts(text, "line") == [b"a", b"b", b"c", b"d"]


def test_marker_cut_uses_the_anchor_sentence_end_which_includes_colon():
    # semantics.md counts ':' as a sentence end for sentence_start; with no
    # whitespace after the '.', "Wait" does not open a sentence.
    text = b"Note: wait here. x.wait there"
    assert step_texts(text, "marker") == [b"Note:", b"wait here. x.wait there"]


def test_marker_cut_is_before_the_match_or_its_line_prefix():
    # Mid-line the cut is right before the match; at a line start it is
    # before the bullet, which stays with the step it opens.
    text = b"Hmm.   \t Wait.\n- wait, no\n\n  wait"
    assert step_texts(text, "marker") == [b"Hmm.", b"Wait.", b"- wait, no", b"wait"]


def test_text_without_non_whitespace_has_no_steps():
    for mode in cotsieve.STEP_MODES:
        assert segment(b" \t\r\n\n ", SMALL, mode) == []


# --- flags and labels ------------------------------------------------------


def test_label_is_the_earliest_match_of_the_first_sentence():
    assert labels(MIXED, "paragraph") == [
        ("hesitate", ("backtrack", "verify", "hesitate")),
        ("branch", ("branch", "conclude")),
        ("progress", ()),
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        (b"Hmm, check it.", [("verify", ("verify", "hesitate"))]),
        (b"Hmm, hmm, wait and check.", [("backtrack", ("backtrack", "verify", "hesitate"))]),
        (b"Hmm, is it?", [("hesitate", ("hesitate",))]),
        # The later marker must be in the first sentence.
        (b"Hmm. Check it.", [("hesitate", ("verify", "hesitate"))]),
        (b"Hmm,\ncheck it.", [("hesitate", ("verify", "hesitate"))]),
        # Only a hesitation yields: an earlier marker of another category keeps the label.
        (b"Wait, hmm, check.", [("backtrack", ("backtrack", "verify", "hesitate"))]),
    ],
)
def test_a_hesitation_yields_the_label_to_a_later_marker(text, expected):
    assert labels(text, "paragraph") == expected


def test_a_yielded_label_counts_once_in_the_transitions():
    result = row(b"Hmm, check.\n\nHmm.\n\nAlternatively, x.")
    assert result["p_verify_hesitate"] == 1.0
    assert result["p_hesitate_branch"] == 1.0
    assert result["p_hesitate_verify"] == 0.0


def test_first_sentence_ends_at_a_sentence_end_or_lf():
    assert labels(b"Let x. Wait, no.", "paragraph") == [("progress", ("backtrack",))]
    assert labels(b"Let x\nwait", "paragraph") == [("progress", ("backtrack",))]
    # "3.5" holds no sentence end, so "wait" is still in the first sentence.
    assert labels(b"x = 3.5 wait. check", "paragraph") == [("backtrack", ("backtrack", "verify"))]


def test_flags_follow_category_order_not_match_order():
    flags = labels(b"hmm check wait alternatively", "paragraph")[0][1]
    assert flags == ("branch", "backtrack", "verify", "hesitate")


def test_extra_categories_label_steps_and_name_columns():
    ps = PatternSet([Pattern("now", "pivot"), Pattern("wait", "backtrack")], extra_categories=["pivot"])
    assert labels(b"Now wait.\n\nok", "paragraph", ps) == [("pivot", ("backtrack", "pivot")), ("progress", ())]
    result = row(b"Now wait.\n\nok", patterns=ps)
    assert (result["count_pivot"], result["steps_pivot"], result["p_pivot_progress"]) == (1, 1, 1.0)
    assert list(result)[3:9] == [f"count_{c}" for c in ps.categories]


def test_segments_table_lists_every_step_of_every_doc():
    table = segments([b"Wait.\n\nok", b"", b"hmm"], SMALL, "paragraph")
    assert table.column("doc").to_pylist() == [0, 0, 2]
    assert table.column("start").to_pylist() == [0, 7, 0]
    assert table.column("end").to_pylist() == [5, 9, 3]
    assert table.column("label").to_pylist() == ["backtrack", "progress", "hesitate"]
    assert table.column("flags").to_pylist() == [["backtrack"], [], ["hesitate"]]


# --- metrics ---------------------------------------------------------------

# Paragraph steps, labels: branch, branch, hesitate, conclude.
FOUR_STEPS = (
    b"Alternatively, x = 2.\n\nAlternatively, x = 3. Wait.\n\n"
    b"Hmm, check: x = 3.\n\nSo the answer is 3."
)


def test_counts_and_step_flags():
    result = row(FOUR_STEPS)
    assert result["n_bytes"] == len(FOUR_STEPS)
    assert result["n_words"] == 19
    assert result["n_steps"] == 4
    cats = ("branch", "backtrack", "verify", "hesitate", "conclude")
    assert [result[f"count_{c}"] for c in cats] == [2, 1, 1, 1, 1]
    assert [result[f"steps_{c}"] for c in cats] == [2, 1, 1, 1, 1]


def test_ratios():
    result = row(FOUR_STEPS)
    assert result["branch_step_ratio"] == 0.5
    assert result["markers_per_1k_words"] == pytest.approx(6000 / 19, rel=1e-12)
    assert result["longest_branch_run"] == 2


def test_transition_probabilities():
    result = row(FOUR_STEPS)
    names = ("branch", "backtrack", "verify", "hesitate", "conclude", "progress")
    # "Hmm, check: ..." is a verify step: the hesitation yields its label.
    expected_rows = {
        "branch": {"branch": 0.5, "verify": 0.5},
        "verify": {"conclude": 1.0},
    }
    for a in names:
        for b in names:
            expected = expected_rows[a].get(b, 0.0) if a in expected_rows else None
            assert result[f"p_{a}_{b}"] == expected, (a, b)


def test_longest_branch_run_counts_consecutive_branch_labels():
    text = b"\n\n".join([b"ok", b"Alternatively a.", b"Alternatively b.", b"ok", b"Alternatively c."] * 2)
    assert row(text)["longest_branch_run"] == 2
    assert row(b"ok\n\nfine")["longest_branch_run"] == 0


def test_repetition_counts_repeated_units_of_sixteen_bytes_or_more():
    long_unit = b"We compute the sum of both sides."  # 33 bytes
    text = long_unit + b" " + long_unit + b" Short. Short."
    assert row(text)["repetition"] == pytest.approx(33 / 78, rel=1e-12)
    # 15 bytes repeated do not count, 16 bytes do.
    assert row(b"So x equals 15. So x equals 15.")["repetition"] == 0.0
    assert row(b"So x equals 150. So x equals 150.")["repetition"] == 0.5


@pytest.mark.parametrize("length", [16, 17, 24, 31, 32, 33, 47, 48, 49, 63, 64, 65, 96, 97, 130])
def test_units_that_differ_in_one_byte_never_count_as_repeats(length):
    """Each unit is one line, so units are compared whole: a byte changed at
    any position makes a new unit, including the bytes that the engine's key
    (length, first, middle and last eight bytes) does not see. Many variants
    share a key, so a repeat of any one of them, not only of the first of its
    key, must be found by its bytes."""
    base = bytes(97 + (i * 7) % 26 for i in range(length))
    variants = [base[:i] + b"#" + base[i + 1:] for i in range(length)]
    assert row(b"\n".join(variants))["repetition"] == 0.0
    for repeated in {0, 8, length // 2 + 5, length - 9, length - 1}:
        text = b"\n".join(variants + [variants[repeated]])
        assert row(text)["repetition"] == pytest.approx(1 / (length + 1)), repeated
    assert row(b"\n".join(variants + variants[::-1]))["repetition"] == pytest.approx(0.5)


# Two crafted unit pairs that an earlier unit hash merged. It took 16 bytes
# per multiply, (w0 ^ K1) * (w1 ^ state), with the first state n * K0: a word
# w1 equal to that state zeroed the product and hid w0, and swapping the two
# factors (w0, w1) -> (w1 ^ d, w0 ^ d), d = n * K0 ^ K1, left it unchanged.
HASH_K0, HASH_K1 = 0xA0761D6478BD642F, 0xE7037ED1A0B428DB


def _word(value):
    return (value % 2**64).to_bytes(8, "little")


def _plain(data):
    """No whitespace, which would split the unit."""
    return not any(c in b" \t\r\n" for c in data)


@pytest.mark.parametrize("length", [17, 40, 64, 187])
def test_units_whose_second_word_equals_the_hash_state_stay_distinct(length):
    state = _word(length * HASH_K0)
    filler = b"x" * (length - 16)
    lines = [bytes([65 + i]) * 8 + state + filler for i in range(20)]
    assert _plain(state)
    assert row(b"\n".join(lines), "line")["repetition"] == 0.0


@pytest.mark.parametrize("length", [40, 64, 167, 187])
def test_units_with_swapped_xored_words_stay_distinct(length):
    d = _word(length * HASH_K0 ^ HASH_K1)
    w0, w1 = b"abcdefgh", b"stuvwxyz"
    swapped = bytes(a ^ b for a, b in zip(w1, d)) + bytes(a ^ b for a, b in zip(w0, d))
    assert _plain(swapped)
    filler = b"y" * (length - 16)
    assert row(w0 + w1 + filler + b"\n" + swapped + filler, "line")["repetition"] == 0.0


def test_repetition_of_a_greedy_loop_approaches_one():
    paragraph = b"Let me compute the sum of the first ten terms again. The sum of the first ten terms is 55.\n\n"
    assert row(paragraph * 50)["repetition"] > 0.9


def test_repetition_is_null_without_units_and_zero_without_repeats():
    assert row(b"  \n ")["repetition"] is None
    assert row(b"x")["repetition"] == 0.0


def test_phrase_answer_value_ends_before_the_sentence_end():
    text = b"Hence the answer is 7. Done"
    result = row(text)
    assert result["first_answer_offset"] == 6
    assert result["n_distinct_answers"] == 1
    assert result["tail_after_first_answer"] == (len(text) - text.index(b". Done")) / len(text)


def test_box_answer_ends_at_its_balanced_closing_brace():
    text = b"so \\boxed{a{b}c} and more"
    result = row(text)
    assert result["first_answer_offset"] == 3
    assert result["tail_after_first_answer"] == (len(text) - 16) / len(text)


def test_unbalanced_box_is_no_answer():
    result = row(b"\\boxed{{a} ok")
    assert (result["first_answer_offset"], result["n_distinct_answers"]) == (-1, 0)
    assert result["tail_after_first_answer"] is None


def test_answers_compare_without_whitespace_dollars_math_delimiters_and_final_dot():
    text = b"\\boxed{7} then \\fbox{ $7$ } then \\boxed{\\(7.\\)} then the answer is 7.\n"
    assert row(text)["n_distinct_answers"] == 1
    assert row(text + b"final answer: 8\n")["n_distinct_answers"] == 2


def test_phrase_holding_a_box_is_ignored_for_that_box():
    text = b"Thus the answer is \\boxed{5}."
    result = row(text)
    assert result["first_answer_offset"] == text.index(b"\\boxed")
    assert result["n_distinct_answers"] == 1
    # An unclosed box still hides the phrase, and is no answer itself.
    assert row(b"The answer is \\boxed{5")["first_answer_offset"] == -1


def test_phrase_value_stops_at_lf_and_after_two_hundred_bytes():
    assert row(b"The answer is 5\nmore")["tail_after_first_answer"] == 5 / 20
    text = b"final answer:" + b"9" * 300
    assert row(text)["tail_after_first_answer"] == (len(text) - 213) / len(text)


def test_boxes_need_exact_spelling_but_no_word_boundary():
    assert row(b"x\\boxed{3}")["first_answer_offset"] == 1
    assert row(b"x\\fbox{3}")["first_answer_offset"] == 1
    assert row(b"x\\BOXED{3}")["first_answer_offset"] == -1


def test_phrases_are_case_insensitive_and_need_word_boundaries():
    assert row(b"FINAL ANSWER IS 4!")["first_answer_offset"] == 0
    assert row(b"bathe answer is 4!")["first_answer_offset"] == -1


def test_empty_text_gives_zeros_and_nulls():
    result = row(b"", patterns="paper-2604.01702")
    zeros = {"n_bytes", "n_words", "n_steps", "longest_branch_run", "n_distinct_answers"}
    for name, value in result.items():
        if name in zeros or name.startswith(("count_", "steps_")):
            assert value == 0, name
        elif name == "first_answer_offset":
            assert value == -1
        else:
            assert value is None, name


def test_analyze_of_no_texts_has_every_column_and_no_rows():
    table = analyze([], SMALL)
    assert table.num_rows == 0
    assert table.column_names == list(row(b"x"))


# --- answers and marker cuts: the rules of docs/metrics.md, case by case ---


def test_phrase_value_is_trimmed():
    text = b"the answer is 5 \n"  # value "5": the answer ends after it
    assert row(text)["tail_after_first_answer"] == 2 / len(text)


def test_phrase_with_empty_value_is_no_answer():
    result = row(b"the answer is.")
    assert (result["first_answer_offset"], result["n_distinct_answers"]) == (-1, 0)


def test_phrase_value_cap_counts_from_the_value_start():
    text = b"final answer:   " + b"x" * 300  # value starts at 16, capped at 216
    assert row(text)["tail_after_first_answer"] == (len(text) - 216) / len(text)


def test_answer_delimiters_are_removed_as_written():
    # Removing the space does not make "\\ (" a "\\(" to remove.
    assert row(b"\\boxed{\\(7\\)} \\boxed{7}")["n_distinct_answers"] == 1
    assert row(b"\\boxed{\\ (7\\)} \\boxed{7}")["n_distinct_answers"] == 2


def test_every_trailing_dot_is_removed():
    assert row(b"\\boxed{7..} \\boxed{7}")["n_distinct_answers"] == 1


def test_phrase_ending_its_line_leaves_the_answer_to_the_box():
    # Common in real traces: "The final answer is:\n\\[\n\\boxed{4}\n\\]".
    result = row(b"The final answer is:\n\\boxed{4}")
    assert (result["first_answer_offset"], result["n_distinct_answers"]) == (21, 1)


def test_boxes_are_exact_spelling():
    # \\BOXED is no box, so the phrase's value "\\BOXED{5}" is the answer.
    result = row(b"THE ANSWER IS \\BOXED{5}.")
    assert (result["first_answer_offset"], result["n_distinct_answers"]) == (0, 1)


@pytest.mark.parametrize("box", [b"\\boxed{3}", b"\\fbox{3}"])
def test_phrase_holding_a_box_is_left_to_the_box(box):
    result = row(box + b" the answer is " + box)
    assert (result["first_answer_offset"], result["n_distinct_answers"]) == (0, 1)


def test_answers_inside_earlier_answers_are_ignored():
    assert row(b"\\boxed{\\boxed{3}}")["n_distinct_answers"] == 1
    assert row(b"\\boxed{the answer is 3}")["n_distinct_answers"] == 1


def test_escaped_braces_do_not_close_a_box():
    assert row(b"\\boxed{\\}}")["n_distinct_answers"] == 1
    assert row(b"\\boxed{" + b"x" * 5000 + b"}")["first_answer_offset"] == -1


def test_marker_match_starting_with_whitespace():
    ps = PatternSet([Pattern(" wait", "backtrack", boundary="none")])
    assert [(s.start, s.end) for s in segment(b"x\n wait b", ps, "marker")] == [(0, 1), (3, 9)]


def test_marker_cut_keeps_a_bullet_with_its_step():
    ps = PatternSet([Pattern("wait", "backtrack")])
    assert [s.text for s in segment(b"Wait.\n- wait, no", ps, "marker")] == ["Wait.", "- wait, no"]


# --- segment() ---------------------------------------------------------------


def test_segment_returns_steps_with_their_text():
    steps = segment("Hmm… é\n\nWait, 等等.", SMALL)
    assert all(isinstance(s, Step) for s in steps)
    assert steps == [
        Step(0, len("Hmm… é".encode()), "hesitate", ("hesitate",), "Hmm… é"),
        Step(len("Hmm… é\n\n".encode()), len("Hmm… é\n\nWait, 等等.".encode()), "backtrack", ("backtrack",), "Wait, 等等."),
    ]


def test_segment_decodes_invalid_utf8_with_replacement():
    assert segment(b"ok \xff wait", SMALL)[0].text == "ok \ufffd wait"


def test_segment_rejects_non_text():
    with pytest.raises(TypeError):
        segment(["a list"], SMALL)


# --- step_count_ratio (Proxy 1) ------------------------------------------------


def proxy_table() -> pa.Table:
    return pa.table(
        {
            "problem": ["p1", "p1", "p1", "p2", "p2", "p3"],
            "src": ["oss", "oss", "r1", "oss", "r1", "r1"],
            "n_steps": [10, 20, 30, 0, 5, 7],
        }
    )


def test_step_count_ratio_divides_by_the_mean_reference_steps():
    result = step_count_ratio(proxy_table(), by="problem", source="src", reference="oss")
    # p1: reference mean 15; p2: reference has no steps; p3: no reference.
    assert result.column("step_count_ratio").to_pylist() == [10 / 15, 20 / 15, 2.0, None, None, None]
    assert result.column_names == ["problem", "src", "n_steps", "step_count_ratio"]


def test_step_count_ratio_on_analyze_output():
    table = analyze([b"a\n\nb\n\nc", b"a"], SMALL)
    table = table.append_column("problem", pa.array(["p", "p"])).append_column("source", pa.array(["long", "short"]))
    result = step_count_ratio(table, by="problem", source="source", reference="short")
    assert result.column("step_count_ratio").to_pylist() == [3.0, 1.0]


@pytest.mark.parametrize("missing", ["problem", "src", "n_steps"])
def test_step_count_ratio_missing_column_is_a_usage_error(missing):
    with pytest.raises(UsageError, match=missing):
        step_count_ratio(proxy_table().drop_columns([missing]), by="problem", source="src", reference="oss")


def test_step_count_ratio_without_reference_rows_is_a_value_error():
    with pytest.raises(ValueError, match="gpt"):
        step_count_ratio(proxy_table(), by="problem", source="src", reference="gpt")


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("call", [analyze, segments])
def test_unknown_step_mode_is_a_value_error(call):
    with pytest.raises(ValueError, match="words"):
        call([b"x"], SMALL, "words")


def test_non_text_item_is_a_type_error_naming_its_index():
    with pytest.raises(TypeError, match="index 1"):
        analyze([b"ok", 3], SMALL)
    with pytest.raises(TypeError, match="index 2"):
        analyze(pa.array(["a", "b", None]), SMALL)
