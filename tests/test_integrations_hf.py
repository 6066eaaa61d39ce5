"""Hugging Face ``datasets``: real in-memory datasets through ``map`` and ``filter``."""

import doctest
import json

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import cotsieve
from cotsieve.cli import EXIT_OK, main
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


# ---------------------------------------------------------------- chat records and filter_dataset

def chat(record, k):
    """A chat record holding the trace in its last assistant turn, as chat exports do."""
    turns = [{"role": "user", "content": record["problem"]}, {"role": "assistant", "content": record["text"]}]
    if k % 3 == 0:  # an earlier assistant turn and a system turn, which the CLI passes over
        turns = [{"role": "system", "content": "Be brief."}, {"role": "assistant", "content": "Wait, hmm."},
                 {"role": "user", "content": "Again."}, *turns[1:]]
    return {"id": record["id"], "source": record["source"], "messages": turns}


CHATS = [chat(r, k) for k, r in enumerate(generate_traces(120, seed=13))]
# Traces that tie: n_steps takes few values, so a percentile cut falls among equal values.
TIE_RULES = ["drop-top 30% n_steps per source", "repetition < 0.5"]


@pytest.fixture(scope="module")
def chat_cli(tmp_path_factory):
    """``cotsieve filter --text-field messages --tie-key id`` on the chat records: its metrics.parquet."""
    folder = tmp_path_factory.mktemp("chat")
    (folder / "chats.jsonl").write_text("".join(json.dumps(r) + "\n" for r in CHATS))
    args = ["filter", str(folder / "chats.jsonl"), "--out", str(folder / "out"), "--text-field", "messages",
            "--field", "id", "--tie-key", "id", "--quiet"]
    assert main(args + [a for rule in TIE_RULES for a in ("--rule", rule)]) == EXIT_OK
    return pq.read_table(folder / "out" / "metrics.parquet")


def test_map_reads_chat_records_as_the_cli_does(chat_cli):
    ds = datasets.Dataset.from_list(CHATS)
    columns = ["n_steps", "branch_step_ratio", "repetition", "n_words"]
    for fmt in (None, "arrow"):
        mapped = ds.with_format(fmt).map(hf.cotsieve_map(text_column="messages", columns=columns), batched=True,
                                         batch_size=32).with_format(None)
        for name in columns:
            assert list(mapped[name]) == chat_cli.column(name).to_pylist(), (fmt, name)


def test_a_path_into_the_chat_reads_that_turn():
    ds = datasets.Dataset.from_list(CHATS[:6])
    last = ds.map(hf.cotsieve_map(text_column="messages[-1].content", columns=["n_words"]), batched=True)
    plain = datasets.Dataset.from_dict({"text": [r["messages"][-1]["content"] for r in CHATS[:6]]})
    assert list(last["n_words"]) == list(plain.map(hf.cotsieve_map(columns=["n_words"]), batched=True)["n_words"])


def test_a_chat_without_an_assistant_turn_is_named():
    records = CHATS[:4] + [{"id": "q", "source": "s", "messages": [{"role": "user", "content": "Hi?"}]}]
    ds = datasets.Dataset.from_list(records)
    with pytest.raises(cotsieve.BadInputError, match="row 4 of the batch: no assistant turn in 'messages'"):
        ds.map(hf.cotsieve_map(text_column="messages"), batched=True)
    with pytest.raises(cotsieve.BadInputError, match="<dataset>#4: no assistant turn"):
        hf.filter_dataset(ds, "drop-top 10% n_steps", text_column="messages")


def test_filter_dataset_keeps_what_the_cli_keeps_ties_included(chat_cli):
    cli_kept = chat_cli.filter(chat_cli.column("kept")).column("id").to_pylist()
    # The percentile cut splits a tie: records on the cutoff are kept and dropped.
    on_cutoff = chat_cli.filter(pc.equal(chat_cli.column("n_steps"), _cutoff(chat_cli)))
    assert len(set(on_cutoff.column("kept").to_pylist())) == 2
    kept = hf.filter_dataset(datasets.Dataset.from_list(CHATS), TIE_RULES, text_column="messages", tie_key="id")
    assert isinstance(kept, datasets.Dataset) and kept.column_names == ["id", "source", "messages"]
    assert list(kept["id"]) == cli_kept and 0 < len(cli_kept) < len(CHATS)


def _cutoff(metrics):
    """The n_steps value at which the CLI's percentile rule split a group (the lowest dropped)."""
    dropped = metrics.filter(pc.invert(metrics.column("kept")))
    on_steps = dropped.filter(pc.match_substring(dropped.column("drop_reason"), "n_steps"))
    for source in set(on_steps.column("source").to_pylist()):
        group = metrics.filter(pc.equal(metrics.column("source"), source))
        lowest = pc.min(on_steps.filter(pc.equal(on_steps.column("source"), source)).column("n_steps"))
        tied = group.filter(pc.equal(group.column("n_steps"), lowest))
        if len(set(tied.column("kept").to_pylist())) == 2:
            return lowest
    pytest.fail("no percentile cut fell inside a tie; the fixture needs records that tie")


def test_filter_dataset_without_a_tie_key_matches_filter_corpus_on_the_dataset(tmp_path):
    ds = datasets.Dataset.from_list(CHATS)
    rules = [cotsieve.parse_rule(r) for r in TIE_RULES]
    cotsieve.filter_corpus(ds, tmp_path, rules, cotsieve.CurateOptions(text=cotsieve.TextSpec("messages"),
                                                                       fields=("id",)))
    metrics = pq.read_table(tmp_path / "metrics.parquet")
    expected = metrics.filter(metrics.column("kept")).column("id").to_pylist()
    assert list(hf.filter_dataset(ds, TIE_RULES, text_column="messages")["id"]) == expected


def test_filter_dataset_reads_the_rows_a_selection_shows():
    ds = datasets.Dataset.from_list(CHATS)
    order = list(range(len(CHATS)))[::-2]
    fresh = datasets.Dataset.from_list([CHATS[i] for i in order])
    kept = hf.filter_dataset(ds.select(order), TIE_RULES, text_column="messages", tie_key="id")
    assert list(kept["id"]) == list(hf.filter_dataset(fresh, TIE_RULES, text_column="messages", tie_key="id")["id"])
    assert 0 < len(kept) < len(order)


def test_filter_dataset_refuses_a_missing_group_field(dataset):
    with pytest.raises(KeyError, match="no column 'model'"):
        hf.filter_dataset(dataset, "drop-top 10% n_steps per model")
