"""Ray Data on a local two-CPU instance: the same metrics and the same kept records as the CLI.
tests/test_integrations_ray_cluster.py runs the helpers on a cluster of two nodes."""

import doctest
import importlib
import json
import logging
import sys
import warnings

import pyarrow as pa
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
    with warnings.catch_warnings():
        # Ray Data's DataContext sets its own deprecated fields when it is made
        # (Ray 2.60): a warning of Ray's, whatever the caller passes.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="ray.data.context")
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
    result = cray.filter_dataset(ray.data.read_json(str(inputs)), RULES, id_column="id",
                                 compute=ray.data.ActorPoolStrategy(size=2), num_cpus=0.5)
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
        compute=ray.data.ActorPoolStrategy(size=2), num_cpus=0.5).to_arrow_refs()
    got = {row["id"]: row for table in ray.get(measured) for row in table.to_pylist()}
    expected = pq.read_table(cli / "metrics.parquet", columns=["id", *columns]).to_pylist()
    assert len(got) == len(expected) and all(got[row["id"]] == row for row in expected)


def test_the_instance_runs_on_its_own_loopback_address(cluster):
    # Given 127.0.0.1, Ray would talk over the machine's network address.
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.2"}


class RayLogs(logging.Handler):
    """The warnings Ray Data logs: its deprecations go to its logger, not to ``warnings``."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def ray_data_logs():
    handler = RayLogs()
    logging.getLogger("ray.data").addHandler(handler)
    try:
        yield handler.messages
    finally:
        logging.getLogger("ray.data").removeHandler(handler)


@pytest.mark.filterwarnings("error::DeprecationWarning", "error::FutureWarning", "error::PendingDeprecationWarning")
def test_the_helpers_use_no_deprecated_ray_argument(cluster, corpus, ray_data_logs):
    inputs, _ = corpus
    ds = ray.data.read_json(str(inputs))
    result = cray.filter_dataset(ds, "drop-top 10% n_words", id_column="id",
                                 compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.5)
    assert result.kept.count() == 180
    cray.filter_dataset(ds.limit(20), "n_steps >= 1", id_column="id", num_cpus=0.5).kept.count()
    assert not [m for m in ray_data_logs if "deprecated" in m.lower()], ray_data_logs
    ds.map_batches(cray.CotsieveMetrics, batch_format="pyarrow", concurrency=1)  # what the helpers passed before
    assert [m for m in ray_data_logs if "``concurrency`` is deprecated" in m]


def test_concurrency_still_works_and_warns(cluster):
    ds = ray.data.from_items([{"id": i, "text": "Wait.\n\n" * i} for i in range(4)])
    with pytest.warns(DeprecationWarning, match=r"compute=ray.data.ActorPoolStrategy\(size=1\)"):
        result = cray.filter_dataset(ds, "n_steps <= 2", id_column="id", concurrency=1, num_cpus=0.5)
    assert sorted(row["id"] for row in result.kept.take_all()) == [0, 1, 2]
    with pytest.raises(ValueError, match="not both"):
        cray.filter_dataset(ds, "n_steps <= 2", id_column="id", concurrency=1,
                            compute=ray.data.ActorPoolStrategy(size=1))


def test_ids_repeated_across_models_are_refused_with_an_example_and_the_fix(cluster):
    records = [{"id": f"p{k}", "source": model, "text": "Wait.\n\n" * (k + len(model))}
               for k in range(3) for model in ("r1", "oss")]
    ds = ray.data.from_items(records)
    with pytest.raises(ValueError, match=r"'p0' is the id of 2 records \(source 'oss', 'r1'\), and 3 id\(s\) repeat"
                                         r".*id_column='uid'") as refused:
        cray.filter_dataset(ds, "drop-top 34% n_steps per source", id_column="id", num_cpus=0.5)
    fix = str(refused.value).split("one: ", 1)[1].split(", then", 1)[0]
    fixed = eval(fix.removeprefix("ds = "), {"ds": ds})  # the message's own code makes the ids unique
    result = cray.filter_dataset(fixed, "drop-top 34% n_steps per source", id_column="uid", num_cpus=0.5)
    assert sorted(r["uid"] for r in result.kept.take_all()) == ["oss/p0", "oss/p1", "r1/p0", "r1/p1"]
    # The message is the same whichever order Ray's blocks brought the records in.
    table = pa.Table.from_pylist(records).select(["id", "source"])
    messages = set()
    for order in (table, table.take(list(range(table.num_rows))[::-1])):
        with pytest.raises(ValueError) as again:
            cray._check_unique_ids(order.sort_by("id"), "id", ["source"])
        messages.add(str(again.value))
    assert len(messages) == 1
    nulls = ray.data.from_items([{"id": None, "text": "a"}, {"id": 2, "text": "b"}])
    with pytest.raises(ValueError, match="1 record\\(s\\) have a null 'id'"):
        cray.filter_dataset(nulls, "n_steps >= 1", id_column="id", num_cpus=0.5)


def test_chat_records_are_read_as_the_cli_reads_them(cluster, corpus):
    inputs, cli = corpus
    records = [json.loads(line) for path in sorted(inputs.glob("*.jsonl")) for line in path.read_text().splitlines()]
    chats = [{"id": r["id"], "messages": [{"role": "user", "content": r["problem"]},
                                          {"role": "assistant", "content": r["text"]}]} for r in records]
    measured = ray.data.from_items(chats).map_batches(
        cray.CotsieveMetrics, fn_constructor_kwargs={"text_column": "messages", "columns": ["n_steps"], "keep": ["id"]},
        batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=1), num_cpus=0.5)
    got = {row["id"]: row["n_steps"] for row in measured.take_all()}
    metrics = pq.read_table(cli / "metrics.parquet", columns=["id", "n_steps"])
    assert got == dict(zip(metrics.column("id").to_pylist(), metrics.column("n_steps").to_pylist()))


def test_cotsieve_ray_is_a_deprecated_alias_of_the_helpers():
    sys.modules.pop("cotsieve.ray", None)  # import it afresh, so that it warns here
    with pytest.warns(DeprecationWarning, match="cotsieve.integrations.ray"):
        alias = importlib.import_module("cotsieve.ray")

    assert alias.filter_dataset is cray.filter_dataset and alias.CotsieveMetrics is cray.CotsieveMetrics


def test_docstring_examples_run(cluster):
    result = doctest.testmod(cray, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
