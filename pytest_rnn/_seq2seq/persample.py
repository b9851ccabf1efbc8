"""A decoding loop over one sample at a time: :func:`per_sample` and its form.

Keras's character-level tutorial decodes one sample per call, in a Python
loop that stops at a stop character. :func:`per_sample` marks such a loop as
an inference (explicitly: a plain callable is form (c), ``(encoder_inputs,
start) -> outputs`` for the whole batch); :class:`_PerSampleLoop` runs it on
each sample, pads the samples that stopped early and keeps their lengths, so
that only the steps each sample produced are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.text import fmt_shape
from pytest_rnn._seq2seq.case import _Case
from pytest_rnn._seq2seq.forms import _Inference


@dataclass(frozen=True, eq=False)
class PerSample:
    """A decoding loop that takes one sample at a time: what :func:`per_sample` returns."""

    fn: Callable[[np.ndarray], Any]


def per_sample(fn: Callable[[np.ndarray], Any]) -> PerSample:
    """Mark ``fn`` as a decoding loop over one sample, as an inference to check.

    Keras's character-level ``lstm_seq2seq`` tutorial decodes with
    ``decode_sequence(input_seq)``: one sample, a Python loop of
    ``predict`` calls that stops at a stop character or a maximum length.
    Wrapped in ``per_sample``, such a loop is an ``inference`` for
    :func:`assert_inference_matches_training` and :func:`teacher_forcing_gap`
    once it returns what it computed instead of the decoded text.

    ``fn`` is called once per sample, in order, with that sample's encoder
    inputs as a batch of one, ``encoder_inputs[i:i + 1]`` of shape
    ``(1, encoder_steps, ...)`` (as the tutorial calls ``decode_sequence``).
    It returns the decoder's outputs for the steps it ran, ``steps_i <=
    steps``: a list with one output step per item (``(*out)``, or with
    leading axes of 1, such as the ``(1, 1, num_tokens)`` a tutorial
    decoder step model returns), or one array ``(steps_i, *out)`` or ``(1,
    steps_i, *out)``. ``fn`` builds its own first decoder input; pass the
    same value as ``start`` (the tutorial's one-hot start character).

    A sample that stopped early (a stop token) is compared on the steps it
    produced: ``train_model``'s outputs after the stop are not compared. The
    number of decoder steps is ``steps=``, ``decoder_inputs``' or
    train_model's length where one is given, else the longest sample's. A
    per-sample loop is checked free-running only (no teacher-forced replay).

    Args:
        fn: ``(one sample's encoder inputs, (1, encoder_steps, ...)) ->`` its
            per-step decoder outputs.

    Returns:
        The marked loop, to pass as ``inference``.

    Raises:
        TypeError: ``fn`` is not callable. When the check runs, ``fn``
            returning text (the tutorial's ``decoded_sentence``) is a
            TypeError, and outputs of the wrong shape or more steps than the
            decoder runs a ValueError, each naming ``inference``.

    Example:
        >>> def decode_sequence(input_seq):          # the tutorial's loop, one change:
        ...     ...                                   # outputs.append(output_tokens)
        ...     return outputs                        # instead of decoded_sentence
        >>> assert_inference_matches_training(
        ...     model, per_sample(decode_sequence), encoder_input_data[:8],
        ...     start=start_onehot, feedback="onehot")
    """
    if isinstance(fn, PerSample):
        return fn
    if not callable(fn):
        raise TypeError(
            "fn must be a callable (one sample's encoder inputs, a batch of one) -> its "
            f"per-step decoder outputs, got {type(fn).__name__}"
        )
    return PerSample(fn)


class _PerSampleLoop(_Inference):
    """(c) A callable that :func:`per_sample` marks: one sample per call, stopping when it likes."""

    def __init__(self, marked: PerSample) -> None:
        self.fn = marked.fn

    def describe(self) -> str:
        name = getattr(self.fn, "__qualname__", None) or type(self.fn).__name__
        return f"per-sample callable {name} (one sample at a time)"

    def run(self, case: _Case, teacher: np.ndarray | None) -> tuple[np.ndarray, None]:
        outs = [self._sample(case, i) for i in range(case.batch)]
        lengths = np.array([len(o) for o in outs])
        steps = case.steps or int(lengths.max())
        longest = int(np.argmax(lengths))
        if lengths[longest] > steps:
            raise ValueError(
                f"inference returned {lengths[longest]} decoder steps for sample {longest}, more "
                f"than the {steps} the decoder runs here (set by steps=, decoder_inputs or "
                "train_model's decoder input): a per-sample loop may stop early, not run longer"
            )
        step_shape = outs[0].shape[1:]
        for i, o in enumerate(outs):
            if o.shape[1:] != step_shape:
                raise ValueError(
                    f"inference returned output steps of shape {fmt_shape(o.shape[1:])} for "
                    f"sample {i} but {fmt_shape(step_shape)} for sample 0"
                )
        free = np.zeros((case.batch, steps, *step_shape), np.result_type(*outs))
        for i, o in enumerate(outs):
            free[i, : len(o)] = o
        self.lengths = lengths
        return free, None

    def _sample(self, case: _Case, i: int) -> np.ndarray:
        """Sample ``i``'s outputs ``(steps_i, *out)``; an error naming ``inference`` if unreadable."""
        out = self.fn(case.enc[i : i + 1])
        what = f"inference ({self.describe()})"
        if isinstance(out, (str, bytes)):
            raise TypeError(
                f"{what} returned {type(out).__name__} for sample {i}: return the decoder outputs "
                "of the steps it ran (e.g. a list of each step's output_tokens), not the "
                "decoded text"
            )
        rank = case.out_rank - 2  # of one output step
        if isinstance(out, (list, tuple)):
            items = [K.to_numpy(o) for o in out]
        else:
            arr = K.to_numpy(out)
            while arr.ndim > rank + 1 and arr.shape[0] == 1:  # the batch of one
                arr = arr[0]
            if arr.ndim <= rank:
                raise ValueError(
                    f"{what} returned shape {fmt_shape(arr.shape)} for sample {i}; expected its "
                    f"steps (steps, *out) with {rank + 1} dims, or a list of steps"
                )
            items = list(arr)
        if not items:
            raise ValueError(f"{what} returned no decoder steps for sample {i}")
        steps = []
        for t, item in enumerate(items):
            while item.ndim > rank and item.shape[0] == 1:  # batch and time axes of 1
                item = item[0]
            if item.ndim != rank:
                raise ValueError(
                    f"{what} output step {t} of sample {i} has shape {fmt_shape(item.shape)}; "
                    f"train_model's output has {case.out_rank} dims, so one step is expected "
                    f"as {rank} dims (leading axes of 1 are dropped)"
                )
            steps.append(item)
        try:
            return np.stack(steps)
        except ValueError:
            shapes = sorted({fmt_shape(s.shape) for s in steps})
            raise ValueError(
                f"{what} output steps of sample {i} differ in shape: {', '.join(shapes)}"
            ) from None
