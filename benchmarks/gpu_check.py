"""One-call device check of the per-token statistics kernels.

On one CUDA GPU, within a time budget (``--budget-s``, 420 s by default, so
the whole call stays under 8 minutes with Python's and Triton's start-up):

1. ceilings measured on this device: HBM copy bandwidth (read + write) and
   the bf16 ``torch.matmul`` rate;
2. correctness of ``token_stats`` and ``linear_token_stats`` (fp32, bf16,
   fp16; with and without bias and softcap) against the float64 reference at
   the sizes docs/kernels.md promises (vocabularies of 32k to 256k, hidden
   sizes of 2k to 8k), with the tolerances given there;
3. time, rate and peak extra memory of ``token_stats`` against torch
   ``F.cross_entropy(reduction="none")`` (and with the entropy added) and
   Liger-Kernel's cross entropy; of ``linear_token_stats`` against torch
   matmul + cross entropy, Apple's cut-cross-entropy and Liger's fused linear
   cross entropy. The first of the warm-up calls includes Triton's compile.

It writes ``gpu_check.json`` and ``gpu_check.md`` into ``$OUT`` (or
``--out``), and exits 1 when a correctness row fails. A peer that is not
installed, or fails, is a row saying so; the other rows still run. The
kernels are those of this checkout's ``kernels/`` folder, so a machine that
has only a copy of the tree (torch and triton installed, cotsieve not) runs
it as it is. ``--dry-run`` runs tiny shapes on the CPU in Triton's
interpreter, to check the plumbing where there is no GPU.

    python benchmarks/gpu_check.py --out results/        # on a GPU
    python benchmarks/gpu_check.py --dry-run --out /tmp/x
    bash benchmarks/gpu_check.sh                          # installs the peers from ./wheelhouse first
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import kernel_resources  # noqa: E402  (stdlib only at import)

#: nll / entropy / lse tolerances (atol = rtol) of docs/kernels.md, "Accuracy and tests".
TOLERANCE = {"token_stats": 2e-5, "linear_token_stats": 1e-4}
IGNORE_INDEX = -100
#: Gemma 2's final-logit softcap.
SOFTCAP = 30.0
#: The peers bench_kernels.py builds when their packages import, with the package to install.
PEER_PACKAGES = {
    "liger cross_entropy": ("liger_kernel", "liger-kernel"),
    "liger fused linear CE": ("liger_kernel", "liger-kernel"),
    "cut-cross-entropy": ("cut_cross_entropy", "cut-cross-entropy"),
}


@dataclasses.dataclass(frozen=True)
class Plan:
    """Shapes and repetitions of one run: ``(N, V)`` logits, ``(N, V, D)`` fused."""

    token_correctness: tuple[tuple[int, int], ...]
    linear_correctness: tuple[tuple[int, int, int], ...]
    token_speed: tuple[tuple[int, int], ...]
    linear_speed: tuple[tuple[int, int, int], ...]
    copy_bytes: int
    matmul_size: int
    warmup: int
    rep: int


#: Budgeted for an H100: the float64 references of the largest rows take
#: about 10 GB; each timed method runs 2 + 5 times, the slowest (torch on
#: 8192 x 262144 x 8192) well under a second a call.
GPU_PLAN = Plan(
    token_correctness=((37, 32000), (1021, 50257), (509, 128256), (1021, 151936), (256, 262144)),
    linear_correctness=((37, 32000, 2048), (1021, 50257, 4096), (509, 128256, 4096), (256, 262144, 8192)),
    token_speed=((16384, 128256), (8192, 262144)),
    linear_speed=((16384, 128256, 4096), (8192, 262144, 8192)),
    copy_bytes=2**30,
    matmul_size=8192,
    warmup=2,
    rep=5,
)
#: Tiny shapes for the interpreter; odd sizes keep the masks exercised.
DRY_RUN_PLAN = Plan(
    token_correctness=((5, 1037), (3, 4100)),
    linear_correctness=((9, 300, 48), (3, 70, 20)),
    token_speed=((8, 2048),),
    linear_speed=((8, 256, 64),),
    copy_bytes=2**20,
    matmul_size=128,
    warmup=1,
    rep=2,
)


class Clock:
    """Seconds left of the run's budget."""

    def __init__(self, budget_s: float) -> None:
        self.start, self.budget_s = time.monotonic(), budget_s

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def spent(self) -> bool:
        return self.elapsed() > self.budget_s


@dataclasses.dataclass
class Device:
    """Where the run happens, and how it is timed there."""

    torch: Any
    bench: Any  # benchmarks/bench_kernels.py
    name: str

    @property
    def is_cuda(self) -> bool:
        return self.name == "cuda"

    def time_ms(self, fn: Callable[[], object], warmup: int, rep: int) -> float:
        timer = self.bench.cuda_time_ms if self.is_cuda else self.bench.cpu_time_ms
        return float(timer(fn, warmup, rep))

    def peak_extra_mib(self, fn: Callable[[], object]) -> float | None:
        return self.bench.peak_extra_bytes(fn) / 2**20 if self.is_cuda else None


# ----------------------------------------------------------------- ceilings


def ceilings(device: Device, plan: Plan) -> dict[str, float]:
    """Copy bandwidth (bytes read + written per second) and bf16 matmul rate on this device."""
    torch = device.torch
    source = torch.empty(plan.copy_bytes, dtype=torch.uint8, device=device.name)
    target = torch.empty_like(source)
    copy_ms = device.time_ms(lambda: target.copy_(source), plan.warmup, plan.rep)
    size = plan.matmul_size
    a, b = (torch.randn(size, size, dtype=torch.bfloat16, device=device.name) for _ in range(2))
    matmul_ms = device.time_ms(lambda: a @ b, plan.warmup, plan.rep)
    return {"copy_gbs": 2 * plan.copy_bytes / copy_ms / 1e6, "matmul_tflops": 2 * size**3 / matmul_ms / 1e9}


# -------------------------------------------------------------- correctness


def random_targets(torch: Any, n_rows: int, n_vocab: int, device: str) -> Any:
    """Random classes with the first and last class and one ignored row mixed in."""
    gen = torch.Generator().manual_seed(n_rows * 7919 + n_vocab)
    targets = torch.randint(0, n_vocab, (n_rows,), generator=gen)
    targets[: min(n_rows, 3)] = torch.tensor([0, n_vocab - 1, IGNORE_INDEX])[: min(n_rows, 3)]
    return targets.to(device)


def compare(torch: Any, out: dict, ref: dict, tolerance: float) -> dict[str, Any]:
    """``pass`` when nll/entropy/lse lie within ``tolerance`` (atol = rtol) of the
    float64 reference and rank/top1 are equal; the worst errors either way."""
    worst = {}
    within = True
    for name in ("nll", "entropy", "lse"):
        got, want = out[name].double(), ref[name]
        both_nan = got.isnan() & want.isnan()
        error = torch.where(both_nan, 0.0, (got - want).abs())
        allowed = tolerance + tolerance * want.abs()
        within &= bool(((error <= allowed) | both_nan).all())
        worst[name] = float(error.max()) if error.numel() else 0.0
    rank_mismatches = int((out["rank"] != ref["rank"]).sum()) + int((out["top1"] != ref["top1"]).sum())
    status = "pass" if within and rank_mismatches == 0 else "FAIL"
    return {"status": status, "max_abs_error": worst, "rank_top1_mismatches": rank_mismatches}


def check_token_stats(device: Device, kernels: Any, dtype: Any, n_rows: int, n_vocab: int) -> dict[str, Any]:
    torch = device.torch
    gen = torch.Generator().manual_seed(n_vocab)
    logits = (torch.randn(n_rows, n_vocab, generator=gen) * 3).to(dtype).to(device.name)
    targets = random_targets(torch, n_rows, n_vocab, device.name)
    out = kernels.token_stats(logits, targets, backend="triton")
    ref = kernels.reference.token_stats_reference(logits, targets)
    return compare(torch, out, ref, TOLERANCE["token_stats"])


def check_linear_token_stats(
    device: Device, kernels: Any, dtype: Any, shape: tuple[int, int, int], bias: bool, softcap: float | None
) -> dict[str, Any]:
    """Operands are small integers times a power of two: every logit is exact in
    fp32, so ranks must match exactly. The power of two keeps the logits' spread
    near 4 whatever D, so a softcap of 30 bends them without saturating."""
    torch = device.torch
    n_rows, n_vocab, dim = shape
    gen = torch.Generator().manual_seed(n_vocab + dim)
    scale = 2.0 ** -max(0, round(math.log2(math.sqrt(2 * dim) / 4)))

    def operand(*size: int, times: float = 1.0) -> Any:
        return (torch.randint(-2, 3, size, generator=gen) * times).to(dtype).to(device.name)

    hidden, weight = operand(n_rows, dim), operand(n_vocab, dim, times=scale)
    bias_values = operand(n_vocab, times=scale) if bias else None
    targets = random_targets(torch, n_rows, n_vocab, device.name)
    out = kernels.linear_token_stats(hidden, weight, targets, bias_values, softcap, backend="triton")
    ref = kernels.reference.linear_token_stats_reference(hidden, weight, targets, bias_values, softcap)
    return compare(torch, out, ref, TOLERANCE["linear_token_stats"])


def guarded(clock: Clock, torch: Any, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()``'s row, or why it did not run: budget spent, out of memory, an error."""
    if clock.spent():
        return {"status": "skipped", "detail": "time budget spent"}
    try:
        return run()
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return {"status": "failed", "detail": "out of memory"}
    except Exception as err:  # noqa: BLE001 - one broken row must not stop the others
        return {"status": "failed", "detail": f"{type(err).__name__}: {err}"[:300]}


def correctness(device: Device, kernels: Any, plan: Plan, clock: Clock) -> list[dict[str, Any]]:
    torch = device.torch
    rows = []
    flag_cycle = ((False, None), (True, None), (False, SOFTCAP), (True, SOFTCAP))
    for dtype_index, dtype_name in enumerate(("float32", "bfloat16", "float16")):
        dtype = getattr(torch, dtype_name)
        for n_rows, n_vocab in plan.token_correctness:
            row = guarded(clock, torch, lambda: check_token_stats(device, kernels, dtype, n_rows, n_vocab))
            rows.append({"kernel": "token_stats", "dtype": dtype_name, "shape": f"{n_rows} x {n_vocab}",
                         "flags": "", **row})
        for index, shape in enumerate(plan.linear_correctness):
            # Rotating the flags over shapes and dtypes compiles each variant of the fused kernel.
            bias, softcap = flag_cycle[(dtype_index + index) % len(flag_cycle)]
            row = guarded(clock, torch,
                          lambda: check_linear_token_stats(device, kernels, dtype, shape, bias, softcap))
            flags = ", ".join(name for name, on in (("bias", bias), ("softcap", softcap)) if on)
            rows.append({"kernel": "linear_token_stats", "dtype": dtype_name,
                         "shape": " x ".join(map(str, shape)), "flags": flags, **row})
    return rows


# ---------------------------------------------------------------- throughput


def timed(device: Device, clock: Clock, fn: Callable[[], object], plan: Plan) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        with device.torch.no_grad():
            peak = device.peak_extra_mib(fn)
            return {"status": "ok", "ms": device.time_ms(fn, plan.warmup, plan.rep), "peak_extra_mib": peak}

    return guarded(clock, device.torch, run)


def with_missing_peers(methods: dict[str, Callable[[], object]], expected: tuple[str, ...]) -> dict[str, Any]:
    """``methods`` plus a ``None`` entry for each expected peer whose package did not import."""
    return {**methods, **{name: None for name in expected if name not in methods}}


def peer_row(name: str) -> dict[str, Any]:
    module, package = PEER_PACKAGES[name]
    if importlib.util.find_spec(module) is None:
        return {"status": "skipped", "detail": f"{package} not installed"}
    return {"status": "skipped", "detail": f"{package} installed but did not import"}


def speed_rows(device: Device, clock: Clock, plan: Plan, section: str, shape: tuple[int, ...],
               methods: dict[str, Any], rate: Callable[[float], float], ceiling: float) -> list[dict[str, Any]]:
    rows = []
    for name, fn in methods.items():
        row = peer_row(name) if fn is None else timed(device, clock, fn, plan)
        if row.get("ms"):
            row["rate"] = rate(row["ms"])
            row["share_of_ceiling"] = row["rate"] / ceiling
        rows.append({"section": section, "method": name, "shape": " x ".join(map(str, shape)), **row})
    return rows


def token_speed(device: Device, kernels: Any, plan: Plan, clock: Clock, copy_gbs: float) -> list[dict[str, Any]]:
    torch, bench = device.torch, device.bench
    rows = []
    for n_rows, n_vocab in plan.token_speed:
        logits = torch.randn(n_rows, n_vocab, dtype=torch.bfloat16, device=device.name)
        targets = torch.randint(0, n_vocab, (n_rows,), device=device.name)
        methods = {
            "cotsieve token_stats": lambda: kernels.token_stats(logits, targets, backend="triton"),
            "torch cross_entropy": lambda: torch.nn.functional.cross_entropy(logits, targets, reduction="none"),
            **bench.logits_peers(logits, targets),
        }
        n_bytes = logits.numel() * logits.element_size()
        rows += speed_rows(device, clock, plan, "token_stats", (n_rows, n_vocab),
                           with_missing_peers(methods, ("liger cross_entropy",)),
                           lambda ms: n_bytes / ms / 1e6, copy_gbs)
        del logits, targets, methods
    return rows


def linear_speed(device: Device, kernels: Any, plan: Plan, clock: Clock, matmul_tflops: float) -> list[dict[str, Any]]:
    torch, bench = device.torch, device.bench
    rows = []
    for n_rows, n_vocab, dim in plan.linear_speed:
        hidden = torch.randn(n_rows, dim, dtype=torch.bfloat16, device=device.name)
        weight = torch.randn(n_vocab, dim, dtype=torch.bfloat16, device=device.name) / dim**0.5
        targets = torch.randint(0, n_vocab, (n_rows,), device=device.name)
        methods = {
            "cotsieve linear_token_stats": lambda: kernels.linear_token_stats(hidden, weight, targets, backend="triton"),
            "torch matmul + cross_entropy": lambda: torch.nn.functional.cross_entropy(
                hidden @ weight.T, targets, reduction="none"),
            "torch matmul + CE + entropy": lambda: bench.torch_cross_entropy_and_entropy(hidden @ weight.T, targets),
            **bench.linear_peers(hidden, weight, targets),
        }
        flops = 2 * n_rows * n_vocab * dim
        rows += speed_rows(device, clock, plan, "linear_token_stats", (n_rows, n_vocab, dim),
                           with_missing_peers(methods, ("cut-cross-entropy", "liger fused linear CE")),
                           lambda ms: flops / ms / 1e9, matmul_tflops)
        del hidden, weight, targets, methods
    return rows


# -------------------------------------------------------------------- report


def versions() -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in ("torch", "triton", "liger-kernel", "cut-cross-entropy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def markdown(report: dict[str, Any]) -> str:
    ceiling = report["ceilings"]
    lines = [
        f"# Device check: {report['device']}",
        "",
        f"{'Dry run (CPU, Triton interpreter, tiny shapes): plumbing only. ' if report['dry_run'] else ''}"
        f"Elapsed {report['elapsed_s']:.0f} s of a {report['budget_s']:.0f} s budget. "
        + ", ".join(f"{name} {version or 'absent'}" for name, version in report["versions"].items()) + ".",
        "",
        f"Ceilings on this device: copy {ceiling['copy_gbs']:.3g} GB/s (read + write), "
        f"bf16 matmul {ceiling['matmul_tflops']:.3g} TFLOP/s.",
        "",
        "## Correctness against the float64 reference",
        "",
        "| kernel | dtype | N x V (x D) | flags | status | max abs error nll / entropy / lse | rank, top1 mismatches |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["correctness"]:
        errors = row.get("max_abs_error")
        error_text = " / ".join(f"{errors[k]:.1e}" for k in ("nll", "entropy", "lse")) if errors else row.get("detail", "")
        lines.append(f"| {row['kernel']} | {row['dtype']} | {row['shape']} | {row['flags']} | {row['status']} "
                     f"| {error_text} | {row.get('rank_top1_mismatches', '-')} |")
    for section, unit in (("token_stats", "GB/s"), ("linear_token_stats", "TFLOP/s")):
        ceiling_name = "copy" if unit == "GB/s" else "matmul"
        lines += ["", f"## {section}: time, rate and peak extra memory", "",
                  f"| method | shape | ms | {unit} | % of {ceiling_name} | peak extra MiB | status |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in report["throughput"]:
            if row["section"] == section:
                lines.append(speed_line(row))
    return "\n".join(lines) + "\n"


def speed_line(row: dict[str, Any]) -> str:
    if row["status"] != "ok":
        return f"| {row['method']} | {row['shape']} | - | - | - | - | {row['status']}: {row.get('detail', '')} |"
    peak = row["peak_extra_mib"]
    return (f"| {row['method']} | {row['shape']} | {row['ms']:.3g} | {row['rate']:.3g} "
            f"| {100 * row['share_of_ceiling']:.0f} | {'-' if peak is None else f'{peak:.0f}'} | ok |")


def open_device(dry_run: bool) -> tuple[Device, Any]:
    """torch, the checkout's kernels and bench_kernels.py, on CUDA or (dry run) the CPU."""
    if dry_run:
        os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are defined
    import torch

    kernels = kernel_resources.load_checkout_kernels()
    importlib.import_module("cotsieve.kernels.reference")  # kernels.reference below
    import bench_kernels  # imports cotsieve.kernels: the checkout's, loaded above

    if not dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run on a GPU, or pass --dry-run")
    name = "cpu" if dry_run else "cuda"
    return Device(torch, bench_kernels, name), kernels


def run(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    device, kernels = open_device(args.dry_run)
    plan = DRY_RUN_PLAN if args.dry_run else GPU_PLAN
    clock = Clock(args.budget_s)
    label = "CPU (Triton interpreter)" if args.dry_run else device.torch.cuda.get_device_name()
    top = ceilings(device, plan)
    report: dict[str, Any] = {"device": label, "dry_run": args.dry_run, "budget_s": args.budget_s,
                              "versions": versions(), "ceilings": top}
    report["correctness"] = correctness(device, kernels, plan, clock)
    report["throughput"] = (token_speed(device, kernels, plan, clock, top["copy_gbs"])
                            + linear_speed(device, kernels, plan, clock, top["matmul_tflops"]))
    report["elapsed_s"] = clock.elapsed()
    failed = [row for row in report["correctness"] if row["status"] != "pass" and row["status"] != "skipped"]
    return report, 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=os.environ.get("OUT"),
                        help="folder for gpu_check.json and gpu_check.md (default: $OUT)")
    parser.add_argument("--dry-run", action="store_true", help="tiny shapes in the interpreter on the CPU")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="rows that would start after this many seconds are skipped")
    args = parser.parse_args(argv)
    if args.out is None:
        parser.error("name the output folder with --out or $OUT")
    args.out.mkdir(parents=True, exist_ok=True)
    report, status = run(args)
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))
    (args.out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    return status


if __name__ == "__main__":
    sys.exit(main())
