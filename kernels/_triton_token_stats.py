"""Triton kernel: one sweep over materialised logits ``[N, V]``."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import _common
from ._triton_common import accumulate_tile, init_accumulators, plan_splits, store_accumulators

#: Columns per tile.  With 16 warps this compiles for sm_90 to ~64 registers per
#: thread, so two programs share an SM and keep ~16 KiB of loads in flight.
MAX_BLOCK_V = 4096
#: Elements per tile when short rows are packed several to a program.
TILE_ELEMENTS = 4096
NUM_WARPS = 16


@triton.jit
def token_stats_kernel(
    logits_ptr, row_stride, targets_ptr,
    target_logit_ptr, row_max_ptr, sumexp_ptr, shifted_sum_ptr, n_greater_ptr, n_tied_before_ptr,
    n_rows, n_vocab, vocab_per_split,
    ROWS: tl.constexpr, BLOCK_V: tl.constexpr,
):
    split = tl.program_id(1)
    rows = tl.program_id(0).to(tl.int64) * ROWS + tl.arange(0, ROWS)
    row_mask = rows < n_rows
    # int64: row * row_stride overflows int32 for N * V beyond 2**31.
    row_ptrs = logits_ptr + rows[:, None] * row_stride

    targets = tl.load(targets_ptr + rows, mask=row_mask, other=0).to(tl.int64)
    safe_targets = tl.where((targets >= 0) & (targets < n_vocab), targets, 0)[:, None]
    # The target logit comes first so that ranks are counted in the same sweep.
    target_logits = tl.load(row_ptrs + safe_targets, mask=row_mask[:, None]).to(tl.float32)

    row_max, sumexp, shifted_sum, n_greater, n_tied_before = init_accumulators(ROWS, BLOCK_V)
    vocab_start = split * vocab_per_split
    vocab_end = tl.minimum(vocab_start + vocab_per_split, n_vocab)
    for tile_start in range(vocab_start, vocab_end, BLOCK_V):
        cols = tile_start + tl.arange(0, BLOCK_V)
        col_mask = cols < vocab_end
        tile = tl.load(
            row_ptrs + cols[None, :],
            mask=row_mask[:, None] & col_mask[None, :],
            other=float("-inf"),
        ).to(tl.float32)
        row_max, sumexp, shifted_sum, n_greater, n_tied_before = accumulate_tile(
            row_max, sumexp, shifted_sum, n_greater, n_tied_before,
            tile, cols, col_mask, safe_targets, target_logits, BLOCK_V)

    if split == 0:
        tl.store(target_logit_ptr + rows, tl.max(target_logits, axis=1), mask=row_mask)
    store_accumulators(
        row_max_ptr, sumexp_ptr, shifted_sum_ptr, n_greater_ptr, n_tied_before_ptr,
        split * n_rows + rows, row_mask,
        row_max, sumexp, shifted_sum, n_greater, n_tied_before,
    )


def tile_shape(n_vocab: int, block_v: int | None) -> tuple[int, int]:
    """``(ROWS, BLOCK_V)``: whole short rows packed together, long rows one per program."""
    block_v = block_v or min(triton.next_power_of_2(n_vocab), MAX_BLOCK_V)
    return max(1, TILE_ELEMENTS // block_v), block_v


def launch(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    block_v: int | None = None,
    n_splits: int | None = None,
) -> _common.Partials:
    """Run the kernel; ``block_v``/``n_splits`` override the tiling (tests use
    small values to exercise multi-tile and multi-split merges)."""
    n_rows, n_vocab = logits.shape
    rows, block_v = tile_shape(n_vocab, block_v)
    row_programs = triton.cdiv(n_rows, rows)
    n_splits, vocab_per_split = plan_splits(row_programs, n_vocab, block_v, logits.device, n_splits)
    partials = _common.new_partials(n_splits, n_rows, logits.device)
    token_stats_kernel[(row_programs, n_splits)](
        logits, logits.stride(0), targets, *partials,
        n_rows, n_vocab, vocab_per_split,
        ROWS=rows, BLOCK_V=block_v,
        num_warps=NUM_WARPS,
    )
    return partials
