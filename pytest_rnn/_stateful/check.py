"""The assertion ``assert_stateful_equals_batch`` and the checks it runs.

The assertion checks its arguments, builds the two models of a check
(:func:`_setup`) and, under ``K.untouched``, runs :func:`_check`: the streamed
run against the full-sequence reference, a run with the other samples
changed (samples must be independent) and, where that does not already show
it, a run after a reset (streaming must repeat itself). Each failed check is
a :class:`_Finding`; together they make the report and its picture.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.compare import Mismatch
from pytest_rnn._core.stream import (
    ChunkSchedule,
    compare_runs,
    mismatch_block,
    mismatch_lines,
    valid_at,
)
from pytest_rnn._core.validate import Batch, check_tolerances
from pytest_rnn._errors import RNNAssertionError, StepComparison, StepPicture
from pytest_rnn._report import recorded
from pytest_rnn._stateful.diagnose import _cannot_stream, _Case, _diagnose
from pytest_rnn._stateful.run import (
    _prepared_reference,
    _sequence_flags,
    _Setup,
    _stream,
    _stream_inputs,
)

__all__ = ["assert_stateful_equals_batch"]


@recorded
def assert_stateful_equals_batch(
    model: Any,
    x: Any,
    *,
    stateful_model: Any = None,
    chunks: int | Sequence[int] = 1,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that streaming ``x`` through a stateful copy gives the batch model's outputs.

    The reference is ``model`` on the whole of ``x`` (``training=False``). The
    streamed run resets a stateful model (your ``stateful_model``, or a twin
    pytest-rnn builds with the same weights) and feeds it ``x`` chunk by chunk.

    - Sequence outputs are compared at every step.
    - Last-step outputs (``return_sequences=False``) are compared at every chunk
      end ``t`` with ``model(x[:, :t])``: prefix consistency, seed 003's question.
    - Masked steps (``Masking``, ``Embedding(mask_zero=True)``, pre- or
      post-padding) are left out; only valid steps must agree.
    - After a reset the streamed run repeats itself exactly (every stateful
      layer, nested ones too, really resets), and sample *i* of the batch is
      unaffected by the other samples.

    Args:
        model: a Keras model (Sequential or Functional), stateless or stateful.
        x: ``(batch, steps, features...)`` array (or ``(batch, steps)`` token ids),
            or a list/dict of them for a multi-input model.
        stateful_model: your own streaming copy; batch size 1 (fed one sample
            at a time, as in seed 003) or ``x``'s batch size. Its states are
            saved and put back.
        chunks: a chunk length (the last chunk may be shorter) or a list of
            lengths summing to the number of steps: uneven schedules are where
            bugs hide.
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            output dtype (float32: 1.3e-6 and 1e-5), or ``--rnn-rtol``/``--rnn-atol``.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: the outputs differ. The message gives the model, shapes
            and chunking, the first step and sample that differ, how many
            differ and by how much, the first layer whose output differs and why
            it cannot stream, whether a float64 re-run calls it rounding or logic,
            and, for your own ``stateful_model``, layers left stateless or weights
            never copied.
        TypeError, ValueError: an argument is wrong; the message names it.

    Example:
        >>> model = keras.Sequential([keras.Input((None, 3)), layers.LSTM(16), layers.Dense(1)])
        >>> pytest_rnn.assert_stateful_equals_batch(model, x, chunks=[3, 1, 4])
    """
    __tracebackhide__ = True
    K.check_model(model, "model")
    inputs = _stream_inputs(model, x, "streamed and full")
    schedule = ChunkSchedule.parse(chunks, inputs.steps)
    check_tolerances(rtol, atol)
    _check_stateful_model(stateful_model, inputs, schedule)
    picture = None
    with K.untouched(stateful_model):
        try:
            setup = _setup(model, stateful_model, inputs, schedule)
        except Exception as error:  # Keras may refuse to copy such a model
            report = _cannot_stream(model, error, inputs, schedule)
            if report is None:
                raise
        else:
            report, picture = _check(model, stateful_model, setup, inputs, schedule, rtol, atol)
    if report is not None:
        raise RNNAssertionError(report, picture=picture)


def _check_stateful_model(stateful_model: Any, inputs: Batch, schedule: ChunkSchedule) -> None:
    if stateful_model is None:
        return
    if not K.is_model(stateful_model):
        raise TypeError(
            f"stateful_model must be a Keras model, got {type(stateful_model).__name__}"
        )
    size = K.input_batch(stateful_model)
    if size not in (1, inputs.batch):
        raise ValueError(
            f"stateful_model has batch size {size}; it must be 1 (fed one sample at a time) "
            f"or x's batch size {inputs.batch}"
        )
    fixed = K.fixed_steps(stateful_model)
    if fixed is not None and any(n != fixed for n in schedule.lengths):
        raise ValueError(
            f"stateful_model takes chunks of exactly {fixed} step(s) (its input shape is "
            f"{tuple(stateful_model.inputs[0].shape)}), but chunks is {list(schedule.lengths)}: "
            f"use chunks={fixed} or build it with a None time dimension"
        )


def _setup(model: Any, stateful_model: Any, inputs: Batch, schedule: ChunkSchedule) -> _Setup:
    graph = K.is_graph_model(model)
    # A stateful model or one with a fixed number of steps cannot take whole
    # batches of every prefix length: the reference is then a stateless copy
    # with an open time axis and the same weights.
    needs_clone = bool(K.stateful_layers(model)) or K.fixed_steps(model) is not None
    if needs_clone and not graph:
        raise TypeError(
            "model is a stateful or fixed-length subclassed model; pass a stateless model "
            "with an open time axis as model (pytest-rnn cannot copy subclassed models)"
        )
    reference = K.cached_clone(model, "stateless", None) if needs_clone else model
    if stateful_model is None:
        if not graph:
            raise TypeError(
                f"model {model.name!r} is a subclassed {type(model).__name__}: pytest-rnn cannot "
                "build its stateful twin; pass your streaming copy as stateful_model="
            )
        streamer = K.cached_clone(model, "stateful", inputs.batch)
        return _Setup(reference, streamer, per_sample=False, user_stream=False)
    size = K.input_batch(stateful_model)
    per_sample = size == 1 and inputs.batch > 1
    return _Setup(reference, stateful_model, per_sample=per_sample, user_stream=True)


class _Finding(NamedTuple):
    """One failed check: its lines in the report and the pair its picture draws."""

    lines: list[str]
    drawn: StepComparison


def _check(
    model: Any,
    stateful_model: Any,
    setup: _Setup,
    inputs: Batch,
    schedule: ChunkSchedule,
    rtol: float | None,
    atol: float | None,
) -> tuple[str | None, StepPicture | None]:
    """Run every comparison; the failure report and its picture, or ``None`` when all hold."""
    sequence = _sequence_flags(setup.reference, inputs)
    # The reference runs beside the stream once it is compiled, where that pays
    # (K.thread_for_compiled_calls); its first call traces, which is Python.
    prepared, warm = _prepared_reference(setup.reference, inputs, schedule, sequence)
    with K.alongside(prepared, thread=warm and K.thread_for_compiled_calls()) as reference_run:
        try:
            streamed = _stream(
                setup.streamer, inputs, schedule, sequence, setup.per_sample,
                ours=not setup.user_stream,
            )  # fmt: skip
        except Exception as error:  # Keras may refuse to feed such a model chunk by chunk
            report = _cannot_stream(model, error, inputs, schedule)
            if report is None:
                raise
            return report, None
        reference = reference_run()
    valid = K.valid_steps(model, inputs.leaves)
    tolerances = [K.output_tolerance(rtol, atol, ref.dtype) for ref in reference]
    case = _Case(model, stateful_model, setup, inputs, schedule, sequence, tolerances, valid)
    mismatches = compare_runs(streamed, reference, tolerances, sequence, valid, schedule)
    full = _full_finding(case, streamed, reference, mismatches)
    kept = np.arange(inputs.batch) % 2 == 0
    other = _independence_run(case, kept)
    findings = [
        found
        for found in (
            full,
            _repeat_finding(case, streamed, other, kept),
            _crossed_finding(case, streamed, other, kept),
        )
        if found is not None
    ]
    if not findings:
        return None, None
    title = (
        "Streamed output differs from the full-sequence output."
        if mismatches
        else "Streaming is not repeatable or not independent per sample."
    )
    lines = [title, f"  {_context(model, setup, inputs, schedule)}"]
    for n, found in enumerate(findings):
        lines.extend(found.lines if n == 0 and mismatches else ["", *found.lines])
    drawn = tuple(found.drawn for found in findings[:2])
    return "\n".join(lines), StepPicture("stateful", title, drawn, schedule.ends)


def _steps(case: _Case, n: int) -> list[int] | None:
    """The step each position of output ``n``'s axis 1 stands for (``None``: position = step)."""
    return None if case.sequence[n] else case.schedule.last_steps


def _full_finding(
    case: _Case,
    streamed: list[np.ndarray],
    reference: list[np.ndarray],
    mismatches: list[tuple[int, Mismatch]],
) -> _Finding | None:
    """The streamed run against the full-sequence reference, with the diagnosis."""
    if not mismatches:
        return None
    n, m = mismatches[0]
    drawn = StepComparison(
        "streamed vs full-sequence output" + (f", output [{n}]" if len(reference) > 1 else ""),
        "streamed (stateful, chunk by chunk)", "full (whole sequence at once)",
        streamed[n], reference[n], m.tolerance.rtol, m.tolerance.atol,
        _steps(case, n), valid_at(case.valid, case.schedule, case.sequence[n]),
    )  # fmt: skip
    return _Finding(mismatch_block(mismatches, case.sequence) + _diagnose(case, mismatches), drawn)


def _independence_run(case: _Case, kept: np.ndarray) -> list[np.ndarray] | None:
    """The batch streamed with the samples not ``kept`` changed; ``None`` where there is one stream per sample."""
    # Independence: change the odd samples (time-reversed) and require the even
    # ones to be unaffected: this catches mixing across the batch even when it is
    # symmetric in the samples (a batch mean), which a permutation would not.
    setup, inputs = case.setup, case.inputs
    if setup.per_sample or inputs.batch <= 1:
        return None
    changed = inputs.map(lambda a: np.where(_expand(kept, a.ndim), a, _changed_samples(a)))
    return _stream(
        setup.streamer, changed, case.schedule, case.sequence, per_sample=False,
        ours=not setup.user_stream,
    )  # fmt: skip


def _repeat_finding(
    case: _Case, streamed: list[np.ndarray], other: list[np.ndarray] | None, kept: np.ndarray
) -> _Finding | None:
    """The inputs streamed again after a reset must repeat the first run exactly."""
    # The independence run is itself a run after a reset: when its kept samples
    # repeat the first run bit for bit, the reset restored everything they
    # depend on, and a third run would only repeat that; otherwise the same
    # inputs are streamed again to tell leftover state from mixing across the batch.
    if other is not None and all(_same(o[kept], s[kept]) for o, s in zip(other, streamed)):
        return None
    setup = case.setup
    repeat = _stream(
        setup.streamer, case.inputs, case.schedule, case.sequence, setup.per_sample,
        ours=not setup.user_stream,
    )  # fmt: skip
    differ = [n for n, (a, b) in enumerate(zip(repeat, streamed)) if not _same(a, b)]
    if not differ:
        return None
    n = differ[0]
    drawn = StepComparison(
        "streamed again after a reset vs the first streamed run (must repeat exactly)",
        "after reset", "first run", repeat[n], streamed[n], 0.0, 0.0,
        _steps(case, n), valid_at(case.valid, case.schedule, case.sequence[n]),
    )  # fmt: skip
    layers = [p for p, _ in K.stateful_layers(setup.streamer)]
    lines = [
        "After a reset the streamed run does not repeat itself: some state survives the reset.",
        f"  stateful RNN layers reset: {layers or 'none'}; any other layer that keeps state "
        "between calls (a custom layer with variables it assigns) is not reset by reset_state()",
    ]
    return _Finding(lines, drawn)


def _crossed_finding(
    case: _Case, streamed: list[np.ndarray], other: list[np.ndarray] | None, kept: np.ndarray
) -> _Finding | None:
    """The kept samples of the independence run against the same samples as first streamed."""
    if other is None:
        return None
    valid = None if case.valid is None else case.valid[kept]
    crossed = compare_runs(
        [o[kept] for o in other], [o[kept] for o in streamed],
        case.tolerances, case.sequence, valid, case.schedule,
    )  # fmt: skip
    if not crossed:
        return None
    n, m = crossed[0]
    drawn = StepComparison(
        "kept samples (0, 2, 4...) with the others time-reversed vs as streamed",
        "others changed", "as streamed", other[n][kept], streamed[n][kept],
        m.tolerance.rtol, m.tolerance.atol, _steps(case, n),
        valid_at(valid, case.schedule, case.sequence[n]),
    )  # fmt: skip
    lines = [
        "Samples are not independent: changing the other samples of the batch "
        "changes a sample's streamed output (samples 0, 2, 4... kept, the others "
        "time-reversed, or replaced by the sample before them where reversing changes "
        "nothing; sample numbers below count the kept samples).",
        *mismatch_lines(crossed, case.sequence, "others changed", "as streamed"),
    ]
    return _Finding(lines, drawn)


def _changed_samples(a: np.ndarray) -> np.ndarray:
    """Every sample time-reversed; one that reversing leaves as it was (a palindrome,
    common in short token sequences) gets the sample before it, reversed."""
    changed = a[:, ::-1]
    same = np.all((changed == a).reshape(len(a), -1), axis=1)
    return np.where(_expand(same, a.ndim), np.roll(changed, 1, axis=0), changed)


def _expand(flags: np.ndarray, ndim: int) -> np.ndarray:
    return flags.reshape((-1,) + (1,) * (ndim - 1))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def _context(model: Any, setup: _Setup, inputs: Batch, schedule: ChunkSchedule) -> str:
    text = f"model {K.describe_model(model)}, batch {inputs.batch}, {inputs.steps} steps, {schedule.describe()}"
    if setup.user_stream:
        how = "one sample at a time" if setup.per_sample else "the whole batch at once"
        text += f"\n  streamed by your stateful_model {setup.streamer.name!r}, fed {how}"
    return text
