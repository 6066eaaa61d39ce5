"""Chunked torch backend: the same partial accumulators as the Triton kernels,
built block by block so memory stays bounded whatever N and V are."""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import _common

#: fp32 elements in one logits block (16 MiB); a few temporaries of this size live at once.
BLOCK_ELEMENTS = 1 << 22

TargetLogits = Callable[[slice, torch.Tensor], torch.Tensor]
LogitsBlock = Callable[[slice, slice], torch.Tensor]


def block_accumulators(
    logits: torch.Tensor, first_col: int, targets: torch.Tensor, target_logits: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Accumulators of one fp32 block ``[rows, cols]`` starting at column ``first_col``."""
    block_max = logits.amax(dim=1)
    safe_max = torch.where(torch.isneginf(block_max), 0.0, block_max)
    shifted = logits - safe_max[:, None]
    # -inf entries carry no mass; a finite stand-in keeps 0 * -inf out of the sum.
    shifted.clamp_(min=torch.finfo(torch.float32).min)
    weights = shifted.exp()
    target_logits = target_logits[:, None]
    n_greater = (logits > target_logits).sum(dim=1, dtype=torch.int32)
    # The target column never counts, even when the given target logit differs
    # from the block's value in the last bit (fused path).
    local = targets - first_col
    in_block = (local >= 0) & (local < logits.shape[1])
    own = logits.gather(1, torch.where(in_block, local, 0)[:, None])
    n_greater -= (in_block[:, None] & (own > target_logits))[:, 0].int()
    cols = torch.arange(first_col, first_col + logits.shape[1], device=logits.device)
    tied_before = (logits == target_logits) & (cols < targets[:, None])
    return (
        block_max,
        weights.sum(dim=1),
        torch.linalg.vecdot(weights, shifted),
        n_greater,
        tied_before.sum(dim=1, dtype=torch.int32),
    )


def merge_into(
    running: tuple[torch.Tensor, ...] | None, block: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, ...]:
    """Fold one block's accumulators into the running ones of the same rows."""
    if running is None:
        return block
    softmax_parts = (torch.stack(pair) for pair in zip(running[:3], block[:3]))
    return (*_common.merge_partials(*softmax_parts), running[3] + block[3], running[4] + block[4])


def chunk_sizes(n_vocab: int, width: int = 1) -> tuple[int, int]:
    """Rows and columns per block such that the logits block and the ``width``-wide
    per-row / per-column operands of a block each stay within ``BLOCK_ELEMENTS``."""
    per_operand = max(1, BLOCK_ELEMENTS // width)
    vocab_chunk = min(n_vocab, per_operand)
    row_chunk = min(per_operand, max(1, BLOCK_ELEMENTS // vocab_chunk))
    return row_chunk, vocab_chunk


def chunked_partials(
    targets: torch.Tensor,
    n_vocab: int,
    target_logits: TargetLogits,
    logits_block: LogitsBlock,
    width: int = 1,
) -> _common.Partials:
    """Walk ``[N, V]`` in ``row_chunk x vocab_chunk`` fp32 blocks.

    ``target_logits(rows, targets)`` gives the fp32 target logits of a row range (read
    first, so ranks are counted in the same sweep) and ``logits_block(rows,
    cols)`` one fp32 block; targets outside ``[0, V)`` read column 0, and
    ``finalize`` overrides their statistics.  ``width`` is the hidden size of
    the operands behind a block (1 when the logits are given).
    """
    n_rows = targets.shape[0]
    row_chunk, vocab_chunk = chunk_sizes(n_vocab, width)
    partials = _common.new_partials(1, n_rows, targets.device)
    safe_targets = torch.where((targets >= 0) & (targets < n_vocab), targets, 0).long()
    for row_start in range(0, n_rows, row_chunk):
        rows = slice(row_start, min(row_start + row_chunk, n_rows))
        row_targets = safe_targets[rows]
        row_target_logits = target_logits(rows, row_targets)
        partials.target_logit[rows] = row_target_logits
        running = None
        for col_start in range(0, n_vocab, vocab_chunk):
            cols = slice(col_start, min(col_start + vocab_chunk, n_vocab))
            block = block_accumulators(
                logits_block(rows, cols), col_start, row_targets, row_target_logits
            )
            running = merge_into(running, block)
        for field, value in zip(partials[1:], running):
            field[0, rows] = value
    return partials
