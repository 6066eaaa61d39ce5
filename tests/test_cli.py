"""The command line: commands, exit codes and messages."""

import gzip
import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

import cotsieve.cli.commands
from cotsieve.pipeline import filter_corpus
from cotsieve.rules import parse_rule
from cotsieve.cli import EXIT_BAD_INPUT, EXIT_CANNOT_WRITE, EXIT_INTERNAL, EXIT_OK, EXIT_OUTPUT_EXISTS, EXIT_USAGE, main

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


@pytest.mark.parametrize("module", ["cotsieve", "cotsieve.cli"])
def test_python_dash_m_runs_the_command(module):
    import cotsieve

    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == f"cotsieve {cotsieve.__version__}"
    done = subprocess.run([sys.executable, "-m", module, "scan"], capture_output=True, text=True, timeout=120)
    assert done.returncode == EXIT_USAGE and "input" in done.stderr


def test_a_run_that_rejects_every_record_fails_even_when_skipping(corpus, tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["analyze", str(corpus), "--out", str(out), "--text-field", "body", "--on-error", "skip", "--quiet"])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT and "every record was rejected" in captured.err and " ok" not in captured.out
    assert (out / "rejected.jsonl").exists()  # kept for inspection
    assert main(["analyze", str(corpus), "--out", str(tmp_path / "fine"), "--quiet"]) == EXIT_OK
    assert "measured" in capsys.readouterr().out


# ---------------------------------------------------------------- machine-readable output


def _reference_scan(texts, patterns):
    """Per category: matches, and traces with any, from the pure-Python matcher."""
    from reference import from_library, ref_count

    refs = [from_library(p) for p in patterns.patterns]
    matches = dict.fromkeys(patterns.categories, 0)
    holding = dict.fromkeys(patterns.categories, 0)
    for text in texts:
        per_category = dict.fromkeys(patterns.categories, 0)
        for ref, count in zip(refs, ref_count(text.encode(), refs)):
            per_category[ref.category] += count
        for category, count in per_category.items():
            matches[category] += count
            holding[category] += count > 0
    return matches, holding


def test_scan_json_and_csv_agree_with_a_reference_count(tmp_path, capsys):
    import csv
    import io

    import cotsieve

    path = tmp_path / "in.jsonl"
    texts = TEXTS * 10
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts) + '{"text": 3}\n')
    args = ["scan", str(path), "--quiet", "--on-error", "skip"]
    assert main([*args, "--json"]) == EXIT_OK
    printed = json.loads(capsys.readouterr().out)  # stdout holds the JSON alone
    matches, holding = _reference_scan(texts, cotsieve.PatternSet.load("default"))
    assert (printed["read"], printed["traces"], printed["rejected"]) == (31, 30, 1)
    assert printed["rejected_by_reason"] == {"field 'text' is a number, expected a string": 1}
    assert printed["record_bytes"] == path.stat().st_size
    rows = {r["category"]: r for r in printed["categories"]}
    assert {c: r["matches"] for c, r in rows.items()} == matches
    assert {c: r["traces_with_any"] for c, r in rows.items()} == holding
    assert all(r["share_of_traces"] == pytest.approx(holding[c] / 30) for c, r in rows.items())
    assert all(r["per_mb"] == pytest.approx(matches[c] / (path.stat().st_size / 1e6)) for c, r in rows.items())

    assert main([*args, "--csv"]) == EXIT_OK
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["category"] for r in table] == list(rows)
    assert [int(r["matches"]) for r in table] == [rows[r["category"]]["matches"] for r in table]
    assert [float(r["share_of_traces"]) for r in table] == [rows[r["category"]]["share_of_traces"] for r in table]
    with pytest.raises(SystemExit):
        main([*args, "--json", "--csv"])  # one shape at a time


@pytest.mark.parametrize("command", [["analyze"], ["filter", "--by", "branch_step_ratio", "--drop-top", "10%"]])
def test_summary_json_to_stdout_is_the_summary_and_nothing_else(corpus, tmp_path, capsys, command):
    out = tmp_path / "out"
    assert main([command[0], str(corpus), "--out", str(out), "--quiet", "--summary-json", "-", *command[1:]]) == EXIT_OK
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads((out / "summary.json").read_text())
    assert "cotsieve summary" in captured.err  # the screen moved to stderr

    copy = tmp_path / "copy.json"
    assert main([command[0], str(corpus), "--out", str(out), "--quiet", "--force", "--summary-json", str(copy),
                 *command[1:]]) == EXIT_OK
    assert json.loads(copy.read_text())["read"] == 30 and "cotsieve summary" in capsys.readouterr().out
    assert main([command[0], str(corpus), "--out", str(tmp_path / "again"), "--quiet", "--summary-json", str(copy),
                 *command[1:]]) == EXIT_OUTPUT_EXISTS  # the copy is an output like the others
    assert not (tmp_path / "again").exists()  # refused before the run, not after it


@pytest.mark.parametrize("where, code", [
    ("input", EXIT_OUTPUT_EXISTS),  # even with --force: the corpus is never overwritten
    ("folder", EXIT_OUTPUT_EXISTS),
    ("no-such-folder/s.json", EXIT_CANNOT_WRITE),
    ("", EXIT_USAGE),
    ("own", EXIT_USAGE),  # the run's own summary.json
])
def test_a_summary_json_path_the_run_must_not_write_is_refused_before_it(corpus, tmp_path, capsys, where, code):
    out = tmp_path / "out"
    (tmp_path / "folder").mkdir()
    path = {"input": str(corpus), "own": str(out / "summary.json")}.get(where, str(tmp_path / where) if where else "")
    before = corpus.read_bytes()
    assert main(["filter", str(corpus), "--out", str(out), "--where", "n_steps >= 0", "--quiet", "--force",
                 "--summary-json", path]) == code
    assert "summary-json" in capsys.readouterr().err
    assert not out.exists() and corpus.read_bytes() == before


def test_scan_fails_when_every_record_was_rejected(corpus, capsys):
    code = main(["scan", str(corpus), "--text-field", "body", "--on-error", "skip", "--json"])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT and "every record was rejected" in captured.err
    assert json.loads(captured.out)["rejected"] == 30  # the counts are still printed


def test_a_run_that_rejects_everything_still_prints_its_summary_json(corpus, tmp_path, capsys):
    code = main(["analyze", str(corpus), "--out", str(tmp_path / "o"), "--text-field", "body", "--on-error", "skip",
                 "--quiet", "--summary-json", "-"])
    captured = capsys.readouterr()
    assert code == EXIT_BAD_INPUT and json.loads(captured.out)["rejected"] == 30


# ---------------------------------------------------------------- small things


def test_scan_help_says_what_it_does_with_rejects(capsys):
    with pytest.raises(SystemExit):
        main(["scan", "--help"])
    scan_help = capsys.readouterr().out
    assert "rejected.jsonl" not in scan_help and "count it as rejected" in " ".join(scan_help.split())
    with pytest.raises(SystemExit):
        main(["analyze", "--help"])
    assert "rejected.jsonl" in capsys.readouterr().out


def test_analyze_calls_its_records_measured_not_kept(corpus, tmp_path, capsys):
    assert main(["analyze", str(corpus), "--out", str(tmp_path / "m"), "--quiet"]) == EXIT_OK
    screen = capsys.readouterr().out
    assert "30 measured + 0 rejected == 30 read" in screen and "kept" not in screen


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "IN", "--out", "OUT", "--patterns", "no-such-set"],
        ["analyze", "IN", "--out", "OUT", "--threads", "0"],
        ["analyze", "IN", "--out", "OUT", "--field", "record_id"],
        ["analyze", "IN", "--out", "OUT", "--text-field", "messages["],
        ["filter", "IN", "--out", "OUT"],
        ["filter", "IN", "--out", "OUT", "--where", "no_such_metric < 1"],
        ["filter", "IN", "--out", "OUT", "--by", "n_steps", "--drop-top", "10%", "--per", "nowhere"],
        ["filter", "IN", "--out", "OUT", "--where", "n_steps >= 1", "--compression-level", "99"],
        ["report", "IN", "--out", "OUT", "--top", "0"],
        ["report", "IN", "--out", "OUT", "--where", "nonsense"],
        ["demo", "--n", "0", "--out", "OUT"],
        ["demo", "--n", "-3", "--out", "OUT"],
        ["profile", "--model", "MISSING", "--data", "IN", "--out", "OUT"],
    ],
)
def test_a_usage_error_leaves_no_output_folder(corpus, tmp_path, args):
    out = tmp_path / "out"
    args = [{"IN": str(corpus), "OUT": str(out), "MISSING": str(tmp_path / "no-model")}.get(a, a) for a in args]
    try:
        code = main([*args, "--quiet"])
    except SystemExit as exit_info:
        code = exit_info.code
    assert code == EXIT_USAGE
    assert not out.exists()


def test_completion_scripts_offer_every_command_and_option(capsys):
    from cotsieve.cli import profile

    for shell in ("bash", "zsh", "fish"):
        assert main(["completion", shell]) == EXIT_OK
        script = capsys.readouterr().out
        for parser in (build_parser_for("filter"), profile.build_parser()):
            for flag in (f for action in parser._actions for f in action.option_strings if f.startswith("--")):
                assert (f"-l {flag[2:]}" if shell == "fish" else flag) in script, (shell, flag)


def build_parser_for(command):
    from cotsieve.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.choices and command in a.choices)
    return subparsers.choices[command]


BASH_COMPLETES = [
    (["cotsieve", "fi"], "filter"),
    (["cotsieve", "filter", "x.jsonl", "--drop-"], "--drop-bottom --drop-top"),
    (["cotsieve", "scan", "--on-error", ""], "fail skip"),
    (["cotsieve", "completion", ""], "bash fish zsh"),
    (["cotsieve", "profile", "--gguf"], "--gguf-file"),
    (["cotsieve", "scan", "--js"], "--json"),
]


@pytest.mark.parametrize(("words", "expected"), BASH_COMPLETES)
def test_the_bash_completion_completes(words, expected, tmp_path):
    script = tmp_path / "cotsieve.bash"
    result = subprocess.run([sys.executable, "-m", "cotsieve.cli", "completion", "bash"], capture_output=True,
                            text=True, check=True)
    script.write_text(result.stdout)
    line = " ".join(f"'{w}'" for w in words)
    probe = f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _cotsieve; " \
            'printf "%s\\n" "${COMPREPLY[@]}"'
    shown = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert " ".join(sorted(shown.split())) == expected


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_the_zsh_and_fish_scripts_parse(shell, tmp_path):
    import shutil

    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    script = tmp_path / f"cotsieve.{shell}"
    script.write_text(subprocess.run([sys.executable, "-m", "cotsieve.cli", "completion", shell],
                                     capture_output=True, text=True, check=True).stdout)
    check = [shell, "-n", str(script)] if shell == "zsh" else [shell, "--no-execute", str(script)]
    subprocess.run(check, check=True, timeout=60)


# ---------------------------------------------------------------- progress


def test_a_percentile_rule_names_both_passes(corpus, tmp_path, capsys):
    args = ["filter", str(corpus), "--by", "branch_step_ratio", "--drop-top", "10%"]
    assert main([*args, "--out", str(tmp_path / "a"), "--progress"]) == EXIT_OK
    lines = capsys.readouterr().err.splitlines()
    size = corpus.stat().st_size / 1e6
    measured = [line for line in lines if line.startswith("pass 1/2: measuring")]
    written = [line for line in lines if line.startswith("pass 2/2: writing kept")]
    assert measured and written and lines.index(measured[-1]) < lines.index(written[0])
    for last in (measured[-1], written[-1]):  # each pass ends having read all 30 records and the whole file
        assert f"30 traces  {size:,.1f} of {size:,.1f} MB (100%)" in last

    assert main([*args, "--out", str(tmp_path / "b"), "--progress", "--quiet"]) == EXIT_OK
    assert "pass" not in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "c")]) == EXIT_OK  # stderr is no terminal here
    assert "pass" not in capsys.readouterr().err
    assert main(["analyze", str(corpus), "--out", str(tmp_path / "d"), "--progress"]) == EXIT_OK
    assert capsys.readouterr().err.splitlines()[-1].startswith("measuring  30 traces")


def test_a_plain_callable_still_hears_of_the_measuring_pass_alone(corpus, tmp_path):
    calls = []
    summary = filter_corpus(str(corpus), tmp_path / "out", [parse_rule("drop-top 10% branch_step_ratio")],
                            progress=lambda records, nbytes: calls.append((records, nbytes)))
    assert sum(r for r, _ in calls) == summary.read == 30
    assert sum(b for _, b in calls) == summary.record_bytes


def test_demo_prints_its_summary_json(tmp_path, capsys):
    pytest.importorskip("cotsieve.testing")
    assert main(["demo", "--n", "60", "--out", str(tmp_path), "--quiet", "--summary-json", "-"]) == EXIT_OK
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads((tmp_path / "filtered" / "summary.json").read_text())
    assert "synth-branchy" in captured.err


def test_tie_flags_set_only_what_a_rule_leaves_at_its_default():
    from cotsieve.cli import build_parser
    from cotsieve.cli.parser import rules_from_args

    def rules(*flags):
        args = build_parser().parse_args(["filter", "in.jsonl", "--out", "o", *flags])
        return [(r.ties, r.tie_key) for r in rules_from_args(args)]

    own = ["--where", "drop-top 10% n_words tie-key id", "--where", "drop-top 5% n_steps ties keep"]
    assert rules(*own) == [("split", "id"), ("keep", "record_id")]
    assert rules(*own, "--ties", "keep") == [("keep", "id"), ("keep", "record_id")]
    assert rules(*own, "--tie-key", "uid") == [("split", "id"), ("keep", "uid")]
