"""Per-token statistics of materialised logits ``[N, V]``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import _common, _torch_path
from ._common import STAT_NAMES, Backend


def token_stats(
    logits: torch.Tensor,
    targets: torch.Tensor,
    ignore_index: int = -100,
    stats: Sequence[str] = STAT_NAMES,
    *,
    backend: Backend = "auto",
    check_targets: bool = False,
) -> dict[str, torch.Tensor]:
    """Per-row loss statistics of ``logits`` against ``targets`` in one sweep.

    Args:
        logits: ``[N, V]`` float32/bfloat16/float16.  Any row stride works (e.g.
            a slice of a wider tensor); a column stride other than 1 costs a
            contiguous copy.
        targets: ``[N]`` integer class indices on the same device.
        ignore_index: target value marking rows that are not scored.
        stats: which of ``"nll", "entropy", "lse", "top1", "rank"`` to return.
        backend: ``"auto"`` runs the Triton kernel for CUDA tensors when triton
            is installed and the chunked torch path otherwise; ``"triton"``
            forces the kernel (on CPU tensors only under ``TRITON_INTERPRET=1``);
            ``"torch"`` forces the torch path.
        check_targets: validate target values on CUDA too (one host sync).
            Targets on the CPU are always validated.

    Returns:
        A dict with the requested ``[N]`` tensors, all accumulated in fp32:

        * ``nll`` float32: ``lse - logits[target]``.
        * ``entropy`` float32: entropy of ``softmax(logits)`` in nats.
        * ``lse`` float32: ``logsumexp(logits)``.
        * ``top1`` bool: the target is the argmax (ties go to the lowest index).
        * ``rank`` int32: number of entries with a logit strictly greater than
          the target's; 0 for the (possibly tied) maximum.

        Rows whose target equals ``ignore_index`` get ``nll = 0``,
        ``top1 = False``, ``rank = -1``; their ``entropy`` and ``lse`` are
        still computed since the row is read anyway.  A target outside
        ``[0, V)`` (and not ``ignore_index``) raises ``ValueError`` when
        targets are validated; unvalidated on CUDA, such a row reads no
        out-of-bounds memory and is flagged with ``nll = NaN``, ``rank = -2``,
        ``top1 = False``.  Non-finite logits give undefined statistics.

    Raises:
        ValueError: bad shapes, unknown ``stats``, or (when validated)
            out-of-range targets.
        TypeError: unsupported dtypes.

    Example:
        >>> import torch
        >>> from cotsieve.kernels import token_stats
        >>> logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0]])
        >>> out = token_stats(logits, torch.tensor([0, -100]), stats=("nll", "top1", "rank"))
        >>> round(out["nll"][0].item(), 4), out["top1"].tolist(), out["rank"].tolist()
        (0.4076, [True, False], [0, -1])
    """
    if logits.dim() != 2 or logits.shape[1] == 0:
        raise ValueError(f"logits must be [N, V] with V > 0, got {tuple(logits.shape)}")
    _common.check_float("logits", logits)
    logits = _common.unit_column_stride(logits)
    n_rows, n_vocab = logits.shape

    def triton_partials() -> _common.Partials:
        from ._triton_token_stats import launch

        return launch(logits, targets)

    def torch_partials() -> _common.Partials:
        return _torch_path.chunked_partials(
            targets,
            n_vocab,
            target_logits=lambda rows, cols: logits[rows].gather(1, cols[:, None])[:, 0].float(),
            logits_block=lambda rows, cols: logits[rows, cols].float(),
        )

    return _common.compute_stats(
        device_tensor=logits,
        targets=targets,
        n_rows=n_rows,
        n_vocab=n_vocab,
        ignore_index=ignore_index,
        stats=stats,
        backend=backend,
        validate_targets=check_targets,
        triton_partials=triton_partials,
        torch_partials=torch_partials,
    )
