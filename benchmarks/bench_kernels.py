"""Benchmark the per-token statistics kernels against their peers.

On a CUDA device this prints, for each N x V (and D for the fused kernel):

* ``token_stats``: time, achieved GB/s (logits read once) and its share of the
  device-to-device copy bandwidth measured in the same run;
* ``linear_token_stats``: time, TFLOP/s (``2 N V D``) and its share of the bf16
  ``torch.matmul`` rate measured in the same run;
* peak extra memory of every method (``torch.cuda.max_memory_allocated`` above
  what was allocated before the call);
* peers when importable: torch ``F.cross_entropy(reduction='none')`` plus a
  separate entropy, Liger-Kernel cross entropy / fused linear cross entropy,
  and cut-cross-entropy's ``linear_cross_entropy``.  Peers compute only the
  loss (torch also the entropy); ours computes all five statistics.

Without CUDA it runs a small CPU comparison of the chunked torch path with
plain torch, and says that GPU numbers need a CUDA device.

    python benchmarks/bench_kernels.py                      # default shapes
    python benchmarks/bench_kernels.py --shapes 4096x32768 --dims 1024
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from cotsieve.kernels import linear_token_stats, token_stats

Method = Callable[[], object]


def parse_shapes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in item.lower().split("x")) for item in text.split(",")]


def cuda_time_ms(fn: Method, warmup: int, rep: int) -> float:
    """Median of ``rep`` CUDA-event timings after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(rep):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def cpu_time_ms(fn: Method, warmup: int, rep: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rep):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def peak_extra_bytes(fn: Method) -> int:
    """Peak allocation above the current level during one call (outputs included)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    fn()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def measure(fn: Method, warmup: int, rep: int) -> tuple[float, int] | str:
    """``(ms, peak extra bytes)``, or why it could not run."""
    try:
        with torch.no_grad():
            extra = peak_extra_bytes(fn)
            return cuda_time_ms(fn, warmup, rep), extra
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return "out of memory"
    except (RuntimeError, TypeError, ValueError) as err:  # a peer's API drift must not abort the table
        return f"failed: {type(err).__name__}: {err}"[:80]


# ------------------------------------------------------------------- baselines


def copy_bandwidth_gbs(n_bytes: int, warmup: int, rep: int) -> float:
    src = torch.empty(n_bytes, dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = cuda_time_ms(lambda: dst.copy_(src), warmup, rep)
    return 2 * n_bytes / ms / 1e6  # read + write


def matmul_tflops(dim: int, warmup: int, rep: int) -> float:
    a = torch.randn(8192, dim, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(dim, 32768, device="cuda", dtype=torch.bfloat16)
    ms = cuda_time_ms(lambda: torch.matmul(a, b), warmup, rep)
    return 2 * 8192 * dim * 32768 / ms / 1e9


# ----------------------------------------------------------------------- peers


def torch_cross_entropy_and_entropy(logits: torch.Tensor, targets: torch.Tensor):
    nll = F.cross_entropy(logits.float(), targets, reduction="none")
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return nll, -(log_p.exp() * log_p).sum(-1)


def logits_peers(logits: torch.Tensor, targets: torch.Tensor) -> dict[str, Method]:
    peers: dict[str, Method] = {
        "torch CE + entropy": lambda: torch_cross_entropy_and_entropy(logits, targets)
    }
    try:
        from liger_kernel.transformers.functional import liger_cross_entropy
    except ImportError:
        return peers
    # Liger writes the gradient into its input: give it a copy made once.
    scratch = logits.clone()
    peers["liger cross_entropy"] = lambda: liger_cross_entropy(scratch, targets, reduction="none")
    return peers


def linear_peers(hidden, weight, targets) -> dict[str, Method]:
    peers: dict[str, Method] = {}
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        peers["liger fused linear CE"] = lambda: liger_fused_linear_cross_entropy(
            hidden, weight, targets, reduction="none"
        )
    except ImportError:
        pass
    try:
        from cut_cross_entropy import linear_cross_entropy

        peers["cut-cross-entropy"] = lambda: linear_cross_entropy(hidden, weight, targets, reduction="none")
    except ImportError:
        pass
    return peers


# ---------------------------------------------------------------------- tables


def print_row(cells: list[str]) -> None:
    widths = (24, 26, 10, 10, 10, 12)
    print("  ".join(cell.ljust(width) for cell, width in zip(cells, widths)))


def report(name: str, shape: str, result: tuple[float, int] | str, rate: Callable[[float], tuple[str, str]]):
    if isinstance(result, str):
        print_row([name, shape, "-", "-", "-", result])
        return
    ms, extra = result
    print_row([name, shape, f"{ms:.2f}", *rate(ms), f"{extra / 2**20:.0f}"])


def bench_logits_shape(n_rows: int, n_vocab: int, copy_gbs: float, warmup: int, rep: int) -> None:
    logits = torch.randn(n_rows, n_vocab, device="cuda", dtype=torch.bfloat16)
    targets = torch.randint(0, n_vocab, (n_rows,), device="cuda")
    n_bytes = logits.numel() * logits.element_size()

    def bandwidth(ms: float) -> tuple[str, str]:
        gbs = n_bytes / ms / 1e6
        return f"{gbs:.0f}", f"{100 * gbs / copy_gbs:.0f}"

    methods = {"cotsieve token_stats": lambda: token_stats(logits, targets)}
    methods.update(logits_peers(logits, targets))
    for name, fn in methods.items():
        report(name, f"{n_rows} x {n_vocab}", measure(fn, warmup, rep), bandwidth)


def bench_logits(shapes, warmup, rep) -> None:
    copy_gbs = copy_bandwidth_gbs(2**30, warmup, rep)
    print(f"\ntoken_stats, bf16 logits; device copy bandwidth {copy_gbs:.0f} GB/s (read + write)")
    print_row(["method", "N x V", "ms", "GB/s", "% copy", "extra MiB"])
    for n_rows, n_vocab in shapes:
        bench_logits_shape(n_rows, n_vocab, copy_gbs, warmup, rep)
        torch.cuda.empty_cache()


def bench_linear_shape(
    n_rows: int, n_vocab: int, dim: int, matmul_peak: float, warmup: int, rep: int
) -> None:
    hidden = torch.randn(n_rows, dim, device="cuda", dtype=torch.bfloat16)
    weight = torch.randn(n_vocab, dim, device="cuda", dtype=torch.bfloat16) / dim**0.5
    targets = torch.randint(0, n_vocab, (n_rows,), device="cuda")

    def throughput(ms: float) -> tuple[str, str]:
        tflops = 2 * n_rows * n_vocab * dim / ms / 1e9
        return f"{tflops:.0f}", f"{100 * tflops / matmul_peak:.0f}"

    methods = {"cotsieve linear_token_stats": lambda: linear_token_stats(hidden, weight, targets)}
    methods.update(linear_peers(hidden, weight, targets))
    for name, fn in methods.items():
        report(name, f"{n_rows} x {n_vocab}", measure(fn, warmup, rep), throughput)


def bench_linear(shapes, dims, warmup, rep) -> None:
    for dim in dims:
        matmul_peak = matmul_tflops(dim, warmup, rep)
        print(f"\nlinear_token_stats, bf16, D = {dim}; torch.matmul bf16 {matmul_peak:.0f} TFLOP/s")
        print_row(["method", "N x V", "ms", "TFLOP/s", "% matmul", "extra MiB"])
        for n_rows, n_vocab in shapes:
            bench_linear_shape(n_rows, n_vocab, dim, matmul_peak, warmup, rep)
            torch.cuda.empty_cache()


def bench_cpu(warmup: int, rep: int) -> None:
    print("No CUDA device: GPU numbers need a CUDA device. Small CPU comparison instead")
    print("(chunked torch path with all five statistics vs plain torch with nll + entropy):\n")
    print_row(["method", "shape", "ms"])
    n_rows, n_vocab, dim = 512, 32000, 1024
    logits = torch.randn(n_rows, n_vocab, dtype=torch.bfloat16)
    targets = torch.randint(0, n_vocab, (n_rows,))
    hidden = torch.randn(n_rows, dim, dtype=torch.bfloat16)
    weight = torch.randn(n_vocab, dim, dtype=torch.bfloat16) / dim**0.5
    methods = {
        ("token_stats (torch path)", f"{n_rows} x {n_vocab}"): lambda: token_stats(logits, targets),
        ("torch CE + entropy", f"{n_rows} x {n_vocab}"): lambda: torch_cross_entropy_and_entropy(
            logits, targets
        ),
        ("linear_token_stats (torch)", f"{n_rows} x {n_vocab} x {dim}"): lambda: linear_token_stats(
            hidden, weight, targets
        ),
        ("matmul + CE + entropy", f"{n_rows} x {n_vocab} x {dim}"): lambda: torch_cross_entropy_and_entropy(
            hidden.float() @ weight.float().T, targets
        ),
    }
    for (name, shape), fn in methods.items():
        print_row([name, shape, f"{cpu_time_ms(fn, warmup, rep):.1f}"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", default="16384x131072,32768x151936,8192x262144", help="N x V list")
    parser.add_argument("--dims", default="2048,4096", help="hidden sizes for the fused kernel")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rep", type=int, default=5)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        bench_cpu(1, 3)
        return
    print(f"device: {torch.cuda.get_device_name()}")
    shapes = parse_shapes(args.shapes)
    bench_logits(shapes, args.warmup, args.rep)
    bench_linear(shapes, [int(d) for d in args.dims.split(",")], args.warmup, args.rep)


if __name__ == "__main__":
    main()
