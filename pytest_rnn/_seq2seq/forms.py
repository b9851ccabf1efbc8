"""The three inference forms, and the cache of fused step decoders.

An inference is (a) :class:`_Unrolled`, a Keras model ``[encoder_inputs,
start] -> outputs``; (b) :class:`_StepPair`, ``(encoder_model,
decoder_step_model)`` stepped here, in one compiled call where the backend
has an in-graph loop (:func:`_fused_decoder`, cached per step model in
``_DECODERS``); or (c) :class:`_Callable` (or, for a callable that
:func:`~.persample.per_sample` marks, :class:`~.persample._PerSampleLoop`).
:func:`_parse_inference` tells the three apart. Each form checks that it fits the
case and runs free-running and, if step-wise, teacher-forced.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.tree import as_list
from pytest_rnn._seq2seq.case import _call, _Case, _check_encoder_input, _shape, _StepInput

# --------------------------------------------------------------------------- inference forms


class _Inference:
    """One of the three inference forms; runs free and (if step-wise) teacher-forced.

    ``lengths``, after :meth:`run`: the number of steps each sample produced,
    for a form whose samples may stop early (``_PerSampleLoop``); ``None``
    when every sample ran all ``case.steps``.
    """

    stepwise = False
    lengths: np.ndarray | None = None

    def models(self) -> list[Any]:
        """The Keras models of the inference, whose states are kept."""
        return []

    def describe(self) -> str:
        """The inference as the message names it."""
        raise NotImplementedError

    def static_steps(self, out_rank: int) -> int | None:
        """The number of decoder steps the inference fixes, if it does."""
        return None

    def check_encoder(self, enc: np.ndarray) -> None:
        """The inference takes ``encoder_inputs``; ValueError naming ``inference``."""

    def check(self, case: _Case) -> None:
        """Shape checks that need the case; ValueError naming ``inference``."""

    def run(self, case: _Case, teacher: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Free-running outputs, and (given ``teacher``, if step-wise) the teacher-forced ones."""
        raise NotImplementedError


class _Unrolled(_Inference):
    """(a) A Keras model ``[encoder_inputs, start] -> steps outputs`` (seed 000's form)."""

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
        self.start_input = _StepInput.of(self.model.inputs[1], case.in_step, "its start input")

    def run(self, case: _Case, teacher: np.ndarray | None) -> tuple[np.ndarray, None]:
        x = [case.enc, self.start_input.feed(case.start)]
        return case.stacked(_call(self.model, x)), None


class _StepPair(_Inference):
    """(b) ``(encoder_model, decoder_step_model)``: the Keras tutorial form, stepped here."""

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
        self.prev_input = _StepInput.of(
            self.step.inputs[0], case.in_step, "decoder_step_model's first input (y_prev)"
        )
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
            K.fixed_batch(m) or K.stateful_layers(m) for m in self.models()
        ):
            fn = _fused_decoder(self, case)
        if fn is None:  # the backend has no in-graph loop, or the models need Python steps
            return self._run_steps(case, teacher)
        return fn(case.enc, case.start, teacher, case.steps)

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

        prev = self.prev_input.feed
        free = loop(
            prev(case.start),
            lambda t, y: prev(case.feedback.apply(y, case.in_step, case.in_dtype)),
        )
        replay = None
        if teacher is not None:
            replay = loop(prev(teacher[:, 0]), lambda t, y: prev(teacher[:, t]))
        return free, replay


class _Callable(_Inference):
    """(c) A plain callable ``(encoder_inputs, start) -> outputs``.

    ``start`` is given as one decoder step with a time axis: ``(batch, 1, *step)``.
    A callable that accepts a ``decoder_inputs`` keyword is step-wise: called
    with it, it must run teacher-forced (feed ``decoder_inputs[:, t]`` at step t).
    """

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
    """The ``inference`` argument as one of the three forms, or a TypeError naming it."""
    if K.is_model(inference):
        return _Unrolled(inference)
    if isinstance(inference, (tuple, list)):
        if len(inference) == 2 and all(K.is_model(m) for m in inference):
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
_DECODERS = K.ModelCache()


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
    static = K.needs_static_time(pair.encoder) or K.needs_static_time(pair.step)
    enc_shape = (None, case.enc.shape[1] if static else None, *case.enc.shape[2:])
    key = (
        id(pair.encoder), case.in_step, case.in_dtype.str, case.enc.dtype.str, enc_shape,
        case.feedback.kind, pair.prev_input.time, pair.prev_input.dtype.str, pair.out_time,
    )  # fmt: skip
    per_model = _DECODERS.of(pair.step)
    hit = per_model.get(key)
    if hit is not None and hit[0]() is pair.encoder:
        return hit[1]

    enc_ref = weakref.ref(pair.encoder)
    in_step, np_in_dtype = case.in_step, case.in_dtype
    graph = K.graph_decoder(
        pair.encoder, pair.step, enc_shape=enc_shape, enc_dtype=case.enc.dtype,
        in_step=in_step, in_dtype=case.in_dtype, argmax=case.feedback.kind == "argmax",
        onehot=case.feedback.kind == "onehot",
        prev_time=pair.prev_input.time, prev_dtype=pair.prev_input.dtype, out_time=pair.out_time,
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
