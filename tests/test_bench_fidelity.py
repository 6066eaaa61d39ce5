"""benchmarks/bench_fidelity.py: its ``annotated_thinking`` parser and
sentence alignment on literal strings (always run), and its paired-teacher
and GPT-4o agreement numbers on the real traces (slow; skipped when
``../shared/data`` is absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("cotsieve")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_fidelity  # noqa: E402

ANNOTATED = (
    '```plaintext\n["initializing"] Okay, so the problem is 2 + 3. ["end-section"]\n\n'
    '["deduction"] That gives 5. ["end-section"]\n\n'
    '["backtracking"] Wait, no: it is 5 ["uncertainty-estimation"] I think. ["end-section"]\n\n'
    '["deduction"] So 5 is the answer.'
    "\n```"
)


def test_parse_annotated_reads_every_labelled_sentence():
    assert bench_fidelity.parse_annotated(ANNOTATED) == [
        ("Okay, so the problem is 2 + 3.", "initializing"),
        ("That gives 5.", "deduction"),
        ("Wait, no: it is 5", "backtracking"),  # its end token is missing: the next label ends it
        ("I think.", "uncertainty-estimation"),
        ("So 5 is the answer.", "deduction"),  # no end token, and the fence is not part of it
    ]


def test_parse_annotated_ignores_text_outside_labels():
    assert bench_fidelity.parse_annotated('```plaintext\n["end-section"]\n```') == []
    assert bench_fidelity.parse_annotated("no labels at all") == []


def test_align_sentences_finds_byte_spans_in_order():
    text = "Hmm, é.\nWait, no:\nit is 5.  Wait, no: it is 5.".encode()
    pairs = [("Hmm, é.", "a"), ("Wait, no: it is 5.", "b"), ("Wait, no: it is 5.", "c"), ("absent", "d")]
    spans, missing = bench_fidelity.align_sentences(text, pairs)
    assert missing == 1
    assert [label for _, _, label in spans] == ["a", "b", "c"]
    assert spans[0][:2] == (0, len("Hmm, é.".encode()))  # byte offsets, not characters
    assert text[spans[1][0]:spans[1][1]] == b"Wait, no:\nit is 5."  # a line break stands for a space
    assert spans[2][0] > spans[1][0]  # the second occurrence goes to the second sentence


def test_precision_recall_handles_empty_predictions():
    import numpy as np

    scores = bench_fidelity.precision_recall(np.array([False, False]), np.array([True, False]))
    assert scores["precision"] is None and scores["recall"] == 0.0 and scores["f1"] is None


def test_best_opening_rule_keeps_the_openings_that_maximise_f1():
    sentences = [("Wait, no.", "b"), ("Wait, no, 3.", "b"), ("Wait, is it?", "u"), ("So x.", "d"),
                 ("Hmm, no.", "b"), ("Hmm, ok.", "u"), ("Hmm, so.", "u"), ("Hmm, yes.", "u")]
    # "wait" alone: precision 2/3, recall 2/3; adding "hmm" brings recall to 1 at precision 3/7, a lower F1.
    assert bench_fidelity.best_opening_rule(sentences, "b", 1) == {("wait",)}
    # Two words tell the retractions apart exactly.
    assert bench_fidelity.best_opening_rule(sentences, "b", 2) == {("wait", "no"), ("hmm", "no")}


def test_opening_words_ceiling_scores_held_out_traces():
    annotations = ['["b"] Wait, no. ["end-section"] ["d"] So x. ["end-section"]'] * 6
    result = bench_fidelity.opening_words_ceiling(
        bench_fidelity.LabelledCorpus([b""] * 6, annotations), gold="b", ks=(1,), splits=3)
    # Every trace is alike, so the rule fitted on one half is exact on the other.
    assert result["k1"] == {"held_out_f1_mean": 1.0, "held_out_f1_max": 1.0, "fitted_on_all_f1": 1.0}
    assert (result["sentences"], result["support"]) == (12, 6)


@pytest.fixture(scope="module")
def data_folder() -> Path:
    folder = bench_fidelity.shared_data_dir()
    if not all((folder / f).is_file() for f in (bench_fidelity.PAIRED_FILE, bench_fidelity.LABELLED_FILE)):
        pytest.skip(f"paired and GPT-4o-labelled traces not available at {folder}")
    return folder


def in_unit_interval(x) -> bool:
    return x is None or 0.0 <= x <= 1.0


@pytest.mark.slow
@pytest.mark.realdata
def test_paired_teacher_numbers_are_well_formed(data_folder):
    results = bench_fidelity.run(data_folder, ["default"], ["paragraph", "sentence"], threads=1)
    assert results["data"][bench_fidelity.PAIRED_FILE] == 363 and results["data"]["prompts"] == 121
    for summary in results["paired"]["default"].values():
        for teacher, g in summary["greater_than_reference"].items():
            assert in_unit_interval(g["share_greater"]) and in_unit_interval(g["share_tied"])
            assert g["share_greater"] + g["share_tied"] <= 1.0
            assert g["compared"] + g["skipped_null_or_missing"] <= 121
        for teacher in bench_fidelity.TEACHERS:
            shares = summary["branch_step_share"][teacher]
            assert in_unit_interval(shares["pooled"]) and in_unit_interval(shares["mean_of_traces"])
            assert in_unit_interval(summary["p_branch_branch_pooled"][teacher]["p"])
        for ratio in summary["step_count_ratio"].values():
            assert ratio["mean"] > 0 and ratio["prompts"] <= 121
        # R1 and QwQ branch more than gpt-oss: the check the script exists to make.
        assert summary["greater_than_reference"]["r1"]["share_greater"] > 0.5


@pytest.mark.slow
@pytest.mark.realdata
def test_agreement_numbers_are_well_formed(data_folder):
    corpus = bench_fidelity.load_labelled(data_folder)
    patterns = bench_fidelity.cotsieve.PatternSet.load("default")
    result = bench_fidelity.agreement_summary(corpus, patterns, threads=1)
    counts = result["counts"]
    assert counts["traces"] == 137
    assert counts["sentences_aligned"] + counts["sentences_not_found"] == counts["sentences_parsed"]
    assert counts["sentences_not_found"] <= 0.01 * counts["sentences_parsed"]
    total = sum(sum(row.values()) for row in result["confusion"].values())
    assert total == counts["sentences_aligned"]
    assert set(result["confusion_rows"]) == set(patterns.categories) | {"progress"}
    for scores in result["scores"].values():
        for view in (scores["step"], scores["any_match"]):
            if view is not None:
                assert all(in_unit_interval(view[k]) for k in ("precision", "recall", "f1"))
                assert view["tp"] <= min(view["predicted"], view["support"])
