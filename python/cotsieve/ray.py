"""Deprecated alias of ``cotsieve.integrations.ray``, where the Ray Data helpers live.

``docs/integrations.md`` once offered this short name; the other integrations
never had one, so it goes in a later release. Importing it warns.
"""

from __future__ import annotations

import warnings

warnings.warn("cotsieve.ray is deprecated; import cotsieve.integrations.ray", DeprecationWarning, stacklevel=2)

from .integrations.ray import CotsieveMetrics, FilterResult, filter_dataset  # noqa: E402

__all__ = ["CotsieveMetrics", "FilterResult", "filter_dataset"]
