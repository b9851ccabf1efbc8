"""Seq2seq: the inference graph built from trained layers vs the teacher-forced training graph.

Seed 000: a decoder trained with teacher forcing (the input at step ``t`` is the
target at ``t - 1``) and an inference loop built from the same layers that feeds
its own outputs back. The two score 0.045 and 0.16 on the same data, and nobody
can tell whether the loop is wired wrong or the gap is expected.

:func:`assert_inference_matches_training` settles the wiring: run the inference,
feed its outputs back, shift them right behind the start value and give them to
the training model as decoder inputs. A correctly wired inference is then the
training model, step for step. :func:`teacher_forcing_gap` reports the rest: the
loss with ground-truth decoder inputs vs the loss with the model's own, per step
(exposure bias).
"""

from __future__ import annotations

import inspect
import math
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn import _report
from pytest_rnn._core.compare import (
    Mismatch,
    Tolerance,
    compare,
    format_mismatch,
    format_value,
    resolve_tolerance,
)
from pytest_rnn._core.tree import as_list
from pytest_rnn._errors import RNNAssertionError, StepComparison, StepPicture
from pytest_rnn._report import recorded

if TYPE_CHECKING:
    import os

    from matplotlib.figure import Figure

__all__ = ["TeacherForcingGap", "assert_inference_matches_training", "teacher_forcing_gap"]

_INDENT = "    "
#: Per-step rows shown by ``TeacherForcingGap`` before the curve is sampled.
GAP_ROWS = 12


# --------------------------------------------------------------------------- small helpers


def _static_batch(model: Any) -> bool:
    return any(i.shape[0] is not None for i in model.inputs or [])


def _call(model: Any, x: Any) -> Any:
    """``model(x, training=False)`` compiled, stateful RNN layers starting from zeros.

    The caller saves and restores the user's states (``K.untouched``).
    """
    if K.stateful_layers(model):
        K.reset_states(model)
    return K.compiled(model, x, fixed_batch=_static_batch(model))(x)


def _array(value: Any, arg: str) -> np.ndarray:
    """``value`` as a numeric numpy array, or a TypeError naming ``arg``."""
    if value is None or isinstance(value, (str, bytes, dict)):
        raise TypeError(f"{arg} must be a numeric array, got {type(value).__name__}")
    try:
        arr = K.to_numpy(value)
    except Exception as exc:  # ragged lists, objects numpy cannot read
        raise TypeError(f"{arg} must be a numeric array, got {type(value).__name__}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{arg} must be a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
        # NaN compares unequal (or, in the comparison, equal) to anything: it would hide
        # or fake a wiring difference instead of showing one.
        raise ValueError(f"{arg} holds NaN or inf: inference and training cannot be compared")
    return arr


def _shape(tensor: Any) -> tuple[int | None, ...]:
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _fmt_shape(shape: Sequence[int | None]) -> str:
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def _describe_values(arr: np.ndarray) -> str:
    """``-1`` when every element is the same value, else ``array of shape (4, 1)``."""
    flat = np.asarray(arr).reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        v = flat[0]
        return str(int(v)) if np.issubdtype(flat.dtype, np.integer) else format_value(float(v))
    return f"array of shape {_fmt_shape(np.shape(arr))}"


def _check_encoder_input(spec: Any, enc: np.ndarray, what: str) -> None:
    """``what``'s input must take ``encoder_inputs``; ValueError naming ``inference``."""
    want = _shape(spec)
    if len(want) != enc.ndim or any(
        w is not None and w != g for w, g in zip(want[2:], enc.shape[2:])
    ):
        raise ValueError(
            f"inference: {what} takes {_fmt_shape(want)} but encoder_inputs has shape "
            f"{enc.shape}; a decoder step model alone is not an inference: pass "
            "(encoder_model, decoder_step_model), an unrolled model [encoder_inputs, start] "
            "-> outputs, or a callable"
        )


def _has_time_axis(rank: int, per_step: tuple[Any, ...], what: str, arg: str) -> bool:
    """Whether a tensor of ``rank`` (batch included) holds one step with a time axis of 1."""
    if rank == len(per_step) + 2:
        return True
    if rank == len(per_step) + 1:
        return False
    raise ValueError(
        f"{arg}: {what} has {rank} dims, but one decoder step of train_model is "
        f"(batch, {', '.join(str(d) for d in per_step) or '...'}) -> expected "
        f"{len(per_step) + 1} dims, or {len(per_step) + 2} with a time axis of 1"
    )


# --------------------------------------------------------------------------- feedback


@dataclass(frozen=True)
class _Feedback:
    """How an output step becomes the next decoder input: identity, argmax or a callable."""

    kind: str
    fn: Callable[[np.ndarray], Any] | None = None

    @classmethod
    def parse(cls, feedback: Any) -> _Feedback:
        if feedback is None or (isinstance(feedback, str) and feedback == "identity"):
            return cls("identity")
        if isinstance(feedback, str):
            if feedback == "argmax":
                return cls("argmax")
            raise ValueError(
                f"feedback must be None (identity), 'argmax' or a callable, got {feedback!r}"
            )
        if callable(feedback):
            return cls("callable", feedback)
        raise TypeError(
            f"feedback must be None, 'argmax' or a callable output -> next input, "
            f"got {type(feedback).__name__}"
        )

    def describe(self) -> str:
        if self.kind == "callable":
            return f"callable {getattr(self.fn, '__name__', type(self.fn).__name__)}"
        return self.kind

    def apply(self, y: np.ndarray, in_step: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """One output step ``(batch, *out)`` as the next decoder input ``(batch, *in_step)``."""
        if self.kind == "argmax":
            value = np.argmax(y, axis=-1)
        elif self.kind == "callable":
            assert self.fn is not None
            value = K.to_numpy(self.fn(y))
        else:
            value = y
        want = (y.shape[0], *in_step)
        if value.size != math.prod(want):
            raise ValueError(
                f"feedback ({self.describe()}) turns an output step of shape {_fmt_shape(y.shape)} "
                f"into shape {_fmt_shape(value.shape)}, but train_model's decoder takes "
                f"{_fmt_shape(want)} per step; "
                + (
                    "token models need feedback='argmax' (or a callable)"
                    if self.kind == "identity"
                    else "return one decoder input step per sample"
                )
            )
        return value.reshape(want).astype(dtype, copy=False)


# --------------------------------------------------------------------------- the case


@dataclass
class _Case:
    """Everything an inference run needs, checked against the training model."""

    train: Any
    enc: np.ndarray
    batch: int
    steps: int
    in_step: tuple[int, ...]
    in_dtype: np.dtype[Any]
    out_rank: int
    start: np.ndarray  # (batch, *in_step)
    start_source: str
    feedback: _Feedback
    decoder_inputs: np.ndarray | None

    def shifted(self, values: np.ndarray) -> np.ndarray:
        """Decoder inputs ``[start, v0, ..., v(T-2)]`` from per-step values ``(batch, T, *in_step)``."""
        return np.concatenate([self.start[:, None], values[:, : self.steps - 1]], axis=1)

    def fed_back(self, outputs: np.ndarray) -> np.ndarray:
        """The outputs turned into decoder inputs and shifted right behind start."""
        steps = [
            self.feedback.apply(outputs[:, t], self.in_step, self.in_dtype)
            for t in range(self.steps - 1)
        ]
        if not steps:
            return self.start[:, None]
        return self.shifted(np.stack(steps, axis=1))

    def stacked(self, out: Any, arg: str = "inference") -> np.ndarray:
        """Inference outputs (a list of steps or one stacked array) as ``(batch, steps, *out)``."""
        if isinstance(out, (list, tuple)):
            steps = []
            for i, a in enumerate(out):
                a = K.to_numpy(a)
                if a.ndim == self.out_rank and a.shape[1] == 1:
                    a = a[:, 0]
                elif a.ndim != self.out_rank - 1:
                    raise ValueError(
                        f"{arg} output step {i} has shape {_fmt_shape(a.shape)}; train_model's "
                        f"output has {self.out_rank} dims, so one step is expected as "
                        f"{self.out_rank - 1} dims, or {self.out_rank} with a time axis of 1"
                    )
                steps.append(a)
            arr = np.stack(steps, axis=1)
        else:
            arr = K.to_numpy(out)
            if arr.ndim == self.out_rank - 1:
                arr = arr[:, None]
            elif arr.ndim != self.out_rank:
                raise ValueError(
                    f"{arg} returned shape {_fmt_shape(arr.shape)}; expected (batch, steps, ...) "
                    f"with {self.out_rank} dims like train_model's output, or a list of steps"
                )
        if arr.shape[0] != self.batch:
            raise ValueError(
                f"{arg} returned {arr.shape[0]} samples for a batch of {self.batch} "
                "(outputs must be (batch, steps, ...), or a list of (batch, ...) steps)"
            )
        if self.steps and arr.shape[1] != self.steps:
            raise ValueError(
                f"{arg} returned {arr.shape[1]} decoder steps but train_model decodes "
                f"{self.steps}: the number of steps does not match"
            )
        return arr


# --------------------------------------------------------------------------- inference forms


class _Inference:
    """One of the three inference forms; runs free and (if step-wise) teacher-forced."""

    kind = ""
    stepwise = False

    def models(self) -> list[Any]:
        return []

    def describe(self) -> str:
        raise NotImplementedError

    def static_steps(self, out_rank: int) -> int | None:
        return None

    def check_encoder(self, enc: np.ndarray) -> None:
        """The inference takes ``encoder_inputs``; ValueError naming ``inference``."""

    def check(self, case: _Case) -> None:
        """Shape checks that need the case; ValueError naming ``inference``."""

    def run(self, case: _Case, teacher: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        raise NotImplementedError


class _Unrolled(_Inference):
    """(a) A Keras model ``[encoder_inputs, start] -> steps outputs`` (seed 000's form)."""

    kind = "unrolled model"

    def __init__(self, model: Any) -> None:
        inputs = list(model.inputs or [])
        if len(inputs) != 2:
            raise ValueError(
                f"inference: an unrolled inference model takes [encoder_inputs, start], but "
                f"{model.name!r} has {len(inputs)} input(s); for the Keras tutorial form pass "
                "(encoder_model, decoder_step_model), or pass a callable"
            )
        self.model = model

    def models(self) -> list[Any]:
        return [self.model]

    def describe(self) -> str:
        return f"unrolled model {K.describe_model(self.model)}"

    def static_steps(self, out_rank: int) -> int | None:
        outs = list(self.model.outputs)
        if len(outs) > 1:
            return len(outs)
        rank = len(outs[0].shape)
        if rank == out_rank:
            return _shape(outs[0])[1]
        return 1 if rank == out_rank - 1 else None

    def check_encoder(self, enc: np.ndarray) -> None:
        _check_encoder_input(self.model.inputs[0], enc, "the unrolled model's first input")

    def check(self, case: _Case) -> None:
        spec = self.model.inputs[1]
        self.start_time = _has_time_axis(
            len(spec.shape), case.in_step, "its start input", "inference"
        )
        self.start_dtype = np.dtype(spec.dtype)

    def run(self, case: _Case, teacher: np.ndarray | None) -> tuple[np.ndarray, None]:
        start = case.start[:, None] if self.start_time else case.start
        x = [case.enc, start.astype(self.start_dtype, copy=False)]
        return case.stacked(_call(self.model, x)), None


class _StepPair(_Inference):
    """(b) ``(encoder_model, decoder_step_model)``: the Keras tutorial form, stepped here."""

    kind = "encoder/step models"
    stepwise = True

    def __init__(self, encoder_model: Any, step_model: Any) -> None:
        self.encoder, self.step = encoder_model, step_model
        n_states = len(encoder_model.outputs)
        n_in, n_out = len(step_model.inputs or []), len(step_model.outputs)
        if n_in != n_states + 1 or n_out != n_states + 1:
            raise ValueError(
                f"inference: encoder_model {encoder_model.name!r} returns {n_states} state(s), so "
                f"decoder_step_model must take [y_prev, *states] ({n_states + 1} inputs) and "
                f"return [y, *states] ({n_states + 1} outputs); {step_model.name!r} takes {n_in} "
                f"and returns {n_out}"
            )
        self.n_states = n_states

    def models(self) -> list[Any]:
        return [self.encoder, self.step]

    def describe(self) -> str:
        return (
            f"encoder_model {K.describe_model(self.encoder)} + decoder_step_model "
            f"{K.describe_model(self.step)}"
        )

    def check_encoder(self, enc: np.ndarray) -> None:
        _check_encoder_input(self.encoder.inputs[0], enc, "encoder_model")

    def check(self, case: _Case) -> None:
        prev = self.step.inputs[0]
        self.prev_time = _has_time_axis(
            len(prev.shape), case.in_step, "decoder_step_model's first input (y_prev)", "inference"
        )
        self.prev_dtype = np.dtype(prev.dtype)
        rank = len(self.step.outputs[0].shape)
        if rank not in (case.out_rank, case.out_rank - 1):
            raise ValueError(
                f"inference: decoder_step_model's first output has {rank} dims; one step of "
                f"train_model's output is expected as {case.out_rank - 1} dims, or "
                f"{case.out_rank} with a time axis of 1"
            )
        self.out_time = rank == case.out_rank

    def run(self, case: _Case, teacher: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        fn = None
        if case.feedback.kind != "callable" and not any(
            _static_batch(m) or K.stateful_layers(m) for m in self.models()
        ):
            fn = _fused_decoder(self, case)
        if fn is None:  # the backend has no in-graph loop, or the models need Python steps
            return self._run_steps(case, teacher)
        return fn(case.enc, case.start, teacher, case.steps)

    def _prev(self, v: np.ndarray) -> np.ndarray:
        v = v.astype(self.prev_dtype, copy=False)
        return v[:, None] if self.prev_time else v

    def _run_steps(
        self, case: _Case, teacher: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """One compiled call per step; the feedback runs in numpy between them."""
        states = as_list(_call(self.encoder, case.enc))

        def loop(
            first: np.ndarray, next_input: Callable[[int, np.ndarray], np.ndarray]
        ) -> np.ndarray:
            cur, s, outs = first, states, []
            for t in range(case.steps):
                x = [cur, *s]
                res = as_list(_call(self.step, x))
                y = res[0][:, 0] if self.out_time else res[0]
                outs.append(y)
                s = res[1:]
                if t + 1 < case.steps:
                    cur = next_input(t + 1, y)
            return np.stack(outs, axis=1)

        free = loop(
            self._prev(case.start),
            lambda t, y: self._prev(case.feedback.apply(y, case.in_step, case.in_dtype)),
        )
        replay = None
        if teacher is not None:
            replay = loop(self._prev(teacher[:, 0]), lambda t, y: self._prev(teacher[:, t]))
        return free, replay


class _Callable(_Inference):
    """(c) A plain callable ``(encoder_inputs, start) -> outputs``.

    ``start`` is given as one decoder step with a time axis: ``(batch, 1, *step)``.
    A callable that accepts a ``decoder_inputs`` keyword is step-wise: called
    with it, it must run teacher-forced (feed ``decoder_inputs[:, t]`` at step t).
    """

    kind = "callable"

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        try:
            params = inspect.signature(fn).parameters
        except (TypeError, ValueError):
            params = {}  # type: ignore[assignment]
        self.stepwise = "decoder_inputs" in params

    def describe(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or type(self.fn).__name__
        return f"callable {name}"

    def run(self, case: _Case, teacher: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        start = case.start[:, None]
        free = case.stacked(self.fn(case.enc, start))
        replay = None
        if teacher is not None and self.stepwise:
            replay = case.stacked(self.fn(case.enc, start, decoder_inputs=teacher))
        return free, replay


def _parse_inference(inference: Any) -> _Inference:
    keras = K.keras_module()
    if isinstance(inference, keras.Model):
        return _Unrolled(inference)
    if isinstance(inference, (tuple, list)):
        if len(inference) == 2 and all(isinstance(m, keras.Model) for m in inference):
            return _StepPair(*inference)
        raise TypeError(
            "inference as a pair must be (encoder_model, decoder_step_model), two Keras models; "
            f"got {len(inference)} item(s) of types {[type(m).__name__ for m in inference]}"
        )
    if callable(inference):
        return _Callable(inference)
    raise TypeError(
        "inference must be an unrolled Keras model [encoder_inputs, start] -> outputs, a pair "
        "(encoder_model, decoder_step_model), or a callable (encoder_inputs, start) -> outputs; "
        f"got {type(inference).__name__}"
    )


# --------------------------------------------------------------------------- fused step decoding

# step model -> {key: (encoder weakref, compiled decoder)}; weak keys, weak model references.
_DECODERS: weakref.WeakKeyDictionary[Any, dict[Any, tuple[Any, Any]]] = weakref.WeakKeyDictionary()


def _fused_decoder(
    pair: _StepPair, case: _Case
) -> (
    Callable[[np.ndarray, np.ndarray, np.ndarray | None, int], tuple[np.ndarray, np.ndarray | None]]
    | None
):
    """The whole step-wise decode as one compiled call, or ``None`` (:func:`K.graph_decoder`).

    The step model is traced once, whatever the number of steps; free-running
    and teacher-forced decoding share each step call (the batch holds both
    halves). The batch, the encoder length and the number of steps stay open
    (a static encoder length only when a TimeDistributed layer is in play, for
    the Keras bug with unknown time axes).
    """
    keras = K.keras_module()
    static = any(
        isinstance(lyr, keras.layers.TimeDistributed)
        for m in (pair.encoder, pair.step)
        for _, lyr in K.iter_layers(m)
    )
    enc_shape = (None, case.enc.shape[1] if static else None, *case.enc.shape[2:])
    key = (
        id(pair.encoder), case.in_step, case.in_dtype.str, case.enc.dtype.str, enc_shape,
        case.feedback.kind, pair.prev_time, pair.prev_dtype.str, pair.out_time,
    )  # fmt: skip
    per_model = _DECODERS.setdefault(pair.step, {})
    hit = per_model.get(key)
    if hit is not None and hit[0]() is pair.encoder:
        return hit[1]

    enc_ref = weakref.ref(pair.encoder)
    in_step, np_in_dtype = case.in_step, case.in_dtype
    graph = K.graph_decoder(
        pair.encoder, pair.step, enc_shape=enc_shape, enc_dtype=case.enc.dtype,
        in_step=in_step, in_dtype=case.in_dtype, argmax=case.feedback.kind == "argmax",
        prev_time=pair.prev_time, prev_dtype=pair.prev_dtype, out_time=pair.out_time,
    )  # fmt: skip
    if graph is None:
        return None

    def call(
        enc: np.ndarray, start: np.ndarray, teacher: np.ndarray | None, steps: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        batch = start.shape[0]
        if teacher is None:  # an empty teacher batch: free-running only
            teacher = np.zeros((0, max(steps, 1), *in_step), np_in_dtype)
        out = graph(enc, start, teacher, steps)
        return out[:batch], (out[batch:] if teacher.shape[0] else None)

    # The cached caller holds no model and not the case (whose train_model it would
    # keep alive for as long as the step model lives).
    per_model[key] = (enc_ref, call)
    return call


# --------------------------------------------------------------------------- preparing a call


def _check_train_model(train_model: Any) -> tuple[Any, Any, Any]:
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
    other_steps: tuple[str, int] | None = None,
) -> tuple[_Case, _Inference]:
    enc_spec, dec_spec, out_spec = _check_train_model(train_model)
    form = _parse_inference(inference)
    fb = _Feedback.parse(feedback)
    enc = _array(encoder_inputs, "encoder_inputs")
    if enc.ndim < 2 or enc.shape[0] < 1:
        raise ValueError(
            f"encoder_inputs must be (batch, steps, ...) with batch >= 1, got shape {enc.shape}"
        )
    if len(enc_spec.shape) != enc.ndim:
        raise ValueError(
            f"encoder_inputs has shape {enc.shape} but train_model's encoder input takes "
            f"{_fmt_shape(_shape(enc_spec))}"
        )
    enc = enc.astype(np.dtype(enc_spec.dtype), copy=False)
    form.check_encoder(enc)
    batch = enc.shape[0]
    dec_shape = _shape(dec_spec)
    dec = None
    if decoder_inputs is not None:
        dec = _array(decoder_inputs, "decoder_inputs")
        if dec.ndim != len(dec_shape) or any(
            w is not None and w != g for w, g in zip(dec_shape[2:], dec.shape[2:])
        ):
            raise ValueError(
                f"decoder_inputs has shape {dec.shape} but train_model's decoder input takes "
                f"{_fmt_shape(dec_shape)}"
            )
        if dec.shape[0] != batch:
            raise ValueError(
                f"decoder_inputs has {dec.shape[0]} samples but encoder_inputs has {batch}: "
                "batch sizes differ"
            )
        dec = dec.astype(np.dtype(dec_spec.dtype), copy=False)
    if len(dec_shape) < 2:
        raise ValueError(
            f"train_model's decoder input must be (batch, steps, ...), got {_fmt_shape(dec_shape)}"
        )
    if any(d is None for d in dec_shape[2:]) and dec is None:
        raise ValueError(
            f"train_model's decoder input {_fmt_shape(dec_shape)} has open feature dims: "
            "pass decoder_inputs so that one decoder step's shape is known"
        )
    in_step: tuple[int, ...] = tuple(
        int(d) if d is not None else int(g)
        for d, g in zip(dec_shape[2:], dec.shape[2:] if dec is not None else dec_shape[2:])
    )
    out_rank = len(out_spec.shape)
    if out_rank < 2:
        raise ValueError(
            f"train_model must return (batch, steps, ...), its output is {_fmt_shape(_shape(out_spec))}"
        )

    # The number of decoder steps: every source that knows it must agree.
    sources: list[tuple[str, int]] = []
    if dec_shape[1] is not None:
        sources.append(("train_model's decoder input", dec_shape[1]))
    if dec is not None:
        sources.append(("decoder_inputs", dec.shape[1]))
    if other_steps is not None:
        sources.append(other_steps)
    inf_steps = form.static_steps(out_rank)
    if inf_steps is not None:
        sources.append(("inference", inf_steps))
    for name, n in sources[1:]:
        if n != sources[0][1]:
            arg = name if name in ("decoder_inputs", "inference", "targets") else sources[0][0]
            raise ValueError(
                f"{arg}: the number of decoder steps does not match: {sources[0][0]} has "
                f"{sources[0][1]} steps, {name} has {n}"
            )
    steps = sources[0][1] if sources else None

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
            "decoder_inputs: cannot tell how many decoder steps to run (train_model's decoder "
            "input has no fixed length and the inference does not say): pass decoder_inputs"
        )
    if steps is not None and steps < 1:
        raise ValueError("decoder_inputs: the decoder must run at least 1 step")
    return case, form


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
                    f"{_fmt_shape(want)} (a scalar, a value per feature, or a value per sample "
                    f"broadcasts to it)"
                ) from None
    return np.array(arr, dtype=dtype), "start"


def _check_feedback_shapes(case: _Case, out_shape: tuple[int | None, ...]) -> None:
    out_step = out_shape[2:]
    if any(d is None for d in out_step) or case.feedback.kind == "callable":
        return  # checked on the first step that is fed back
    fed = out_step[:-1] if case.feedback.kind == "argmax" else out_step
    if math.prod(fed) != math.prod(case.in_step):  # type: ignore[arg-type]
        hint = (
            "; token models whose decoder takes ids need feedback='argmax'"
            if case.feedback.kind == "identity"
            else ""
        )
        raise ValueError(
            f"feedback ({case.feedback.describe()}) cannot turn an output step of shape "
            f"{_fmt_shape(out_step)} into the decoder's input step {_fmt_shape(case.in_step)}"
            f"{hint}, or pass a callable"
        )


# --------------------------------------------------------------------------- running


@dataclass
class _Run:
    free: np.ndarray  # inference, free-running (batch, T, *out)
    fed: np.ndarray  # its outputs fed back and shifted (batch, T, *in)
    train_free: np.ndarray  # train_model on fed
    replay: np.ndarray | None = None  # inference stepped with decoder_inputs
    train_teacher: np.ndarray | None = None  # train_model on decoder_inputs / teacher inputs


def _train(case: _Case, decoder_batches: list[np.ndarray]) -> list[np.ndarray]:
    """train_model on several decoder-input batches in one compiled call."""
    decs = [d.astype(case.in_dtype, copy=False) for d in decoder_batches]
    if _static_batch(case.train):  # a fixed batch size: one call per batch
        return [K.to_numpy(_call(case.train, [case.enc, d])) for d in decs]
    x = [np.concatenate([case.enc] * len(decs), axis=0), np.concatenate(decs, axis=0)]
    return list(np.split(K.to_numpy(_call(case.train, x)), len(decs), axis=0))


def _run(case: _Case, form: _Inference, teacher: np.ndarray | None, replay: bool) -> _Run:
    free, replayed = form.run(case, teacher if replay else None)
    if case.steps == 0:  # a callable told us
        case.steps = free.shape[1]
    fed = case.fed_back(free)
    batches = [fed] if teacher is None else [fed, teacher]
    outs = _train(case, batches)
    return _Run(
        free=free,
        fed=fed,
        train_free=outs[0],
        replay=replayed,
        train_teacher=outs[1] if teacher is not None else None,
    )


# --------------------------------------------------------------------------- messages


def _first_step(m: Mismatch) -> int:
    if m.shape_error is not None or not m.first:
        return 0
    step = m.step_of(m.first)
    return 0 if step is None else step


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
            f"{_describe_values(case.start)}: the inference uses its own start value",
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
        values = [np.asarray(w.numpy()) for w, _ in theirs.values()]
        out = []
        for key, (w, layer) in mine.items():
            if key in theirs:
                continue
            v = np.asarray(w.numpy())
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
    if case.decoder_inputs is None or case.start_source != "start":
        return []
    first = case.decoder_inputs[:, 0]
    a, e = case.start.astype(np.float64), first.astype(np.float64)
    bad = tol.exceeded(a, e)
    per_sample = bad.reshape(case.batch, -1).any(axis=1)
    if not per_sample.any():
        return []
    return [
        f"  start: start={_describe_values(case.start)} but decoder_inputs[:, 0] holds "
        f"{_describe_values(first)} (what train_model is fed at step 0) in "
        f"{int(per_sample.sum())} of {case.batch} samples: the inference starts from another "
        "value than training used (leave start=None to take decoder_inputs[:, 0])"
    ]


def _context(case: _Case, form: _Inference) -> str:
    enc_steps = case.enc.shape[1]
    return (
        f"  train_model {K.describe_model(case.train)}; inference: {form.describe()}; "
        f"batch {case.batch}, {enc_steps} encoder steps, {case.steps} decoder steps; "
        f"start {_describe_values(case.start)} ({case.start_source}); "
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
            whose decoder takes ids), or a callable (numpy in, array out).
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


# --------------------------------------------------------------------------- teacher-forcing gap


@dataclass(frozen=True, eq=False)
class TeacherForcingGap:
    """Teacher-forced vs free-running loss of a seq2seq model, overall and per step.

    ``teacher_forced_loss`` is the training graph's loss (ground-truth previous
    steps as decoder inputs, what ``fit`` reports); ``free_running_loss`` is the
    inference's (its own outputs fed back). ``wiring_consistent`` says whether
    the inference passed the free-running wiring check in the same call
    (``None``: not checked), ``first_differing_step`` where it failed.
    ``str()`` renders a per-step table and a one-line verdict.
    """

    teacher_forced_loss: float
    free_running_loss: float
    teacher_forced_per_step: np.ndarray = field(repr=False)
    free_running_per_step: np.ndarray = field(repr=False)
    steps: int
    loss: str = "mse"
    wiring_consistent: bool | None = None
    first_differing_step: int | None = None

    @property
    def ratio(self) -> float:
        """free-running / teacher-forced loss (1.0 when both are 0)."""
        if self.teacher_forced_loss == 0:
            return 1.0 if self.free_running_loss == 0 else math.inf
        return self.free_running_loss / self.teacher_forced_loss

    @property
    def verdict(self) -> str:
        """One line: a wiring bug, exposure bias, or no gap."""
        tf, fr = format_value(self.teacher_forced_loss), format_value(self.free_running_loss)
        if self.wiring_consistent is False:
            return (
                f"Wiring bug, not exposure bias: the inference is not the training model run on "
                f"its own outputs (it first differs at step {self.first_differing_step}); fix it "
                "(assert_inference_matches_training says where) before reading this gap."
            )
        checked = (
            "the wiring check passes"
            if self.wiring_consistent
            else "if assert_inference_matches_training passes"
        )
        if self.free_running_loss <= self.teacher_forced_loss * 1.1 + 1e-12:
            return (
                f"No exposure-bias gap: free-running loss {fr} is within 10% of the "
                f"teacher-forced loss {tf} ({checked})."
            )
        first, last = self.free_running_per_step[0], self.free_running_per_step[-1]
        return (
            f"Exposure bias, not a bug: free-running loss {fr} is {self.ratio:.2g}x the "
            f"teacher-forced {tf} and {checked}; teacher forcing feeds the true previous value, "
            f"free running the model's own, so errors compound over the steps (free-running "
            f"error {format_value(float(first))} at step 0 -> {format_value(float(last))} at step "
            f"{self.steps - 1}); close it by training on the model's own outputs (scheduled "
            "sampling, free-running fine-tuning), not by rewiring the inference."
        )

    def table(self, max_rows: int = GAP_ROWS) -> str:
        """The per-step curve as text; long curves are sampled down to ``max_rows`` steps."""
        shown = list(range(self.steps))
        if self.steps > max_rows:
            shown = sorted({round(float(i)) for i in np.linspace(0, self.steps - 1, max_rows)})
        lines = [
            f"teacher forcing gap: loss {self.loss!r}, {self.steps} decoder steps",
            f"  {'step':>6}  {'teacher-forced':>14}  {'free-running':>12}  {'ratio':>7}",
        ]

        def row(label: str, tf: float, fr: float) -> str:
            ratio = fr / tf if tf else (1.0 if fr == 0 else math.inf)
            return f"  {label:>6}  {format_value(tf):>14}  {format_value(fr):>12}  {ratio:>7.3g}"

        for t in shown:
            lines.append(
                row(
                    str(t),
                    float(self.teacher_forced_per_step[t]),
                    float(self.free_running_per_step[t]),
                )
            )
        if len(shown) < self.steps:
            lines.append(f"  ({len(shown)} of {self.steps} steps shown)")
        lines.append(row("all", self.teacher_forced_loss, self.free_running_loss))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\n" + self.verdict

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """Draw the per-step loss, teacher-forced vs free-running, with the verdict as title.

        Needs matplotlib (``pip install "pytest-rnn[plot]"``); draws on a
        ``matplotlib.figure.Figure`` of its own (no pyplot, no global state).

        Args:
            path: if given, the figure is also written there as a PNG.

        Returns:
            The figure: x is the decoder step, y the loss at that step; a
            red line marks where the wiring check failed, if it did.

        Raises:
            ImportError: matplotlib is not installed.

        Example:
            >>> gap = teacher_forcing_gap(train_model, inference_model, x, y, start=-1.0)
            >>> gap.plot("gap.png")
        """
        figure = _report.gap_figure(self)
        if path is not None:
            _report.write_figure(figure, str(path))
        return figure


def _loss(loss: Any) -> tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None, Any]:
    """(name, per-element builtin or None, user callable or None)."""
    if isinstance(loss, str):
        if loss in ("mse", "mean_squared_error"):
            return "mse", lambda t, p: (p - t) ** 2, None
        if loss in ("mae", "mean_absolute_error"):
            return "mae", lambda t, p: np.abs(p - t), None
        if loss in ("crossentropy", "sparse_categorical_crossentropy", "categorical_crossentropy"):
            return "crossentropy", None, None
        raise ValueError(
            f"loss must be 'mse', 'mae', 'crossentropy' or a callable (y_true, y_pred) -> "
            f"loss, got {loss!r}"
        )
    if callable(loss):
        return getattr(loss, "__name__", type(loss).__name__), None, loss
    raise TypeError(f"loss must be a string or a callable, got {type(loss).__name__}")


def _crossentropy(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per (sample, step) crossentropy; ``t`` ids ``(B, T)`` or one-hot like ``p``."""
    logp = np.log(np.clip(p.astype(np.float64), 1e-12, 1.0))
    if t.shape == p.shape:
        return np.asarray(-(t * logp).sum(axis=-1))
    ids = t.astype(np.int64)[..., None]
    return np.asarray(-np.take_along_axis(logp, ids, axis=-1)[..., 0])


def _losses(
    name: str, elementwise: Any, user: Any, targets: np.ndarray, pred: np.ndarray
) -> tuple[float, np.ndarray]:
    steps = pred.shape[1]
    if user is not None:
        total = float(np.mean(K.to_numpy(user(targets, pred))))
        per = [
            float(np.mean(K.to_numpy(user(targets[:, t : t + 1], pred[:, t : t + 1]))))
            for t in range(steps)
        ]
        return total, np.array(per)
    t64, p64 = targets.astype(np.float64), pred.astype(np.float64)
    err = _crossentropy(t64, p64) if name == "crossentropy" else elementwise(t64, p64)
    per_step = err.reshape(err.shape[0], steps, -1).mean(axis=(0, 2))
    return float(err.mean()), per_step


def _check_targets(
    name: str, user: Any, targets: np.ndarray, case: _Case, out_shape: tuple[int | None, ...]
) -> None:
    if targets.ndim < 2 or targets.shape[0] != case.batch:
        raise ValueError(
            f"targets has shape {targets.shape}; expected (batch, steps, ...) with the batch of "
            f"encoder_inputs ({case.batch})"
        )
    if user is not None:
        return
    out_step = out_shape[2:]
    ok = len(targets.shape) - 2 == len(out_step) and all(
        o is None or o == t for o, t in zip(out_step, targets.shape[2:])
    )
    if name == "crossentropy" and len(targets.shape) - 2 == len(out_step) - 1:
        ok = all(o is None or o == t for o, t in zip(out_step[:-1], targets.shape[2:]))
    if not ok:
        raise ValueError(
            f"targets has shape {targets.shape} but train_model's outputs are "
            f"{_fmt_shape(out_shape)} (loss {name!r}"
            + (", or ids without the last axis)" if name == "crossentropy" else ")")
        )


def _teacher_inputs(case: _Case, targets: np.ndarray) -> np.ndarray:
    """Targets turned into decoder inputs and shifted right behind start."""
    want = (case.batch, *case.in_step)
    steps = []
    for t in range(case.steps - 1):
        y = targets[:, t]
        if case.feedback.kind == "identity" or (
            case.feedback.kind == "argmax"
            and np.issubdtype(y.dtype, np.integer)
            and y.size == math.prod(want)
        ):
            if y.size != math.prod(want):
                raise ValueError(
                    f"targets: a target step of shape {_fmt_shape(y.shape)} cannot be fed to the "
                    f"decoder, which takes {_fmt_shape(want)} per step; pass decoder_inputs"
                )
            steps.append(y.reshape(want).astype(case.in_dtype))
        else:
            steps.append(case.feedback.apply(y, case.in_step, case.in_dtype))
    if not steps:
        return case.start[:, None]
    return case.shifted(np.stack(steps, axis=1))


def teacher_forcing_gap(
    train_model: Any,
    inference: Any,
    encoder_inputs: Any,
    targets: Any,
    *,
    loss: str | Callable[[Any, Any], Any] = "mse",
    decoder_inputs: Any = None,
    start: Any = None,
    feedback: str | Callable[[np.ndarray], Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> TeacherForcingGap:
    """Teacher-forced vs free-running loss on the same data, per step (does not assert).

    The teacher-forced loss is ``train_model`` on ground-truth decoder inputs
    (``decoder_inputs``, or ``targets`` turned into inputs by ``feedback`` and
    shifted right behind ``start``): the number ``fit`` reports. The
    free-running loss is the ``inference``'s outputs against the same targets.
    The free-running wiring check of :func:`assert_inference_matches_training`
    runs in the same call, so the verdict can tell a wiring bug from exposure
    bias (a model trained on true previous steps seeing its own errors, which
    compound from step to step).

    Args:
        train_model, inference, encoder_inputs, decoder_inputs, start, feedback,
            rtol, atol: as for :func:`assert_inference_matches_training`.
        targets: what the decoder should output, ``(batch, steps, ...)`` like
            train_model's outputs (for ``"crossentropy"`` also token ids
            ``(batch, steps)``).
        loss: ``"mse"``, ``"mae"``, ``"crossentropy"``, or a callable
            ``(y_true, y_pred) -> loss`` on numpy arrays (a scalar or an array
            that is averaged; called on the whole arrays and on each step).

    Returns:
        A :class:`TeacherForcingGap` with both losses, both per-step curves,
        the number of steps and the wiring check's result; ``print()`` it for
        a table and a verdict.

    Raises:
        TypeError, ValueError: a bad argument, named (``targets`` of the
            wrong shape, an unknown ``loss``, and the assertion's own checks).

    Example:
        >>> gap = teacher_forcing_gap(train_model, inference_model, x_valid,
        ...                           y_valid, start=-1.0)
        >>> print(gap)   # 0.045 teacher-forced vs 0.16 free-running: exposure bias
    """
    name, elementwise, user = _loss(loss)
    tgt = _array(targets, "targets")
    steps_from_targets = ("targets", int(tgt.shape[1])) if tgt.ndim >= 2 else None
    case, form = _prepare(
        train_model, inference, encoder_inputs, decoder_inputs=decoder_inputs,
        start=start, feedback=feedback, other_steps=steps_from_targets,
    )  # fmt: skip
    out_shape = _shape(train_model.outputs[0])
    _check_targets(name, user, tgt, case, out_shape)
    if case.steps == 0:
        case.steps = tgt.shape[1]
    tol = resolve_tolerance(rtol, atol, train_model.outputs[0].dtype)
    teacher = case.decoder_inputs if case.decoder_inputs is not None else _teacher_inputs(case, tgt)
    with K.untouched(train_model, *form.models()):
        run = _run(case, form, teacher, replay=False)
    assert run.train_teacher is not None
    wiring = compare(run.free, run.train_free, tol)
    tf_total, tf_steps = _losses(name, elementwise, user, tgt, run.train_teacher)
    fr_total, fr_steps = _losses(name, elementwise, user, tgt, run.free)
    for arr in (tf_steps, fr_steps):
        arr.setflags(write=False)
    return TeacherForcingGap(
        teacher_forced_loss=tf_total,
        free_running_loss=fr_total,
        teacher_forced_per_step=tf_steps,
        free_running_per_step=fr_steps,
        steps=case.steps,
        loss=name,
        wiring_consistent=wiring is None,
        first_differing_step=None if wiring is None else _first_step(wiring),
    )
