"""Token-level loss profiling of traces under a causal language model, aligned
to the engine's reasoning steps (see ``docs/profiling.md``).

Each trace is tokenised with character offsets, which are turned into UTF-8
byte offsets so that every token lines up with the byte spans of
``cotsieve.segments`` and ``PatternSet.matches``.  The model runs only up to its
last hidden state; ``cotsieve.kernels.linear_token_stats`` then applies the
output layer tile by tile, so the ``[tokens, vocabulary]`` logits never exist.

Example:
    >>> from transformers import AutoModelForCausalLM, AutoTokenizer  # doctest: +SKIP
    >>> tok = AutoTokenizer.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")  # doctest: +SKIP
    >>> lm = AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M-Instruct")  # doctest: +SKIP
    >>> result = profile(lm, tok, ["Let x = 2.\\n\\nWait, x = 3."])  # doctest: +SKIP
    >>> result.labels.column("label").to_pylist()  # doctest: +SKIP
    ['progress', 'backtrack', None]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
import pyarrow as pa

from .analysis import PROGRESS, Analyzer
from .errors import UsageError
from .patterns import PatternSet

#: A token whose NLL is below this many nats is "routine" (predicted almost surely).
ROUTINE_NLL = 0.1
#: Longest model input (prompt + response tokens); longer inputs lose their end.
DEFAULT_MAX_TOKENS = 16384
#: Padded tokens per forward pass (batch size x longest sequence in the batch).
DEFAULT_BATCH_TOKENS = 16384
#: High-loss quantiles reported by every aggregate.
NLL_QUANTILES = (0.9, 0.99)

_WHITESPACE = np.frombuffer(b" \t\r\n", np.uint8)
_KERNEL_STATS = ("nll", "entropy", "top1", "rank")

TraceId = Union[int, str]
TokenCallback = Callable[[int], None]


# ---------------------------------------------------------------- tokenising


@dataclass(frozen=True)
class EncodedTrace:
    """One trace as model input.

    ``input_ids`` is the (possibly truncated) model input: prompt tokens, then
    response tokens from position ``first_response`` on.  ``starts``/``ends``
    are the UTF-8 byte spans, in the trace, of the response tokens that were
    kept.  ``n_response_tokens`` counts response tokens before truncation.
    """

    input_ids: np.ndarray
    first_response: int
    starts: np.ndarray
    ends: np.ndarray
    n_response_tokens: int
    truncated: bool

    @property
    def n_scored(self) -> int:
        """Response tokens that get statistics: each needs a token before it."""
        return max(len(self.input_ids) - max(self.first_response, 1), 0)


def utf8_offsets(text: str) -> np.ndarray:
    """Byte offset in ``text.encode('utf-8')`` of every character index, plus the end.

    Example:
        >>> utf8_offsets("aé€😀").tolist()
        [0, 1, 3, 6, 10]
    """
    code_points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), np.uint32)
    widths = 1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)
    offsets = np.zeros(len(code_points) + 1, np.int64)
    np.cumsum(widths, out=offsets[1:])
    return offsets


def chat_prefix(tokenizer: Any, problem: str) -> str:
    """The chat-template text that precedes the assistant's answer to ``problem``."""
    messages = [{"role": "user", "content": problem}]
    prefix: str = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prefix


def encode_trace(tokenizer: Any, trace: str, problem: Optional[str] = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS) -> EncodedTrace:
    """Tokenise one trace with byte offsets.

    With a ``problem`` the input is the chat-template prompt for it (user turn
    plus the generation prompt) followed by the trace; without one it is the
    tokenizer's BOS token, if it has one, followed by the trace.  The trace's
    own tokens are the response; the input is cut after ``max_tokens`` tokens.
    A token that starts in the prompt and ends in the trace is a response token
    whose span is clipped to the trace.
    """
    if max_tokens < 2:
        raise ValueError(f"max_tokens must be at least 2, got {max_tokens}")
    prompt = chat_prefix(tokenizer, problem) if problem is not None else ""
    text = prompt + trace
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = np.asarray(encoding["input_ids"], np.int64)
    char_spans = np.asarray(encoding["offset_mapping"], np.int64).reshape(-1, 2)
    response = char_spans[:, 1] > len(prompt) if prompt else np.ones(len(ids), bool)
    first = int(np.argmax(response)) if response.any() else len(ids)
    if not response[first:].all():
        raise ValueError("tokenizer offsets are not monotonic; cannot separate prompt and response")
    if not prompt and tokenizer.bos_token_id is not None:
        ids = np.concatenate([[tokenizer.bos_token_id], ids])
        first += 1
    byte_at = utf8_offsets(text)
    trace_start = byte_at[len(prompt)]
    spans = np.clip(byte_at[char_spans[response]] - trace_start, 0, None)
    kept = min(len(ids), max_tokens)
    n_kept = max(kept - first, 0)
    return EncodedTrace(
        input_ids=ids[:kept],
        first_response=first,
        starts=spans[:n_kept, 0],
        ends=spans[:n_kept, 1],
        n_response_tokens=len(spans),
        truncated=kept < len(ids),
    )


# ---------------------------------------------------------------- the model


@dataclass(frozen=True)
class OutputHead:
    """What turns a causal LM's last hidden state into logits:
    ``logits = softcap * tanh((scale * hidden @ weight.T + bias) / softcap)``."""

    base: Any
    weight: Any
    bias: Any
    scale: float
    softcap: Optional[float]


def output_head(model: Any) -> OutputHead:
    """Split a Hugging Face ``*ForCausalLM`` into its base model and output layer.

    The base model's ``last_hidden_state`` is what the output layer consumes in
    these classes: the final norm lives inside the base model.  Logit scaling
    (Cohere's ``logit_scale`` multiplies, Granite's ``logits_scaling`` divides)
    is folded into the hidden state; Gemma's ``final_logit_softcapping`` goes to
    the kernel.
    """
    lm_head = model.get_output_embeddings()
    if lm_head is None or not hasattr(lm_head, "weight"):
        raise UsageError(f"{type(model).__name__} has no output layer with a weight")
    config = model.config
    scale = float(getattr(config, "logit_scale", None) or 1.0)
    scale /= float(getattr(config, "logits_scaling", None) or 1.0)
    softcap = getattr(config, "final_logit_softcapping", None)
    return OutputHead(model.base_model, lm_head.weight, getattr(lm_head, "bias", None), scale,
                      float(softcap) if softcap else None)


def length_batches(lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Group sequence indices, longest first, so that each batch's padded size
    (members x longest member) stays within ``batch_tokens``; a sequence longer
    than that runs alone.

    Example:
        >>> length_batches([3, 10, 4, 9], batch_tokens=20)
        [[1, 3], [2, 0]]
    """
    batches: list[list[int]] = []
    for index in np.argsort(-np.asarray(lengths, np.int64), kind="stable").tolist():
        # Sorted longest first, so a batch's first member sets its padded width.
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= batch_tokens:
            batches[-1].append(index)
        else:
            batches.append([index])
    return batches


def score_batch(head: OutputHead, batch: Sequence[EncodedTrace], pad_id: int) -> list[dict[str, np.ndarray]]:
    """Per-token statistics of the response tokens of a batch of traces.

    Right padding keeps every real position's causal context intact.  The hidden
    state at position ``t`` predicts the token at ``t + 1``.
    """
    import torch

    from .kernels import linear_token_stats  # top-level kernels/, installed as cotsieve.kernels (pyproject)

    device = head.base.device  # where the inputs go; the output layer may sit elsewhere (device maps)
    width = max(len(e.input_ids) for e in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    rows, positions = [], []
    for row, encoded in enumerate(batch):
        input_ids[row, : len(encoded.input_ids)] = torch.from_numpy(encoded.input_ids)
        attention_mask[row, : len(encoded.input_ids)] = 1
        scored = np.arange(max(encoded.first_response, 1), len(encoded.input_ids))
        rows.append(np.full(len(scored), row))
        positions.append(scored)
    rows_t = torch.from_numpy(np.concatenate(rows))
    positions_t = torch.from_numpy(np.concatenate(positions))
    targets = input_ids[rows_t, positions_t].to(head.weight.device)
    with torch.inference_mode():
        hidden = head.base(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                           use_cache=False).last_hidden_state
        predictors = hidden[rows_t.to(hidden.device), (positions_t - 1).to(hidden.device)].to(head.weight.device)
        if head.scale != 1.0:
            predictors = predictors * head.scale
        stats = linear_token_stats(predictors.to(head.weight.dtype), head.weight, targets,
                                   bias=head.bias, softcap=head.softcap, stats=_KERNEL_STATS)
    host = {name: value.cpu().numpy() for name, value in stats.items()}
    bounds = np.cumsum([0] + [e.n_scored for e in batch])
    return [{name: value[lo:hi] for name, value in host.items()} for lo, hi in zip(bounds[:-1], bounds[1:])]


def default_device() -> str:
    """``"cuda"`` when a CUDA device is visible, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def model_context(model: Any) -> Optional[int]:
    """The longest input the model's positions cover, from its config; None
    when the config names none. :func:`profile` cuts inputs there and flags
    them ``truncated``, whatever ``max_tokens`` asks.

    Example:
        >>> from types import SimpleNamespace
        >>> model_context(SimpleNamespace(config=SimpleNamespace(max_position_embeddings=8192)))
        8192
    """
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length"):
        value = getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 1:
            return value
    return None


def load_model(name_or_path: str, gguf_file: Optional[str] = None, device: Optional[str] = None,
               dtype: str = "auto") -> tuple[Any, Any]:
    """Load a Hugging Face causal LM and its tokenizer for :func:`profile`.

    ``gguf_file`` names a GGUF checkpoint inside ``name_or_path`` (or is an
    absolute path); transformers then de-quantises it and builds the tokenizer
    from it as well.  ``dtype="auto"`` is float32 on the CPU and bfloat16 on
    CUDA.

    Example:
        >>> lm, tok = load_model("/models/smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")  # doctest: +SKIP
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = device or default_device()
    if dtype == "auto":
        dtype = "float32" if torch.device(device).type == "cpu" else "bfloat16"
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}")
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **extra)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch_dtype, **extra)
    # transformers wraps PreTrainedModel.to in functools.wraps, whose stub leaves ``self`` unbound.
    return model.to(device).eval(), tokenizer  # type: ignore[arg-type]


# ---------------------------------------------------------------- alignment


def first_non_space(text: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The first non-whitespace byte offset in each ``[start, end)``, or -1.

    Example:
        >>> first_non_space(b"a  bc", np.array([0, 1, 1]), np.array([1, 3, 4])).tolist()
        [0, -1, 3]
    """
    solid = np.flatnonzero(~np.isin(np.frombuffer(text, np.uint8), _WHITESPACE))
    nxt = np.searchsorted(solid, starts)
    found = solid[np.minimum(nxt, len(solid) - 1)] if len(solid) else np.zeros_like(starts)
    return np.where((nxt < len(solid)) & (found < ends), found, -1)


def step_of(anchors: np.ndarray, step_starts: np.ndarray, step_ends: np.ndarray) -> np.ndarray:
    """Index of the step whose ``[start, end)`` holds each anchor byte, or -1.

    Example:
        >>> step_of(np.array([0, 4, 6, -1]), np.array([0, 5]), np.array([4, 9])).tolist()
        [0, -1, 1, -1]
    """
    if len(step_starts) == 0:  # a trace of whitespace alone has no step
        return np.full(len(anchors), -1)
    step = np.searchsorted(step_starts, anchors, side="right") - 1
    inside = (anchors >= 0) & (step >= 0) & (anchors < step_ends[np.maximum(step, 0)])
    return np.where(inside, step, -1)


def overlaps_any(starts: np.ndarray, ends: np.ndarray, match_starts: np.ndarray,
                 match_ends: np.ndarray) -> np.ndarray:
    """Whether each token span shares at least one byte with one of the sorted,
    disjoint match spans.

    Example:
        >>> overlaps_any(np.array([0, 3, 6]), np.array([3, 6, 8]), np.array([4]), np.array([6])).tolist()
        [False, True, False]
    """
    if len(match_starts) == 0:
        return np.zeros(len(starts), bool)
    # The last match starting before the token's end has the largest end of all
    # such matches, since matches are disjoint and sorted.
    last = np.searchsorted(match_starts, ends, side="left") - 1
    return (last >= 0) & (match_ends[np.maximum(last, 0)] > starts)


class DocSpans:
    """The byte spans of a table with ``doc``, ``start``, ``end`` columns sorted
    by document (the output of ``segments`` or ``PatternSet.matches``), sliced
    per document."""

    def __init__(self, table: pa.Table, n_docs: int) -> None:
        self.bounds = np.searchsorted(table.column("doc").to_numpy(), np.arange(n_docs + 1))
        self.starts = table.column("start").to_numpy()
        self.ends = table.column("end").to_numpy()

    def of(self, doc: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.bounds[doc], self.bounds[doc + 1]
        return self.starts[lo:hi], self.ends[lo:hi]

    def first_row(self, doc: int) -> int:
        return int(self.bounds[doc])


# ---------------------------------------------------------------- aggregates


def _null_nan(values: np.ndarray) -> pa.Array:
    return pa.array(values, from_pandas=True)


def _masked_means(codes: np.ndarray, n_groups: int, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    totals = np.bincount(codes[mask], weights=values[mask], minlength=n_groups)
    counts = np.bincount(codes[mask], minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


def _group_quantiles(codes: np.ndarray, n_groups: int, values: np.ndarray, q: float) -> np.ndarray:
    """numpy's default (linear) quantile of ``values`` within every group."""
    ordered = values[np.lexsort((values, codes))].astype(np.float64)
    counts = np.bincount(codes, minlength=n_groups)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position = q * np.maximum(counts - 1, 0)
    low = np.floor(position).astype(np.int64)
    high = np.ceil(position).astype(np.int64)
    if len(ordered) == 0:
        return np.full(n_groups, np.nan)

    def take(offset: np.ndarray) -> np.ndarray:
        return np.asarray(ordered[np.minimum(first + offset, len(ordered) - 1)])

    result = take(low) + (take(high) - take(low)) * (position - low)
    return np.where(counts > 0, result, np.nan)


def group_stats(codes: np.ndarray, n_groups: int, nll: np.ndarray, entropy: np.ndarray, top1: np.ndarray,
                marker: np.ndarray, routine_nll: float = ROUTINE_NLL) -> dict[str, pa.Array]:
    """Loss aggregates of the tokens of each group ``0 .. n_groups - 1``.

    Columns (null where a group has no such tokens): ``n_tokens``, ``mean_nll``,
    ``mean_entropy``, ``top1_share``, ``routine_share`` (share of tokens with
    ``nll < routine_nll``), ``mean_nll_non_routine`` (the loss without the
    dilution by routine tokens), ``nll_p90``, ``nll_p99``, ``n_marker_tokens``,
    ``mean_nll_marker`` and ``mean_nll_non_marker``.
    """
    every = np.ones(len(codes), bool)
    routine = nll < routine_nll
    columns: dict[str, pa.Array] = {
        "n_tokens": pa.array(np.bincount(codes, minlength=n_groups).astype(np.int64)),
        "mean_nll": _null_nan(_masked_means(codes, n_groups, nll, every)),
        "mean_entropy": _null_nan(_masked_means(codes, n_groups, entropy, every)),
        "top1_share": _null_nan(_masked_means(codes, n_groups, top1.astype(np.float64), every)),
        "routine_share": _null_nan(_masked_means(codes, n_groups, routine.astype(np.float64), every)),
        "mean_nll_non_routine": _null_nan(_masked_means(codes, n_groups, nll, ~routine)),
    }
    for q in NLL_QUANTILES:
        columns[f"nll_p{round(q * 100)}"] = _null_nan(_group_quantiles(codes, n_groups, nll, q))
    columns["n_marker_tokens"] = pa.array(np.bincount(codes[marker], minlength=n_groups).astype(np.int64))
    columns["mean_nll_marker"] = _null_nan(_masked_means(codes, n_groups, nll, marker))
    columns["mean_nll_non_marker"] = _null_nan(_masked_means(codes, n_groups, nll, ~marker))
    return columns


def _plain(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks()
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def _first_appearance_codes(values: pa.Array) -> np.ndarray:
    """Integer codes that count up in order of first appearance, null last, so
    sorting the codes keeps that order."""
    encoded = values.dictionary_encode()
    return np.asarray(encoded.indices.fill_null(len(encoded.dictionary)), np.int64)


def summarize(tokens: pa.Table, by: Union[str, Sequence[str]], routine_nll: float = ROUTINE_NLL) -> pa.Table:
    """Aggregate a per-token table (as in ``ProfileResult.tokens``) by key columns.

    Null keys form their own group (e.g. ``label`` null: tokens outside every
    step).  Groups come in order of first appearance; the columns are the keys
    followed by those of :func:`group_stats`.

    Example:
        >>> t = pa.table({"label": ["a", "a", None], "nll": [0.0, 2.0, 1.0], "entropy": [0.1, 0.2, 0.3],
        ...               "top1": [True, False, False], "marker": [False, True, False]})
        >>> s = summarize(t, "label")
        >>> s.column("label").to_pylist(), s.column("mean_nll").to_pylist(), s.column("routine_share").to_pylist()
        (['a', None], [1.0, 1.0], [0.5, 0.0])
    """
    keys = [by] if isinstance(by, str) else list(by)
    key_columns = [_plain(tokens.column(k)) for k in keys]
    key_codes = np.stack([_first_appearance_codes(c) for c in key_columns], axis=1) if tokens.num_rows \
        else np.zeros((0, len(keys)), np.int64)
    unique, first_row, codes = np.unique(key_codes, axis=0, return_index=True, return_inverse=True)
    codes = codes.reshape(-1)
    columns = {k: c.take(pa.array(first_row)) for k, c in zip(keys, key_columns)}
    nll, entropy, top1, marker = (np.asarray(_plain(tokens.column(n)).to_numpy(zero_copy_only=False))
                                  for n in ("nll", "entropy", "top1", "marker"))
    columns.update(group_stats(codes, len(unique), nll, entropy, top1, marker, routine_nll=routine_nll))
    return pa.table(columns)


# ---------------------------------------------------------------- the API


@dataclass(frozen=True)
class ProfileResult:
    """The tables of :func:`profile`.

    ``tokens``: one row per scored response token (columns in
    ``docs/profiling.md``); ``traces``: one row per trace with its truncation
    flag and loss aggregates; ``labels``: aggregates per step label over all
    traces (null label: tokens outside every step); ``trace_labels``: the same
    per trace and label.
    """

    tokens: pa.Table
    traces: pa.Table
    labels: pa.Table
    trace_labels: pa.Table


def _as_text(trace: Union[str, bytes]) -> str:
    # Tokenizers take str; invalid UTF-8 becomes U+FFFD, and byte offsets refer
    # to the UTF-8 encoding of the repaired text.
    return trace.decode("utf-8", "replace") if isinstance(trace, (bytes, bytearray)) else trace


def _aligned_tokens(doc: int, encoded: EncodedTrace, data: bytes, steps: DocSpans, step_labels: np.ndarray,
                    matches: DocSpans) -> dict[str, np.ndarray]:
    """Spans, step, label code (-1: none) and marker flag of one trace's scored tokens."""
    unscored = len(encoded.starts) - encoded.n_scored  # the first token, when nothing precedes it
    starts, ends = encoded.starts[unscored:], encoded.ends[unscored:]
    step = step_of(first_non_space(data, starts, ends), *steps.of(doc))
    global_step = np.where(step >= 0, steps.first_row(doc) + step, 0)
    label = np.where(step >= 0, step_labels[global_step], -1) if len(step_labels) else np.full(len(step), -1)
    return {
        "trace": np.full(len(starts), doc, np.int64),
        "index": np.arange(unscored, unscored + len(starts), dtype=np.int64),
        "token": encoded.input_ids[len(encoded.input_ids) - len(starts):],
        "start": starts,
        "end": ends,
        "step": step,
        "label": label,
        "marker": overlaps_any(starts, ends, *matches.of(doc)),
    }


def _token_table(ids: Sequence[TraceId], encoded: Sequence[EncodedTrace], scores: Sequence[dict[str, np.ndarray]],
                 datas: Sequence[bytes], steps: pa.Table, matches: pa.Table, labels: pa.Array
                 ) -> tuple[pa.Table, np.ndarray]:
    """The per-token table, and the trace ordinal of every row."""
    step_spans, match_spans = DocSpans(steps, len(encoded)), DocSpans(matches, len(encoded))
    step_labels = np.asarray(steps.column("label").combine_chunks().indices, np.int64)
    aligned = [_aligned_tokens(doc, enc, data, step_spans, step_labels, match_spans)
               for doc, (enc, data) in enumerate(zip(encoded, datas))]

    def column(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate([a[name] for a in aligned] + [np.zeros(0)]).astype(dtype)

    def stat(name: str, dtype: Any) -> np.ndarray:
        return np.concatenate([s[name] for s in scores] + [np.zeros(0)]).astype(dtype)

    trace = column("trace", np.int64)
    label = column("label", np.int32)
    table = pa.table({
        "trace_id": pa.array(ids).take(pa.array(trace)) if len(ids) else pa.array([], pa.int64()),
        "token_index": pa.array(column("index", np.int64)),
        "token_id": pa.array(column("token", np.int64)),
        "start": pa.array(column("start", np.int64)),
        "end": pa.array(column("end", np.int64)),
        "step": pa.array(column("step", np.int64)),
        "label": pa.DictionaryArray.from_arrays(pa.array(label, mask=label < 0), labels),
        "marker": pa.array(column("marker", bool)),
        "nll": pa.array(stat("nll", np.float32)),
        "entropy": pa.array(stat("entropy", np.float32)),
        "top1": pa.array(stat("top1", bool)),
        "rank": pa.array(stat("rank", np.int32)),
    })
    return table, trace


def profile(
    model: Any,
    tokenizer: Any,
    traces: Sequence[Union[str, bytes]],
    problems: Optional[Sequence[Optional[str]]] = None,
    ids: Optional[Sequence[TraceId]] = None,
    *,
    patterns: Union[str, PatternSet] = "default",
    steps: str = "paragraph",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    routine_nll: float = ROUTINE_NLL,
    on_tokens: Optional[TokenCallback] = None,
) -> ProfileResult:
    """Per-token loss of every trace under ``model``, aligned to its steps.

    Args:
        model: a Hugging Face causal LM (``*ForCausalLM``), already on its device.
        tokenizer: its fast tokenizer (offsets are needed).
        traces: the texts to score (the assistant's response).
        problems: optional prompts, one per trace; a trace with a problem is
            scored as the answer to it under the chat template, loss on the
            response tokens only.
        ids: trace ids for the output tables; default ``0 .. len(traces) - 1``.
        patterns, steps: how to segment and label steps, as in ``cotsieve.segments``;
            the same pattern set's matches mark the marker tokens.
        max_tokens: longest model input; longer inputs are cut at the end and
            the trace is flagged ``truncated``.
        batch_tokens: padded tokens per forward pass.
        routine_nll: tokens with a lower NLL (nats) count as routine.
        on_tokens: called after each batch with the number of input tokens run.

    Returns:
        A :class:`ProfileResult`.

    Example:
        >>> r = profile(lm, tok, ["Hmm.\\n\\nWait, no."], max_tokens=4096)  # doctest: +SKIP
        >>> r.tokens.column_names[-4:]  # doctest: +SKIP
        ['nll', 'entropy', 'top1', 'rank']
    """
    texts = [_as_text(t) for t in traces]
    ids = list(range(len(texts))) if ids is None else list(ids)
    problems = [None] * len(texts) if problems is None else list(problems)
    if not len(ids) == len(problems) == len(texts):
        raise ValueError(f"got {len(texts)} traces, {len(problems)} problems and {len(ids)} ids")
    if not getattr(tokenizer, "is_fast", False):
        raise UsageError("profiling needs a fast tokenizer (return_offsets_mapping)")
    # Positions past the model's context would be scored as garbage, not as the trace.
    max_tokens = min(max_tokens, model_context(model) or max_tokens)
    encoded = [encode_trace(tokenizer, t, p, max_tokens) for t, p in zip(texts, problems)]
    head = output_head(model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    scores: list[Optional[dict[str, np.ndarray]]] = [None] * len(encoded)
    for batch in length_batches([len(e.input_ids) for e in encoded], batch_tokens):
        for index, result in zip(batch, score_batch(head, [encoded[i] for i in batch], pad_id)):
            scores[index] = result
        if on_tokens is not None:
            on_tokens(sum(len(encoded[i].input_ids) for i in batch))

    analyzer = Analyzer(patterns, steps)
    pattern_set = analyzer.patterns
    datas = [t.encode("utf-8", "surrogatepass") for t in texts]
    step_table = analyzer.segments(datas)
    labels = pa.array(pattern_set.categories + (PROGRESS,))
    scored = [s for s in scores if s is not None]
    assert len(scored) == len(scores), "every trace is in one length batch"
    tokens, trace_of_token = _token_table(ids, encoded, scored, datas, step_table, pattern_set.matches(datas), labels)
    return ProfileResult(
        tokens=tokens,
        traces=_trace_table(ids, encoded, step_table, tokens, trace_of_token, routine_nll),
        labels=summarize(tokens, "label", routine_nll),
        trace_labels=summarize(tokens, ["trace_id", "label"], routine_nll),
    )


def _trace_table(ids: Sequence[TraceId], encoded: Sequence[EncodedTrace], steps: pa.Table, tokens: pa.Table,
                 trace_of_token: np.ndarray, routine_nll: float) -> pa.Table:
    n = len(encoded)
    columns: dict[str, pa.Array] = {
        "trace_id": pa.array(ids) if n else pa.array([], pa.int64()),
        "n_response_tokens": pa.array([e.n_response_tokens for e in encoded], pa.int64()),
        "truncated": pa.array([e.truncated for e in encoded], pa.bool_()),
        "n_steps": pa.array(np.bincount(steps.column("doc").to_numpy(), minlength=n).astype(np.int64)),
    }
    nll, entropy, top1, marker = (np.asarray(tokens.column(c).to_numpy()) for c in ("nll", "entropy", "top1", "marker"))
    columns.update(group_stats(trace_of_token, n, nll, entropy, top1, marker, routine_nll=routine_nll))
    return pa.table(columns)
