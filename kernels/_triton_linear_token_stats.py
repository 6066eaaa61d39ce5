"""Triton kernel: statistics of ``hidden @ weight.T (+ bias, softcap)`` tile by
tile, without ever materialising the ``[N, V]`` logits."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import _common
from ._triton_common import accumulate_tile, init_accumulators, plan_splits, store_accumulators

Tiling = tuple[int, int, int, int, int]  # BLOCK_N, BLOCK_V, BLOCK_D, num_warps, num_stages

#: Half-precision operands run on tensor cores (wgmma on sm_90); fp32 operands use
#: exact fp32 FMAs, whose larger register tiles need smaller blocks to avoid spills.
#: Checked by compiling for sm_90 and sm_80 (``benchmarks/kernel_resources.py``):
#: 128-wide vocabulary tiles spill on sm_90 with half-precision operands (255
#: registers, the epilogue's temporaries next to the 128 x 128 accumulator);
#: 64-wide ones fit in about 190 registers without spilling.
GPU_TILING: dict[torch.dtype, Tiling] = {
    torch.bfloat16: (128, 64, 64, 8, 3),
    torch.float16: (128, 64, 64, 8, 3),
    torch.float32: (64, 128, 32, 8, 2),
}


@triton.jit
def _finish_logits(acc, bias_ptr, cols, col_mask, softcap,
                   HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr):
    """fp32 matmul result -> logits: add bias, then ``softcap * tanh(x / softcap)``."""
    if HAS_BIAS:
        acc += tl.load(bias_ptr + cols, mask=col_mask, other=0.0).to(tl.float32)
    if HAS_SOFTCAP:
        # tanh(y) = 1 - 2 / (exp(2y) + 1): saturates cleanly to +-1 for large |y|.
        acc = softcap * (1.0 - 2.0 / (tl.exp(2.0 * acc / softcap) + 1.0))
    return acc


@triton.jit
def linear_token_stats_kernel(
    hidden_ptr, hidden_row_stride, weight_ptr, weight_row_stride, bias_ptr, targets_ptr,
    target_logit_ptr, row_max_ptr, sumexp_ptr, shifted_sum_ptr, n_greater_ptr, n_tied_before_ptr,
    n_rows, n_vocab, dim, vocab_per_split, softcap,
    HAS_BIAS: tl.constexpr, HAS_SOFTCAP: tl.constexpr,
    DOT_PRECISION: tl.constexpr, DOT_IN_FP32: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):
    split = tl.program_id(1)
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_mask = rows < n_rows
    hidden_rows = hidden_ptr + rows[:, None] * hidden_row_stride
    dims = tl.arange(0, BLOCK_D)

    targets = tl.load(targets_ptr + rows, mask=row_mask, other=0).to(tl.int64)
    safe_targets = tl.where((targets >= 0) & (targets < n_vocab), targets, 0)
    # Target logits first (one D-long dot per row against the gathered weight row),
    # so that the rank is counted in the same sweep over the vocabulary.
    target_weights = weight_ptr + safe_targets[:, None] * weight_row_stride
    target_acc = tl.zeros([BLOCK_N], tl.float32)
    for dim_start in range(0, dim, BLOCK_D):
        mask = row_mask[:, None] & (dim_start + dims < dim)[None, :]
        h = tl.load(hidden_rows + dim_start + dims[None, :], mask=mask, other=0.0)
        w = tl.load(target_weights + dim_start + dims[None, :], mask=mask, other=0.0)
        target_acc += tl.sum(h.to(tl.float32) * w.to(tl.float32), axis=1)
    target_logits = _finish_logits(target_acc, bias_ptr, safe_targets, row_mask, softcap,
                                   HAS_BIAS, HAS_SOFTCAP)
    if split == 0:
        tl.store(target_logit_ptr + rows, target_logits, mask=row_mask)
    target_logits = target_logits[:, None]

    row_max, sumexp, shifted_sum, n_greater, n_tied_before = init_accumulators(BLOCK_N, 1)
    vocab_start = split * vocab_per_split
    vocab_end = tl.minimum(vocab_start + vocab_per_split, n_vocab)
    for tile_start in range(vocab_start, vocab_end, BLOCK_V):
        cols = tile_start + tl.arange(0, BLOCK_V)
        col_mask = cols < vocab_end
        # int64: col * weight_row_stride overflows int32 once V * D passes 2**31.
        weight_cols = weight_ptr + cols.to(tl.int64)[None, :] * weight_row_stride
        logits = tl.zeros([BLOCK_N, BLOCK_V], tl.float32)
        for dim_start in range(0, dim, BLOCK_D):
            dim_mask = (dim_start + dims < dim)
            h = tl.load(hidden_rows + dim_start + dims[None, :],
                        mask=row_mask[:, None] & dim_mask[None, :], other=0.0)
            w_t = tl.load(weight_cols + dim_start + dims[:, None],
                          mask=dim_mask[:, None] & col_mask[None, :], other=0.0)
            if DOT_IN_FP32:
                h, w_t = h.to(tl.float32), w_t.to(tl.float32)
            logits = tl.dot(h, w_t, logits, input_precision=DOT_PRECISION)
        logits = _finish_logits(logits, bias_ptr, cols[None, :], col_mask[None, :], softcap,
                                HAS_BIAS, HAS_SOFTCAP)
        logits = tl.where(col_mask[None, :], logits, float("-inf"))
        row_max, sumexp, shifted_sum, n_greater, n_tied_before = accumulate_tile(
            row_max, sumexp, shifted_sum, n_greater, n_tied_before,
            logits, cols, col_mask, safe_targets[:, None], target_logits, 1)

    store_accumulators(
        row_max_ptr, sumexp_ptr, shifted_sum_ptr, n_greater_ptr, n_tied_before_ptr,
        split * n_rows + rows, row_mask,
        row_max, sumexp, shifted_sum, n_greater, n_tied_before,
    )


def dot_options(dtype: torch.dtype, *, interpreted: bool) -> dict[str, str | bool]:
    """The kernel's ``DOT_PRECISION`` and ``DOT_IN_FP32`` for operands of ``dtype``,
    compiled for a GPU or run in the interpreter."""
    return {
        # fp32 operands would otherwise go through TF32 (10-bit mantissa).
        "DOT_PRECISION": "ieee" if dtype == torch.float32 or interpreted else "tf32",
        # The interpreter multiplies bf16 tiles wrongly; products of bf16 values
        # are exact in fp32, so upcasting there changes no result.
        "DOT_IN_FP32": interpreted and dtype == torch.bfloat16,
    }


def launch(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None,
    softcap: float | None,
    *,
    tiling: Tiling | None = None,
    n_splits: int | None = None,
) -> _common.Partials:
    """Run the kernel; ``tiling``/``n_splits`` override the GPU defaults (tests use
    16-wide tiles under the interpreter)."""
    n_rows, dim = hidden.shape
    n_vocab = weight.shape[0]
    block_n, block_v, block_d, num_warps, num_stages = tiling or GPU_TILING[hidden.dtype]
    row_programs = triton.cdiv(n_rows, block_n)
    n_splits, vocab_per_split = plan_splits(row_programs, n_vocab, block_v, hidden.device, n_splits)
    partials = _common.new_partials(n_splits, n_rows, hidden.device)
    linear_token_stats_kernel[(row_programs, n_splits)](
        hidden, hidden.stride(0), weight, weight.stride(0),
        hidden if bias is None else bias,  # never read without HAS_BIAS
        targets, *partials,
        n_rows, n_vocab, dim, vocab_per_split, 1.0 if softcap is None else float(softcap),
        HAS_BIAS=bias is not None, HAS_SOFTCAP=softcap is not None,
        **dot_options(hidden.dtype, interpreted=not hidden.is_cuda),
        BLOCK_N=block_n, BLOCK_V=block_v, BLOCK_D=block_d,
        num_warps=num_warps, num_stages=num_stages,
    )
    return partials
