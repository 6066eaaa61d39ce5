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
    assert re.search(r'<mark class="marker cat-backtrack">等一下</mark>', raw)


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
    assert index.count('href="traces/') == 9  # three tables of three
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
    view = browser(index.parent / "traces" / "trace-0.html", "--dump-dom")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in view.stdout and console_messages(view.stderr) == []
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
