"""datatrove: the filter and the annotator in a real ``LocalPipelineExecutor`` run."""

import doctest
import json

import pyarrow.parquet as pq
import pytest

import cotsieve
from cotsieve.testing import generate_traces

pytest.importorskip("datatrove")
dt = pytest.importorskip("cotsieve.integrations.datatrove")
from datatrove.data import Document  # noqa: E402
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


def documents(records):
    return [Document(text=r["text"], id=r["id"]) for r in records]


def test_each_rule_counts_in_a_stat_of_its_own(shards):
    folder, metrics = shards
    summary = json.loads((folder / "cli" / "summary.json").read_text())
    step = dt.CotsieveFilter(RULES, batch_size=16)
    kept = {d.id for d in step.run(documents(generate_traces(80, seed=9)))}
    assert kept == set(metrics.filter(metrics.column("kept")).column("id").to_pylist())
    reasons = metrics.column("drop_reason").to_pylist()
    assert any(r and ";" in r for r in reasons), "no record dropped by both rules: the check below would be empty"
    stats = step.stats.to_dict()["stats"]
    assert {k: v for k, v in stats.items() if k.startswith("dropped_")} == \
        {f"dropped_{rule}": n for rule, n in summary["dropped_by_rule"].items()}
    assert stats["dropped"] == summary["dropped"]


class CountingMetrics:
    """Stands for the filter's TraceMetrics, counting the texts it is asked to measure."""

    def __init__(self, metrics):
        self.metrics, self.texts = metrics, 0

    def __call__(self, texts):
        self.texts += len(texts)
        return self.metrics(texts)


def annotated(records, **options):
    return list(dt.CotsieveAnnotator(batch_size=16, **options).run(documents(records)))


@pytest.mark.parametrize("prefix", ["", "cs_"])
def test_the_filter_reuses_the_annotators_metrics(prefix):
    records = generate_traces(80, seed=9)
    fresh = dt.CotsieveFilter(RULES, batch_size=16)
    expected = [d.id for d in fresh.run(documents(records))]
    reusing = dt.CotsieveFilter(RULES, batch_size=16, metadata_prefix=prefix)
    reusing.metrics = CountingMetrics(reusing.metrics)
    kept = list(reusing.run(annotated(records, columns=["branch_step_ratio", "repetition"], prefix=prefix)))
    assert reusing.metrics.texts == 0
    assert [d.id for d in kept] == expected and 0 < len(expected) < len(records)


def test_stored_values_decide_and_documents_without_them_are_measured():
    records = generate_traces(40, seed=9)
    docs = annotated(records[:30], columns=["branch_step_ratio", "repetition"]) + documents(records[30:])
    first_kept = next(d for d in dt.CotsieveFilter(RULES).run(annotated(records[:30])))
    docs[[d.id for d in docs].index(first_kept.id)].metadata["branch_step_ratio"] = 0.9  # a stored value is used
    step = dt.CotsieveFilter(RULES, batch_size=16, metadata_prefix="")
    step.metrics = CountingMetrics(step.metrics)
    kept = {d.id for d in step.run(docs)}
    assert step.metrics.texts == 10
    fresh = {d.id for d in dt.CotsieveFilter(RULES).run(documents(records))}
    assert kept == fresh - {first_kept.id}
    # Metrics stored under another prefix, or reuse not asked for: every text is measured.
    for options in ({"metadata_prefix": "cs_"}, {"metadata_prefix": None}, {}):
        step = dt.CotsieveFilter(RULES, batch_size=16, **options)
        step.metrics = CountingMetrics(step.metrics)
        assert {d.id for d in step.run(annotated(records))} == fresh and step.metrics.texts == 40


def test_a_record_field_named_like_a_metric_is_not_taken_for_one():
    doc = Document(text="word " * 500, id="long", metadata={"n_words": 12})
    assert list(dt.CotsieveFilter("n_words < 100").run([doc])) == []


def test_percentile_rules_are_refused():
    with pytest.raises(ValueError, match="whole corpus"):
        dt.CotsieveFilter("drop-top 10% branch_step_ratio")


def test_docstring_examples_run():
    result = doctest.testmod(dt, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
