"""The Triton kernels compiled ahead of time for sm_90 (H100, H200) and sm_80
(A100), on a machine without a GPU.

The interpreter that runs ``tests/test_kernels.py`` never lowers a kernel to
the GPU. ``benchmarks/kernel_resources.py`` compiles every configuration the
kernels' launchers choose at the sizes docs/kernels.md promises; the slow
test runs it and fails on a compile error, any register spill, or shared
memory above a block's limit on the target. The quick tests check that rule
and the occupancy arithmetic against records worked out by hand.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("triton")
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import kernel_resources  # noqa: E402

SM_90 = kernel_resources.TARGETS["sm_90"]
SM_80 = kernel_resources.TARGETS["sm_80"]


def compiled(**fields) -> kernel_resources.Resources:
    """A record of a clean compiled kernel, with ``fields`` changed."""
    clean = kernel_resources.Resources(
        kernel="linear_token_stats", dtype="bfloat16", config="128x64x64, 8 warps, 3 stages",
        sizes="multiples of 16", target="sm_90", num_warps=8, registers=180, shared=73728,
    )
    return dataclasses.replace(clean, **fields)


# ------------------------------------------------------------------ the rule


def test_rule_accepts_a_kernel_without_spills_within_shared_memory():
    assert kernel_resources.violations(compiled(), SM_90) == []
    assert kernel_resources.violations(compiled(stack_frame=8), SM_90) == []  # a stack frame is no spill


@pytest.mark.parametrize("stores, loads", [(4, 0), (0, 4), (28, 28)])
def test_rule_rejects_any_register_spill(stores, loads):
    found = kernel_resources.violations(compiled(registers=255, spill_stores=stores, spill_loads=loads), SM_90)
    assert found == [f"spills registers ({stores} bytes stored, {loads} loaded)"]


def test_rule_rejects_shared_memory_above_the_targets_block_limit():
    # 200 KiB fits an sm_90 block (227 KiB) but not an sm_80 one (163 KiB).
    record = compiled(shared=200 * 1024)
    assert kernel_resources.violations(record, SM_90) == []
    assert kernel_resources.violations(record, SM_80) == [
        "needs 204800 bytes of shared memory, sm_80 allows 166912"
    ]
    assert kernel_resources.violations(compiled(shared=227 * 1024 + 1), SM_90)


def test_rule_rejects_a_compile_error():
    found = kernel_resources.violations(compiled(error="CompilationError: at 12:4"), SM_90)
    assert found == ["compile error: CompilationError: at 12:4"]


def test_ptxas_report_is_read_and_an_unknown_one_refused():
    log = (
        "ptxas info    : Compiling entry function 'linear_token_stats_kernel' for 'sm_90a'\n"
        "ptxas info    : Function properties for linear_token_stats_kernel\n"
        "    32 bytes stack frame, 28 bytes spill stores, 24 bytes spill loads\n"
        "ptxas info    : Used 255 registers, used 1 barriers, 32 bytes cumulative stack size, 2048 bytes smem\n"
    )
    assert kernel_resources.parse_ptxas_log(log) == {
        "registers": 255, "spill_stores": 28, "spill_loads": 24, "stack_frame": 32, "static_shared": 2048,
    }
    with pytest.raises(ValueError, match="not understood"):
        kernel_resources.parse_ptxas_log("ptxas info    : 0 bytes gmem\n")


# --------------------------------------------------------------- occupancy


@pytest.mark.parametrize(
    "target, registers, warps, shared, blocks, limit",
    [
        # 255 registers round up to 256 per thread: 8192 per warp, 8 warps fill 64K.
        (SM_90, 255, 8, 98304, 1, "registers"),
        # 64 registers: 2048 per warp, 32 warps, two 16-warp blocks.
        (SM_90, 64, 16, 64, 2, "registers"),
        # 101 KiB per block (100 + the reserved 1) once in sm_80's 164 KiB.
        (SM_80, 32, 4, 100 * 1024, 1, "shared memory"),
        # 40 registers: 1280 per warp, 51 warps; 64 warps would allow 64 blocks, smem 228.
        (SM_90, 40, 1, 0, 32, "blocks"),
        # 32 registers: 1024 per warp, 64 warps, two 32-warp blocks; the warp limit ties (registers named first).
        (SM_90, 32, 32, 0, 2, "registers"),
    ],
)
def test_occupancy_matches_hand_computed_limits(target, registers, warps, shared, blocks, limit):
    occ = kernel_resources.occupancy(compiled(registers=registers, num_warps=warps, shared=shared), target)
    assert (occ.blocks_per_sm, occ.warps_per_sm, occ.limit) == (blocks, blocks * warps, limit)


def test_occupancy_says_what_fits_one_more_block():
    # Two 8-warp blocks need at most 65536 / (2 * 8 * 32) = 128 registers per thread.
    assert kernel_resources.occupancy(compiled(registers=192), SM_90).one_more_block == "<= 128 registers/thread"
    # Two blocks in sm_80's 164 KiB: 82 KiB each, less the reserved 1 KiB.
    occ = kernel_resources.occupancy(compiled(registers=32, num_warps=4, shared=100 * 1024), SM_80)
    assert occ.one_more_block.startswith(f"<= {82 * 1024 - 1024} bytes smem")


def test_token_stats_bytes_per_token_counts_row_target_and_partials():
    # bf16 row of 128256 logits, an int64 target, the target logit again, 6 fp32/int32 partials.
    assert kernel_resources.token_stats_bytes_per_token(128256, 2) == 128256 * 2 + 8 + 2 + 24
    assert kernel_resources.token_stats_bytes_per_token(1000, 4, splits=3) == 4000 + 8 + 4 + 4 * 16


# ----------------------------------------------------- the compiled kernels


@pytest.mark.slow
def test_every_launcher_config_compiles_for_hopper_and_ampere_without_spills(tmp_path):
    """Minutes on two cores: about sixty kernels, each through ptxas."""
    from cotsieve.kernels._triton_linear_token_stats import GPU_TILING

    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    report = tmp_path / "resources.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "kernel_resources.py"), "--check", "--json", str(report)],
        capture_output=True, text=True, env=env, timeout=1800,
    )
    assert report.exists(), proc.stderr[-3000:]
    records = [kernel_resources.Resources(**fields) for fields in json.loads(report.read_text())]
    failures = [
        f"{r.kernel} {r.dtype} [{r.config}] ({r.sizes}) {r.target}: {found}"
        for r in records
        if (found := kernel_resources.violations(r, kernel_resources.TARGETS[r.target]))
    ]
    assert not failures, "\n".join(failures)
    assert proc.returncode == 0, proc.stderr[-3000:]

    compiled_for = {(r.kernel, r.dtype, r.target) for r in records}
    kernels, targets = ("token_stats", "linear_token_stats"), ("sm_90", "sm_80")
    assert compiled_for == set(itertools.product(kernels, kernel_resources.DTYPE_NAMES, targets))
    # Both size classes, and the fused kernel with each of bias and softcap.
    assert {r.sizes for r in records} == {"multiples of 16", "not multiples of 16"}
    assert len({r.config for r in records if r.kernel == "linear_token_stats" and r.dtype == "bfloat16"}) == 4
    # The tiles compiled are the launcher's own.
    for record in records:
        if record.kernel == "linear_token_stats":
            import torch

            block_n, block_v, block_d, warps, stages = GPU_TILING[getattr(torch, record.dtype)]
            assert record.config.startswith(f"{block_n}x{block_v}x{block_d}, {warps} warps, {stages} stages")
