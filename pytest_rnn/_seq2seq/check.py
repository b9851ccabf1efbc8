"""assert_inference_matches_training, and the messages it builds.

The assertion prepares the case (:mod:`.prepare`), runs the inference
free-running and, if step-wise, teacher-forced, and compares both with
``train_model``. On a difference the message names the first differing step
and what it usually means (:func:`step_hint`), the wiring bugs whose replay
reproduces the inference (:func:`_hypotheses`), layers whose weights are not
train_model's (:func:`_weight_hints`) and a start value training did not use
(:func:`_start_problem`); the failure picture is a
:class:`~pytest_rnn._errors.StepPicture`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.compare import (
    Mismatch,
    Tolerance,
    compare,
    format_mismatch,
    resolve_tolerance,
)
from pytest_rnn._core.text import describe_values
from pytest_rnn._errors import RNNAssertionError, StepComparison, StepPicture
from pytest_rnn._report import recorded
from pytest_rnn._seq2seq.case import _Case
from pytest_rnn._seq2seq.forms import _Inference
from pytest_rnn._seq2seq.prepare import _first_step, _prepare, _Run, _run, _train

_INDENT = "    "


# --------------------------------------------------------------------------- messages


def step_hint(step: int, *, teacher_forced: bool) -> str:
    """What a first differing ``step`` usually means (pure; used in messages)."""
    if step == 0:
        return (
            "step 0 differs: the decoder starts from other states or another first input "
            "than in training: the encoder states (h and c swapped? another encoder output?), "
            "the start value, or a layer that is not the trained one"
        )
    agree = "step 0 agrees" if step == 1 else f"steps 0-{step - 1} agree"
    if teacher_forced:
        return (
            f"{agree}, step {step} is the first that differs: the inputs are the same ground "
            "truth, so the state carried between steps differs (re-initialised from the "
            "encoder at every step? states returned in another order?)"
        )
    return (
        f"{agree}, step {step} is the first that differs: what is fed back differs (another "
        "tensor than the output, e.g. the LSTM output instead of the Dense output; the start "
        "value again; an off-by-one shift; token ids off by one) or the state carried "
        "between steps (re-initialised from the encoder at every step?)"
    )


def _section(title: str, m: Mismatch, *, teacher_forced: bool, extra: list[str]) -> list[str]:
    """One failing check's lines: its title, the step hint, the comparison and ``extra``."""
    lines = [f"  {title}"]
    if m.shape_error is None:
        lines.append(_INDENT + step_hint(_first_step(m), teacher_forced=teacher_forced))
    lines.extend(
        format_mismatch(m, actual_name="inference", expected_name="training", indent=_INDENT)
    )
    lines.extend(_INDENT + e for e in extra)
    return lines


def _hypotheses(case: _Case, run: _Run, m: Mismatch, tol: Tolerance) -> list[str]:
    """Named wiring bugs whose training-side replay reproduces the inference exactly."""
    step = _first_step(m)
    candidates: list[tuple[str, np.ndarray]] = []
    if step >= 1:
        candidates.append((
            "the inference's outputs match train_model fed with the start value at every "
            "step: the loop feeds the start value to every step instead of the previous output",
            np.repeat(case.start[:, None], case.steps, axis=1),
        ))  # fmt: skip
        if case.steps >= 2:
            candidates.append((
                "the inference's outputs match train_model fed its outputs two steps late: "
                "the feedback is shifted by one step too many",
                case.shifted(run.fed),
            ))  # fmt: skip
    elif np.any(case.start != 0):
        zero = np.concatenate([np.zeros_like(case.start[:, None]), run.fed[:, 1:]], axis=1)
        candidates.append((
            f"the inference's outputs match train_model started from 0 instead of "
            f"{describe_values(case.start)}: the inference uses its own start value",
            zero,
        ))  # fmt: skip
    if not candidates:
        return []
    outs = _train(case, [c[1] for c in candidates])
    return [text for (text, _), out in zip(candidates, outs) if compare(run.free, out, tol) is None]


def _weight_hints(train_model: Any, models: list[Any]) -> list[str]:
    """Layers the inference uses that hold none of train_model's weights, and the reverse."""
    if not models:
        return []

    def owners(model: Any) -> dict[int, tuple[Any, Any]]:
        found: dict[int, tuple[Any, Any]] = {}
        for _, layer in K.iter_layers(model):
            for w in layer.weights:
                found.setdefault(id(w), (w, layer))
        for w in model.weights:
            found.setdefault(id(w), (w, None))
        return found

    train_w = owners(train_model)
    inf_w: dict[int, tuple[Any, Any]] = {}
    for m in models:
        inf_w.update(owners(m))

    def unmatched(
        mine: dict[int, tuple[Any, Any]], theirs: dict[int, tuple[Any, Any]]
    ) -> list[tuple[Any, Any]]:
        values = [K.to_numpy(w) for w, _ in theirs.values()]
        out = []
        for key, (w, layer) in mine.items():
            if key in theirs:
                continue
            v = K.to_numpy(w)
            if not any(o.shape == v.shape and np.array_equal(o, v) for o in values):
                out.append((w, layer))
        return out

    def layer_names(found: list[tuple[Any, Any]]) -> list[str]:
        names: list[str] = []
        for w, layer in found:
            text = (
                f"'{layer.name}' ({K.describe_layer(layer)})"
                if layer is not None
                else f"'{w.path}'"
            )
            if text not in names:
                names.append(text)
        return names

    lines = []
    foreign = layer_names(unmatched(inf_w, train_w))
    if foreign:
        lines.append(
            f"weights: the inference uses {', '.join(foreign)}, whose weights are none of "
            "train_model's: a fresh (untrained) layer in the inference path?"
        )
    unused = layer_names(unmatched(train_w, inf_w))
    if unused:
        lines.append(f"weights: not used by the inference: train_model's {', '.join(unused)}")
    return lines


def _start_problem(case: _Case, tol: Tolerance) -> list[str]:
    """A line if ``start`` is not what ``decoder_inputs`` fed train_model at step 0."""
    if case.decoder_inputs is None or case.start_source != "start":
        return []
    first = case.decoder_inputs[:, 0]
    a, e = case.start.astype(np.float64), first.astype(np.float64)
    bad = tol.exceeded(a, e)
    per_sample = bad.reshape(case.batch, -1).any(axis=1)
    if not per_sample.any():
        return []
    n = int(np.argmax(per_sample))
    return [
        f"  start: start={describe_values(case.start)} but decoder_inputs[:, 0] holds "
        f"{describe_values(first)} (what train_model is fed at step 0) in "
        f"{int(per_sample.sum())} of {case.batch} samples: the inference starts from another "
        "value than training used (leave start=None to take decoder_inputs[:, 0])",
        f"    sample {n}: start {_values(case.start[n])}, decoder_inputs[:, 0] {_values(first[n])}",
    ]


def _values(step: np.ndarray) -> str:
    """One sample's decoder input step, short: its values, and the token of a one-hot vector."""
    flat = np.asarray(step).reshape(-1)
    text = np.array2string(flat, precision=4, threshold=12, separator=", ")
    if flat.size > 1 and np.isin(flat, (0, 1)).all() and flat.sum() == 1:
        text += f" (one-hot: token {int(np.argmax(flat))})"
    return text


def _context(case: _Case, form: _Inference) -> str:
    """What was compared: the models, batch, steps, start and feedback."""
    enc_steps = case.enc.shape[1]
    return (
        f"  train_model {K.describe_model(case.train)}; inference: {form.describe()}; "
        f"batch {case.batch}, {enc_steps} encoder steps, {case.steps} decoder steps; "
        f"start {describe_values(case.start)} ({case.start_source}); "
        f"feedback {case.feedback.describe()}"
    )


# --------------------------------------------------------------------------- the assertion


@recorded
def assert_inference_matches_training(
    train_model: Any,
    inference: Any,
    encoder_inputs: Any,
    *,
    decoder_inputs: Any = None,
    start: Any = None,
    feedback: str | Callable[[np.ndarray], Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that a seq2seq inference is the teacher-forced training model, step for step.

    Free-running self-consistency (always): the inference runs on
    ``encoder_inputs`` from ``start``; its outputs are turned into decoder
    inputs by ``feedback``, shifted right behind ``start`` and given to
    ``train_model``. A correctly wired inference (built from the trained
    layers, carrying the decoder state, feeding back what training feeds)
    gives the same outputs at every step. No labels are needed; untrained
    weights do. Teacher-forced replay (step-wise inferences, with
    ``decoder_inputs``): stepping with the ground-truth inputs reproduces
    ``train_model([encoder_inputs, decoder_inputs])``. With both ``start`` and
    ``decoder_inputs`` given, ``start`` must be what training fed at step 0.

    A passing check does not mean the free-running loss equals the training
    loss: that gap is exposure bias, which :func:`teacher_forcing_gap` reports.

    Args:
        train_model: the teacher-forced Keras model
            ``[encoder_inputs, decoder_inputs] -> (batch, steps, ...)``.
        inference: (a) an unrolled Keras model ``[encoder_inputs, start] ->``
            a list of per-step outputs or one stacked ``(batch, steps, ...)``
            tensor (seed 000's form); (b) a pair ``(encoder_model,
            decoder_step_model)``: ``encoder_model(x) -> states`` and
            ``decoder_step_model([y_prev, *states]) -> [y, *states]`` (the Keras
            tutorial form, LSTM ``[h, c]`` or GRU ``[h]``), stepped here in one
            compiled call; (c) a callable ``(encoder_inputs, start) -> outputs``
            that gets ``start`` as ``(batch, 1, *step)``; if it accepts a
            ``decoder_inputs`` keyword it is step-wise and must then run
            teacher-forced on them.
        encoder_inputs: ``(batch, encoder_steps, ...)``.
        decoder_inputs: ground-truth decoder inputs ``(batch, steps, ...)`` as
            train_model takes them (targets shifted right behind the start).
        start: the decoder's first input: a scalar, a value per feature, or a
            value per sample; shaped to one decoder step (and to each
            inference input's layout). Default: ``decoder_inputs[:, 0]`` when
            given, else zeros.
        feedback: how an output step ``(batch, *out)`` becomes the next input
            ``(batch, *in)``: ``None`` (as it is), ``"argmax"`` (token models
            whose decoder takes ids), ``"onehot"`` (the one-hot vector of the
            argmax: the Keras character-level tutorial's decoder), or a
            callable (numpy in, array out).
        rtol, atol: tolerance, both or neither (default by output dtype).

    Raises:
        RNNAssertionError: what was compared (models, batch, steps, start,
            feedback), for each failing check the first step that differs and
            what that usually means (step 0: encoder states or start value;
            later: what is fed back, or the state carried between steps), the
            comparison lines (first mismatch, counts, greatest diff, a capped
            table of inference vs training), the wiring bugs whose replay
            reproduces the inference exactly, and layers whose weights are not
            train_model's.
        TypeError, ValueError: a bad argument, named (inference of an unknown
            kind, unknown feedback, batch sizes or steps that do not match, a
            train_model without two inputs).

    Example:
        >>> assert_inference_matches_training(
        ...     train_model, inference_model, x_valid, start=-1.0)
        >>> assert_inference_matches_training(
        ...     train_model, (encoder_model, decoder_model), x, decoder_inputs=d)
    """
    __tracebackhide__ = True
    case, form = _prepare(
        train_model, inference, encoder_inputs,
        decoder_inputs=decoder_inputs, start=start, feedback=feedback,
    )  # fmt: skip
    tol = resolve_tolerance(rtol, atol, train_model.outputs[0].dtype)
    replay = form.stepwise and case.decoder_inputs is not None
    problems: list[list[str]] = []
    hints: list[str] = []
    drawn: list[StepComparison] = []  # what the failure picture shows
    with K.untouched(train_model, *form.models()):
        run = _run(case, form, case.decoder_inputs if replay else None, replay)
        free_m = compare(run.free, run.train_free, tol)
        if free_m is not None:
            extra = _hypotheses(case, run, free_m, tol) if free_m.shape_error is None else []
            problems.append(_section(
                f"free-running: the inference's outputs, fed back ({case.feedback.describe()}) "
                "and shifted right behind start, given to train_model as decoder inputs",
                free_m, teacher_forced=False, extra=extra,
            ))  # fmt: skip
            if free_m.shape_error is None:
                drawn.append(StepComparison(
                    "free-running: the inference's outputs vs train_model given them back as "
                    f"decoder inputs ({case.feedback.describe()}, behind start)",
                    "inference, free-running", "train_model on the fed-back outputs", run.free,
                    run.train_free, tol.rtol, tol.atol,
                ))  # fmt: skip
        if run.replay is not None and run.train_teacher is not None:
            replay_m = compare(run.replay, run.train_teacher, tol)
            if replay_m is not None:
                problems.append(_section(
                    "teacher-forced replay: the inference stepped with decoder_inputs vs "
                    "train_model([encoder_inputs, decoder_inputs])",
                    replay_m, teacher_forced=True, extra=[],
                ))  # fmt: skip
                if replay_m.shape_error is None:
                    drawn.append(StepComparison(
                        "teacher-forced replay: the inference stepped with decoder_inputs vs "
                        "train_model([encoder_inputs, decoder_inputs])",
                        "inference, stepped with decoder_inputs", "train_model on decoder_inputs",
                        run.replay,
                        run.train_teacher, tol.rtol, tol.atol,
                    ))  # fmt: skip
        start_lines = _start_problem(case, tol)
        if start_lines:
            problems.append(start_lines)
        if problems:
            hints = _weight_hints(train_model, form.models())
    if not problems:
        return
    checks = "check fails" if len(problems) == 1 else "checks fail"
    lines = [
        f"The inference does not reproduce the training model ({len(problems)} {checks}).",
        _context(case, form),
    ]
    for p in problems:
        lines.extend(p)
    lines.extend("  " + h for h in hints)
    if not drawn and run.free.shape == run.train_free.shape:  # only the start value is wrong
        drawn.append(StepComparison(
            "free-running: the inference's outputs vs train_model given them back (these agree)",
            "inference, free-running", "train_model on the fed-back outputs", run.free,
            run.train_free,
            tol.rtol, tol.atol,
        ))  # fmt: skip
    picture = StepPicture("seq2seq", lines[0], tuple(drawn), step_name="decoder step")
    raise RNNAssertionError("\n".join(lines), picture=picture if drawn else None)
