"""datatrove: a filter that keeps or drops documents by rules, and a step
that stores the metrics in each document's metadata.

Both work on batches of documents (one native call per batch) and pickle,
so they run in any executor; each worker compiles the patterns once. The
filter takes the metrics the annotator stored instead of measuring again.

Example:
    >>> from datatrove.data import Document
    >>> docs = [Document(text="Perhaps 2.\\n\\nAlternatively, 3.", id="a"), Document(text="2 + 2 = 4.", id="b")]
    >>> annotated = list(CotsieveAnnotator(columns=["branch_step_ratio"])(docs))
    >>> [d.metadata for d in annotated]
    [{'branch_step_ratio': 1.0}, {'branch_step_ratio': 0.0}]
    >>> [d.id for d in CotsieveFilter("branch_step_ratio <= 0.5")(annotated)]  # judged on the stored metrics
    ['b']

In a pipeline (see ``docs/integrations.md``)::

    LocalPipelineExecutor(pipeline=[JsonlReader("traces/"), CotsieveAnnotator(),
                                    CotsieveFilter("branch_step_ratio <= 0.3"), JsonlWriter("curated/")])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import pyarrow as pa

from . import require_extra

require_extra("datatrove", "datatrove")

from datatrove.data import Document, DocumentsPipeline  # noqa: E402
from datatrove.pipeline.base import PipelineStep  # noqa: E402
from datatrove.pipeline.filters.base_filter import BaseFilter  # noqa: E402
from datatrove.pipeline.writers.disk_base import DiskWriter  # noqa: E402
from datatrove.utils.batching import batched  # noqa: E402
from datatrove.utils.typeshelper import StatHints  # noqa: E402

from ..patterns import PatternSet  # noqa: E402
from ..rules import RulesArg, some_rules  # noqa: E402
from ._batch import TraceMetrics  # noqa: E402

DEFAULT_BATCH = 256


class CotsieveFilter(BaseFilter):  # type: ignore[misc]  # datatrove ships no types
    """Keep the documents the rules keep; a dropped one carries the rules' names as its reason.

    Each rule that drops a document counts in a stat of its own,
    ``dropped_<rule>`` (the names of ``summary.json``'s ``dropped_by_rule``),
    and ``metadata["filter_reason"]`` names every rule that dropped it.

    A document whose metadata already holds the metrics the rules read, as
    ``CotsieveAnnotator`` stores them under ``metadata_prefix``, is judged on
    those values, without measuring its text again; the others are measured.

    Args:
        rules: text forms (``"branch_step_ratio <= 0.3"``), ``Rule`` objects,
            or a list of them. Each document is judged alone, so percentile
            rules are refused (``ValueError``); use ``cotsieve filter`` or the
            Ray helper for those.
        patterns, steps, think: as for ``cotsieve.analyze`` (``think="auto"``
            keeps only the ``<think>`` part when there is one).
        batch_size: documents per native call.
        exclusion_writer: a datatrove writer for the dropped documents.
        metadata_prefix: the ``prefix`` of the ``CotsieveAnnotator`` that ran
            before (with the same patterns, steps and think), whose stored
            metrics are then used; ``None`` (the default) measures every
            document. Reuse is asked for, not assumed: a reader copies a
            record's own fields into the metadata, and a field that happens
            to be named like a metric (``n_words``) must not stand for one.
    """

    name = "🧠 cotsieve filter"

    def __init__(self, rules: RulesArg, patterns: Union[str, PatternSet] = "default", steps: str = "paragraph",
                 think: str = "auto", batch_size: int = DEFAULT_BATCH, exclusion_writer: Optional[DiskWriter] = None,
                 metadata_prefix: Optional[str] = None):
        super().__init__(exclusion_writer, batch_size)
        self.rules = some_rules(rules)
        wide = [r.name for r in self.rules.rules if r.corpus_wide]
        if wide:
            raise ValueError(f"{wide} need the whole corpus; a datatrove filter sees one document at a time")
        self.metrics = TraceMetrics(patterns, steps, think, columns=self.rules.columns, threads=1)
        self.metadata_prefix = metadata_prefix
        # metric -> metadata key, the same for every document (None: always measure)
        self.stored_keys = None if metadata_prefix is None else \
            {column: metadata_prefix + column for column in self.rules.columns}

    def filter(self, doc: Document) -> Union[bool, tuple[bool, str]]:
        return self.filter_batch([doc])[0]

    def filter_batch(self, batch: list[Document]) -> list[Union[bool, tuple[bool, str]]]:
        decision = self.rules.decide(self.measured(batch))
        results: list[Union[bool, tuple[bool, str]]] = []
        for row, (doc, drop) in enumerate(zip(batch, decision.drop)):
            if drop:
                # BaseFilter would count the reason, every rule that dropped
                # the document joined, as one stat: count each rule instead,
                # and set the reason where BaseFilter would.
                self.stat_update(*(f"dropped_{name}" for name in decision.rules_dropping(row)))
                doc.metadata["filter_reason"] = decision.reasons[row].as_py()
            results.append(not drop)
        return results

    def measured(self, batch: list[Document]) -> pa.Table:
        """The metrics the rules read, one row per document: stored ones where the metadata has them all."""
        rows = [self.stored(doc) for doc in batch]
        missing = [i for i, row in enumerate(rows) if row is None]
        if len(missing) == len(batch):
            return self.metrics([doc.text for doc in batch])
        for i, row in zip(missing, self.metrics([batch[i].text for i in missing]).to_pylist()):
            rows[i] = row
        return pa.Table.from_pylist(rows)

    def stored(self, doc: Document) -> Optional[dict[str, Any]]:
        """The metrics the rules read, from ``doc.metadata``; ``None`` unless it holds every one."""
        if self.stored_keys is None or not all(key in doc.metadata for key in self.stored_keys.values()):
            return None
        return {column: doc.metadata[key] for column, key in self.stored_keys.items()}


class CotsieveAnnotator(PipelineStep):  # type: ignore[misc]  # datatrove ships no types
    """Store the metrics of ``cotsieve.analyze`` in ``doc.metadata`` (as ``prefix + metric``; null as ``None``).

    Args:
        patterns, steps, think: as for ``cotsieve.analyze``.
        columns: the metrics to store (default: all).
        prefix: put before each metadata key.
        batch_size: documents per native call.
    """

    name = "🧠 cotsieve metrics"
    type = "📊 - STATS"

    def __init__(self, patterns: Union[str, PatternSet] = "default", steps: str = "paragraph", think: str = "auto",
                 columns: Optional[Sequence[str]] = None, prefix: str = "", batch_size: int = DEFAULT_BATCH):
        super().__init__()
        self.metrics = TraceMetrics(patterns, steps, think, columns, prefix, threads=1)
        self.batch_size = batch_size

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        for batch in batched(data or (), self.batch_size):
            with self.track_time("batch"):
                rows = self.metrics([doc.text for doc in batch]).to_pylist()
            for doc, row in zip(batch, rows):
                doc.metadata.update(row)
                self.stat_update(StatHints.forwarded)
                yield doc
