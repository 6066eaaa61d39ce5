"""PatternSet construction, the TOML loader and engine selection."""

import pytest

import cotsieve
from cotsieve import Pattern, PatternSet


def write(tmp_path, body):
    path = tmp_path / "set.toml"
    path.write_text(body, encoding="utf-8")
    return path


def test_every_shipped_set_loads_and_compiles():
    names = PatternSet.available()
    assert {"default", "nowait", "reasonscore", "oat-zero", "paper-2604.01702"} <= set(names)
    for name in names:
        ps = PatternSet.load(name)
        assert len(ps) > 0 and ps.name == name
        assert ps.categories[:5] == cotsieve.BUILTIN_CATEGORIES


def test_unknown_shipped_name_suggests_the_closest():
    with pytest.raises(ValueError, match="did you mean 'nowait'"):
        PatternSet.load("nowiat")


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.toml"):
        PatternSet.load(tmp_path / "nope.toml")


def test_toml_defaults_apply_and_patterns_override(tmp_path):
    ps = PatternSet.load(write(tmp_path, """
name = "t"
[defaults]
boundary = "none"
[[pattern]]
text = "re"
category = "verify"
[[pattern]]
text = "wait"
category = "backtrack"
boundary = "word"
"""))
    assert [p.boundary for p in ps] == ["none", "word"]
    assert ps.count(["recheck awaited wait"]).tolist() == [[1, 1]]


def test_declared_extra_category_gets_a_column(tmp_path):
    ps = PatternSet.load(write(tmp_path, """
extra_categories = ["pivot"]
[[pattern]]
text = "now"
category = "pivot"
"""))
    table = ps.count_categories(["Now, now."])
    assert table.column_names == list(cotsieve.BUILTIN_CATEGORIES) + ["pivot"]
    assert table.column("pivot").to_pylist() == [2]


@pytest.mark.parametrize(
    "body, message",
    [
        ('[[pattern]]\ntext = "x"\ncategory = "branch"\ncolour = "red"\n', r"unknown key\(s\) \['colour'\] in pattern #0"),
        ('bogus = 1\n', r"unknown key\(s\) \['bogus'\] in top level"),
        ('[[pattern]]\ntext = "x"\ncategory = "brnach"\n', "did you mean 'branch'"),
        ('[[pattern]]\ntext = ""\ncategory = "branch"\n', "pattern #0: pattern text is empty"),
        ('[[pattern]]\ntext = "x"\ncategory = "branch"\nanchor = "linestart"\n', "unknown anchor 'linestart'"),
        ('[[pattern]\n', "invalid TOML"),
        ('pattern = "x"\n', "array of tables"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(ValueError, match=message) as err:
        PatternSet.load(path)
    assert str(path) in str(err.value)


def test_patterns_may_be_given_as_tuples_and_dicts():
    ps = PatternSet([("wait", "backtrack"), {"text": "hmm", "category": "hesitate", "boundary": "none"}])
    assert [p.text for p in ps] == ["wait", "hmm"]
    with pytest.raises(TypeError, match="expected a Pattern"):
        PatternSet([42])


@pytest.mark.parametrize("extra", [["branch"], ["x", "x"], ["Bad"], ["progress"]])
def test_bad_extra_categories(extra):
    with pytest.raises(ValueError):
        PatternSet([("wait", "backtrack")], extra_categories=extra)


def test_threads_must_be_positive():
    ps = PatternSet([("wait", "backtrack")])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            ps.count(["wait"], threads=bad)


def test_a_single_text_is_not_mistaken_for_a_batch():
    with pytest.raises(TypeError, match="wrap it in a list"):
        PatternSet([("wait", "backtrack")]).count("wait")


def test_engines_agree_and_report_themselves():
    texts = PatternSet.load("default").patterns  # every marker, in context
    corpus = [f"Step {i}. {p.text} then more.\n\n- {p.text}: yes" for i, p in enumerate(texts)]
    dfa = PatternSet(texts, engine="dfa")
    assert dfa.engine == "dfa"
    auto = PatternSet(texts)
    assert auto.engine in ("dfa", "prefilter")
    assert (dfa.count(corpus) == auto.count(corpus)).all()
    with pytest.raises(ValueError, match="unknown engine"):
        PatternSet(texts, engine="fast")


@pytest.mark.skipif(not cotsieve._core.prefilter_available(), reason="CPU lacks AVX2 and AVX-512 VBMI")
def test_auto_prefers_the_prefilter_for_small_sets_and_the_dfa_for_large_ones():
    assert PatternSet([("wait", "backtrack")]).engine == "prefilter"
    big = PatternSet([(f"word{i}", "branch") for i in range(40)])
    assert big.engine == "dfa"


def test_repr_names_the_set():
    assert "'nowait'" in repr(PatternSet.load("nowait"))
