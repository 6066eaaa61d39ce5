"""Float64 references for the per-token statistics (slow, memory-hungry: tests only).

They follow the conventions of ``token_stats`` for ignored rows and, for
targets outside ``[0, V)``, the unvalidated-GPU convention (``nll = NaN``,
``rank = -2``) so that kernels can be compared row for row.
"""

from __future__ import annotations

import torch

from ._common import IGNORED_RANK, INVALID_RANK


def token_stats_reference(
    logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100
) -> dict[str, torch.Tensor]:
    """All statistics of ``logits [N, V]`` computed in float64 from the given values.

    Example:
        >>> import torch
        >>> ref = token_stats_reference(torch.zeros(1, 4), torch.tensor([1]))
        >>> round(ref["entropy"].item(), 6) == round(float(torch.log(torch.tensor(4.0))), 6)
        True
    """
    x = logits.double()
    n_vocab = x.shape[1]
    lse = torch.logsumexp(x, dim=1)
    log_p = x - lse[:, None]
    p = log_p.exp()
    entropy = -torch.where(p > 0, p * log_p, 0.0).sum(dim=1)

    ignored = targets == ignore_index
    in_range = (targets >= 0) & (targets < n_vocab)
    scored = in_range & ~ignored
    safe_targets = torch.where(in_range, targets, 0).long()
    target_logit = x.gather(1, safe_targets[:, None])[:, 0]
    n_greater = (x > target_logit[:, None]).sum(dim=1)
    argmax = x.argmax(dim=1) if x.shape[0] else safe_targets  # argmax picks the first maximum

    return {
        "nll": torch.where(scored, lse - target_logit, torch.where(ignored, 0.0, float("nan"))),
        "entropy": entropy,
        "lse": lse,
        "top1": scored & (argmax == targets),
        "rank": torch.where(
            scored, n_greater, torch.where(ignored, IGNORED_RANK, INVALID_RANK)
        ).to(torch.int32),
    }


def linear_token_stats_reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    ignore_index: int = -100,
) -> dict[str, torch.Tensor]:
    """``token_stats_reference`` of ``hidden @ weight.T (+ bias, softcap)`` in float64."""
    logits = hidden.double() @ weight.double().T
    if bias is not None:
        logits = logits + bias.double()
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    return token_stats_reference(logits, targets, ignore_index)
