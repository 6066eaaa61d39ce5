"""Per-token statistics kernels against a float64 reference.

Without a GPU the Triton kernels run in the Triton interpreter on CPU tensors
(small shapes: the interpreter is slow); with ``COTSIEVE_GPU_TESTS=1`` and a
CUDA device the same tests run the compiled kernels on the GPU.

Tolerances: the reference sees exactly the inputs the kernel sees (logits
already rounded to their dtype), so the error left is fp32 accumulation
(and, for the fused kernel, the fp32 matmul and softcap), which does not
depend on the input dtype.  ``rank`` and ``top1`` must match exactly where
the logits are exact (materialised logits, or integer-valued operands).
"""

import importlib
import importlib.util
import os
import subprocess
import sys

if os.environ.get("COTSIEVE_GPU_TESTS") != "1":
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest

torch = pytest.importorskip("torch")
kernels = pytest.importorskip("cotsieve.kernels")

from cotsieve.kernels import linear_token_stats, token_stats
from cotsieve.kernels.reference import (
    linear_token_stats_reference,
    token_stats_reference,
)

common = importlib.import_module("cotsieve.kernels._common")
torch_path = importlib.import_module("cotsieve.kernels._torch_path")

GPU = os.environ.get("COTSIEVE_GPU_TESTS") == "1" and torch.cuda.is_available()
DEVICE = "cuda" if GPU else "cpu"
DTYPES = (torch.float32, torch.bfloat16, torch.float16)
IGNORE = -100

#: (atol, rtol) for nll / entropy / lse, per input dtype.
TOKEN_TOL = {torch.float32: (2e-5, 2e-5), torch.bfloat16: (2e-5, 2e-5), torch.float16: (2e-5, 2e-5)}
LINEAR_TOL = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (1e-4, 1e-4), torch.float16: (1e-4, 1e-4)}

FLOAT_SENTINEL = float("nan")
INT_SENTINEL = -123456789


def needs_triton():
    pytest.importorskip("triton")


BACKENDS = ["triton", "torch"]


@pytest.fixture(autouse=True)
def poisoned_partials(monkeypatch):
    """Every partial buffer starts as a sentinel; after the test none may remain,
    so a row or split that a backend forgot to write is caught."""
    created = []
    allocate = common.new_partials

    def poisoned(n_splits, n_rows, device):
        partials = allocate(n_splits, n_rows, device)
        for buffer in partials:
            buffer.fill_(FLOAT_SENTINEL if buffer.is_floating_point() else INT_SENTINEL)
        created.append(partials)
        return partials

    monkeypatch.setattr(common, "new_partials", poisoned)
    yield created
    for partials in created:
        for name, buffer in zip(partials._fields, partials):
            unwritten = buffer.isnan() if buffer.is_floating_point() else buffer == INT_SENTINEL
            assert not unwritten.any(), f"{name}: {int(unwritten.sum())} entries never written"


def run_backend(fn, *args, backend, **kwargs):
    if backend == "triton":
        needs_triton()
    return fn(*args, backend=backend, **kwargs)


def make_logits(n_rows, n_vocab, dtype, *, tied=False, row_pad=0, seed=0):
    """Logits ``[n_rows, n_vocab]`` as a column slice of a wider tensor when ``row_pad``."""
    gen = torch.Generator().manual_seed(seed)
    if tied:  # few distinct values: ties for the argmax and for the rank
        wide = torch.randint(-2, 3, (n_rows, n_vocab + row_pad), generator=gen).float()
    else:
        wide = torch.randn(n_rows, n_vocab + row_pad, generator=gen) * 3
    return wide.to(dtype).to(DEVICE)[:, :n_vocab]


def make_targets(n_rows, n_vocab, seed=0):
    """Random targets with the first and last class and an ignored row mixed in."""
    gen = torch.Generator().manual_seed(seed + 1)
    targets = torch.randint(0, n_vocab, (n_rows,), generator=gen)
    targets[: min(n_rows, 3)] = torch.tensor([0, n_vocab - 1, IGNORE])[: min(n_rows, 3)]
    return targets.to(DEVICE)


def assert_stats_match(out, ref, tol, *, exact_ranks=True):
    atol, rtol = tol
    for name in ("nll", "entropy", "lse"):
        assert out[name].dtype == torch.float32
        torch.testing.assert_close(out[name].double(), ref[name], atol=atol, rtol=rtol, equal_nan=True)
    assert out["top1"].dtype == torch.bool and out["rank"].dtype == torch.int32
    if exact_ranks:
        assert torch.equal(out["rank"], ref["rank"])
        assert torch.equal(out["top1"], ref["top1"])


# ----------------------------------------------------------------- token_stats


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n_rows, n_vocab, tied, row_pad",
    [(5, 1, False, 0), (9, 7, True, 3), (6, 1037, False, 5), (7, 50, True, 0)],
)
def test_token_stats_matches_reference(backend, dtype, n_rows, n_vocab, tied, row_pad):
    logits = make_logits(n_rows, n_vocab, dtype, tied=tied, row_pad=row_pad)
    targets = make_targets(n_rows, n_vocab)
    out = run_backend(token_stats, logits, targets, backend=backend)
    assert_stats_match(out, token_stats_reference(logits, targets), TOKEN_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_token_stats_kernel_merges_tiles_and_splits(dtype):
    """Small tiles and several vocabulary splits exercise the online merges."""
    needs_triton()
    from cotsieve.kernels._triton_token_stats import launch

    logits = make_logits(11, 1000, dtype, tied=dtype == torch.float16, row_pad=24)
    targets = make_targets(11, 1000)
    partials = launch(logits, targets, block_v=64, n_splits=3)
    assert partials.row_max.shape == (3, 11)
    out = common.finalize(partials, targets, 1000, IGNORE, common.STAT_NAMES)
    assert_stats_match(out, token_stats_reference(logits, targets), TOKEN_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_token_stats_torch_path_merges_chunks(dtype, monkeypatch):
    monkeypatch.setattr(torch_path, "BLOCK_ELEMENTS", 64)  # 64 columns, then 1 row per block
    logits = make_logits(9, 301, dtype, tied=True, row_pad=2)
    targets = make_targets(9, 301)
    out = token_stats(logits, targets, backend="torch")
    assert_stats_match(out, token_stats_reference(logits, targets), TOKEN_TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
def test_ties_go_to_the_lowest_index(backend):
    row = [1.0, 3.0, 3.0, 0.0, 3.0]
    logits = torch.tensor([row] * 4, device=DEVICE)
    targets = torch.tensor([1, 2, 4, 0], device=DEVICE)
    expected_top1, expected_rank = [True, False, False, False], [0, 0, 0, 3]
    out = run_backend(token_stats, logits, targets, backend=backend)
    assert out["top1"].tolist() == expected_top1 and out["rank"].tolist() == expected_rank
    # the same logits from the fused kernel, with D = 1
    hidden, weight = torch.ones(4, 1, device=DEVICE), torch.tensor(row, device=DEVICE)[:, None]
    out = run_backend(linear_token_stats, hidden, weight, targets, backend=backend)
    assert out["top1"].tolist() == expected_top1 and out["rank"].tolist() == expected_rank


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_stats_peaked_and_masked_rows(backend):
    """Entropy stays accurate for nearly one-hot rows; -inf entries carry no mass."""
    logits = make_logits(4, 300, torch.float32) * 40
    logits[1, 100:] = float("-inf")
    logits[2, :299] = float("-inf")
    targets = torch.tensor([5, 7, 299, IGNORE], device=DEVICE)
    out = run_backend(token_stats, logits, targets, backend=backend)
    ref = token_stats_reference(logits, targets)
    assert_stats_match(out, ref, (1e-5, 2e-5))
    assert out["entropy"][2].item() == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_masked_leading_blocks_keep_far_negative_mass(backend, monkeypatch):
    """A block or split that is all -inf must not shift later mass into underflow."""
    monkeypatch.setattr(torch_path, "BLOCK_ELEMENTS", 32)
    logits = torch.full((3, 96), float("-inf"), device=DEVICE)
    logits[0, 70:73] = torch.tensor([-200.0, -201.0, -199.0])
    logits[1, 95] = -300.0
    logits[2] = -150.0 - torch.arange(96.0)
    targets = torch.tensor([70, 95, 3], device=DEVICE)
    if backend == "triton":
        needs_triton()
        from cotsieve.kernels._triton_token_stats import launch

        partials = launch(logits, targets, block_v=16, n_splits=3)
        out = common.finalize(partials, targets, 96, IGNORE, common.STAT_NAMES)
    else:
        out = token_stats(logits, targets, backend="torch")
    assert_stats_match(out, token_stats_reference(logits, targets), (1e-5, 2e-5))


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_stats_ignored_rows(backend):
    logits = make_logits(4, 20, torch.float32)
    targets = torch.tensor([3, IGNORE, 0, IGNORE], device=DEVICE)
    out = run_backend(token_stats, logits, targets, backend=backend)
    ref = token_stats_reference(logits, targets)
    ignored = targets == IGNORE
    assert torch.equal(out["nll"][ignored], torch.zeros(2, device=DEVICE))
    assert torch.equal(out["rank"][ignored], torch.full((2,), kernels.IGNORED_RANK, device=DEVICE, dtype=torch.int32))
    assert not out["top1"][ignored].any()
    # entropy and lse of ignored rows are still computed
    torch.testing.assert_close(out["entropy"].double(), ref["entropy"], atol=2e-5, rtol=2e-5)
    torch.testing.assert_close(out["lse"].double(), ref["lse"], atol=2e-5, rtol=2e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_stats_ignore_index_inside_vocab(backend):
    logits = make_logits(3, 10, torch.float32)
    targets = torch.tensor([0, 4, 9], device=DEVICE)
    out = run_backend(token_stats, logits, targets, ignore_index=0, backend=backend)
    assert out["rank"][0].item() == kernels.IGNORED_RANK and out["nll"][0].item() == 0.0
    assert_stats_match(out, token_stats_reference(logits, targets, ignore_index=0), TOKEN_TOL[torch.float32])


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_stats_empty_batch(backend):
    logits = torch.empty(0, 17, device=DEVICE, dtype=torch.bfloat16)
    out = run_backend(token_stats, logits, torch.empty(0, dtype=torch.long, device=DEVICE), backend=backend)
    assert {name: (t.shape, t.dtype) for name, t in out.items()} == {
        "nll": ((0,), torch.float32),
        "entropy": ((0,), torch.float32),
        "lse": ((0,), torch.float32),
        "top1": ((0,), torch.bool),
        "rank": ((0,), torch.int32),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_stats_column_strided_logits(backend):
    logits = make_logits(40, 6, torch.float16).T  # [6, 40] with column stride 40
    targets = make_targets(6, 40).int()
    out = run_backend(token_stats, logits, targets, backend=backend)
    assert_stats_match(out, token_stats_reference(logits, targets), TOKEN_TOL[torch.float16])


def test_token_stats_returns_only_requested_stats():
    logits = make_logits(3, 5, torch.float32)
    out = token_stats(logits, make_targets(3, 5), stats=("rank", "nll"))
    assert list(out) == ["rank", "nll"]
    with pytest.raises(ValueError, match="stats"):
        token_stats(logits, make_targets(3, 5), stats=("perplexity",))


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_range_targets_raise_on_cpu(backend):
    if GPU:
        pytest.skip("CPU validation")
    logits = make_logits(3, 5, torch.float32)
    with pytest.raises(ValueError, match="row 1: 5"):
        run_backend(token_stats, logits, torch.tensor([0, 5, IGNORE]), backend=backend)
    with pytest.raises(ValueError, match="row 2: -1"):
        run_backend(token_stats, logits, torch.tensor([0, 4, -1]), backend=backend)


def test_unvalidated_out_of_range_targets_are_flagged():
    """The GPU convention (no host sync): no out-of-bounds read, nll NaN, rank -2."""
    needs_triton()
    from cotsieve.kernels._triton_token_stats import launch

    logits = make_logits(4, 9, torch.float32)
    targets = torch.tensor([2, 9, -7, IGNORE], device=DEVICE)
    out = common.finalize(launch(logits, targets), targets, 9, IGNORE, common.STAT_NAMES)
    assert out["rank"][1:].tolist() == [kernels.INVALID_RANK, kernels.INVALID_RANK, kernels.IGNORED_RANK]
    assert out["nll"][1:3].isnan().all() and not out["top1"][1:].any()
    assert_stats_match(out, token_stats_reference(logits, targets), TOKEN_TOL[torch.float32])


def test_rejects_bad_arguments():
    logits = make_logits(3, 5, torch.float32)
    targets = make_targets(3, 5)
    with pytest.raises(ValueError, match="backend"):
        token_stats(logits, targets, backend="cuda")
    with pytest.raises(TypeError, match="float32, bfloat16 or float16"):
        token_stats(logits.double(), targets)
    with pytest.raises(TypeError, match="integer"):
        token_stats(logits, targets.float())
    with pytest.raises(ValueError, match="shape"):
        token_stats(logits, targets[:2])
    with pytest.raises(ValueError, match=r"\[N, V\]"):
        token_stats(logits[:, :0], targets)


def test_imports_and_runs_without_triton(tmp_path):
    """``cotsieve.kernels`` must not need triton: hide it and use the CPU path."""
    script = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch\n"
        "from cotsieve.kernels import token_stats\n"
        "out = token_stats(torch.tensor([[0.0, 1.0]]), torch.tensor([1]))\n"
        "assert out['rank'].tolist() == [0], out\n"
        "try:\n"
        "    token_stats(torch.tensor([[0.0, 1.0]]), torch.tensor([1]), backend='triton')\n"
        "except RuntimeError as err:\n"
        "    assert 'triton' in str(err)\n"
        "else:\n"
        "    raise AssertionError('forcing triton without triton must fail')\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, env=os.environ.copy())


# ---------------------------------------------------------- linear_token_stats


def make_linear_inputs(n_rows, n_vocab, dim, dtype, *, integer=False, bias=False, row_pad=0, seed=0):
    """``hidden`` (a row slice of a wider tensor when ``row_pad``), ``weight``, ``bias``.

    Integer-valued operands make every logit exact in fp32, hence exact ranks and ties.
    """
    gen = torch.Generator().manual_seed(seed)

    def sample(*shape):
        if integer:
            return torch.randint(-2, 3, shape, generator=gen).float()
        return torch.randn(*shape, generator=gen) / dim**0.25

    hidden = sample(n_rows, dim + row_pad).to(dtype).to(DEVICE)[:, :dim]
    weight = sample(n_vocab, dim).to(dtype).to(DEVICE)
    bias_values = sample(n_vocab).to(dtype).to(DEVICE) if bias else None
    return hidden, weight, bias_values


def assert_ranks_within_rounding(out, hidden, weight, targets, bias, softcap):
    """Rank and top1 where the float64 logits have no near-tie with the target
    logit (fp32 rounding may decide those either way), rank bounds everywhere."""
    logits = hidden.double() @ weight.double().T
    if bias is not None:
        logits = logits + bias.double()
    if softcap is not None:
        logits = softcap * torch.tanh(logits / softcap)
    ref = token_stats_reference(logits, targets)
    scored = ref["rank"] >= 0
    safe = torch.where(targets >= 0, targets, 0)
    target_logit = logits.gather(1, safe[:, None])
    eps = 1e-4 * (1 + target_logit.abs())
    lower = (logits > target_logit + eps).sum(1)
    upper = (logits > target_logit - eps).sum(1) - 1
    rank = out["rank"].long()
    assert ((lower <= rank) & (rank <= upper))[scored].all()
    clean = scored & (lower == upper)
    assert clean.float().mean() > 0.8
    assert torch.equal(out["rank"][clean], ref["rank"][clean])
    assert torch.equal(out["top1"][clean], ref["top1"][clean])
    assert torch.equal(out["rank"][~scored], ref["rank"][~scored])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_bias, softcap", [(False, None), (True, 5.0)])
def test_linear_matches_reference(backend, dtype, with_bias, softcap):
    hidden, weight, bias = make_linear_inputs(21, 263, 40, dtype, bias=with_bias, row_pad=8)
    targets = make_targets(21, 263)
    out = run_backend(linear_token_stats, hidden, weight, targets, bias, softcap, backend=backend)
    ref = linear_token_stats_reference(hidden, weight, targets, bias, softcap)
    assert_stats_match(out, ref, LINEAR_TOL[dtype], exact_ranks=False)
    assert_ranks_within_rounding(out, hidden, weight, targets, bias, softcap)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_kernel_exact_ties_over_tiles_and_splits(dtype):
    """16-wide tiles, partial last tiles in N, V and D, three vocabulary splits."""
    needs_triton()
    from cotsieve.kernels._triton_linear_token_stats import launch

    hidden, weight, bias = make_linear_inputs(19, 103, 37, dtype, integer=True, bias=True, row_pad=3)
    targets = make_targets(19, 103)
    partials = launch(hidden, weight, targets, bias, None, tiling=(16, 16, 16, 4, 1), n_splits=3)
    assert partials.row_max.shape == (3, 19)
    out = common.finalize(partials, targets, 103, IGNORE, common.STAT_NAMES)
    ref = linear_token_stats_reference(hidden, weight, targets, bias)
    assert_stats_match(out, ref, LINEAR_TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_torch_path_exact_ties_over_chunks(dtype, monkeypatch):
    monkeypatch.setattr(torch_path, "BLOCK_ELEMENTS", 256)  # 6 columns x 6 rows per block
    hidden, weight, bias = make_linear_inputs(19, 103, 37, dtype, integer=True, bias=True)
    targets = make_targets(19, 103)
    out = linear_token_stats(hidden, weight, targets, bias, backend="torch")
    assert_stats_match(out, linear_token_stats_reference(hidden, weight, targets, bias), LINEAR_TOL[dtype])


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_softcap_ignored_rows_and_selection(backend):
    hidden, weight, _ = make_linear_inputs(6, 33, 16, torch.bfloat16, integer=True)
    targets = torch.tensor([1, IGNORE, 32, 0, IGNORE, 7], device=DEVICE)
    out = run_backend(
        linear_token_stats, hidden, weight, targets, softcap=3.0, stats=("nll", "rank"), backend=backend
    )
    assert list(out) == ["nll", "rank"]
    assert out["rank"][1].item() == out["rank"][4].item() == kernels.IGNORED_RANK
    ref = linear_token_stats_reference(hidden, weight, targets, softcap=3.0)
    torch.testing.assert_close(out["nll"].double(), ref["nll"], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_empty_batch(backend):
    hidden, weight, _ = make_linear_inputs(0, 9, 16, torch.float16)
    out = run_backend(
        linear_token_stats, hidden, weight, torch.empty(0, dtype=torch.long, device=DEVICE), backend=backend
    )
    assert all(t.shape == (0,) for t in out.values())


def test_linear_rejects_bad_arguments():
    hidden, weight, bias = make_linear_inputs(3, 9, 16, torch.float32, bias=True)
    targets = make_targets(3, 9)
    with pytest.raises(TypeError, match="dtypes differ"):
        linear_token_stats(hidden, weight.half(), targets)
    with pytest.raises(ValueError, match="weight"):
        linear_token_stats(hidden, weight[:, :8], targets)
    with pytest.raises(ValueError, match="bias"):
        linear_token_stats(hidden, weight, targets, bias[:4])
    with pytest.raises(ValueError, match="softcap"):
        linear_token_stats(hidden, weight, targets, softcap=0.0)
    if not GPU:
        with pytest.raises(ValueError, match="outside"):
            linear_token_stats(hidden, weight, torch.tensor([0, 9, 1]))


# ------------------------------------------------------------- GPU code path
# The interpreter never lowers kernels to PTX, so they are also compiled ahead of
# time for sm_90 (no GPU needed), in a child process where triton is not in
# interpreter mode.

PARTIAL_TYPES = {
    "targets_ptr": "*i64",
    "target_logit_ptr": "*fp32",
    "row_max_ptr": "*fp32",
    "sumexp_ptr": "*fp32",
    "shifted_sum_ptr": "*fp32",
    "n_greater_ptr": "*i32",
    "n_tied_before_ptr": "*i32",
    "n_rows": "i32",
    "n_vocab": "i32",
    "vocab_per_split": "i32",
}


def compile_for_sm90(kernel, arg_types, constexprs, num_warps, num_stages):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    names = kernel.arg_names
    source = ASTSource(
        fn=kernel,
        signature={name: "constexpr" if name in constexprs else arg_types[name] for name in names},
        constexprs={(names.index(name),): value for name, value in constexprs.items()},
    )
    options = {"num_warps": num_warps, "num_stages": num_stages}
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=options).asm["ptx"]


def compile_kernels_for_sm90():
    """Child-process entry: compile each kernel at its GPU tiling, print PTX facts."""
    token_module = importlib.import_module("cotsieve.kernels._triton_token_stats")
    linear_module = importlib.import_module("cotsieve.kernels._triton_linear_token_stats")
    types = {"logits_ptr": "*bf16", "row_stride": "i64", **PARTIAL_TYPES}
    constexprs = {"ROWS": 1, "BLOCK_V": token_module.MAX_BLOCK_V}
    ptx = compile_for_sm90(token_module.token_stats_kernel, types, constexprs, token_module.NUM_WARPS, 3)
    print("token_stats bf16", "ld.global" in ptx)
    for dtype, operand in ((torch.bfloat16, "*bf16"), (torch.float32, "*fp32")):
        pointers = {f"{name}_ptr": operand for name in ("hidden", "weight", "bias")}
        types = {"hidden_row_stride": "i64", "weight_row_stride": "i64", "dim": "i32", "softcap": "fp32"}
        block_n, block_v, block_d, num_warps, num_stages = linear_module.GPU_TILING[dtype]
        constexprs = {
            "HAS_BIAS": True,
            "HAS_SOFTCAP": True,
            "DOT_PRECISION": "ieee" if dtype == torch.float32 else "tf32",
            "DOT_IN_FP32": False,
            "BLOCK_N": block_n,
            "BLOCK_V": block_v,
            "BLOCK_D": block_d,
        }
        ptx = compile_for_sm90(
            linear_module.linear_token_stats_kernel,
            {**pointers, **types, **PARTIAL_TYPES},
            constexprs,
            num_warps,
            num_stages,
        )
        print(f"linear {dtype}", "wgmma.mma_async" in ptx)


@pytest.mark.slow
def test_kernels_compile_for_hopper():
    needs_triton()
    if importlib.util.find_spec("triton.compiler") is None:
        pytest.skip("triton without its compiler")
    script = (
        f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r})\n"
        "from test_kernels import compile_kernels_for_sm90; compile_kernels_for_sm90()\n"
    )
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_DEFAULT_FP_FUSION": "1"}
    result = subprocess.run([sys.executable, "-c", script], check=False, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:3] == [
        "token_stats bf16 True",
        "linear torch.bfloat16 True",  # tensor cores
        "linear torch.float32 False",  # exact fp32, no TF32 tensor cores
    ]
