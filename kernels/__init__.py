"""Per-token loss statistics (NLL, entropy, log-sum-exp, top-1, rank) over a
vocabulary, from materialised logits or fused with the output projection.

CUDA tensors run Triton kernels when triton is installed; everything else
runs a chunked torch path with identical semantics.  Importing this package
needs torch but not triton.
"""

from ._common import IGNORED_RANK, INVALID_RANK, STAT_NAMES
from .linear_token_stats import linear_token_stats
from .token_stats import token_stats

__all__ = ["IGNORED_RANK", "INVALID_RANK", "STAT_NAMES", "linear_token_stats", "token_stats"]
