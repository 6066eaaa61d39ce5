"""Per-token loss statistics (NLL, entropy, log-sum-exp, top-1, rank) over a
vocabulary, from materialised logits or fused with the output projection.

CUDA tensors run Triton kernels when triton is installed; everything else
runs a chunked torch path with identical semantics.  Importing this package
needs torch but not triton.

Where it lives: this is the top-level ``kernels/`` folder of the repository,
not a folder under ``python/cotsieve/``. ``pyproject.toml`` maps it into the
package (``wheel.packages``: ``"cotsieve/kernels" = "kernels"``), so a wheel
and an editable install (``pip install -e .``) both import it as
``cotsieve.kernels``, and ``from .kernels import ...`` inside ``cotsieve``
names this folder.
"""

from ._common import IGNORED_RANK, INVALID_RANK, STAT_NAMES
from .linear_token_stats import linear_token_stats
from .token_stats import token_stats

__all__ = ["IGNORED_RANK", "INVALID_RANK", "STAT_NAMES", "linear_token_stats", "token_stats"]
