"""Per-token statistics of ``hidden @ weight.T``, fused with the output layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import _common, _torch_path
from ._common import STAT_NAMES, Backend


def _check_operands(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, softcap: float | None
) -> None:
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(
            f"need hidden [N, D] and weight [V, D], got {tuple(hidden.shape)} and {tuple(weight.shape)}"
        )
    if weight.shape[0] == 0:
        raise ValueError("weight must have at least one row (V > 0)")
    _common.check_float("hidden", hidden)
    if weight.dtype != hidden.dtype:
        raise TypeError(f"hidden and weight dtypes differ: {hidden.dtype} vs {weight.dtype}")
    if bias is not None:
        _common.check_float("bias", bias)
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"bias must have shape ({weight.shape[0]},), got {tuple(bias.shape)}")
    if softcap is not None and not softcap > 0:
        raise ValueError(f"softcap must be positive, got {softcap}")
    devices = {t.device for t in (hidden, weight, bias) if t is not None}
    if len(devices) != 1:
        raise ValueError(f"hidden, weight and bias must share a device, got {devices}")


def _finish_logits(
    products: torch.Tensor, bias: torch.Tensor | None, softcap: float | None
) -> torch.Tensor:
    """fp32 matmul result -> logits: add bias, then ``softcap * tanh(x / softcap)``."""
    if bias is not None:
        products = products + bias.float()
    if softcap is not None:
        products = softcap * torch.tanh(products / softcap)
    return products


def linear_token_stats(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    ignore_index: int = -100,
    stats: Sequence[str] = STAT_NAMES,
    *,
    backend: Backend = "auto",
    check_targets: bool = False,
) -> dict[str, torch.Tensor]:
    """``token_stats`` of ``logits = hidden @ weight.T (+ bias)``, optionally
    soft-capped to ``softcap * tanh(logits / softcap)``, without materialising
    the ``[N, V]`` logits.

    The logits are produced tile by tile with fp32 accumulation and consumed
    on the spot; extra memory is ``O(N)`` (per-row accumulators for at most a
    few dozen vocabulary splits).  The target logit is computed first by a
    separate D-long dot product, so it may differ in the last bits from the
    same entry inside the matmul tile; the target's own column is therefore
    never counted by ``rank``, and near-ties closer than fp32 rounding may
    resolve either way.

    Args:
        hidden: ``[N, D]`` float32/bfloat16/float16, any row stride.
        weight: ``[V, D]`` with the dtype of ``hidden`` (an ``nn.Linear``'s
            ``weight``).
        targets: ``[N]`` integer class indices.
        bias: optional ``[V]`` bias, added before the softcap.
        softcap: optional positive logit soft-capping constant (Gemma-style).
        ignore_index, stats, backend, check_targets: as in ``token_stats``.

    Returns:
        The dict of ``token_stats``, with the same conventions for ignored and
        out-of-range targets.

    Example:
        >>> import torch
        >>> from cotsieve.kernels import linear_token_stats
        >>> hidden = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> weight = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        >>> out = linear_token_stats(hidden, weight, torch.tensor([0, 2]), softcap=30.0)
        >>> out["top1"].tolist(), out["rank"].tolist()
        ([True, False], [0, 1])
    """
    _check_operands(hidden, weight, bias, softcap)
    hidden, weight = _common.unit_column_stride(hidden), _common.unit_column_stride(weight)
    bias = None if bias is None else bias.contiguous()
    n_rows, dim = hidden.shape
    n_vocab = weight.shape[0]

    def triton_partials() -> _common.Partials:
        from ._triton_linear_token_stats import launch

        return launch(hidden, weight, targets, bias, softcap)

    def target_logits(rows: slice, cols: torch.Tensor) -> torch.Tensor:
        products = (hidden[rows].float() * weight[cols].float()).sum(dim=1)
        return _finish_logits(products, None if bias is None else bias[cols], softcap)

    def logits_block(rows: slice, cols: slice) -> torch.Tensor:
        products = hidden[rows].float() @ weight[cols].float().T
        return _finish_logits(products, None if bias is None else bias[cols], softcap)

    return _common.compute_stats(
        device_tensor=hidden,
        targets=targets,
        n_rows=n_rows,
        n_vocab=n_vocab,
        ignore_index=ignore_index,
        stats=stats,
        backend=backend,
        validate_targets=check_targets,
        triton_partials=triton_partials,
        torch_partials=lambda: _torch_path.chunked_partials(
            targets, n_vocab, target_logits, logits_block, width=dim
        ),
    )
