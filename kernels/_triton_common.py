"""Triton helpers shared by the token-statistics kernels.

Imported only when the Triton backend runs, so ``cotsieve.kernels`` imports
without triton.  Each program owns a ``[ROWS, cols]`` tile of logits at a
time and folds it into running per-row accumulators:

* ``row_max``      running maximum, shape ``[ROWS, 1]``;
* ``sumexp``       ``sum exp(x - row_max)``;
* ``shifted_sum``  ``sum exp(x - row_max) * (x - row_max)`` (entropy is
  ``log(sumexp) - shifted_sum / sumexp``, free of the cancellation that
  ``lse - E[x]`` suffers for peaked rows);
* ``n_greater`` / ``n_tied_before``  rank and tie-break counts.

With ``LANES == cols`` the sums stay per lane and are reduced once at the end
(a bandwidth-bound sweep then does one cross-lane reduction per tile, for
the max); with ``LANES == 1`` they are reduced every tile, which keeps the
register footprint small next to a matmul accumulator.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

#: Upper bound on vocabulary splits; partials cost ``N * splits * 20`` bytes.
MAX_SPLITS = 32


@triton.jit
def _fold(values, LANES: tl.constexpr):
    if LANES == 1:
        return tl.sum(values, axis=1, keep_dims=True)
    else:
        return values


@triton.jit
def init_accumulators(ROWS: tl.constexpr, LANES: tl.constexpr):
    row_max = tl.full([ROWS, 1], float("-inf"), tl.float32)
    sumexp = tl.zeros([ROWS, LANES], tl.float32)
    shifted_sum = tl.zeros([ROWS, LANES], tl.float32)
    n_greater = tl.zeros([ROWS, LANES], tl.int32)
    n_tied_before = tl.zeros([ROWS, LANES], tl.int32)
    return row_max, sumexp, shifted_sum, n_greater, n_tied_before


@triton.jit
def accumulate_tile(
    row_max, sumexp, shifted_sum, n_greater, n_tied_before,
    logits, cols, col_mask, targets, target_logits,
    LANES: tl.constexpr,
):
    """Fold a fp32 tile ``logits [ROWS, C]`` (``-inf`` where ``~col_mask``).

    ``cols [C]`` are the vocabulary indices, ``targets``/``target_logits``
    ``[ROWS, 1]``.  The target column itself never counts as greater (the
    fused kernel computes the target logit separately, so the two values may
    differ in the last bit).
    """
    new_max = tl.maximum(row_max, tl.max(logits, axis=1, keep_dims=True))
    safe_max = tl.where(new_max == float("-inf"), 0.0, new_max)
    # Moving the old accumulators onto the new max: mass scales by exp(old - new),
    # every (x - old) shifts by (old - new).  Empty rows (old max -inf) stay zero.
    rescale = tl.exp(row_max - safe_max)
    shift = tl.where(row_max == float("-inf"), 0.0, row_max - safe_max)
    shifted_sum = (shifted_sum + shift * sumexp) * rescale
    sumexp = sumexp * rescale

    centred = logits - safe_max
    weights = tl.exp(centred)
    sumexp += _fold(weights, LANES)
    # Entries at -inf carry no mass; keep their -inf out of the product (0 * -inf).
    shifted_sum += _fold(weights * tl.where(weights > 0, centred, 0.0), LANES)

    col_ids = cols[None, :]
    in_tile = col_mask[None, :]
    greater = (logits > target_logits) & (col_ids != targets) & in_tile
    tied_before = (logits == target_logits) & (col_ids < targets) & in_tile
    n_greater += _fold(greater.to(tl.int32), LANES)
    n_tied_before += _fold(tied_before.to(tl.int32), LANES)
    return new_max, sumexp, shifted_sum, n_greater, n_tied_before


@triton.jit
def store_accumulators(
    row_max_ptr, sumexp_ptr, shifted_sum_ptr, n_greater_ptr, n_tied_before_ptr,
    offsets, mask,
    row_max, sumexp, shifted_sum, n_greater, n_tied_before,
):
    """Reduce lanes and write one split's partials at ``offsets [ROWS]``."""
    tl.store(row_max_ptr + offsets, tl.max(row_max, axis=1), mask=mask)
    tl.store(sumexp_ptr + offsets, tl.sum(sumexp, axis=1), mask=mask)
    tl.store(shifted_sum_ptr + offsets, tl.sum(shifted_sum, axis=1), mask=mask)
    tl.store(n_greater_ptr + offsets, tl.sum(n_greater, axis=1), mask=mask)
    tl.store(n_tied_before_ptr + offsets, tl.sum(n_tied_before, axis=1), mask=mask)


@functools.cache
def _multiprocessor_count(device_index: int) -> int:
    return torch.cuda.get_device_properties(device_index).multi_processor_count


def plan_splits(
    row_programs: int, n_vocab: int, block_v: int, device: torch.device, n_splits: int | None
) -> tuple[int, int]:
    """Split the vocabulary so that short batches still fill the GPU.

    Returns ``(n_splits, vocab_per_split)``; each split covers a whole number of
    ``block_v`` tiles.  Under the interpreter one split is enough unless asked.
    """
    if n_splits is None:
        wanted_programs = 2 * _multiprocessor_count(device.index or 0) if device.type == "cuda" else 1
        n_splits = triton.cdiv(wanted_programs, row_programs)
    n_tiles = triton.cdiv(n_vocab, block_v)
    n_splits = max(1, min(n_splits, MAX_SPLITS, n_tiles))
    vocab_per_split = triton.cdiv(n_tiles, n_splits) * block_v
    return triton.cdiv(n_vocab, vocab_per_split), vocab_per_split
