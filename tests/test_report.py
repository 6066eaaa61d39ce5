"""The visual report: its content, its CLI, and the page in a headless browser."""

import doctest
import gzip
import json
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import cotsieve
from cotsieve.cli import EXIT_OK, EXIT_OUTPUT_EXISTS, EXIT_USAGE, main
from cotsieve.rules import DropShare, RuleSet, length_baseline
from cotsieve.testing import generate_traces

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VOID_TAGS = {"meta", "img", "br", "hr", "link", "input"}
# A trace that must rank first by branch_step_ratio, with HTML to escape,
# invalid UTF-8, a two-byte and a three-byte character, and a CJK marker.
HOSTILE_LINE = (b'{"text": "Alternatively, <script>alert(1)</script> \xff\xfe caf\xc3\xa9.\\n\\n'
                b'Perhaps \xe7\xad\x89\xe4\xb8\x80\xe4\xb8\x8b a & b.", "source": "synth-branchy"}\n')


@pytest.fixture(scope="module")
def filtered(tmp_path_factory):
    """A synthetic corpus filtered with ``--report``: (corpus path, output folder)."""
    pytest.importorskip("matplotlib")
    folder = tmp_path_factory.mktemp("report")
    corpus = folder / "corpus.jsonl.gz"
    lines = b"".join(json.dumps(r).encode() + b"\n" for r in generate_traces(120, seed=3))
    corpus.write_bytes(gzip.compress(HOSTILE_LINE + lines))
    out = folder / "out"
    code = main(["filter", str(corpus), "--out", str(out), "--field", "source", "--by", "branch_step_ratio",
                 "--drop-top", "10%", "--per", "source", "--where", "repetition < 0.9", "--report", "--quiet",
                 "--threads", "1"])
    assert code == EXIT_OK
    return corpus, out


class TagChecker(HTMLParser):
    """Collects links, images and the tag stack; fails on a tag closed out of order."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.hrefs, self.images, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "a":
            self.hrefs.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parsed(path: Path) -> TagChecker:
    checker = TagChecker()
    checker.feed(path.read_text("utf-8"))
    checker.close()
    assert checker.stack == [], f"unclosed tags in {path}: {checker.stack}"
    return checker


def test_pages_parse_and_links_resolve(filtered):
    _, out = filtered
    index = out / "report" / "index.html"
    page = parsed(index)
    trace_links = [h for h in page.hrefs if h.startswith("traces/")]
    assert len(trace_links) >= 20
    for href in page.hrefs:
        assert (index.parent / href).is_file(), href
    for href in set(trace_links):
        view = parsed(index.parent / href)
        assert view.hrefs[0] == "../index.html"


def test_every_figure_is_a_png(filtered):
    _, out = filtered
    images = parsed(out / "report" / "index.html").images
    expected = {f"figures/dist_{m}.png" for m in
                ("branch_step_ratio", "markers_per_1k_words", "repetition", "n_steps", "tail_after_first_answer",
                 "n_words")} | {"figures/transitions.png", "figures/overlap.png"}
    assert set(images) == expected
    for src in images:
        assert (out / "report" / src).read_bytes()[:8] == PNG_MAGIC, src


def test_the_hostile_trace_is_escaped_and_decoded(filtered):
    corpus, out = filtered
    view = out / "report" / "traces" / "trace-0.html"  # the first record ranks first
    raw = view.read_text("utf-8")
    assert "<script>alert" not in raw and "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    text = "".join(parsed(view).text)
    assert "café" in text and "等一下" in text and "\ufffd\ufffd" in text and "a & b" in text
    assert f"{corpus}:1" in text
    assert re.search(r'<mark class="marker cat-hesitate">等一下</mark>', raw)


def test_report_numbers_come_from_the_rules(filtered):
    _, out = filtered
    from cotsieve.report import cut_lines, overlap

    table = pq.read_table(out / "metrics.parquet")
    rules = RuleSet([DropShare("branch_step_ratio", 0.1, per="source")])
    result = overlap(rules, table, "source")
    assert np.array_equal(result.by_branch, rules.rules[0].drops(table))
    assert np.array_equal(result.by_length, length_baseline(0.1, per="source").drops(table))
    either = result.both + result.length_only + result.branch_only
    assert result.jaccard == pytest.approx(result.both / either)
    assert result.both + result.length_only + result.branch_only + result.neither == table.num_rows
    cutoffs = rules.rules[0].details(table)["cutoffs"]
    assert {(g, v) for _, g, v in cut_lines(rules, table, "branch_step_ratio")} == set(cutoffs.items())
    index = (out / "report" / "index.html").read_text("utf-8")
    assert f"<td>removed by length</td><td>{result.both}</td><td>{result.length_only}</td>" in index


class Tables(HTMLParser):
    """The text of every table cell, as tables of rows."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append("".join(self.cell))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def tables_of(html_text: str) -> list:
    parser = Tables()
    parser.feed(html_text)
    return parser.tables


def share_cell(count: int, total: int) -> str:
    return f"{count:,} ({count / total:.1%})"


def test_what_the_cut_removed_matches_the_metrics(filtered):
    _, out = filtered
    table = pq.read_table(out / "metrics.parquet").to_pandas()
    page = (out / "report" / "index.html").read_text("utf-8")
    assert page.index("What the cut removed") < page.index("<h2>Distributions")
    removed_table = tables_of(page)[0]
    rules = ["drop-top 10% branch_step_ratio per source", "repetition < 0.9"]
    assert removed_table[0] == ["source", "records", "kept", "dropped", *(f"dropped by {r}" for r in rules)]
    by_rule = {r: table["drop_reason"].fillna("").str.split("; ").apply(lambda names, r=r: r in names) for r in rules}
    expected = {}
    for name, rows in [*table.groupby("source").groups.items(), ("all", table.index)]:
        part = table.loc[rows]
        n, kept = len(part), int(part["kept"].sum())
        expected[name] = [f"{n:,}", share_cell(kept, n), share_cell(n - kept, n),
                          *(share_cell(int(by_rule[r].loc[rows].sum()), n) for r in rules)]
    shown = {row[0]: row[1:] for row in removed_table[1:]}
    assert shown == expected  # synth-* sources: few groups, none pooled


def test_traces_beside_each_cutoff(filtered):
    _, out = filtered
    from cotsieve.report import Groups, near_cutoff, percentile_cuts, removed, rules_from_summary

    table = pq.read_table(out / "metrics.parquet")
    rules = rules_from_summary(out)
    cuts = percentile_cuts(out, rules, table, from_summary=True)
    assert cuts[0][1] == rules.rules[0].details(table)["cutoffs"]
    result = removed(table, rules)
    near = near_cutoff(table, cuts, Groups.of(table, "source"), result, "source")
    values = table.column("branch_step_ratio").to_numpy()
    sources = table.column("source").to_pylist()
    assert near and {item.group for item in near} == {s for s, c in cuts[0][1].items() if c is not None}
    for item in near:
        assert sources[item.row] == item.group and values[item.row] == item.value
        # top side: dropped at or above the cutoff, kept at or below (a tie at the cutoff may go either way)
        assert item.value >= item.cutoff if item.dropped else item.value <= item.cutoff
    page = (out / "report" / "index.html").read_text("utf-8")
    linked = {int(m) for m in re.findall(r'href="traces/trace-(\d+)\.html"', page)}
    assert {item.row for item in near} <= linked


def test_trace_pages_shade_counted_steps_and_show_carried_fields(filtered):
    _, out = filtered
    pages = [p.read_text("utf-8") for p in (out / "report" / "traces").glob("*.html")]
    assert any('flags: branch' in p and re.search(r'class="step label-\w+ counted" title="[^"]*flags: [^"]*branch', p)
               for p in pages)
    facts = tables_of(pages[0])[0]
    assert {"source", "record_id", "file", "branch_step_ratio"} <= {row[0] for row in facts[1:]}


def test_markers_never_split_a_character():
    from cotsieve.report import highlighted_html

    ps = cotsieve.PatternSet([cotsieve.Pattern(b"\xa9", "branch", boundary="none"), ("wait", "backtrack")])
    text = "Wait: caf© costs 3.\n\nok ".encode() + b"\xff"
    shown = highlighted_html(text, cotsieve.segments([text], ps), ps.matches([text]))
    assert '<mark class="marker cat-branch">©</mark>' in shown
    assert shown.count("\ufffd") == 1 and shown.endswith("ok \ufffd</span>")


def test_report_from_a_table_without_corpus(tmp_path):
    pytest.importorskip("matplotlib")
    from cotsieve.report import write_report

    table = cotsieve.analyze([r["text"] for r in generate_traces(30, seed=1)])
    index = write_report(table, tmp_path, cuts=["branch_step_ratio <= 0.3"])
    assert "Trace views are missing" in index.read_text("utf-8")
    with pytest.raises(cotsieve.pipeline.OutputExistsError):
        write_report(table, tmp_path)


def test_cli_report_reads_the_summary_rules(filtered, tmp_path, capsys):
    _, out = filtered
    assert main(["report", str(out), "--out", str(tmp_path / "r"), "--top", "3"]) == EXIT_OK
    index = (tmp_path / "r" / "index.html").read_text("utf-8")
    assert "drop-top 10% branch_step_ratio per source" in index and "repetition &lt; 0.9" in index
    extremes = index[index.index("<h2>Highest"):]
    assert extremes.count('href="traces/') == 9  # three tables of three
    assert main(["report", str(out), "--out", str(tmp_path / "r")]) == EXIT_OUTPUT_EXISTS
    assert main(["report", str(out), "--out", str(tmp_path / "r"), "--top", "0"]) == EXIT_USAGE


def test_without_matplotlib_the_cli_says_what_to_install(tmp_path, monkeypatch, capsys):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"text": "Hmm.\n\nWait."}) + "\n")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" raise ImportError
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r")]) == EXIT_USAGE
    assert main(["filter", str(corpus), "--out", str(tmp_path / "f"), "--where", "n_steps >= 1", "--report",
                 "--quiet"]) == EXIT_USAGE
    assert "pip install 'cotsieve[report]'" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()  # refused before the run


def test_docstring_examples_run():
    pytest.importorskip("matplotlib")
    import cotsieve.report

    result = doctest.testmod(cotsieve.report, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ---------------------------------------------------------------- in a browser


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def test_the_page_in_a_browser(filtered, browser, tmp_path):
    _, out = filtered
    index = out / "report" / "index.html"
    dom = browser(index, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-images-ok="true"' in dom.stdout
    assert console_messages(dom.stderr) == []
    assert 'data-overflow-ok="true"' in browser(index, "--dump-dom", "--window-size=1200,3000").stdout
    view = browser(index.parent / "traces" / "trace-0.html", "--dump-dom", "--window-size=1200,3000")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in view.stdout and console_messages(view.stderr) == []
    assert 'data-overflow-ok="true"' in view.stdout
    shot = tmp_path / "report.png"
    browser(index, f"--screenshot={shot}", "--window-size=1200,4000", "--hide-scrollbars")
    assert shot.read_bytes()[:8] == PNG_MAGIC and shot.stat().st_size > 50_000


def test_the_browser_check_notices_a_missing_figure(filtered, browser, tmp_path):
    _, out = filtered
    broken = tmp_path / "broken"
    shutil.copytree(out / "report", broken)
    (broken / "figures" / "overlap.png").unlink()
    dom = browser(broken / "index.html", "--dump-dom")
    assert 'data-images-ok="false"' in dom.stdout


# ---------------------------------------------------------------- many groups


@pytest.fixture(scope="module")
def many_groups(tmp_path_factory):
    """A report of 600 traces in 300 path-like groups of Zipf-like sizes: (metrics table, index, progress lines)."""
    pytest.importorskip("matplotlib")
    from cotsieve.report import write_report

    table = cotsieve.analyze([r["text"] for r in generate_traces(600, seed=5)])
    codes = np.arange(600) % 300
    codes[:200] = np.arange(200) % 5  # five large groups among many of one or two traces
    names = [f"data/shards/a-rather-long-folder-name/run-{c}/model-{c}/traces-{c:04d}.jsonl.gz" for c in codes]
    table = table.append_column("source", pa.array(names)).append_column("model", pa.array(["m-1"] * 600))
    lines = []
    index = write_report(table, tmp_path_factory.mktemp("many") / "r", group="source", progress=lines.append,
                         cuts=["drop-top 10% branch_step_ratio per source", "n_words < 5000"])
    return table, index, lines


def test_many_groups_are_pooled(many_groups):
    table, index, lines = many_groups
    page = index.read_text("utf-8")
    removed_table = tables_of(page)[0]
    groups = [row[0] for row in removed_table[1:]]
    assert len(groups) == 8 + 2 and groups[-2:] == ["other (292 groups)", "all"]
    assert all(len(name) <= 32 and name.startswith("…/") for name in groups[:5])
    assert 'title="data/shards/a-rather-long-folder-name/run-0/model-0/traces-0000.jsonl.gz"' in page
    assert "all 300 groups" in page  # every full name, folded
    assert sum(int(row[1].replace(",", "")) for row in removed_table[1:-1]) == table.num_rows
    header = page[:page.index("<h2>")]
    assert "300 groups" in header and header.count('<span title="data/') == 8
    assert lines[-1] == "report: figures 8/8" and "report: figures 1/8" in lines


def test_a_heavy_tail_is_clipped_and_said():
    pytest.importorskip("matplotlib")
    from cotsieve.report import clip_limit

    values = np.append(np.arange(1000.0), 1e9)
    assert clip_limit(values, "n_words") == pytest.approx(np.percentile(values, 99))
    assert clip_limit(values, "repetition") is None  # bounded metrics are drawn whole


def test_many_groups_fit_the_page_in_a_browser(many_groups, browser):
    _, index, _ = many_groups
    dom = browser(index, "--dump-dom", "--window-size=1200,3000")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-images-ok="true"' in dom.stdout and 'data-overflow-ok="true"' in dom.stdout
    assert console_messages(dom.stderr) == []


def test_the_overflow_check_notices_a_wide_element(many_groups, browser, tmp_path):
    _, index, _ = many_groups
    wide = tmp_path / "wide"
    shutil.copytree(index.parent, wide)
    page = (wide / "index.html").read_text("utf-8")
    (wide / "index.html").write_text(page.replace("<h2>", '<div style="width:3000px">x</div><h2>', 1), "utf-8")
    dom = browser(wide / "index.html", "--dump-dom", "--window-size=1200,3000")
    assert 'data-overflow-ok="false"' in dom.stdout


# ---------------------------------------------------------------- user text is only text

CRAFTED_COLUMN = "count_x</style><script>document.title='pwned'</script><style>"


def crafted_report(tmp_path):
    """A report of metrics whose column names and group names are hostile text."""
    from cotsieve.report import write_report

    table = cotsieve.analyze([r["text"] for r in generate_traces(40, seed=2)])
    groups = ["$\\undefinedcmd$", "price $5 and $6", "<b>bold</b>", "plain"] * 10
    table = table.append_column("source", pa.array(groups)).append_column(CRAFTED_COLUMN, pa.array([1] * 40))
    return write_report(table, tmp_path / "r", group="source", cuts=["branch_step_ratio <= 0.3"])


def test_names_from_the_data_never_become_markup(tmp_path):
    pytest.importorskip("matplotlib")
    page = crafted_report(tmp_path).read_text("utf-8")
    assert "<script>document.title" not in page and "</style><script>" not in page
    assert "price $5 and $6" in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_the_crafted_report_runs_no_script_in_a_browser(tmp_path, browser):
    pytest.importorskip("matplotlib")
    index = crafted_report(tmp_path)
    dom = browser(index, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<title>pwned</title>" not in dom.stdout and 'data-images-ok="true"' in dom.stdout


def test_a_trace_page_draws_a_bounded_part_and_says_so():
    pytest.importorskip("matplotlib")
    from cotsieve.report import MAX_DRAWN_STEPS, trace_page

    data = b"Wait, x.\n\n" * 50_000
    page = trace_page(cotsieve.analyze([data]), 0, data, cotsieve.Analyzer(), None)
    assert f"first {MAX_DRAWN_STEPS:,} of 50,000 steps" in page
    drawn = MAX_DRAWN_STEPS * len(b"Wait, x.\n\n")
    assert len(page) < 30 * drawn and len(page) < len(data)  # grows with the drawn part, not the trace
