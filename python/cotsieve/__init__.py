"""cotsieve: curate and profile long chain-of-thought corpora.

The entry points are a compiled ``PatternSet`` (find markers) and an
``Analyzer`` built on one (segment and measure traces); see
``docs/semantics.md`` and ``docs/metrics.md`` for the exact rules, and
``docs/architecture.md`` for the flow from input to outputs and the package
each step lives in. ``cotsieve.kernels`` is the repository's top-level
``kernels/`` folder, which ``pyproject.toml`` installs into this package.

Example:
    >>> import cotsieve
    >>> ps = cotsieve.PatternSet.load("default")
    >>> int(ps.count(["Wait, let me double-check that."]).sum()) >= 1
    True
    >>> cotsieve.Analyzer(ps).analyze(["Wait, no."]).column("count_backtrack").to_pylist()
    [1]
"""

from .analysis import STEP_MODES, Analyzer, Step, analyze, segment, segments, simd_level
from .io import BadInputError, TextSpec, read_corpus
from .patterns import BUILTIN_CATEGORIES, Pattern, PatternSet
from .profiling import ProfileResult, load_model, profile, summarize
from .pipeline import CurateOptions, Summary, analyze_corpus, filter_corpus
from .rules import DropShare, RuleSet, StepCountRatio, Threshold, length_baseline, parse_rule, step_count_ratio

__all__ = [
    "Analyzer",
    "BUILTIN_CATEGORIES",
    "STEP_MODES",
    "BadInputError",
    "CurateOptions",
    "DropShare",
    "Pattern",
    "PatternSet",
    "ProfileResult",
    "RuleSet",
    "Step",
    "StepCountRatio",
    "Summary",
    "TextSpec",
    "Threshold",
    "analyze",
    "analyze_corpus",
    "filter_corpus",
    "length_baseline",
    "load_model",
    "parse_rule",
    "profile",
    "read_corpus",
    "segment",
    "segments",
    "simd_level",
    "step_count_ratio",
    "summarize",
]
__version__ = "0.1.0"
