"""The assertion ``assert_cached_decoding_matches_full``: a causal LM's cache against its full pass.

The assertion checks its arguments (:mod:`.args`), then, under
``K.untouched``, runs the full pass once, decodes the tokens chunk by chunk
through the streaming engine from an empty cache (:mod:`.run`), and, with
``generate=True``, drives the model's own generation loop forced to the same
tokens. Both are compared with the engine's comparison; a failure's report is
the engine's mismatch block and the diagnosis of :mod:`.diagnose` and
:mod:`.verdicts`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._cached.args import (
    check_generate,
    check_layout,
    check_mask,
    check_model,
    check_tokens,
)
from pytest_rnn._cached.diagnose import diagnose
from pytest_rnn._cached.run import Case, cached_run, generation, prompt_mask, token_batch
from pytest_rnn._cached.verdicts import float32_lines, layer_lines, padding_lines
from pytest_rnn._core.compare import Mismatch, Tolerance
from pytest_rnn._core.stream import ChunkSchedule, compare_runs, first_step, mismatch_block
from pytest_rnn._core.text import plural
from pytest_rnn._core.validate import Batch, check_tolerances
from pytest_rnn._errors import RNNAssertionError, StepComparison, StepPicture
from pytest_rnn._report import recorded

__all__ = ["TITLE", "assert_cached_decoding_matches_full"]

#: The first line of every failure report.
TITLE = "Cached decoding differs from the full pass."


@recorded
def assert_cached_decoding_matches_full(
    causal_lm: Any,
    token_ids: Any,
    *,
    padding_mask: Any = None,
    chunks: int | Sequence[int] = 1,
    generate: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that decoding with the model's cache computes the logits of its full pass.

    The reference is the full pass ``causal_lm({"token_ids", "padding_mask"})``.
    The cached run starts from an empty cache of the right structure (the
    model's own ``_build_cache``, zeroed) and calls
    ``call_with_cache(token_ids[:, a:b], cache, cache_update_index=a)`` chunk by
    chunk, handing on the cache each call returns; the first chunk is the
    prefill. Its logits must equal the full pass's at every real token, prefill
    positions included, within the tolerance of the logits' dtype.

    With ``generate=True`` the model's own generation loop is checked too:
    ``generate_step`` runs from a prompt of the prefill's tokens (padded after
    them, as ``generate()`` lays a prompt out) with a sampler that gives the next
    of ``token_ids`` at every step and records the logits the loop computes;
    those must equal the full pass's at every position the loop computes (from
    the prompt's last token to the second-to-last token; with a single chunk the
    prompt is every token but the last, and a one-token sequence leaves the loop
    nothing to compute). The sampler records inside the compiled loop; on
    TensorFlow and JAX the loop runs in a thread beside the cached run.

    Right padding (``padding_mask`` False after a sample's last token) is left
    out of the comparison. Left padding, or padding between tokens, is only
    possible where ``call_with_cache`` takes a ``padding_mask`` (each call gets
    its chunk's). Nothing of the model is changed; Python's and numpy's random
    state and the matmul precision are kept (TF32 off while it runs).

    Args:
        causal_lm: a KerasHub ``CausalLM`` (anything with ``call_with_cache``);
            its weights may be random.
        token_ids: ``(batch, steps)`` integer token ids.
        padding_mask: ``(batch, steps)`` booleans (or 0/1), True at real tokens;
            ``None`` for all real.
        chunks: a chunk length (the last chunk may be shorter) or a list of
            lengths summing to the number of steps, the first being the prefill:
            ``[5, 1, 3, 2, 4, 1]`` is a prefill of 5, then uneven hand-overs.
        generate: also drive the model's own ``generate_step``.
        rtol: relative tolerance; with ``atol``, both or neither. Default by the
            logits' dtype (float32: 1.3e-6 and 1e-5), or ``--rnn-rtol``/``--rnn-atol``.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: the logits differ. The message names the model, batch,
            steps, schedule and padding, the first position that differs (prefill
            or decode) and the call that computed it (chunk, positions,
            ``cache_update_index``), whether a single whole-sequence prefill
            agrees with the full pass (then the hand-over between calls is at
            fault), what each call did with the cache (handed back unchanged,
            slots written at the wrong index, index or cache ignored), per
            decoder layer whether its output and its cache agree, which run
            reads padded tokens, and for float16/bfloat16 models a float32
            re-run's verdict. The generation loop's mismatches follow.
        TypeError, ValueError: an argument is wrong, the padding cannot be
            expressed by the cache, or ``generate_step`` cannot be forced to the
            tokens; the message names it.

    Example:
        >>> backbone = keras_hub.models.GPT2Backbone(
        ...     vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=32,
        ...     intermediate_dim=64, max_sequence_length=32)
        >>> lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
        >>> tokens = np.random.default_rng(0).integers(1, 50, size=(2, 16))
        >>> assert_cached_decoding_matches_full(lm, tokens, chunks=[5, 1, 3, 2, 4, 1])
    """
    __tracebackhide__ = True
    model = check_model(causal_lm)
    tokens = check_tokens(token_ids, model)
    mask = check_mask(padding_mask, tokens)
    forced = check_generate(generate)
    check_layout(mask, model, forced)
    schedule = ChunkSchedule.parse(chunks, tokens.shape[1])
    check_tolerances(rtol, atol)
    with K.untouched():
        report, picture = _check(model, tokens, mask, schedule, forced, rtol, atol)
    if report is not None:
        raise RNNAssertionError(report, picture=picture)


def _check(
    model: K.CachedLM,
    tokens: np.ndarray,
    mask: np.ndarray,
    schedule: ChunkSchedule,
    forced: bool,
    rtol: float | None,
    atol: float | None,
) -> tuple[str | None, StepPicture | None]:
    """Run every side and compare; the failure report and its picture, or ``None`` when they agree."""
    inputs = token_batch(tokens, mask)
    # The generation loop runs beside the full pass and the cached loop (a thread where the
    # loops are compiled and leave Python's lock free: K.alongside); its error is kept.
    beside = (
        K.alongside(
            lambda: _generated(model, inputs, schedule),
            thread=model.loops_side_by_side(tokens),
        )
        if forced
        else contextlib.nullcontext(lambda: None)
    )
    with beside as generated:
        reference = model.full(tokens, mask)
        tolerance = K.output_tolerance(rtol, atol, reference.dtype)
        cached, _ = cached_run(model, inputs, schedule, compiled=True)
        loop = generated()
    mismatches = compare_runs([cached], [reference], [tolerance], [True], mask, schedule)
    case = Case(model, inputs, schedule, reference, cached, tolerance, mask)
    loop_lines: list[str] = []
    drawn: list[StepComparison] = []
    if mismatches:
        drawn.append(_drawn("cached", cached, reference, tolerance, mask))
    if isinstance(loop, ValueError):
        if not mismatches:
            raise loop
        loop_lines = [f"  generation loop: not driven ({loop})"]
    elif loop is not None:
        compared = mask & loop.computed
        found = compare_runs([loop.logits], [reference], [tolerance], [True], compared, schedule)
        if found:
            loop_lines = _loop_lines(case, found, agrees=not mismatches)
            loop_lines += float32_lines(
                case,
                found,
                strict=rtol is not None,
                rerun=lambda copy: _loop_logits(copy, case),
            )
            drawn.append(_drawn("generation loop", loop.logits, reference, tolerance, compared))
    if not drawn:
        return None, None
    lines = [TITLE, f"  {_context(case)}"]
    if mismatches:
        lines += [
            "  call_with_cache chunk by chunk, from an empty cache:",
            *mismatch_block(mismatches, [True], actual="cached", expected="full"),
            *diagnose(case, mismatches),
            *layer_lines(case),
            *padding_lines(case),
            *float32_lines(case, mismatches, strict=rtol is not None),
        ]
    else:
        lines.append(
            "  call_with_cache chunk by chunk, from an empty cache: agrees with the full pass"
        )
    lines += loop_lines
    return "\n".join(lines), StepPicture("cached", TITLE, tuple(drawn), schedule.ends)


def _generated(
    model: K.CachedLM, inputs: Batch, schedule: ChunkSchedule
) -> K.Generation | ValueError:
    """The forced generation loop's run, or the ValueError saying it cannot be forced."""
    try:
        return generation(model, inputs, schedule)
    except ValueError as error:
        return error


def _loop_lines(case: Case, found: list[tuple[int, Mismatch]], agrees: bool) -> list[str]:
    """The generation loop's mismatches, the iteration that computed the first, what it means."""
    p, _, m = first_step(found)
    prompt = int(prompt_mask(case.valid, case.schedule).sum(axis=1).min())
    call = (
        f"call_with_cache(token_ids[:, {p}:{p + 1}], cache, cache_update_index={p})"
        if case.model.indexed
        else f"call_with_cache(token_ids[:, {p}:{p + 1}], cache)"
    )
    lines = [
        f"  generation loop ({case.model.cls}.generate_step from a prompt of {plural(prompt, 'token')}, its "
        "sampler forced to the given tokens):",
        *mismatch_block(found, [True], actual="generate", expected="full"),
        f"  position {p} (sample {m.first[0]}) was computed by the loop's iteration at index "
        f"{p + 1}, {call}",
    ]
    if agrees:
        lines.append(
            "  call_with_cache chunk by chunk agrees with the full pass, so the loop itself "
            "differs: generate_step's prefill (_build_cache on the padded prompt), the index it "
            "passes or the token it feeds"
        )
    return lines


def _loop_logits(model: K.CachedLM, case: Case) -> tuple[np.ndarray, np.ndarray]:
    """The generation loop's logits on ``model`` and where they are compared."""
    loop = generation(model, case.inputs, case.schedule)
    return loop.logits, case.valid & loop.computed


def _drawn(
    name: str, actual: np.ndarray, reference: np.ndarray, tolerance: Tolerance, valid: np.ndarray
) -> StepComparison:
    """One run's logits against the full pass's, as the picture draws them."""
    return StepComparison(
        f"{name} vs full pass logits", name, "full pass", actual, reference,
        tolerance.rtol, tolerance.atol, None, valid,
    )  # fmt: skip


def _context(case: Case) -> str:
    valid, steps = case.valid, case.inputs.steps
    if valid.all():
        padding = "no padding"
    else:
        lengths = valid.sum(axis=1)[:, None]
        if (valid == (np.arange(steps)[None, :] < lengths)).all():
            side = "right padding"
        elif (valid == (np.arange(steps)[None, :] >= steps - lengths)).all():
            side = "left padding (call_with_cache takes the mask)"
        else:
            side = "padding between tokens (call_with_cache takes the mask)"
        padding = f"{side}: {int(valid.sum())} of {valid.size} positions are tokens"
    calls = len(case.schedule.lengths)
    prefill = f"prefill {case.schedule.lengths[0]}, " if calls > 1 else ""
    return (
        f"model {case.model.describe()}, batch {case.inputs.batch}, {steps} steps, {prefill}"
        f"{case.schedule.describe()}, {padding}"
    )
