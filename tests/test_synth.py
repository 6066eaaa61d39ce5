"""Tests for the synthetic trace generator and the shipped sample corpus."""

from __future__ import annotations

import doctest
import gzip
import importlib.resources
import json
import re
from collections import Counter

import pytest

from cotsieve import testing
from cotsieve.testing import generate_traces, write_jsonl

FIELDS = {"id", "source", "problem_id", "problem", "text", "answer"}
SOURCES = {"synth-convergent", "synth-branchy"}
BRANCH_OPENER = re.compile(r"^(?:Alternatively|Wait|Perhaps|Hmm|Another approach)\b")
BOXED = re.compile(r"\\boxed\{(-?\d+)\}")
CANDIDATE = re.compile(r"(?:\\boxed\{|the answer is )(-?\d+)")


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return generate_traces(200, seed=11)


def by_source(records: list[dict], source: str) -> list[dict]:
    return [r for r in records if r["source"] == source]


def paragraphs(text: str) -> list[str]:
    return [p for p in text.split("\n\n") if p.strip()]


def is_loop(record: dict) -> bool:
    return record["source"] == "synth-branchy" and not BOXED.search(record["text"])


def longest_verbatim_run(text: str) -> int:
    """Most consecutive repeats of one block of 1 to 3 paragraphs."""
    paras = paragraphs(text)
    best = 1
    for width in (1, 2, 3):
        for start in range(len(paras) - width):
            block = paras[start:start + width]
            repeats = 1
            while paras[start + repeats * width:start + (repeats + 1) * width] == block:
                repeats += 1
            best = max(best, repeats)
    return best


def test_same_seed_same_records():
    assert generate_traces(40, seed=3) == generate_traces(40, seed=3)


def test_different_seed_different_records():
    assert generate_traces(40, seed=3) != generate_traces(40, seed=4)


def test_records_have_all_fields(corpus):
    for record in corpus:
        assert set(record) == FIELDS
        assert all(isinstance(value, str) and value for value in record.values())
        assert record["source"] in SOURCES
        assert re.fullmatch(r"p\d{4,}", record["problem_id"])
        assert re.fullmatch(r"-?\d+", record["answer"])
    assert [r["id"] for r in corpus] == [f"synth-{i:06d}" for i in range(1, len(corpus) + 1)]


def test_branch_heavy_share_sets_the_mix(corpus):
    counts = Counter(r["source"] for r in corpus)
    assert counts == {"synth-convergent": 140, "synth-branchy": 60}
    assert {r["source"] for r in generate_traces(5, branch_heavy_share=0.0)} == {
        "synth-convergent"}
    assert {r["source"] for r in generate_traces(5, branch_heavy_share=1.0)} == {
        "synth-branchy"}
    assert generate_traces(0) == []


@pytest.mark.parametrize("kwargs", [{"n": -1}, {"n": 5, "branch_heavy_share": 1.5},
                                    {"n": 5, "loop_share": -0.1}])
def test_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        generate_traces(**kwargs)


def test_sources_share_problems(corpus):
    problems = {source: {r["problem_id"]: r for r in by_source(corpus, source)}
                for source in SOURCES}
    shared = problems["synth-convergent"].keys() & problems["synth-branchy"].keys()
    assert len(shared) == 60
    for problem_id in shared:
        convergent = problems["synth-convergent"][problem_id]
        branchy = problems["synth-branchy"][problem_id]
        assert convergent["problem"] == branchy["problem"]
        assert convergent["answer"] == branchy["answer"]


def test_branchy_traces_open_far_more_paragraphs_with_markers(corpus):
    def openers(record):
        return sum(bool(BRANCH_OPENER.match(p)) for p in paragraphs(record["text"]))

    convergent = [openers(r) for r in by_source(corpus, "synth-convergent")]
    branchy = [openers(r) for r in by_source(corpus, "synth-branchy")]
    assert max(convergent) == 0
    assert min(branchy) >= 3
    assert sum(branchy) / len(branchy) >= 10


def test_convergent_traces_end_with_the_boxed_answer(corpus):
    for record in by_source(corpus, "synth-convergent"):
        assert record["text"].endswith("So the final answer is \\boxed{%s}." % record["answer"])
        assert BOXED.findall(record["text"]) == [record["answer"]]


def test_branchy_traces_overthink_with_several_candidates(corpus):
    finished = [r for r in by_source(corpus, "synth-branchy") if not is_loop(r)]
    assert finished
    for record in finished:
        text = record["text"]
        assert text.endswith("\\boxed{%s}." % record["answer"])
        first_answer = BOXED.search(text).end()
        assert len(text) - first_answer > 0.1 * len(text), "nothing after the first answer"
        assert len(set(CANDIDATE.findall(text))) >= 2
        assert "double-check" in text or "verify" in text


def test_some_branchy_traces_loop_verbatim(corpus):
    loops = [r for r in corpus if is_loop(r)]
    assert 1 <= len(loops) <= 15
    for record in loops:
        assert longest_verbatim_run(record["text"]) >= 8
        assert "final answer" not in record["text"]
    finished = [r for r in corpus if not is_loop(r)]
    assert max(longest_verbatim_run(r["text"]) for r in finished) < 4


def test_loop_share_zero_means_no_loops():
    records = generate_traces(60, seed=5, branch_heavy_share=1.0, loop_share=0.0)
    assert not any(is_loop(r) for r in records)


def test_lengths_vary_from_about_1k_to_20k(corpus):
    lengths = sorted(len(r["text"]) for r in corpus)
    assert 500 <= lengths[0] <= 1500
    assert 10_000 <= lengths[-1] <= 22_000


def test_answers_are_correct_for_linear_problems(corpus):
    pattern = re.compile(r"multiplied by (\d+) and then increased by (\d+), the result is (\d+)")
    checked = 0
    for record in corpus:
        match = pattern.search(record["problem"])
        if match:
            a, b, c = map(int, match.groups())
            assert a * int(record["answer"]) + b == c
            checked += 1
    assert checked


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_write_jsonl_round_trips(tmp_path, suffix):
    records = generate_traces(6, seed=2)
    path = tmp_path / f"traces{suffix}"
    write_jsonl(records, path)
    opener = gzip.open if suffix.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as lines:
        assert [json.loads(line) for line in lines] == records


def test_gzip_output_is_reproducible(tmp_path):
    records = generate_traces(6, seed=2)
    write_jsonl(records, tmp_path / "a.jsonl.gz")
    write_jsonl(records, tmp_path / "b.jsonl.gz")
    assert (tmp_path / "a.jsonl.gz").read_bytes() == (tmp_path / "b.jsonl.gz").read_bytes()


def test_sample_corpus_matches_a_fresh_regeneration(tmp_path):
    shipped = importlib.resources.files("cotsieve") / "data" / "sample_traces.jsonl.gz"
    fresh = tmp_path / "sample_traces.jsonl.gz"
    testing.write_sample(fresh)
    # Compare the decompressed JSON lines: the compressed bytes also depend on
    # the zlib build Python links against.
    assert gzip.decompress(shipped.read_bytes()) == gzip.decompress(fresh.read_bytes())
    assert len(shipped.read_bytes()) < 1_000_000
    records = [json.loads(line) for line in gzip.decompress(shipped.read_bytes()).splitlines()]
    assert len(records) == testing.SAMPLE_SIZE


def test_docstring_examples_run():
    failures, tried = doctest.testmod(testing, optionflags=doctest.ELLIPSIS)
    assert tried and not failures
