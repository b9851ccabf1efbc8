"""The verdicts below a cached-decoding failure: per layer, padding, float32.

:func:`layer_lines` compares every decoder layer's output in the cached run
with its output in the full pass, and its part of the cache after the run with
a whole-sequence prefill's: "cache agrees, output differs" points at the query
side (position offset, rotary index, attention mask), "cache differs" at what
is written. :func:`padding_lines` changes the padded tokens and sees which run
reads them at real tokens. :func:`float32_lines` re-runs a float16 or bfloat16
model in float32 to tell rounding from logic.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._cached.diagnose import same_values
from pytest_rnn._cached.run import Case, cached_run, token_batch
from pytest_rnn._core import compare as _compare
from pytest_rnn._core.compare import Mismatch, resolve_tolerance
from pytest_rnn._core.stream import ChunkSchedule, compare_runs, first_step
from pytest_rnn._core.text import error_line

__all__ = ["HALF", "float32_lines", "layer_lines", "padding_lines"]

#: Compute dtypes whose mismatches a float32 re-run triages.
HALF = ("float16", "bfloat16")

#: Decoder layers listed one by one before the rest are counted.
SHOWN_LAYERS = 6


def layer_lines(case: Case) -> list[str]:
    """Per decoder layer: does its output differ from the full pass's, does its cache agree?"""
    model = case.model
    layers = model.decoder_layers()
    if not layers:
        return [f"  per layer: not compared ({model.cls}'s backbone lists no transformer_layers)"]
    try:
        with model.layer_outputs() as seen:
            model.full(case.tokens, case.mask)
        full = [calls[0] if len(calls) == 1 else None for calls in seen]
        with model.layer_outputs() as seen:
            _, cache = cached_run(model, case.inputs, case.schedule)
        n = len(case.schedule.lengths)
        cached = [np.concatenate(calls, axis=1) if len(calls) == n else None for calls in seen]
        _, whole = cached_run(model, case.inputs, ChunkSchedule((case.inputs.steps,)))
        empty = model.values(model.empty_cache(case.tokens, case.mask))
        after, prefill = model.values(cache), model.values(whole)
    except Exception as error:  # advice only: never hide the real failure behind it
        return [f"  per layer: not compared ({error_line(error)})"]
    if any(f is None for f in full) or any(c is None for c in cached):
        return ["  per layer: not compared (a decoder layer runs more than once per call)"]
    caches_known = not same_values(prefill, empty) and bool(model.layer_cache(prefill, 0))
    rows, first = [], None
    for i, layer in enumerate(layers):
        out = _compare.compare(cached[i], full[i], case.tolerance, valid=case.valid)
        text = (
            "output agrees"
            if out is None
            else f"output differs from position {out.step_of(out.first)}"
        )
        cache_ok: bool | None = None
        if caches_known:
            cache_ok = _close(
                model.layer_cache(after, i), model.layer_cache(prefill, i), case.tolerance
            )
            text += "; cache agrees" if cache_ok else "; cache differs"
        rows.append(f"    layer {i} {layer.name!r}: {text}")
        if out is not None and first is None:
            first = (i, layer.name, cache_ok)
    shown = rows[:SHOWN_LAYERS]
    if len(rows) > SHOWN_LAYERS:
        shown.append(f"    ... and {len(rows) - SHOWN_LAYERS} more layers")
    head = "  per decoder layer (its output against the full pass's" + (
        "; its cache after the run against a whole-sequence prefill's):"
        if caches_known
        else "; caches not compared: a whole-sequence prefill hands back its empty cache):"
    )
    return [head, *shown, _layer_verdict(first)]


def _close(a: list[np.ndarray], b: list[np.ndarray], tolerance: _compare.Tolerance) -> bool:
    """Whether two caches hold the same arrays within ``tolerance``."""
    return len(a) == len(b) and all(
        x.shape == y.shape and not tolerance.exceeded(x, y).any() for x, y in zip(a, b)
    )


def _layer_verdict(first: tuple[int, str, bool | None] | None) -> str:
    if first is None:
        return (
            "  no decoder layer's output differs: what follows the last layer (the final norm, "
            "the logits head) differs"
        )
    i, name, cache_ok = first
    where = f"  first layer that differs: {i} {name!r}"
    if cache_ok is None:
        return where
    if cache_ok:
        return (
            f"{where}, and its cache agrees -> the query side: the position offset or rotary index "
            "of the new tokens, the attention mask over the cache"
        )
    return (
        f"{where}, and its cache differs -> what is written: the slot (cache_update_index), the "
        "keys and values stored"
    )


def padding_lines(case: Case) -> list[str]:
    """Which run reads the padded tokens at real ones (the padding mask ignored where it matters)."""
    if case.valid.all():
        return []
    vocabulary = case.model.vocabulary_size or int(case.tokens.max()) + 2
    other = np.where(case.valid, case.tokens, (case.tokens + 1) % vocabulary).astype(
        case.tokens.dtype
    )
    inputs = token_batch(other, case.mask)
    one = ChunkSchedule((case.inputs.steps,))
    try:
        cached, _ = cached_run(case.model, inputs, case.schedule)
        full = case.model.full(other, case.mask)
    except Exception as error:  # advice only: never hide the real failure behind it
        return [f"  padding: not measured ({error_line(error)})"]
    lines = []
    for name, new, old, reader in (
        ("cached", cached, case.cached, "call_with_cache"),
        ("full pass's", full, case.reference, "the full pass"),
    ):
        if compare_runs([new], [old], [case.tolerance], [True], case.valid, one):
            lines.append(
                f"  padding: the {name} logits at real tokens change when the padded tokens "
                f"change: {reader} reads padded positions (the padding mask is ignored where it "
                "matters)"
            )
    return lines or ["  padding: neither run reads the padded tokens at real ones"]


def float32_lines(
    case: Case,
    mismatches: list[tuple[int, Mismatch]],
    strict: bool,
    rerun: Callable[[K.CachedLM], tuple[np.ndarray, np.ndarray]] | None = None,
) -> list[str]:
    """For a float16/bfloat16 model: does the mismatch persist in a float32 copy?

    ``strict``: the user gave rtol/atol, which the re-run keeps; else it uses
    float32's default tolerance. ``rerun(copy)``: the logits the mismatching
    run computes on the float32 copy, and where they are compared (default:
    the chunk-by-chunk cached run, at the real tokens).
    """
    model = case.model
    if model.dtype not in HALF:
        return []
    try:
        with K.keras_globals_kept():  # building the copy moves Keras's name counters and seeds
            copy = model.float32_copy()
        reference = copy.full(case.tokens, case.mask)
        if rerun is None:
            cached, compared = cached_run(copy, case.inputs, case.schedule)[0], case.valid
        else:
            cached, compared = rerun(copy)
    except Exception as error:  # advice only: never hide the real failure behind it
        return [
            f"  float32 re-run: not possible ({error_line(error)}); {model.dtype} rounding and "
            "logic are not told apart"
        ]
    tolerance = case.tolerance if strict else resolve_tolerance(None, None, "float32")
    still = compare_runs([cached], [reference], [tolerance], [True], compared, case.schedule)
    worst = max(m.max_abs for _, m in mismatches)
    if still:
        p, _, m = first_step(still)
        return [
            f"  float32 re-run: mismatch persists (from position {p}, greatest abs diff "
            f"{_compare.format_value(m.max_abs)}) -> a logic difference, not {model.dtype} rounding"
        ]
    return [
        f"  float32 re-run: agrees (within {tolerance.describe('full')}; the {model.dtype} "
        f"difference was up to {_compare.format_value(worst)}) -> {model.dtype} rounding, not "
        "logic: loosen rtol/atol"
    ]
