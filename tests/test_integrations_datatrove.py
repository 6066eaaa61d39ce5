"""datatrove: the filter and the annotator in a real ``LocalPipelineExecutor`` run."""

import doctest
import json

import pyarrow.parquet as pq
import pytest

import cotsieve
from cotsieve.testing import generate_traces

pytest.importorskip("datatrove")
dt = pytest.importorskip("cotsieve.integrations.datatrove")
from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.readers import JsonlReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402

RULES = ["branch_step_ratio <= 0.2", "repetition < 0.5"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Two JSONL shards of synthetic traces, and the CLI's metrics for them."""
    folder = tmp_path_factory.mktemp("datatrove")
    records = generate_traces(80, seed=9)
    (folder / "in").mkdir()
    for k in range(2):
        (folder / "in" / f"part-{k}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records[k::2]))
    summary = cotsieve.filter_corpus(str(folder / "in"), folder / "cli", [cotsieve.parse_rule(r) for r in RULES],
                                     cotsieve.CurateOptions(fields=("id",)))
    return folder, pq.read_table(summary.outputs["metrics"])


def read_jsonl(folder):
    return [json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()]


def test_pipeline_annotates_filters_and_matches_the_cli(shards):
    folder, metrics = shards
    pipeline = [
        JsonlReader(str(folder / "in"), glob_pattern="*.jsonl", compression=None),
        dt.CotsieveAnnotator(columns=["n_steps", "branch_step_ratio", "repetition"], prefix="cs_", batch_size=16),
        dt.CotsieveFilter(RULES, batch_size=16,
                          exclusion_writer=JsonlWriter(str(folder / "dropped"), "${rank}.jsonl", compression=None)),
        JsonlWriter(str(folder / "kept"), "${rank}.jsonl", compression=None),
    ]
    LocalPipelineExecutor(pipeline, tasks=2, workers=2, logging_dir=str(folder / "logs")).run()
    kept, dropped = read_jsonl(folder / "kept"), read_jsonl(folder / "dropped")
    cli_kept = set(metrics.filter(metrics.column("kept")).column("id").to_pylist())
    assert {d["id"] for d in kept} == cli_kept and len(kept) + len(dropped) == metrics.num_rows
    by_id = {row["id"]: row for row in metrics.to_pylist()}
    for doc in kept + dropped:
        row = by_id[doc["id"]]
        assert doc["metadata"]["cs_n_steps"] == row["n_steps"]
        assert doc["metadata"]["cs_branch_step_ratio"] == row["branch_step_ratio"]
    assert all(d["metadata"]["filter_reason"] == by_id[d["id"]]["drop_reason"] for d in dropped)


def test_percentile_rules_are_refused():
    with pytest.raises(ValueError, match="whole corpus"):
        dt.CotsieveFilter("drop-top 10% branch_step_ratio")


def test_docstring_examples_run():
    result = doctest.testmod(dt, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
