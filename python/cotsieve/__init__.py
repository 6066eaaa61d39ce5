"""cotsieve: curate and profile long chain-of-thought corpora.

The entry point is a compiled ``PatternSet``; see ``docs/semantics.md`` for the
exact matching rules.

Example:
    >>> import cotsieve
    >>> ps = cotsieve.PatternSet.load("default")
    >>> int(ps.count(["Wait, let me double-check that."]).sum()) >= 1
    True
"""

from .analysis import STEP_MODES, Step, analyze, segment, segments, step_count_ratio
from .patterns import BUILTIN_CATEGORIES, Pattern, PatternSet

__all__ = [
    "BUILTIN_CATEGORIES",
    "STEP_MODES",
    "Pattern",
    "PatternSet",
    "Step",
    "analyze",
    "segment",
    "segments",
    "step_count_ratio",
]
__version__ = "0.1.0"
