"""Compile the Triton kernels for Hopper (sm_90: H100, H200) and Ampere (sm_80:
A100) on a machine without a GPU, and report what each compiled kernel needs.

The Triton interpreter, which runs the kernels in the test suite, never lowers
a kernel to the GPU, so a tile that spills registers or needs more shared
memory than an SM has would pass every test and fail or crawl on a GPU.
Triton compiles ahead of time for a named target without one, and the
``ptxas`` shipped in its wheel reports registers, spills and stack per kernel.

Every configuration is the one the kernels' own launchers choose: each
launcher runs on ``meta`` tensors of the sizes docs/kernels.md promises
(vocabularies of 32k to 256k entries, hidden sizes of 2k to 8k, fp32, bf16
and fp16 inputs, with and without bias and softcap), with the kernel replaced
by a recorder of its launch arguments; Triton's own argument binder then
turns those into the signature it would compile. Configurations that compile
to the same code (the same tiles, dtypes, flags and divisibility of the
sizes) are compiled once.

For each compiled kernel and target it prints registers per thread, spill
bytes, stack frame, shared memory, the blocks and warps per SM those allow,
which resource limits them and what would let one more block fit, then the
bytes ``token_stats`` moves per token and the time that takes at the H100's
3.35 TB/s.

    python benchmarks/kernel_resources.py                 # the tables
    python benchmarks/kernel_resources.py --check         # exit 1 on a compile error, spill or smem overflow
    python benchmarks/kernel_resources.py --json out.json --targets sm_90

The tables go to stdout; the kernels are compiled into a temporary Triton
cache unless ``TRITON_CACHE_DIR`` names one. Written against Triton 3.9's
compiler API (``triton.compile``, ``ASTSource``, ``GPUTarget``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import io
import json
import math
import os
import re
import sys
import tempfile
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]

#: The H100 SXM's memory bandwidth, the ceiling for the logits kernel.
H100_BYTES_PER_S = 3.35e12


@dataclasses.dataclass(frozen=True)
class Target:
    """Per-SM limits of one compute capability (CUDA C Programming Guide,
    "Technical Specifications per Compute Capability")."""

    name: str
    capability: int
    gpus: str
    smem_per_sm: int
    smem_per_block: int  # the opt-in maximum a kernel may ask for
    regs_per_sm: int = 65536
    max_regs_per_thread: int = 255
    max_warps_per_sm: int = 64
    max_blocks_per_sm: int = 32
    reg_alloc_unit: int = 256  # registers are handed out per warp in units of this many
    reserved_smem_per_block: int = 1024  # the driver's own share of each block's shared memory


TARGETS = {
    "sm_90": Target("sm_90", 90, "H100, H200", smem_per_sm=228 * 1024, smem_per_block=227 * 1024),
    "sm_80": Target("sm_80", 80, "A100", smem_per_sm=164 * 1024, smem_per_block=163 * 1024),
}

#: ``(rows, vocabulary, hidden)`` the launchers are run on. The promised range
#: is 32k to 256k vocabulary entries and 2k to 8k hidden; GPT-2's 50257 and an
#: odd row count are not multiples of 16, which Triton compiles separately.
SHAPES = (
    (4096, 32000, 2048),
    (4096, 128256, 4096),
    (8192, 151936, 8192),
    (16384, 262144, 8192),
    (4095, 50257, 4096),
)
DTYPE_NAMES = ("float32", "bfloat16", "float16")
BIAS_SOFTCAP = ((False, None), (True, None), (False, 30.0), (True, 30.0))


# --------------------------------------------------------- loading the kernels


def load_checkout_kernels() -> types.ModuleType:
    """``cotsieve.kernels`` from this checkout's ``kernels/`` folder.

    Installed or not, the kernels checked are the ones beside this script; a
    GPU machine that receives only a copy of the tree (no built native core)
    can load them too, since the package's parent is not imported.
    """
    if "cotsieve.kernels" in sys.modules:
        return sys.modules["cotsieve.kernels"]
    if "cotsieve" not in sys.modules:
        parent = types.ModuleType("cotsieve")
        parent.__path__ = []
        sys.modules["cotsieve"] = parent
    spec = importlib.util.spec_from_file_location(
        "cotsieve.kernels", REPO / "kernels" / "__init__.py",
        submodule_search_locations=[str(REPO / "kernels")],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cotsieve.kernels"] = module
    spec.loader.exec_module(module)
    return module


def checkout_kernel_module(name: str) -> types.ModuleType:
    """A submodule of the checkout's ``cotsieve.kernels``, e.g. ``"_triton_token_stats"``."""
    load_checkout_kernels()
    return importlib.import_module(f"cotsieve.kernels.{name}")


# ------------------------------------------------------ what the launchers pick


@dataclasses.dataclass
class Launch:
    """One kernel launch as a launcher issued it: the kernel and its arguments."""

    kernel: str
    dtype: str
    config: str
    sizes: str
    fn: Any
    args: tuple
    kwargs: dict


class _Recorder:
    """Stands in for a ``@triton.jit`` kernel: ``kernel[grid](*args, **kwargs)`` is recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple, dict]] = []

    def __getitem__(self, grid: object) -> Callable[..., None]:
        return lambda *args, **kwargs: self.calls.append((args, kwargs))


def _recorded(module: types.ModuleType, kernel_name: str, run: Callable[[], object]) -> tuple[tuple, dict]:
    recorder = _Recorder()
    with mock.patch.object(module, kernel_name, recorder):
        run()
    (call,) = recorder.calls
    return call


def _sizes_label(*sizes: int) -> str:
    """Triton compiles sizes that are multiples of 16 apart from others."""
    return "multiples of 16" if all(size % 16 == 0 for size in sizes) else "not multiples of 16"


def _tile_label(kwargs: dict) -> str:
    tiles = "x".join(str(kwargs[k]) for k in ("ROWS", "BLOCK_N", "BLOCK_V", "BLOCK_D") if k in kwargs)
    flags = [name for name, key in (("bias", "HAS_BIAS"), ("softcap", "HAS_SOFTCAP")) if kwargs.get(key)]
    stages = f", {kwargs['num_stages']} stages" if "num_stages" in kwargs else ""
    return f"{tiles}, {kwargs['num_warps']} warps{stages}" + "".join(f", {flag}" for flag in flags)


def token_stats_launches() -> Iterator[Launch]:
    import torch

    module = checkout_kernel_module("_triton_token_stats")
    for dtype_name in DTYPE_NAMES:
        dtype = getattr(torch, dtype_name)
        for rows, vocab, _ in SHAPES:
            logits = torch.empty(rows, vocab, dtype=dtype, device="meta")
            targets = torch.empty(rows, dtype=torch.int64, device="meta")
            args, kwargs = _recorded(module, "token_stats_kernel", lambda: module.launch(logits, targets))
            yield Launch("token_stats", dtype_name, _tile_label(kwargs), _sizes_label(rows, vocab),
                         module.token_stats_kernel, args, kwargs)


def linear_token_stats_launches() -> Iterator[Launch]:
    import torch

    module = checkout_kernel_module("_triton_linear_token_stats")
    for dtype_name in DTYPE_NAMES:
        dtype = getattr(torch, dtype_name)
        for (rows, vocab, dim), (bias, softcap) in ((s, f) for s in SHAPES for f in BIAS_SOFTCAP):
            hidden = torch.empty(rows, dim, dtype=dtype, device="meta")
            weight = torch.empty(vocab, dim, dtype=dtype, device="meta")
            bias_values = torch.empty(vocab, dtype=dtype, device="meta") if bias else None
            targets = torch.empty(rows, dtype=torch.int64, device="meta")
            args, kwargs = _recorded(
                module, "linear_token_stats_kernel",
                lambda: module.launch(hidden, weight, targets, bias_values, softcap),
            )
            # meta tensors are not CUDA tensors: take the choices made for a GPU.
            kwargs.update(module.dot_options(dtype, interpreted=False))
            yield Launch("linear_token_stats", dtype_name, _tile_label(kwargs), _sizes_label(rows, vocab, dim),
                         module.linear_token_stats_kernel, args, kwargs)


def launches() -> Iterator[Launch]:
    yield from token_stats_launches()
    yield from linear_token_stats_launches()


# ------------------------------------------------------------------- compiling


@dataclasses.dataclass
class Resources:
    """What one compiled kernel needs on one target (bytes, registers per thread)."""

    kernel: str
    dtype: str
    config: str
    sizes: str
    target: str
    num_warps: int
    registers: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    stack_frame: int = 0
    shared: int = 0
    error: str | None = None


_SPILLS = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_REGISTERS = re.compile(r"Used (\d+) registers")
_STATIC_SMEM = re.compile(r"(\d+) bytes smem")


def parse_ptxas_log(log: str) -> dict[str, int]:
    """Registers, spills, stack frame and static shared memory from ``ptxas -v``.

    >>> parse_ptxas_log("    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads\\n"
    ...                 "ptxas info    : Used 255 registers, used 1 barriers")
    {'registers': 255, 'spill_stores': 4, 'spill_loads': 4, 'stack_frame': 8, 'static_shared': 0}
    """
    spills, registers = _SPILLS.search(log), _REGISTERS.search(log)
    if spills is None or registers is None:
        raise ValueError(f"ptxas log not understood: {log.strip()[:300]!r}")
    static_shared = _STATIC_SMEM.search(log)
    return {
        "registers": int(registers[1]),
        "spill_stores": int(spills[2]),
        "spill_loads": int(spills[3]),
        "stack_frame": int(spills[1]),
        "static_shared": int(static_shared[1]) if static_shared else 0,
    }


def compile_plans(targets: list[Target]) -> Iterator[tuple[Launch, Target, tuple]]:
    """``(launch, target, compile arguments)`` once per distinct compiled kernel."""
    from triton.compiler import ASTSource
    from triton.backends.compiler import GPUTarget
    from triton.compiler.compiler import make_backend
    from triton.runtime.jit import create_function_from_signature

    seen: set[str] = set()
    for launch in launches():
        for target in targets:
            gpu = GPUTarget("cuda", target.capability, 32)
            backend = make_backend(gpu)
            binder = create_function_from_signature(launch.fn.signature, launch.fn.params, backend)
            bound, specialization, options = binder(*launch.args, **launch.kwargs)
            options, signature, constexprs, attrs = launch.fn._pack_args(
                backend, launch.kwargs, bound, specialization, options)
            key = repr((launch.kernel, target.name, signature, constexprs, attrs, options))
            if key in seen:
                continue
            seen.add(key)
            source = ASTSource(launch.fn, signature, constexprs, attrs)
            yield launch, target, (source, gpu, options.__dict__)


def compile_resources(launch: Launch, target: Target, compile_args: tuple) -> Resources:
    """Compile with ptxas's ``-v`` log captured; a compile error is recorded, not raised."""
    import triton

    record = Resources(launch.kernel, launch.dtype, launch.config, launch.sizes, target.name,
                       launch.kwargs["num_warps"])
    source, gpu, options = compile_args
    log = io.StringIO()
    triton.knobs.nvidia.dump_ptxas_log = True  # Triton prints ptxas's -v report
    triton.knobs.compilation.always_compile = True  # a cache hit would print no report
    try:
        with contextlib.redirect_stdout(log):
            kernel = triton.compile(source, target=gpu, options=options)
        usage = parse_ptxas_log(log.getvalue())
    except Exception as err:  # noqa: BLE001 - any compiler failure is a finding to report
        record.error = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"[:200]
        return record
    static_shared = usage.pop("static_shared")
    for name, value in usage.items():
        setattr(record, name, value)
    record.shared = kernel.metadata.shared + static_shared
    return record


def all_resources(targets: list[Target]) -> list[Resources]:
    return [compile_resources(*plan) for plan in compile_plans(targets)]


# ------------------------------------------------------------ limits and rules


def violations(record: Resources, target: Target) -> list[str]:
    """Why a compiled kernel must not ship: a compile error, any register spill,
    or more shared memory than a block may have on ``target``."""
    if record.error:
        return [f"compile error: {record.error}"]
    found = []
    if record.spill_stores or record.spill_loads:
        found.append(f"spills registers ({record.spill_stores} bytes stored, {record.spill_loads} loaded)")
    if record.shared > target.smem_per_block:
        found.append(f"needs {record.shared} bytes of shared memory, {target.name} allows {target.smem_per_block}")
    return found


@dataclasses.dataclass
class Occupancy:
    blocks_per_sm: int
    warps_per_sm: int
    limit: str
    one_more_block: str


def occupancy(record: Resources, target: Target) -> Occupancy:
    """Resident blocks per SM allowed by registers, shared memory, warps and the
    block limit (the CUDA occupancy calculator's rules), the resource that
    binds, and what would let one more block fit."""
    warps = record.num_warps
    regs_per_warp = math.ceil(record.registers * 32 / target.reg_alloc_unit) * target.reg_alloc_unit
    smem_per_block = record.shared + target.reserved_smem_per_block
    bounds = {
        "registers": target.regs_per_sm // max(regs_per_warp, 1) // warps,
        "shared memory": target.smem_per_sm // smem_per_block,
        "warps": target.max_warps_per_sm // warps,
        "blocks": target.max_blocks_per_sm,
    }
    blocks = min(bounds.values())
    limit = next(name for name, bound in bounds.items() if bound == blocks)
    more = blocks + 1
    if limit == "registers":
        fits = target.regs_per_sm // (more * warps * 32) // 8 * 8
        change = f"<= {fits} registers/thread" if fits >= 24 else "fewer warps per block"
    elif limit == "shared memory":
        change = f"<= {target.smem_per_sm // more - target.reserved_smem_per_block} bytes smem (fewer stages or smaller tiles)"
    elif limit == "warps":
        change = f"<= {target.max_warps_per_sm // more} warps per block"
    else:
        change = "none (block limit)"
    return Occupancy(blocks, blocks * warps, limit, change)


def token_stats_bytes_per_token(vocab: int, itemsize: int, splits: int = 1) -> int:
    """DRAM bytes per row: the logits row once, the int64 target, the target
    logit's own read, and the partials (target logit + 5 per split, 4 bytes each)."""
    return vocab * itemsize + 8 + itemsize + 4 * (1 + 5 * splits)


# ---------------------------------------------------------------------- output


def resource_table(records: list[Resources]) -> str:
    header = ("| kernel | dtype | config | sizes | target | regs/thread | spill bytes (st/ld) | stack | smem bytes "
              "| blocks/SM | warps/SM | limited by | one more block needs | verdict |")
    lines = [header, header_rule(header)]
    for record in records:
        target = TARGETS[record.target]
        problems = violations(record, target)
        if record.error:
            lines.append(f"| {record.kernel} | {record.dtype} | {record.config} | {record.sizes} "
                         f"| {record.target} | - | - | - | - | - | - | - | - | {problems[0]} |")
            continue
        occ = occupancy(record, target)
        lines.append(
            f"| {record.kernel} | {record.dtype} | {record.config} | {record.sizes} | {record.target} "
            f"| {record.registers} | {record.spill_stores}/{record.spill_loads} | {record.stack_frame} "
            f"| {record.shared} | {occ.blocks_per_sm} | {occ.warps_per_sm} | {occ.limit} | {occ.one_more_block} "
            f"| {'; '.join(problems) or 'ok'} |"
        )
    return "\n".join(lines)


def header_rule(header: str) -> str:
    return "|" + " --- |" * (header.count("|") - 1)


def summary_table(records: list[Resources]) -> str:
    """The most registers and shared memory over each kernel's variants (flags, sizes) per dtype and target."""
    groups: dict[tuple[str, str, str], list[Resources]] = {}
    for record in records:
        groups.setdefault((record.kernel, record.dtype, record.target), []).append(record)
    header = "| kernel | dtype | target | variants | max regs/thread | spills | max smem bytes | blocks/SM (warps) | limited by |"
    lines = [header, header_rule(header)]
    for (kernel, dtype, target_name), group in groups.items():
        target = TARGETS[target_name]
        compiled = [r for r in group if not r.error]
        if not compiled:
            lines.append(f"| {kernel} | {dtype} | {target_name} | {len(group)} | - | compile error | - | - | - |")
            continue
        worst = min(compiled, key=lambda r: (occupancy(r, target).blocks_per_sm, -r.registers))
        occ = occupancy(worst, target)
        spills = sum(r.spill_stores + r.spill_loads for r in compiled)
        lines.append(
            f"| {kernel} | {dtype} | {target_name} | {len(group)} | {max(r.registers for r in compiled)} "
            f"| {'none' if spills == 0 else f'{spills} bytes'} | {max(r.shared for r in compiled)} "
            f"| {occ.blocks_per_sm} ({occ.warps_per_sm}) | {occ.limit} |"
        )
    return "\n".join(lines)


def bandwidth_table() -> str:
    header = "| vocabulary | logits dtype | bytes per token | ns per token at 3.35 TB/s | ms per 16k tokens |"
    lines = [header, header_rule(header)]
    vocabs = sorted({vocab for _, vocab, _ in SHAPES})
    for vocab in vocabs:
        for label, itemsize in (("bf16 / fp16", 2), ("fp32", 4)):
            per_token = token_stats_bytes_per_token(vocab, itemsize)
            seconds = per_token / H100_BYTES_PER_S
            lines.append(f"| {vocab} | {label} | {per_token} | {seconds * 1e9:.1f} | {seconds * 16384 * 1e3:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="sm_90,sm_80", help="comma-separated: sm_90, sm_80")
    parser.add_argument("--json", type=Path, help="also write every record here")
    parser.add_argument("--check", action="store_true", help="exit 1 if any kernel fails the rules")
    args = parser.parse_args(argv)
    targets = [TARGETS[name] for name in args.targets.split(",")]
    # The kernels must be real @triton.jit functions, not the interpreter's stand-ins.
    os.environ.pop("TRITON_INTERPRET", None)
    with tempfile.TemporaryDirectory(prefix="kernel-resources-") as cache:
        os.environ.setdefault("TRITON_CACHE_DIR", cache)
        records = all_resources(targets)
    if args.json:
        args.json.write_text(json.dumps([dataclasses.asdict(r) for r in records], indent=1))
    print("## Compiled kernels\n")
    print(resource_table(records))
    print("\n## Worst case per kernel, dtype and target\n")
    print(summary_table(records))
    print("\n## token_stats: bytes moved per token (one vocabulary split)\n")
    print(bandwidth_table())
    failed = [(r, violations(r, TARGETS[r.target])) for r in records]
    failed = [(r, found) for r, found in failed if found]
    for record, found in failed:
        print(f"FAIL {record.kernel} {record.dtype} [{record.config}] {record.target}: {'; '.join(found)}",
              file=sys.stderr)
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
