"""benchmarks/gpu_check.py, the one-call device check: its dry run (tiny
shapes in Triton's interpreter on the CPU) end to end into ``$OUT``, and the
rule that passes or fails a kernel against the float64 reference."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import gpu_check  # noqa: E402

DTYPES = ("float32", "bfloat16", "float16")
KERNELS = ("token_stats", "linear_token_stats")


def reference_stats():
    return {
        "nll": torch.tensor([1.5, 0.0, float("nan")], dtype=torch.float64),
        "entropy": torch.tensor([2.0, 0.25, 3.0], dtype=torch.float64),
        "lse": torch.tensor([10.0, -4.0, 7.0], dtype=torch.float64),
        "rank": torch.tensor([3, -1, -2], dtype=torch.int32),
        "top1": torch.tensor([False, False, False]),
    }


def as_kernel_output(ref, **changes):
    out = {name: value.float() if value.is_floating_point() else value.clone() for name, value in ref.items()}
    out.update(changes)
    return out


def test_compare_passes_within_tolerance_and_fails_beyond_it():
    ref = reference_stats()
    close = as_kernel_output(ref, lse=ref["lse"].float() + 1e-5)  # within 2e-5 + 2e-5 * |lse|
    assert gpu_check.compare(torch, close, ref, 2e-5)["status"] == "pass"

    off = gpu_check.compare(torch, as_kernel_output(ref, nll=ref["nll"].float() + 1e-3), ref, 2e-5)
    assert off["status"] == "FAIL"
    assert off["max_abs_error"]["nll"] == pytest.approx(1e-3, rel=1e-3)  # the NaN row counts as equal

    ranks = gpu_check.compare(torch, as_kernel_output(ref, rank=torch.tensor([2, -1, -2], dtype=torch.int32)), ref, 1.0)
    assert (ranks["status"], ranks["rank_top1_mismatches"]) == ("FAIL", 1)


def test_output_folder_is_required():
    env = {key: value for key, value in os.environ.items() if key != "OUT"}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 2
    assert "--out or $OUT" in proc.stderr


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """One dry run, writing into the folder that ``$OUT`` names."""
    out = tmp_path_factory.mktemp("gpu-check-out")
    env = {**os.environ, "OUT": str(out), "TRITON_CACHE_DIR": str(out.parent / "triton-cache")}
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--dry-run"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_check.json").read_text())
    return report, (out / "gpu_check.md").read_text()


def test_dry_run_checks_every_kernel_dtype_and_flag_against_the_reference(dry_run):
    report, _ = dry_run
    assert report["dry_run"] is True and report["device"] == "CPU (Triton interpreter)"
    rows = report["correctness"]
    assert {(row["kernel"], row["dtype"]) for row in rows} == set(itertools.product(KERNELS, DTYPES))
    assert [row for row in rows if row["status"] != "pass"] == []
    fused_flags = {row["flags"] for row in rows if row["kernel"] == "linear_token_stats"}
    assert fused_flags == {"", "bias", "softcap", "bias, softcap"}


def test_dry_run_times_ours_and_the_peers_and_says_which_are_missing(dry_run):
    report, _ = dry_run
    assert report["ceilings"]["copy_gbs"] > 0 and report["ceilings"]["matmul_tflops"] > 0
    rows = {row["method"]: row for row in report["throughput"]}
    for ours_or_torch in ("cotsieve token_stats", "torch cross_entropy",
                          "cotsieve linear_token_stats", "torch matmul + cross_entropy"):
        assert rows[ours_or_torch]["status"] == "ok" and rows[ours_or_torch]["ms"] > 0
        assert rows[ours_or_torch]["peak_extra_mib"] is None  # measured on CUDA only
    for peer, (module, package) in gpu_check.PEER_PACKAGES.items():
        if importlib.util.find_spec(module) is None:
            assert rows[peer] == {**rows[peer], "status": "skipped", "detail": f"{package} not installed"}
        else:  # installed here: it runs, or its failure on the CPU is its own row
            assert rows[peer]["status"] in ("ok", "failed")
    assert report["versions"]["torch"] == importlib.metadata.version("torch")


def test_dry_run_markdown_shows_every_row(dry_run):
    report, text = dry_run
    assert text.startswith("# Device check: CPU (Triton interpreter)")
    for row in report["correctness"]:
        assert f"| {row['kernel']} | {row['dtype']} | {row['shape']} | {row['flags']} | pass |" in text
    for row in report["throughput"]:
        assert f"| {row['method']} | {row['shape']} |" in text
        if row["status"] != "ok":
            assert f"| {row['status']}: {row['detail']} |" in text
