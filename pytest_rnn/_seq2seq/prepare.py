"""Preparing a call and running it: the arguments checked into a case, the runs, their steps.

:func:`_prepare` checks ``train_model``, the inference and the inputs in
named steps (:func:`_encoder_inputs`, :func:`_decoder_inputs`,
:func:`_decoder_step`, :func:`_decoder_steps`, :func:`_start`,
:func:`_check_feedback_shapes`) and returns the :class:`~.case._Case` and the
inference form (a :func:`~.persample.per_sample` loop, or one of :mod:`.forms`). :func:`_run` runs the inference and gives its outputs back to
``train_model`` (:func:`_train`); :func:`_first_step` reads the first decoder
step a comparison found different.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import validate as _validate
from pytest_rnn._core.compare import Mismatch
from pytest_rnn._core.text import fmt_shape
from pytest_rnn._seq2seq.case import _array, _call, _Case, _Feedback, _shape
from pytest_rnn._seq2seq.forms import _Inference, _parse_inference, _StepPair
from pytest_rnn._seq2seq.persample import PerSample, _PerSampleLoop

# --------------------------------------------------------------------------- preparing a call


def _check_train_model(train_model: Any) -> tuple[Any, Any, Any]:
    """train_model's encoder input, decoder input and output, or a ValueError naming it."""
    K.check_model(train_model, "train_model")
    inputs = list(train_model.inputs or [])
    if len(inputs) != 2:
        raise ValueError(
            f"train_model must take two inputs [encoder_inputs, decoder_inputs] (the "
            f"teacher-forced model); {train_model.name!r} has {len(inputs)}"
        )
    outputs = list(train_model.outputs or [])
    if len(outputs) != 1:
        raise ValueError(
            f"train_model must return one output (batch, steps, ...); {train_model.name!r} "
            f"returns {len(outputs)}"
        )
    return inputs[0], inputs[1], outputs[0]


def _prepare(
    train_model: Any,
    inference: Any,
    encoder_inputs: Any,
    *,
    decoder_inputs: Any,
    start: Any,
    feedback: Any,
    steps: Any = None,
    other_steps: tuple[str, int] | None = None,
) -> tuple[_Case, _Inference]:
    """The case and the inference form of one call; TypeError or ValueError naming the argument.

    ``steps`` is the user's number of decoder steps (``None``: read from the
    other sources); ``other_steps`` is one more source of it (``targets``).
    """
    wanted = None if steps is None else _validate.check_int(steps, "steps", 1)
    enc_spec, dec_spec, out_spec = _check_train_model(train_model)
    form = (
        _PerSampleLoop(inference)
        if isinstance(inference, PerSample)
        else _parse_inference(inference)
    )
    fb = _Feedback.parse(feedback)
    enc = _encoder_inputs(encoder_inputs, enc_spec, form)
    batch = enc.shape[0]
    dec_shape = _shape(dec_spec)
    dec = _decoder_inputs(decoder_inputs, dec_spec, batch)
    in_step = _decoder_step(dec_shape, dec)
    out_rank = len(out_spec.shape)
    if out_rank < 2:
        raise ValueError(
            f"train_model must return (batch, steps, ...), its output is {fmt_shape(_shape(out_spec))}"
        )
    steps = _decoder_steps(dec_shape, dec, other_steps, form.static_steps(out_rank), wanted)

    in_dtype = np.dtype(dec_spec.dtype)
    start_arr, source = _start(start, dec, batch, in_step, in_dtype)
    case = _Case(
        train=train_model, enc=enc, batch=batch, steps=steps or 0,
        in_step=in_step, in_dtype=in_dtype, out_rank=out_rank,
        start=start_arr, start_source=source, feedback=fb, decoder_inputs=dec,
    )  # fmt: skip
    _check_feedback_shapes(case, _shape(out_spec))
    form.check(case)
    if steps is None and isinstance(form, _StepPair):
        raise ValueError(
            "steps: cannot tell how many decoder steps to run (train_model's decoder input has "
            "no fixed length and the inference does not say): pass steps=N to run N steps "
            "free-running (no labels needed), or pass decoder_inputs"
        )
    if steps is not None and steps < 1:
        raise ValueError("decoder_inputs: the decoder must run at least 1 step")
    return case, form


def _encoder_inputs(encoder_inputs: Any, spec: Any, form: _Inference) -> np.ndarray:
    """``encoder_inputs`` checked against train_model's encoder input and the inference."""
    enc = _array(encoder_inputs, "encoder_inputs")
    if enc.ndim < 2 or enc.shape[0] < 1:
        raise ValueError(
            f"encoder_inputs must be (batch, steps, ...) with batch >= 1, got shape {enc.shape}"
        )
    if len(spec.shape) != enc.ndim:
        raise ValueError(
            f"encoder_inputs has shape {enc.shape} but train_model's encoder input takes "
            f"{fmt_shape(_shape(spec))}"
        )
    enc = enc.astype(np.dtype(spec.dtype), copy=False)
    form.check_encoder(enc)
    return enc


def _decoder_inputs(decoder_inputs: Any, spec: Any, batch: int) -> np.ndarray | None:
    """``decoder_inputs``, if given, checked against train_model's decoder input and the batch."""
    if decoder_inputs is None:
        return None
    dec_shape = _shape(spec)
    dec = _array(decoder_inputs, "decoder_inputs")
    if dec.ndim != len(dec_shape) or any(
        w is not None and w != g for w, g in zip(dec_shape[2:], dec.shape[2:])
    ):
        raise ValueError(
            f"decoder_inputs has shape {dec.shape} but train_model's decoder input takes "
            f"{fmt_shape(dec_shape)}"
        )
    if dec.shape[0] != batch:
        raise ValueError(
            f"decoder_inputs has {dec.shape[0]} samples but encoder_inputs has {batch}: "
            "batch sizes differ"
        )
    return dec.astype(np.dtype(spec.dtype), copy=False)


def _decoder_step(dec_shape: tuple[int | None, ...], dec: np.ndarray | None) -> tuple[int, ...]:
    """One decoder step's shape: train_model's decoder input, open dims read from ``dec``."""
    if len(dec_shape) < 2:
        raise ValueError(
            f"train_model's decoder input must be (batch, steps, ...), got {fmt_shape(dec_shape)}"
        )
    if any(d is None for d in dec_shape[2:]) and dec is None:
        raise ValueError(
            f"train_model's decoder input {fmt_shape(dec_shape)} has open feature dims: "
            "pass decoder_inputs so that one decoder step's shape is known"
        )
    return tuple(
        int(d) if d is not None else int(g)
        for d, g in zip(dec_shape[2:], dec.shape[2:] if dec is not None else dec_shape[2:])
    )


def _decoder_steps(
    dec_shape: tuple[int | None, ...],
    dec: np.ndarray | None,
    other_steps: tuple[str, int] | None,
    inference_steps: int | None,
    wanted: int | None = None,
) -> int | None:
    """The number of decoder steps, ``None`` if nothing fixes it; every source must agree.

    ``wanted`` (the ``steps`` argument) is checked last, against the first source.
    """
    sources: list[tuple[str, int]] = []
    if dec_shape[1] is not None:
        sources.append(("train_model's decoder input", dec_shape[1]))
    if dec is not None:
        sources.append(("decoder_inputs", dec.shape[1]))
    if other_steps is not None:
        sources.append(other_steps)
    if inference_steps is not None:
        sources.append(("inference", inference_steps))
    for name, n in sources[1:]:
        if n != sources[0][1]:
            arg = name if name in ("decoder_inputs", "inference", "targets") else sources[0][0]
            raise ValueError(
                f"{arg}: the number of decoder steps does not match: {sources[0][0]} has "
                f"{sources[0][1]} steps, {name} has {n}"
            )
    if wanted is None:
        return sources[0][1] if sources else None
    if sources and wanted != sources[0][1]:
        name, n = sources[0]
        raise ValueError(
            f"steps={wanted} but {name} has {n} decoder steps: leave steps out ({name} fixes "
            f"the number of steps) or pass steps={n}"
        )
    return wanted


def _start(
    start: Any, dec: np.ndarray | None, batch: int, in_step: tuple[int, ...], dtype: np.dtype[Any]
) -> tuple[np.ndarray, str]:
    """The start value as one decoder step ``(batch, *in_step)``, and where it came from."""
    want = (batch, *in_step)
    if start is None:
        if dec is not None:
            return dec[:, 0].copy(), "decoder_inputs[:, 0]"
        return np.zeros(want, dtype), "default zeros"
    if isinstance(start, (bool, np.bool_)):
        raise TypeError(f"start must be a number or an array, got {type(start).__name__}")
    arr = _array(start, "start")
    if arr.shape != want:
        try:
            arr = np.broadcast_to(arr, want)
        except ValueError:
            if arr.size == math.prod(want):
                arr = arr.reshape(want)
            elif arr.size * batch == math.prod(want):
                arr = np.broadcast_to(arr.reshape(in_step), want)
            else:
                raise ValueError(
                    f"start has shape {arr.shape}; one decoder step for this batch is "
                    f"{fmt_shape(want)} (a scalar, a value per feature, or a value per sample "
                    f"broadcasts to it)"
                ) from None
    return np.array(arr, dtype=dtype), "start"


def _check_feedback_shapes(case: _Case, out_shape: tuple[int | None, ...]) -> None:
    """The feedback turns a static output step into one decoder input step; ValueError if not."""
    out_step = out_shape[2:]
    if any(d is None for d in out_step) or case.feedback.kind == "callable":
        return  # checked on the first step that is fed back
    fed = out_step[:-1] if case.feedback.kind == "argmax" else out_step
    if math.prod(fed) != math.prod(case.in_step):  # type: ignore[arg-type]
        hint = (
            "; token models whose decoder takes ids need feedback='argmax'"
            if case.feedback.kind == "identity"
            else "; a decoder that takes one-hot vectors needs feedback='onehot'"
            if case.feedback.kind == "argmax" and tuple(out_step[-1:]) == case.in_step[-1:]
            else ""
        )
        raise ValueError(
            f"feedback ({case.feedback.describe()}) cannot turn an output step of shape "
            f"{fmt_shape(out_step)} into the decoder's input step {fmt_shape(case.in_step)}"
            f"{hint}, or pass a callable"
        )


# --------------------------------------------------------------------------- running


@dataclass
class _Run:
    """The outputs of one run: the inference's and train_model's on what was fed back."""

    free: np.ndarray  # inference, free-running (batch, T, *out)
    fed: np.ndarray  # its outputs fed back and shifted (batch, T, *in)
    train_free: np.ndarray  # train_model on fed
    replay: np.ndarray | None = None  # inference stepped with decoder_inputs
    train_teacher: np.ndarray | None = None  # train_model on decoder_inputs / teacher inputs
    valid: np.ndarray | None = None  # (batch, T): the steps each sample produced (None: all)


def _train(case: _Case, decoder_batches: list[np.ndarray]) -> list[np.ndarray]:
    """train_model on several decoder-input batches in one compiled call."""
    decs = [d.astype(case.in_dtype, copy=False) for d in decoder_batches]
    if K.fixed_batch(case.train):  # a fixed batch size: one call per batch
        return [K.to_numpy(_call(case.train, [case.enc, d])) for d in decs]
    x = [np.concatenate([case.enc] * len(decs), axis=0), np.concatenate(decs, axis=0)]
    return list(np.split(K.to_numpy(_call(case.train, x)), len(decs), axis=0))


def _run(case: _Case, form: _Inference, teacher: np.ndarray | None, replay: bool) -> _Run:
    """The inference run free (and, with ``replay``, on ``teacher``) and train_model on both."""
    free, replayed = form.run(case, teacher if replay else None)
    if case.steps == 0:  # a callable told us
        case.steps = free.shape[1]
    fed = case.fed_back(free)
    batches = [fed] if teacher is None else [fed, teacher]
    outs = _train(case, batches)
    valid = None
    if form.lengths is not None and (form.lengths < case.steps).any():
        valid = np.arange(case.steps)[None, :] < form.lengths[:, None]
    return _Run(
        free=free,
        fed=fed,
        train_free=outs[0],
        replay=replayed,
        train_teacher=outs[1] if teacher is not None else None,
        valid=valid,
    )


def _first_step(m: Mismatch) -> int:
    """The first decoder step where ``m`` differs (0 for a shape error)."""
    if m.shape_error is not None or not m.first:
        return 0
    step = m.step_of(m.first)
    return 0 if step is None else step
