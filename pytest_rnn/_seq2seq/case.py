"""The seq2seq case: the checked arguments of one call, and the helpers every file uses.

:class:`_Case` holds what an inference run needs once the arguments are
checked against ``train_model`` (encoder inputs, batch, decoder steps, one
decoder step's shape and dtype, the start value, the feedback); it shifts and
feeds back decoder inputs and stacks inference outputs. :class:`_Feedback`
turns an output step into the next decoder input, :class:`_StepInput` says how
a model input takes one decoder step, and the small helpers run a model
(:func:`_call`), read an argument as a finite array (:func:`_array`) and read
a static shape (:func:`_shape`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.text import fmt_shape
from pytest_rnn._core.validate import numeric

# --------------------------------------------------------------------------- small helpers


def _call(model: Any, x: Any) -> Any:
    """``model(x, training=False)`` compiled, stateful RNN layers starting from zeros.

    The caller saves and restores the user's states (``K.untouched``).
    """
    if K.stateful_layers(model):
        K.reset_states(model)
    return K.compiled(model, x, fixed_batch=K.fixed_batch(model))(x)


def _array(value: Any, arg: str) -> np.ndarray:
    """``value`` (any rank, a tensor too) as a finite numeric array, or an error naming ``arg``."""
    if value is None or isinstance(value, (str, bytes, dict)):
        raise TypeError(f"{arg} must be a numeric array, got {type(value).__name__}")
    try:
        arr = K.to_numpy(value)
    except Exception as exc:  # ragged lists, objects numpy cannot read
        raise TypeError(f"{arg} must be a numeric array, got {type(value).__name__}") from exc
    # NaN compares unequal (or, in the comparison, equal) to anything: it would hide
    # or fake a wiring difference instead of showing one.
    numeric(arr, arg, "{name} holds NaN or inf: inference and training cannot be compared")
    return arr


def _shape(tensor: Any) -> tuple[int | None, ...]:
    """A Keras tensor's static shape, open dims as ``None``."""
    return tuple(None if d is None else int(d) for d in tensor.shape)


def _check_encoder_input(spec: Any, enc: np.ndarray, what: str) -> None:
    """``what``'s input must take ``encoder_inputs``; ValueError naming ``inference``."""
    want = _shape(spec)
    if len(want) != enc.ndim or any(
        w is not None and w != g for w, g in zip(want[2:], enc.shape[2:])
    ):
        raise ValueError(
            f"inference: {what} takes {fmt_shape(want)} but encoder_inputs has shape "
            f"{enc.shape}; a decoder step model alone is not an inference: pass "
            "(encoder_model, decoder_step_model), an unrolled model [encoder_inputs, start] "
            "-> outputs, or a callable"
        )


@dataclass(frozen=True)
class _StepInput:
    """How a model input takes one decoder step: its dtype, and whether it has a time axis of 1."""

    time: bool
    dtype: np.dtype[Any]

    @classmethod
    def of(cls, spec: Any, per_step: tuple[int, ...], what: str) -> _StepInput:
        """The layout of input ``spec``, named ``what``; a ValueError naming ``inference``."""
        rank = len(spec.shape)
        if rank not in (len(per_step) + 1, len(per_step) + 2):
            raise ValueError(
                f"inference: {what} has {rank} dims, but one decoder step of train_model is "
                f"(batch, {', '.join(str(d) for d in per_step) or '...'}) -> expected "
                f"{len(per_step) + 1} dims, or {len(per_step) + 2} with a time axis of 1"
            )
        return cls(rank == len(per_step) + 2, np.dtype(spec.dtype))

    def feed(self, value: np.ndarray) -> np.ndarray:
        """One decoder step ``(batch, *step)`` as this input takes it."""
        value = value.astype(self.dtype, copy=False)
        return value[:, None] if self.time else value


# --------------------------------------------------------------------------- feedback


@dataclass(frozen=True)
class _Feedback:
    """How an output step becomes the next decoder input: identity, argmax, onehot or a callable."""

    kind: str
    fn: Callable[[np.ndarray], Any] | None = None

    @classmethod
    def parse(cls, feedback: Any) -> _Feedback:
        """The ``feedback`` argument, checked."""
        if feedback is None or (isinstance(feedback, str) and feedback == "identity"):
            return cls("identity")
        if isinstance(feedback, str):
            if feedback in ("argmax", "onehot"):
                return cls(feedback)
            raise ValueError(
                f"feedback must be None (identity), 'argmax', 'onehot' or a callable, "
                f"got {feedback!r}"
            )
        if callable(feedback):
            return cls("callable", feedback)
        raise TypeError(
            f"feedback must be None, 'argmax', 'onehot' or a callable output -> next input, "
            f"got {type(feedback).__name__}"
        )

    def describe(self) -> str:
        """The feedback as the message names it."""
        if self.kind == "callable":
            return f"callable {getattr(self.fn, '__name__', type(self.fn).__name__)}"
        return self.kind

    def apply(self, y: np.ndarray, in_step: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray:
        """One output step ``(batch, *out)`` as the next decoder input ``(batch, *in_step)``."""
        if self.kind == "argmax":
            value = np.argmax(y, axis=-1)
        elif self.kind == "onehot":  # the tutorial's one-hot characters
            value = np.eye(y.shape[-1], dtype=dtype)[np.argmax(y, axis=-1)]
        elif self.kind == "callable":
            assert self.fn is not None
            value = K.to_numpy(self.fn(y))
        else:
            value = y
        want = (y.shape[0], *in_step)
        if value.size != math.prod(want):
            raise ValueError(
                f"feedback ({self.describe()}) turns an output step of shape {fmt_shape(y.shape)} "
                f"into shape {fmt_shape(value.shape)}, but train_model's decoder takes "
                f"{fmt_shape(want)} per step; "
                + (
                    "token models need feedback='argmax' (or a callable)"
                    if self.kind == "identity"
                    else "a decoder that takes one-hot vectors needs feedback='onehot'"
                    if self.kind == "argmax" and in_step[-1:] == y.shape[-1:]
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
                        f"{arg} output step {i} has shape {fmt_shape(a.shape)}; train_model's "
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
                    f"{arg} returned shape {fmt_shape(arr.shape)}; expected (batch, steps, ...) "
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
