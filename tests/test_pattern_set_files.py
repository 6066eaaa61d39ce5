"""Schema checks for the shipped pattern-set TOML files.

The files are read directly with ``tomllib`` (``tomli`` before Python 3.11),
independently of the package's loader, so a mistake in a data file is caught
even if the loader would accept it.
"""

from __future__ import annotations

import importlib.resources
import sys

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BUILTIN_CATEGORIES = {"branch", "backtrack", "verify", "hesitate", "conclude"}
MODES = {
    "case": {"insensitive", "sensitive"},
    "boundary": {"word", "start", "end", "none"},
    "anchor": {"any", "line_start", "sentence_start"},
}
LIBRARY_DEFAULTS = {"case": "insensitive", "boundary": "word", "anchor": "any"}
TOP_LEVEL_KEYS = {"name", "description", "source", "extra_categories", "defaults", "pattern"}
PATTERN_KEYS = {"text", "category", *MODES}
SHIPPED = {"default", "paper-2604.01702", "nowait", "reasonscore", "oat-zero"}


def pattern_set_dir():
    return importlib.resources.files("cotsieve") / "pattern_sets"


def set_file(name: str):
    return pattern_set_dir() / f"{name}.toml"


def load(name: str) -> dict:
    return tomllib.loads(set_file(name).read_text(encoding="utf-8"))


def effective_patterns(name: str) -> list[dict]:
    """Patterns with the file's defaults and then the library defaults filled in."""
    data = load(name)
    defaults = {**LIBRARY_DEFAULTS, **data.get("defaults", {})}
    return [{**defaults, **pattern} for pattern in data["pattern"]]


def leading_comment(name: str) -> list[str]:
    lines = []
    for line in set_file(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return lines


def test_every_shipped_set_is_present():
    present = {entry.name[: -len(".toml")] for entry in pattern_set_dir().iterdir()
               if entry.name.endswith(".toml")}
    assert SHIPPED <= present


@pytest.mark.parametrize("name", sorted(SHIPPED))
class TestSchema:
    def test_top_level_keys(self, name):
        data = load(name)
        assert set(data) <= TOP_LEVEL_KEYS
        assert data["name"] == name
        for key in ("description", "source"):
            assert isinstance(data[key], str) and data[key].strip()
        assert "\n" not in data["description"]

    def test_defaults_use_known_modes(self, name):
        defaults = load(name).get("defaults", {})
        assert set(defaults) <= set(MODES)
        for key, value in defaults.items():
            assert value in MODES[key]

    def test_extra_categories_are_new_and_unique(self, name):
        extras = load(name).get("extra_categories", [])
        assert isinstance(extras, list)
        assert len(extras) == len(set(extras))
        for extra in extras:
            assert isinstance(extra, str) and extra.isidentifier()
            assert extra not in BUILTIN_CATEGORIES

    def test_patterns_are_well_formed(self, name):
        data = load(name)
        known = BUILTIN_CATEGORIES | set(data.get("extra_categories", []))
        assert data["pattern"], "a set needs at least one pattern"
        for pattern in data["pattern"]:
            assert set(pattern) <= PATTERN_KEYS, pattern
            text = pattern["text"]
            assert isinstance(text, str) and text, pattern
            assert text == text.strip(), f"stray whitespace in {text!r}"
            assert pattern["category"] in known, pattern
            for key in MODES.keys() & pattern.keys():
                assert pattern[key] in MODES[key], pattern

    def test_declared_extras_are_used(self, name):
        data = load(name)
        used = {pattern["category"] for pattern in data["pattern"]}
        assert set(data.get("extra_categories", [])) <= used

    def test_no_duplicate_patterns(self, name):
        keys = [(p["text"], p["case"], p["boundary"], p["anchor"])
                for p in effective_patterns(name)]
        duplicates = {key for key in keys if keys.count(key) > 1}
        assert not duplicates

    def test_starts_with_provenance_comment(self, name):
        comment = leading_comment(name)
        assert len(comment) >= 3, "the file must open with a provenance comment"
        assert "provenance" in "\n".join(comment).lower()


def texts(name: str) -> set[str]:
    return {pattern["text"] for pattern in effective_patterns(name)}


def test_paper_set_is_exactly_the_three_branching_keywords():
    assert [(p["text"], p["category"], p["case"], p["boundary"], p["anchor"])
            for p in effective_patterns("paper-2604.01702")] == [
        ("Perhaps", "branch", "insensitive", "word", "any"),
        ("Another", "branch", "insensitive", "word", "any"),
        ("Alternatively", "branch", "insensitive", "word", "any"),
    ]


def test_oat_zero_counts_substrings():
    patterns = effective_patterns("oat-zero")
    assert sorted(p["text"] for p in patterns) == sorted([
        "recheck", "rethink", "try again", "check again", "re-evaluate", "re-examine",
        "reevaluate"])
    assert {p["boundary"] for p in patterns} == {"none"}
    assert {p["case"] for p in patterns} == {"insensitive"}
    assert {p["anchor"] for p in patterns} == {"any"}


def test_nowait_has_the_seventeen_words():
    assert texts("nowait") == {
        "wait", "alternatively", "hmm", "but", "however", "alternative", "another", "check",
        "double-check", "oh", "maybe", "verify", "other", "again", "now", "ah", "any"}


def test_reasonscore_capitalised_words_are_case_sensitive():
    patterns = {p["text"]: p for p in effective_patterns("reasonscore")}
    assert set(patterns) == {"alternatively", "hmm", "maybe", "wait", "perhaps", "let me",
                             "therefore", "however", "But", "Another"}
    sensitive = {text for text, p in patterns.items() if p["case"] == "sensitive"}
    assert sensitive == {"But", "Another"}


class TestDefaultSet:
    def test_covers_every_builtin_category(self):
        categories = {p["category"] for p in effective_patterns("default")}
        assert categories == BUILTIN_CATEGORIES

    def test_size(self):
        assert 50 <= len(effective_patterns("default")) <= 110

    def test_leaves_out_words_too_common_to_be_markers(self):
        lowered = {text.lower() for text in texts("default")}
        assert not lowered & {"so", "now", "but", "another", "let me"}

    def test_keeps_but_wait_as_one_phrase(self):
        assert {"but wait", "wait"} <= texts("default")

    def test_has_chinese_markers(self):
        assert {"或者", "验证"} <= texts("default")
        assert any(text.startswith("等等") for text in texts("default"))

    def test_boxed_is_a_literal_backslash(self):
        assert "\\boxed" in texts("default")

    def test_uses_anchors(self):
        anchored = {p["text"] for p in effective_patterns("default")
                    if p["anchor"] == "sentence_start"}
        assert "actually" in anchored
