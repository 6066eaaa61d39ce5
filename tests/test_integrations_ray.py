"""Ray Data on a local two-CPU instance: the same metrics and the same kept records as the CLI."""

import doctest
import importlib
import json
import sys

import pyarrow.parquet as pq
import pytest

from cotsieve.cli import EXIT_OK, main
from cotsieve.testing import generate_traces

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
cray = pytest.importorskip("cotsieve.integrations.ray")

RULES = ["drop-top 10% branch_step_ratio per source", "repetition < 0.5", "drop-top 5% n_words"]


@pytest.fixture(scope="module")
def cluster(ray_instance):
    ray.data.DataContext.get_current().enable_progress_bars = False


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two JSONL shards, and the CLI's filter of them: (input folder, CLI output folder)."""
    folder = tmp_path_factory.mktemp("ray")
    records = generate_traces(200, seed=11)
    (folder / "in").mkdir()
    for k in range(2):
        (folder / "in" / f"part-{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[k::2]))
    args = ["filter", str(folder / "in"), "--out", str(folder / "cli"), "--field", "id", "--tie-key", "id", "--quiet"]
    assert main(args + [a for rule in RULES for a in ("--rule", rule)]) == EXIT_OK
    return folder / "in", folder / "cli"


def test_filter_dataset_keeps_what_the_cli_keeps(cluster, corpus):
    inputs, cli = corpus
    # Two actors of half a CPU each leave the reading task a CPU of the two.
    result = cray.filter_dataset(ray.data.read_json(str(inputs)), RULES, id_column="id", concurrency=2, num_cpus=0.5)
    cli_kept = [json.loads(line) for line in (cli / "kept.jsonl").read_text().splitlines()]
    ray_kept = result.kept.take_all()
    assert sorted(json.dumps(r, sort_keys=True) for r in ray_kept) == \
        sorted(json.dumps(r, sort_keys=True) for r in cli_kept)
    metrics = pq.read_table(cli / "metrics.parquet")
    assert 0 < len(cli_kept) < metrics.num_rows
    expected = dict(zip(metrics.column("id").to_pylist(), metrics.column("drop_reason").to_pylist()))
    got = dict(zip(result.decisions.column("id").to_pylist(), result.decisions.column("drop_reason").to_pylist()))
    assert got == expected


def test_metrics_actors_match_the_cli(cluster, corpus):
    inputs, cli = corpus
    columns = ["n_steps", "branch_step_ratio", "p_branch_branch", "repetition"]
    measured = ray.data.read_json(str(inputs)).map_batches(
        cray.CotsieveMetrics, fn_constructor_kwargs={"columns": columns, "keep": ["id"]}, batch_format="pyarrow",
        concurrency=2, num_cpus=0.5).to_arrow_refs()
    got = {row["id"]: row for table in ray.get(measured) for row in table.to_pylist()}
    expected = pq.read_table(cli / "metrics.parquet", columns=["id", *columns]).to_pylist()
    assert len(got) == len(expected) and all(got[row["id"]] == row for row in expected)


def test_repeated_ids_are_refused(cluster):
    ds = ray.data.from_items([{"id": 1, "text": "a"}, {"id": 1, "text": "b"}])
    with pytest.raises(ValueError, match="repeat"):
        cray.filter_dataset(ds, "n_steps >= 1", id_column="id")


def test_cotsieve_ray_is_a_deprecated_alias_of_the_helpers():
    sys.modules.pop("cotsieve.ray", None)  # import it afresh, so that it warns here
    with pytest.warns(DeprecationWarning, match="cotsieve.integrations.ray"):
        alias = importlib.import_module("cotsieve.ray")

    assert alias.filter_dataset is cray.filter_dataset and alias.CotsieveMetrics is cray.CotsieveMetrics


def test_docstring_examples_run(cluster):
    result = doctest.testmod(cray, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
