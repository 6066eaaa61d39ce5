"""The paper's remedy on a synthetic corpus, end to end.

``run_demo`` writes convergent and branch-heavy traces (``cotsieve.testing``)
as ``corpus.jsonl.gz``, scores them as the paper does (its three branching
keywords, ``paper-2604.01702``, on paragraph steps), drops the top 10% by
``branch_step_ratio`` over the whole corpus (so the drop is free to land on
the branch-heavy source), and reports how many traces of each source survive.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import OutputExistsError
from .pipeline import CurateOptions, Summary, filter_corpus
from .progress import Progress
from .rules import DropShare

DEMO_RULE = DropShare("branch_step_ratio", 0.10)
DEMO_PATTERNS = "paper-2604.01702"


def run_demo(folder: Path, n: int = 2000, seed: int = 0, force: bool = False,
             progress: Optional[Progress] = None) -> tuple[Summary, dict[str, tuple[int, int]]]:
    """Generate ``n`` traces into ``folder``, filter them, and return the
    summary and ``{source: (traces, kept)}``.

    Example:
        >>> import tempfile
        >>> summary, by_source = run_demo(Path(tempfile.mkdtemp()), n=50)
        >>> summary.read, summary.balanced
        (50, True)
    """
    from .testing import generate_traces, write_jsonl

    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.jsonl.gz"
    if corpus.exists() and not force:
        raise OutputExistsError(f"{corpus} exists; pass --force to regenerate it")
    write_jsonl(generate_traces(n, seed=seed), corpus)
    options = CurateOptions(patterns=DEMO_PATTERNS, fields=("source",), force=force)
    summary = filter_corpus(str(corpus), folder / "filtered", [DEMO_RULE], options, progress)
    return summary, _kept_by_source(Path(summary.outputs["metrics"]))


def _kept_by_source(metrics_path: Path) -> dict[str, tuple[int, int]]:
    table = pq.read_table(metrics_path, columns=["source", "kept"])
    total = Counter(table.column("source").to_pylist())
    kept = Counter(table.filter(pc.field("kept")).column("source").to_pylist())
    return {source: (count, kept.get(source, 0)) for source, count in total.items()}
