"""assert_inference_matches_training.

The assertion prepares the case (:mod:`.prepare`), runs the inference
free-running and, if step-wise, teacher-forced, and compares both with
``train_model``. On a difference the message (built in :mod:`.hints`) names
the first differing step and what it usually means given what the other
check measured (:func:`~.hints.step_hint`), the wiring bugs whose replay
reproduces the inference, layers whose weights are not train_model's and a
start value training did not use; the failure picture is a
:class:`~pytest_rnn._errors.StepPicture`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.compare import compare
from pytest_rnn._errors import RNNAssertionError, StepComparison, StepPicture
from pytest_rnn._report import recorded
from pytest_rnn._seq2seq.hints import (
    _context,
    _hypotheses,
    _section,
    _start_problem,
    _weight_hints,
)
from pytest_rnn._seq2seq.hints import step_hint as step_hint
from pytest_rnn._seq2seq.prepare import _first_step, _prepare, _run

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
    steps: int | None = None,
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
    When both checks run, the message says which measured what: the replay
    failing too means the step function itself differs from training (states
    not carried, other weights); only free running failing means the
    feedback does (what is fed back, its shift, argmax vs probabilities).

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
            teacher-forced on them. A loop that decodes one sample at a time
            and may stop early (the tutorial's ``decode_sequence``) is
            passed as :func:`per_sample` ``(fn)``: ``fn`` gets one sample's
            encoder inputs as a batch of one and returns the outputs of the
            steps it ran; a sample that stopped early is compared on the
            steps it produced (train_model's outputs after the stop are not
            compared).
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
        steps: the number of decoder steps to run free-running, for a
            train_model whose decoder input has an open length (the tutorial's
            ``(None, None, num_tokens)``) when no ``decoder_inputs`` are given;
            a positive int (a :func:`per_sample` loop may stop before it).
            Where ``decoder_inputs``, train_model or the inference fixes the
            number, ``steps`` must agree with it.
        rtol, atol: tolerance, both or neither (default by output dtype).

    Raises:
        RNNAssertionError: what was compared (models, batch, steps, start,
            feedback, samples that stopped early), for each failing check the
            first step that differs and what that usually means (step 0:
            encoder states or start value; later: what is fed back, or the
            state carried between steps; when the teacher-forced replay ran,
            which of the two its result points at), the comparison lines
            (first mismatch, counts, greatest diff, a capped table of inference
            vs training), the wiring bugs whose replay reproduces the inference
            exactly, and layers whose weights are not train_model's.
        TypeError, ValueError: a bad argument, named (inference of an unknown
            kind, unknown feedback, batch sizes or steps that do not match, a
            train_model without two inputs, ``steps`` not a positive int, or
            no way to tell the number of decoder steps).

    Example:
        >>> assert_inference_matches_training(
        ...     train_model, inference_model, x_valid, start=-1.0)
        >>> assert_inference_matches_training(
        ...     train_model, (encoder_model, decoder_model), x, decoder_inputs=d)
        >>> assert_inference_matches_training(          # the keras-io tutorial, no labels
        ...     model, (encoder_model, decoder_model), x, start=start_char,
        ...     feedback="onehot", steps=max_decoder_seq_length)
    """
    __tracebackhide__ = True
    case, form = _prepare(
        train_model, inference, encoder_inputs,
        decoder_inputs=decoder_inputs, start=start, feedback=feedback, steps=steps,
    )  # fmt: skip
    tol = K.output_tolerance(rtol, atol, train_model.outputs[0].dtype)
    replay = form.stepwise and case.decoder_inputs is not None
    problems: list[list[str]] = []
    hints: list[str] = []
    drawn: list[StepComparison] = []  # what the failure picture shows
    with K.untouched(train_model, *form.models()):
        run = _run(case, form, case.decoder_inputs if replay else None, replay)
        free_m = compare(run.free, run.train_free, tol, valid=run.valid)
        replay_m = None
        if run.replay is not None and run.train_teacher is not None:
            replay_m = compare(run.replay, run.train_teacher, tol)
        # What the replay measured, for the free-running hint: None where it did not run.
        replay_ok = None if run.replay is None else replay_m is None
        if free_m is not None:
            extra = _hypotheses(case, run, free_m, tol) if free_m.shape_error is None else []
            if replay_ok is None and form.stepwise and _first_step(free_m) >= 1:
                extra.append(
                    "to tell the step function from the feedback, pass decoder_inputs: the "
                    "teacher-forced replay then steps with the ground truth"
                )
            problems.append(_section(
                f"free-running: the inference's outputs, fed back ({case.feedback.describe()}) "
                "and shifted right behind start, given to train_model as decoder inputs",
                free_m, teacher_forced=False, extra=extra, replay=replay_ok,
            ))  # fmt: skip
            if free_m.shape_error is None:
                drawn.append(StepComparison(
                    "free-running: the inference's outputs vs train_model given them back as "
                    f"decoder inputs ({case.feedback.describe()}, behind start)",
                    "inference, free-running", "train_model on the fed-back outputs", run.free,
                    run.train_free, tol.rtol, tol.atol, valid=run.valid,
                ))  # fmt: skip
        if replay_m is not None and run.replay is not None and run.train_teacher is not None:
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
            tol.rtol, tol.atol, valid=run.valid,
        ))  # fmt: skip
    picture = StepPicture("seq2seq", lines[0], tuple(drawn), step_name="decoder step")
    raise RNNAssertionError("\n".join(lines), picture=picture if drawn else None)
