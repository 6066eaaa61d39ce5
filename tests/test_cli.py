"""The command line: commands, exit codes and messages."""

import gzip
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import cotsieve.cli.commands
from cotsieve.cli import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, EXIT_OUTPUT_EXISTS, EXIT_USAGE, main

TEXTS = ["Let x = 1.\n\nAlternatively, x = 2.", "x = 1.\n\nSo x = 1.", "Hmm.\n\nWait, no.\n\nPerhaps 4."]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "in.jsonl.gz"
    lines = [json.dumps({"text": t, "source": "s" + str(i % 2)}) for i, t in enumerate(TEXTS * 10)]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


def test_help_shows_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--drop-top 10%" in out and "exit codes" in out


def test_filter_the_papers_remedy(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["filter", str(corpus), "--out", str(out), "--by", "branch_step_ratio", "--drop-top", "10%",
                 "--per", "source", "--quiet", "--threads", "1"])
    assert code == EXIT_OK
    assert sorted(p.name for p in out.iterdir()) == ["kept.jsonl.gz", "metrics.parquet", "rejected.jsonl",
                                                     "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["balanced"] and summary["read"] == 30
    assert "kept +" in capsys.readouterr().out
    assert main(["filter", str(corpus), "--out", str(out), "--where", "n_steps >= 1", "--quiet"]) == EXIT_OUTPUT_EXISTS
    assert main(["filter", str(corpus), "--out", str(out), "--where", "n_steps >= 1", "--quiet", "--force"]) == EXIT_OK


def test_analyze_and_scan(corpus, tmp_path, capsys):
    assert main(["analyze", str(corpus), "--out", str(tmp_path / "m"), "--quiet", "--field", "source"]) == EXIT_OK
    assert (tmp_path / "m" / "metrics.parquet").exists() and not (tmp_path / "m" / "kept.jsonl.gz").exists()
    assert main(["scan", str(corpus), "--quiet", "--patterns", "default"]) == EXIT_OK
    assert "branch" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args",
    [
        ["filter", "IN", "--out", "OUT", "--quiet"],  # no rule
        ["filter", "IN", "--out", "OUT", "--by", "branch_step_ratio"],  # --by without a share
        ["filter", "IN", "--out", "OUT", "--where", "nonsense"],
        ["filter", "IN", "--out", "OUT", "--where", "no_such_metric < 1", "--quiet"],
        ["filter", "IN", "--out", "OUT", "--by", "n_words", "--drop-top", "200%"],
        ["analyze", "IN", "--out", "OUT", "--patterns", "no-such-set"],
        ["analyze", "IN", "--out", "OUT", "--steps", "chapters"],
        ["analyze", "IN"],  # --out is required
    ],
)
def test_usage_errors_exit_2(corpus, tmp_path, args):
    args = [str(corpus) if a == "IN" else str(tmp_path / "out") if a == "OUT" else a for a in args]
    try:
        code = main(args)
    except SystemExit as exit_info:
        code = exit_info.code
    assert code == EXIT_USAGE


def test_bad_input_exit_codes(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": 12}\n')
    assert main(["filter", str(bad), "--out", str(tmp_path / "o1"), "--where", "n_steps >= 1", "--quiet"]) \
        == EXIT_BAD_INPUT
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert main(["filter", str(bad), "--out", str(tmp_path / "o2"), "--where", "n_steps >= 1", "--quiet",
                 "--on-error", "skip"]) == EXIT_OK
    assert main(["scan", str(tmp_path / "missing.jsonl"), "--quiet"]) == EXIT_BAD_INPUT


def test_demo(tmp_path, capsys):
    pytest.importorskip("cotsieve.testing")
    assert main(["demo", "--n", "60", "--out", str(tmp_path), "--quiet"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "synth-branchy" in out and "60 read" in out


def test_the_command_line_spares_pyarrow_its_pandas_import(corpus, tmp_path):
    """pyarrow would import pandas (when installed) at its first conversion,
    inside the run; the command line lets it find none, yet the outputs are
    the same and pandas still works after."""
    pytest.importorskip("pandas")
    out = tmp_path / "out"
    code = f"""
import sys
from cotsieve.cli import main
assert main(["filter", {str(corpus)!r}, "--out", {str(out)!r}, "--by", "branch_step_ratio", "--drop-top", "10%",
             "--quiet"]) == 0
print("pandas imported:", "pandas" in sys.modules)
import pandas, pyarrow.parquet as pq
print("rows:", len(pq.read_table({str(out / "metrics.parquet")!r}).to_pandas()))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pandas imported: False" in result.stdout and "rows: 30" in result.stdout
    again = tmp_path / "again"
    assert main(["filter", str(corpus), "--out", str(again), "--by", "branch_step_ratio", "--drop-top", "10%",
                 "--quiet"]) == EXIT_OK  # in this process pandas is imported: the usual path
    for name in ("kept.jsonl.gz", "rejected.jsonl"):
        assert (out / name).read_bytes() == (again / name).read_bytes()
    assert pq.read_table(out / "metrics.parquet").equals(pq.read_table(again / "metrics.parquet"))


def test_a_saved_dataset_anywhere_in_the_inputs_keeps_pyarrow_s_pandas_support(tmp_path, corpus):
    from cotsieve.cli import build_parser, reads_saved_dataset

    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "state.json").write_text('{"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}')
    parse = build_parser().parse_args
    assert not reads_saved_dataset(parse(["filter", str(corpus), "--out", "o", "--where", "n_steps >= 1"]))
    assert reads_saved_dataset(parse(["analyze", str(corpus), str(saved), "--out", "o"]))
    assert reads_saved_dataset(parse(["report", "o", "--out", "r", "--corpus", str(saved)]))
    assert not reads_saved_dataset(parse(["demo"]))


def test_a_rule_field_no_record_has_is_a_usage_error(corpus, tmp_path, capsys):
    code = main(["filter", str(corpus), "--out", str(tmp_path / "o"), "--by", "n_steps", "--drop-top", "10%",
                 "--per", "nowhere", "--field", "nowhere", "--quiet"])
    assert code == EXIT_USAGE
    assert "nowhere" in capsys.readouterr().err


def test_a_bug_is_an_internal_error_with_its_traceback(corpus, monkeypatch, capsys):
    def buggy_scan(args):
        return {}["missing key"]

    monkeypatch.setitem(cotsieve.cli.commands.COMMANDS, "scan", buggy_scan)
    assert main(["scan", str(corpus), "--quiet"]) == EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" in err and "internal error" in err


def test_cotsieve_profile_cli_is_a_deprecated_alias():
    sys.modules.pop("cotsieve.profile_cli", None)  # import it afresh, so that it warns here
    with pytest.warns(DeprecationWarning, match="cotsieve.cli.profile"):
        import cotsieve.profile_cli as alias
    from cotsieve.cli import profile

    assert alias.main is profile.main and alias.build_parser is profile.build_parser


def test_a_percentile_cut_takes_the_share_asked_and_says_so_per_group(corpus, tmp_path, capsys):
    """The corpus repeats three texts, so branch_step_ratio ties across every cutoff."""
    base = ["filter", str(corpus), "--by", "branch_step_ratio", "--drop-top", "10%", "--per", "source", "--quiet"]
    kept_sets = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}"
        assert main([*base, "--out", str(out), "--threads", threads]) == EXIT_OK
        summary = json.loads((out / "summary.json").read_text())
        groups = {g["group"]: g for g in summary["rules"][0]["groups"]}
        assert {g: (d["records"], d["asked_count"], d["dropped"]) for g, d in groups.items()} == \
            {"s0": (15, 2, 2), "s1": (15, 2, 2)}  # round(1.5) == 2 of each 15
        assert all(d["at_cutoff"] >= 1 for d in groups.values())
        metrics = pq.read_table(out / "metrics.parquet")
        kept_sets.append(sorted(r for r, k in zip(metrics.column("record_id").to_pylist(),
                                                  metrics.column("kept").to_pylist()) if k))
    assert kept_sets[0] == kept_sets[1]
    screen = capsys.readouterr()
    assert "at cutoff" in screen.out and "warning" not in screen.err

    out = tmp_path / "keep"
    assert main([*base, "--out", str(out), "--ties", "keep"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rules"][0]["rule"].endswith("ties keep")
    dropped = {g["group"]: g["dropped"] for g in summary["rules"][0]["groups"]}
    assert dropped == {"s0": 0, "s1": 0}  # every record at the top shares the cutoff value
    assert "2 group(s) lost a share other than the one asked" in capsys.readouterr().err


def test_keeping_ties_warns_where_a_group_loses_less_than_asked(tmp_path, capsys):
    path = tmp_path / "tied.jsonl"
    texts = ["Alternatively, x.\n\nPerhaps y."] * 10 + ["x = 1.\n\nSo x = 1."] * 10
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    args = ["filter", str(path), "--by", "branch_step_ratio", "--drop-top", "10%", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "keep"), "--ties", "keep"]) == EXIT_OK
    assert "lost a share other than the one asked" in capsys.readouterr().err  # the 10 tied at the top stay
    assert main([*args, "--out", str(tmp_path / "split")]) == EXIT_OK
    assert json.loads((tmp_path / "split" / "summary.json").read_text())["dropped"] == 2


def test_version_and_a_hint_for_a_misspelt_metric(corpus, tmp_path, capsys):
    import cotsieve

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"cotsieve {cotsieve.__version__}"
    code = main(["filter", str(corpus), "--out", str(tmp_path / "o"), "--where", "brnch_step_ratio <= 0.3", "--quiet"])
    assert code == EXIT_USAGE and "did you mean 'branch_step_ratio'" in capsys.readouterr().err


def test_a_run_that_rejects_every_record_fails_even_when_skipping(corpus, tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["analyze", str(corpus), "--out", str(out), "--text-field", "body", "--on-error", "skip", "--quiet"])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT and "every record was rejected" in captured.err and " ok" not in captured.out
    assert (out / "rejected.jsonl").exists()  # kept for inspection
    assert main(["analyze", str(corpus), "--out", str(tmp_path / "fine"), "--quiet"]) == EXIT_OK
    assert "measured" in capsys.readouterr().out
