"""Patterns, pattern sets, and the shipped marker vocabularies.

The matching rules are specified in ``docs/semantics.md``.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa

from . import _core
from .errors import UsageError
from ._texts import TextInput, as_text_batch

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

BUILTIN_CATEGORIES: tuple[str, ...] = ("branch", "backtrack", "verify", "hesitate", "conclude")
CASE_MODES = ("insensitive", "sensitive")
BOUNDARY_MODES = ("word", "start", "end", "none")
ANCHORS = ("any", "line_start", "sentence_start")
ENGINES = ("auto", "dfa", "prefilter")
_RESERVED_CATEGORIES = ("progress",)
_CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


def suggest(value: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to ``value``, or ``""``.

    Example:
        >>> suggest("brnch_step_ratio", ["branch_step_ratio", "n_words"])
        "; did you mean 'branch_step_ratio'?"
    """
    close = difflib.get_close_matches(value, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_choice(pattern: Pattern, field: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        hint = suggest(value, choices) if isinstance(value, str) else ""
        raise ValueError(f"pattern {pattern.text!r}: unknown {field} {value!r}, expected one of {list(choices)}{hint}")


@dataclass(frozen=True)
class Pattern:
    """A literal marker phrase to find in reasoning traces.

    Args:
        text: the phrase, as ``str`` (encoded as UTF-8) or ``bytes``.
        category: ``branch``, ``backtrack``, ``verify``, ``hesitate``,
            ``conclude``, or an extra category declared on the ``PatternSet``.
        case: ``"insensitive"`` (ASCII case folding) or ``"sensitive"``.
        boundary: ``"word"``, ``"start"``, ``"end"`` or ``"none"``: which ends
            need a word boundary (only ends whose byte is ``[A-Za-z0-9_]``).
        anchor: ``"any"``, ``"line_start"`` or ``"sentence_start"``.

    Example:
        >>> Pattern("Alternatively", "branch", anchor="sentence_start").anchor
        'sentence_start'
    """

    text: Union[str, bytes]
    category: str
    case: str = "insensitive"
    boundary: str = "word"
    anchor: str = "any"

    def __post_init__(self) -> None:
        if not isinstance(self.text, (str, bytes)):
            raise TypeError(f"pattern text must be str or bytes, got {type(self.text).__name__}")
        if len(self.text) == 0:
            raise ValueError("pattern text is empty")
        if isinstance(self.text, str):
            try:
                self.text.encode("utf-8")
            except UnicodeEncodeError as err:
                raise ValueError(f"pattern {self.text!r} is not valid Unicode: {err}") from None
        if not isinstance(self.category, str) or not _CATEGORY_NAME.match(self.category):
            raise ValueError(
                f"pattern {self.text!r}: category {self.category!r} must be a lowercase identifier like 'branch'"
            )
        if self.category in _RESERVED_CATEGORIES:
            raise ValueError(f"pattern {self.text!r}: category {self.category!r} is reserved for unlabelled steps")
        _check_choice(self, "case", self.case, CASE_MODES)
        _check_choice(self, "boundary", self.boundary, BOUNDARY_MODES)
        _check_choice(self, "anchor", self.anchor, ANCHORS)

    @property
    def utf8(self) -> bytes:
        """The pattern's bytes, as the engine matches them."""
        return self.text.encode("utf-8") if isinstance(self.text, str) else self.text


PatternLike = Union[Pattern, tuple[Any, ...], dict[str, Any]]
PatternsArg = Union[str, Path, "PatternSet"]


def _as_pattern(item: PatternLike, position: int) -> Pattern:
    """``item`` as a Pattern; an error names its position in the set, as the TOML loader does."""
    if isinstance(item, Pattern):
        return item
    if not isinstance(item, (dict, tuple)):
        raise TypeError(f"pattern #{position}: expected a Pattern, a (text, category) tuple or a dict, "
                        f"got {type(item).__name__}")
    try:
        return Pattern(**item) if isinstance(item, dict) else Pattern(*item)
    except (TypeError, ValueError) as err:
        raise type(err)(f"pattern #{position} {item!r}: {err}") from None


class PatternSet:
    """An immutable, compiled set of patterns; scan with it as often as you like.

    Compilation happens once, in the constructor. The compiled set is
    thread-safe: any number of threads may call its methods at once, and each
    call releases the GIL and spreads the batch over ``threads`` native threads.

    Args:
        patterns: ``Pattern`` objects, ``(text, category, ...)`` tuples or dicts.
        extra_categories: categories beyond the five built-in ones, in the
            order their columns should appear.
        name: a label shown in ``repr`` and reports.
        engine: ``"auto"`` (default), ``"dfa"`` or ``"prefilter"``. Both
            engines give identical results; ``auto`` takes the SIMD prefilter
            when the CPU has AVX2 or AVX-512 VBMI (``simd_level()`` not
            ``"none"``) and the set has at most 32 patterns, and the
            byte-at-a-time DFA otherwise.

    Example:
        >>> ps = PatternSet([Pattern("wait", "backtrack"), Pattern("but wait", "backtrack")])
        >>> ps.count(["But wait, 2+2=4. Wait."]).tolist()
        [[1, 1]]
    """

    def __init__(
        self,
        patterns: Iterable[PatternLike],
        extra_categories: Sequence[str] = (),
        name: Optional[str] = None,
        engine: str = "auto",
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}, expected one of {list(ENGINES)}")
        self._patterns = tuple(_as_pattern(p, i) for i, p in enumerate(patterns))
        self._categories = _category_order(extra_categories)
        self.name = name
        self._engine_request = engine
        index = {c: i for i, c in enumerate(self._categories)}
        for p in self._patterns:
            if p.category not in index:
                raise ValueError(
                    f"pattern {p.text!r}: unknown category {p.category!r}{suggest(p.category, self._categories)} "
                    f"(declare new categories with extra_categories=[{p.category!r}])"
                )
        self._category_of = np.array([index[p.category] for p in self._patterns], dtype=np.int32)
        self._scanner = _core.Scanner([_native_spec(p, index) for p in self._patterns], _ENGINE_CODES[engine])

    @classmethod
    def load(cls, name_or_path: Union[str, Path]) -> PatternSet:
        """Load a shipped pattern set by name, or a TOML file by path.

        Shipped sets: see ``PatternSet.available()``. The TOML schema is
        described in ``docs/patterns.md``.

        Example:
            >>> PatternSet.load("paper-2604.01702").categories[:2]
            ('branch', 'backtrack')
        """
        path = Path(name_or_path)
        if path.suffix != ".toml":
            shipped = cls.available()
            if str(name_or_path) not in shipped:
                raise ValueError(
                    f"no pattern set named {str(name_or_path)!r}{suggest(str(name_or_path), shipped)}; "
                    f"shipped sets: {shipped}, or pass a path to a .toml file"
                )
            path = Path(str(resources.files("cotsieve") / "pattern_sets" / f"{name_or_path}.toml"))
        return _load_toml(path)

    @classmethod
    def resolve(cls, patterns: PatternsArg) -> PatternSet:
        """``patterns`` as a compiled set: a ``PatternSet`` as it is, a shipped
        set's name loaded once per process, a TOML path loaded on each call
        (the file may have changed).

        Example:
            >>> PatternSet.resolve("default") is PatternSet.resolve("default")
            True
            >>> ps = PatternSet([("hmm", "hesitate")])
            >>> PatternSet.resolve(ps) is ps
            True
        """
        if isinstance(patterns, PatternSet):
            return patterns
        if isinstance(patterns, (str, Path)):
            return cls.load(patterns) if Path(patterns).suffix == ".toml" else _load_shipped(str(patterns))
        raise TypeError(f"patterns must be a PatternSet or the name/path of one, got {type(patterns).__name__}")

    @staticmethod
    def available() -> list[str]:
        """Names of the pattern sets shipped with cotsieve."""
        folder = resources.files("cotsieve") / "pattern_sets"
        return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))

    @property
    def patterns(self) -> tuple[Pattern, ...]:
        return self._patterns

    @property
    def engine(self) -> str:
        """The engine in use: ``"prefilter"`` or ``"dfa"``."""
        return str(self._scanner.engine.name.lower())

    @property
    def categories(self) -> tuple[str, ...]:
        """Category names in column order: the built-in five, then the extras."""
        return self._categories

    @property
    def category_index(self) -> np.ndarray:
        """For each pattern, the position of its category in ``categories``."""
        return self._category_of

    def __len__(self) -> int:
        return len(self._patterns)

    def __iter__(self) -> Iterator[Pattern]:
        return iter(self._patterns)

    def __reduce__(self) -> tuple[Any, ...]:
        # Compiled state does not pickle: the set is compiled again on loading.
        extra = self._categories[len(BUILTIN_CATEGORIES):]
        return (PatternSet, (self._patterns, extra, self.name, self._engine_request))

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<PatternSet{label}: {len(self)} patterns, categories {list(self._categories)}>"

    def count(self, texts: TextInput, threads: Optional[int] = None) -> np.ndarray:
        """Matches per text and pattern, as ``uint32[n_texts, n_patterns]``.

        Example:
            >>> PatternSet([("hmm", "hesitate")]).count(["Hmm. hmm, hmmm"]).tolist()
            [[2]]
        """
        return self._scanner.count(as_text_batch(texts), _threads(threads))

    def count_categories(self, texts: TextInput, threads: Optional[int] = None) -> pa.Table:
        """Matches per text and category, one ``uint32`` column per category.

        Example:
            >>> t = PatternSet.load("paper-2604.01702").count_categories(["Perhaps not. Alternatively..."])
            >>> t.column("branch").to_pylist()
            [2]
        """
        per_pattern = self.count(texts, threads)
        columns = {}
        for i, category in enumerate(self._categories):
            columns[category] = per_pattern[:, self._category_of == i].sum(axis=1, dtype=np.uint32)
        return pa.table(columns)

    def matches(self, texts: TextInput, threads: Optional[int] = None) -> pa.Table:
        """Every match, in document then start order.

        Columns: ``doc`` (int64), ``start`` and ``end`` (int64 byte offsets into
        the UTF-8 text), ``pattern`` (int32 index into ``patterns``) and
        ``category`` (dictionary-encoded string).

        Example:
            >>> PatternSet([("wait", "backtrack")]).matches(["ok. Wait"]).column("start").to_pylist()
            [4]
        """
        found = self._scanner.matches(as_text_batch(texts), _threads(threads))
        category = pa.DictionaryArray.from_arrays(
            pa.array(self._category_of[found["pattern"]], pa.int32()), pa.array(self._categories)
        )
        return pa.table(
            {
                "doc": found["doc"],
                "start": found["start"],
                "end": found["end"],
                "pattern": found["pattern"],
                "category": category,
            }
        )


def _category_order(extra: Sequence[str]) -> tuple[str, ...]:
    if isinstance(extra, str):
        raise TypeError("extra_categories must be a sequence of names, not a single string")
    for c in extra:
        if not isinstance(c, str) or not _CATEGORY_NAME.match(c) or c in _RESERVED_CATEGORIES:
            raise ValueError(f"extra category {c!r} must be a lowercase identifier other than 'progress'")
    dupes = sorted({c for c in extra if list(extra).count(c) > 1 or c in BUILTIN_CATEGORIES})
    if dupes:
        raise ValueError(f"extra categories repeat or shadow built-in ones: {dupes}")
    return BUILTIN_CATEGORIES + tuple(extra)


_ANCHOR_CODES = {a: _core.Anchor.__members__[a.upper()] for a in ANCHORS}
_ENGINE_CODES = {e: _core.Engine.__members__[e.upper()] for e in ENGINES}


def _native_spec(p: Pattern, category_index: dict[str, int]) -> _core.PatternSpec:
    return _core.PatternSpec(
        p.utf8,
        category_index[p.category],
        case_sensitive=p.case == "sensitive",
        boundary_start=p.boundary in ("word", "start"),
        boundary_end=p.boundary in ("word", "end"),
        anchor=_ANCHOR_CODES[p.anchor],
    )


@lru_cache(maxsize=16)
def _load_shipped(name: str) -> PatternSet:
    return PatternSet.load(name)


# More threads than this are a typo, and past 2**31 the native int overflows.
MAX_THREADS = 1024


def is_category_name(name: str) -> bool:
    """Whether ``name`` can be a category: a lowercase identifier such as ``branch``.

    Example:
        >>> is_category_name("backtrack"), is_category_name("x</style>")
        (True, False)
    """
    return bool(_CATEGORY_NAME.match(name))


def _threads(threads: Optional[int]) -> int:
    """The native thread count for ``threads`` (0: all cores), refused outside 1..MAX_THREADS."""
    if threads is None:
        return 0
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"threads must be an int from 1 to {MAX_THREADS}, or None for all cores; got {threads!r}")
    return threads


_TOML_KEYS = {"name", "description", "source", "extra_categories", "defaults", "pattern"}
_PATTERN_KEYS = {"text", "category", "case", "boundary", "anchor"}
_DEFAULT_KEYS = {"case", "boundary", "anchor"}


def _load_toml(path: Path) -> PatternSet:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"pattern set file not found: {path}") from None
    except OSError as err:  # a folder, a file it may not read
        raise UsageError(f"{path}: cannot read the pattern set: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: invalid TOML: {err}") from None
    _reject_unknown(path, "top level", doc, _TOML_KEYS)
    defaults = doc.get("defaults", {})
    _reject_unknown(path, "[defaults]", defaults, _DEFAULT_KEYS)
    entries = doc.get("pattern", [])
    if not isinstance(entries, list):
        raise ValueError(f"{path}: 'pattern' must be an array of tables ([[pattern]])")
    patterns = []
    for i, entry in enumerate(entries):
        _reject_unknown(path, f"pattern #{i}", entry, _PATTERN_KEYS)
        try:
            patterns.append(Pattern(**{**defaults, **entry}))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{path}: pattern #{i}: {err}") from None
    try:
        return PatternSet(patterns, extra_categories=doc.get("extra_categories", ()), name=doc.get("name", path.stem))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None


def _reject_unknown(path: Path, where: str, table: Any, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        raise ValueError(f"{path}: {where} must be a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown} in {where}; allowed: {sorted(allowed)}")
