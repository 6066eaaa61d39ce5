"""``cotsieve.ray``: the Ray Data helpers, re-exported from ``cotsieve.integrations.ray``.

Needs ``pip install 'cotsieve[ray]'``; see ``docs/integrations.md``.
"""

from __future__ import annotations

from .integrations.ray import CotsieveMetrics, FilterResult, filter_dataset

__all__ = ["CotsieveMetrics", "FilterResult", "filter_dataset"]
