"""cotsieve.Analyzer, PatternSet.resolve and the typed native boundary."""

from __future__ import annotations

import pickle
import threading

import pyarrow as pa
import pytest

cotsieve = pytest.importorskip("cotsieve")
from cotsieve import Analyzer, Pattern, PatternSet, _core  # noqa: E402
from cotsieve.analysis import STEP_MODES  # noqa: E402
from cotsieve.patterns import ANCHORS, ENGINES  # noqa: E402

TEXTS = [
    "Let x = 2.\n\nAlternatively, x = 3.\n\nWait, check: the answer is \\boxed{2}.",
    "Hmm. Hmm. Hmm.\n\nHmm. Hmm. Hmm.",
    "",
    b"So \xff bytes.\nWait.",
]
EXTRA = PatternSet([Pattern("hmm", "hesitate"), Pattern("recall", "recall")], extra_categories=["recall"])


@pytest.mark.parametrize("steps", STEP_MODES)
@pytest.mark.parametrize("patterns", ["default", EXTRA])
def test_analyzer_gives_what_the_conveniences_give(patterns, steps):
    analyzer = Analyzer(patterns, steps)
    assert analyzer.analyze(TEXTS).equals(cotsieve.analyze(TEXTS, patterns, steps))
    assert analyzer.segments(TEXTS).equals(cotsieve.segments(TEXTS, patterns, steps))
    assert analyzer.segment(TEXTS[0]) == cotsieve.segment(TEXTS[0], patterns, steps)


@pytest.mark.parametrize("patterns", ["default", EXTRA])
def test_schema_is_the_table_schema_without_analyzing(patterns):
    analyzer = Analyzer(patterns)
    assert analyzer.analyze(TEXTS).schema == analyzer.schema
    assert analyzer.analyze([]).schema == analyzer.schema
    assert len(analyzer.schema) == len(set(analyzer.schema.names))


def test_schema_follows_the_native_metric_list():
    categories = Analyzer(EXTRA).patterns.categories
    names = Analyzer(EXTRA).schema.names
    assert names[:3] == ["n_bytes", "n_words", "n_steps"]
    assert [f"count_{c}" for c in categories] == [n for n in names if n.startswith("count_")]
    assert sum(n.startswith("p_") for n in names) == (len(categories) + 1) ** 2
    assert [f.name for f in _core.METRIC_FIELDS][-1] == names[-1] == "tail_after_first_answer"


def test_analyzer_is_read_only():
    analyzer = Analyzer()
    with pytest.raises(AttributeError):
        analyzer.steps = "line"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        analyzer.schema = pa.schema([])  # type: ignore[misc]


def test_analyzer_pickles_to_an_equal_analyzer():
    analyzer = Analyzer(EXTRA, "sentence")
    copy = pickle.loads(pickle.dumps(analyzer))
    assert copy.steps == "sentence" and copy.patterns.categories == EXTRA.categories
    assert copy.analyze(TEXTS).equals(analyzer.analyze(TEXTS))


def test_threads_share_one_analyzer():
    analyzer = Analyzer("default", "marker")
    expected = analyzer.analyze(TEXTS * 50, threads=1)
    results: list[pa.Table] = []

    def work() -> None:
        results.append(analyzer.analyze(TEXTS * 50, threads=2))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r.equals(expected) for r in results)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown step mode"):
        Analyzer(steps="word")
    with pytest.raises(TypeError, match="patterns must be"):
        Analyzer(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text must be str or bytes"):
        Analyzer().segment(42)  # type: ignore[arg-type]


def test_resolve_is_the_one_resolver(tmp_path):
    assert PatternSet.resolve("default") is PatternSet.resolve("default")
    assert PatternSet.resolve(EXTRA) is EXTRA
    path = tmp_path / "mine.toml"
    path.write_text('[[pattern]]\ntext = "hmm"\ncategory = "hesitate"\n')
    assert [p.text for p in PatternSet.resolve(path)] == ["hmm"]
    assert [p.text for p in PatternSet.resolve(str(path))] == ["hmm"]
    with pytest.raises(ValueError, match="no pattern set named"):
        PatternSet.resolve("defualt")
    with pytest.raises(TypeError):
        PatternSet.resolve(None)  # type: ignore[arg-type]


def test_pattern_set_pickles():
    ps = PatternSet([("hmm", "hesitate"), ("recall", "recall")], extra_categories=["recall"], name="x", engine="dfa")
    copy = pickle.loads(pickle.dumps(ps))
    assert (copy.patterns, copy.categories, copy.name, copy.engine) == (ps.patterns, ps.categories, "x", "dfa")


# --- the native boundary ---


def test_native_enums_cover_the_python_choices():
    assert [a.upper() for a in ANCHORS] == list(_core.Anchor.__members__)
    assert [e.upper() for e in ENGINES] == list(_core.Engine.__members__)
    assert [m.upper() for m in STEP_MODES] == list(_core.StepMode.__members__)


def test_pattern_spec_holds_its_fields():
    spec = _core.PatternSpec(b"wait", 1, case_sensitive=True, boundary_end=False, anchor=_core.Anchor.LINE_START)
    assert (spec.text, spec.category, spec.case_sensitive, spec.boundary_start, spec.boundary_end, spec.anchor) == (
        b"wait", 1, True, True, False, _core.Anchor.LINE_START)


def test_a_plain_int_is_no_anchor_or_engine():
    with pytest.raises(TypeError):
        _core.PatternSpec(b"wait", 0, anchor=7)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _core.Scanner([_core.PatternSpec(b"wait", 0)], 5)  # type: ignore[arg-type]

