"""Hugging Face ``datasets``: real in-memory datasets through ``map`` and ``filter``."""

import doctest
import json

import pyarrow.parquet as pq
import pytest

import cotsieve
from cotsieve.testing import generate_traces

datasets = pytest.importorskip("datasets")
hf = pytest.importorskip("cotsieve.integrations.hf")

RECORDS = [{"id": r["id"], "text": r["text"], "source": r["source"]} for r in generate_traces(60, seed=5)]
RECORDS[3]["text"] = "<think>Hmm.\n\nWait, no. Alternatively, 3.</think>The answer is 3."


@pytest.fixture(scope="module")
def dataset():
    return datasets.Dataset.from_list(RECORDS)


@pytest.fixture(scope="module")
def cli_metrics(tmp_path_factory):
    """The metrics ``cotsieve analyze`` writes for the same records."""
    folder = tmp_path_factory.mktemp("hf")
    corpus = folder / "c.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    cotsieve.analyze_corpus(str(corpus), folder / "out", cotsieve.CurateOptions(fields=("id",)))
    return pq.read_table(folder / "out" / "metrics.parquet")


def test_map_adds_the_columns_the_cli_writes(dataset, cli_metrics):
    mapped = dataset.map(hf.cotsieve_map(), batched=True, batch_size=16)
    metric_names = cotsieve.analyze([]).column_names
    assert mapped.column_names == ["id", "text", "source", *metric_names]
    assert list(mapped["id"]) == cli_metrics.column("id").to_pylist()
    for name in metric_names:
        assert list(mapped[name]) == cli_metrics.column(name).to_pylist(), name


def test_map_in_arrow_format_with_prefix_and_two_processes(dataset, cli_metrics):
    fn = hf.cotsieve_map(columns=["n_steps", "branch_step_ratio"], prefix="cs_")
    mapped = dataset.with_format("arrow").map(fn, batched=True, batch_size=16, num_proc=2)
    assert mapped.column_names == ["id", "text", "source", "cs_n_steps", "cs_branch_step_ratio"]
    table = mapped.with_format(None).data.table
    assert table.column("cs_branch_step_ratio").to_pylist() == cli_metrics.column("branch_step_ratio").to_pylist()


def test_filter_keeps_what_the_rules_keep(dataset, cli_metrics):
    rules = ["branch_step_ratio <= 0.2", "repetition < 0.5"]
    kept = dataset.filter(hf.cotsieve_filter(rules), batched=True, batch_size=16)
    decision = cotsieve.RuleSet([cotsieve.parse_rule(r) for r in rules]).decide(cli_metrics)
    expected = [i for i, drop in zip(cli_metrics.column("id").to_pylist(), decision.drop) if not drop]
    assert list(kept["id"]) == expected and 0 < len(expected) < len(RECORDS)


def test_percentile_rules_and_bad_columns_are_refused(dataset):
    with pytest.raises(ValueError, match="whole corpus"):
        hf.cotsieve_filter("drop-top 10% branch_step_ratio")
    with pytest.raises(ValueError, match="unknown metric"):
        hf.cotsieve_filter("no_such_metric < 1")
    with pytest.raises(KeyError, match="no text column 'body'"):
        dataset.map(hf.cotsieve_map(text_column="body"), batched=True)


def test_docstring_examples_run():
    result = doctest.testmod(hf, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
