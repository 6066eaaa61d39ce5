"""Pieces shared by every per-token statistics kernel and backend.

Both kernels reduce a row of logits to the same *partial accumulators*
(running max, sum of exp, shifted sum, counts of larger / tied logits),
possibly split over several vocabulary ranges.  Merging those partials and
turning them into the public statistics happens here, in plain torch, so
that the Triton and the torch backends share one definition of the
semantics (ignored rows, out-of-range targets, tie breaking).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import torch

STAT_NAMES: tuple[str, ...] = ("nll", "entropy", "lse", "top1", "rank")
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

#: ``rank`` of a row whose target equals ``ignore_index``.
IGNORED_RANK = -1
#: ``rank`` of a row whose target is outside ``[0, V)`` (only reachable when
#: targets are not validated, i.e. on CUDA without ``check_targets``).
INVALID_RANK = -2

Backend = Literal["auto", "triton", "torch"]


class Partials(NamedTuple):
    """Per-row accumulators over ``n_splits`` vocabulary ranges.

    ``row_max``/``sumexp``/``shifted_sum`` describe the softmax of one range:
    ``sumexp = sum exp(x - row_max)`` and
    ``shifted_sum = sum exp(x - row_max) * (x - row_max)``.
    """

    target_logit: torch.Tensor  # [N] fp32
    row_max: torch.Tensor  # [S, N] fp32
    sumexp: torch.Tensor  # [S, N] fp32
    shifted_sum: torch.Tensor  # [S, N] fp32
    n_greater: torch.Tensor  # [S, N] int32: logits > target logit (target column excluded)
    n_tied_before: torch.Tensor  # [S, N] int32: logits == target logit at a lower index


def new_partials(n_splits: int, n_rows: int, device: torch.device) -> Partials:
    """Uninitialised partials; every entry is written by a backend."""
    def floats(*shape: int) -> torch.Tensor:
        return torch.empty(shape, dtype=torch.float32, device=device)

    def counts() -> torch.Tensor:
        return torch.empty((n_splits, n_rows), dtype=torch.int32, device=device)

    return Partials(
        floats(n_rows),
        floats(n_splits, n_rows),
        floats(n_splits, n_rows),
        floats(n_splits, n_rows),
        counts(),
        counts(),
    )


def check_stats(stats: Sequence[str]) -> tuple[str, ...]:
    if isinstance(stats, str):
        stats = (stats,)
    wanted = tuple(stats)
    unknown = sorted(set(wanted) - set(STAT_NAMES))
    if unknown or not wanted:
        raise ValueError(f"stats must be a non-empty subset of {STAT_NAMES}, got {wanted!r}")
    return wanted


def check_float(name: str, tensor: torch.Tensor) -> None:
    if tensor.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} must be float32, bfloat16 or float16, got {tensor.dtype}")


def unit_column_stride(tensor: torch.Tensor) -> torch.Tensor:
    """Kernels index rows by stride but need contiguous columns: copy only if not."""
    return tensor if tensor.stride(-1) == 1 else tensor.contiguous()


def check_targets(
    targets: torch.Tensor, n_rows: int, n_vocab: int, ignore_index: int, validate: bool
) -> None:
    """Shape/dtype checks always; the value check (a host sync on CUDA) when asked
    for or when it is free because the targets live on the CPU."""
    if targets.shape != (n_rows,):
        raise ValueError(f"targets must have shape ({n_rows},), got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise TypeError(f"targets must be an integer tensor, got {targets.dtype}")
    if not (validate or targets.device.type == "cpu"):
        return
    bad = (targets != ignore_index) & ((targets < 0) | (targets >= n_vocab))
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{int(bad.sum())} target(s) outside [0, {n_vocab}) and != ignore_index "
            f"({ignore_index}); first at row {first}: {int(targets[first])}"
        )


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def use_triton(backend: Backend, tensor: torch.Tensor) -> bool:
    if backend == "torch":
        return False
    if backend == "auto":
        return tensor.is_cuda and triton_available()
    if backend != "triton":
        raise ValueError(f"backend must be 'auto', 'triton' or 'torch', got {backend!r}")
    if not triton_available():
        raise RuntimeError("backend='triton' needs the triton package")
    if not tensor.is_cuda and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError(
            "backend='triton' on CPU tensors needs the Triton interpreter: "
            "set TRITON_INTERPRET=1 before triton is first imported"
        )
    return True


def merge_partials(
    row_max: torch.Tensor, sumexp: torch.Tensor, shifted_sum: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merge softmax accumulators along dim 0 onto the common maximum.

    Moving one accumulator from its own max ``m_i`` to ``m`` multiplies its mass
    by ``exp(m_i - m)`` and shifts every ``x - m_i`` by ``m_i - m``.  Empty
    accumulators (``sumexp == 0``, possibly ``m_i == -inf``) contribute nothing.
    """
    merged_max = row_max.amax(dim=0)
    safe_max = torch.where(torch.isneginf(merged_max), 0.0, merged_max)
    has_mass = sumexp > 0
    shift = torch.where(has_mass, row_max - safe_max, 0.0)
    scale = torch.where(has_mass, shift.exp(), 0.0)
    merged_sumexp = (scale * sumexp).sum(dim=0)
    merged_shifted = (scale * (shifted_sum + shift * sumexp)).sum(dim=0)
    return merged_max, merged_sumexp, merged_shifted


def finalize(
    partials: Partials,
    targets: torch.Tensor,
    n_vocab: int,
    ignore_index: int,
    stats: tuple[str, ...],
) -> dict[str, torch.Tensor]:
    """Turn partials into the public statistics (see ``token_stats`` for the conventions)."""
    row_max, sumexp, shifted_sum = merge_partials(
        partials.row_max, partials.sumexp, partials.shifted_sum
    )
    log_sumexp = sumexp.log()
    n_greater = partials.n_greater.sum(dim=0, dtype=torch.int32)
    n_tied_before = partials.n_tied_before.sum(dim=0, dtype=torch.int32)

    ignored = targets == ignore_index
    in_range = (targets >= 0) & (targets < n_vocab)
    scored = in_range & ~ignored
    lse = row_max + log_sumexp
    unscored_nll = torch.where(ignored, 0.0, float("nan"))
    unscored_rank = torch.where(ignored, IGNORED_RANK, INVALID_RANK).to(torch.int32)

    builders: dict[str, Callable[[], torch.Tensor]] = {
        "nll": lambda: torch.where(scored, lse - partials.target_logit, unscored_nll),
        "entropy": lambda: log_sumexp - shifted_sum / sumexp,
        "lse": lambda: lse,
        "top1": lambda: scored & (n_greater == 0) & (n_tied_before == 0),
        "rank": lambda: torch.where(scored, n_greater, unscored_rank),
    }
    return {name: builders[name]() for name in stats}


def compute_stats(
    *,
    device_tensor: torch.Tensor,
    targets: torch.Tensor,
    n_rows: int,
    n_vocab: int,
    ignore_index: int,
    stats: Sequence[str],
    backend: Backend,
    validate_targets: bool,
    triton_partials: Callable[[], Partials],
    torch_partials: Callable[[], Partials],
) -> dict[str, torch.Tensor]:
    """Validate, pick a backend, reduce to partials and finalize."""
    wanted = check_stats(stats)
    if targets.device != device_tensor.device:
        raise ValueError(f"targets are on {targets.device}, inputs on {device_tensor.device}")
    check_targets(targets, n_rows, n_vocab, ignore_index, validate_targets)
    on_triton = use_triton(backend, device_tensor)
    if n_rows == 0:
        partials = new_partials(1, 0, device_tensor.device)
    elif on_triton:
        partials = triton_partials()
    else:
        partials = torch_partials()
    return finalize(partials, targets, n_vocab, ignore_index, wanted)
