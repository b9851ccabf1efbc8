"""Malformed calls: every public function refuses bad arguments early and by name.

One table, one row per malformed call, for every public function of
``pytest_rnn`` and ``pytest_rnn.strategies``. Each row must raise TypeError or
ValueError (``hypothesis.errors.InvalidArgument``, a TypeError, for the
strategies, as that module documents) whose message names the argument. None
may pass silently, none may escape as an internal Keras, TensorFlow or numpy
error (the error is raised by pytest-rnn's own code), and none may be reported
as a model failure (RNNAssertionError).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from keras import layers as L
from models import build_net, cumsum_labels, pair, regressor, rnn_seq, seq, windows

import pytest_rnn
from pytest_rnn import strategies
from pytest_rnn._errors import RNNAssertionError

PACKAGE = Path(pytest_rnn.__file__).parent
B, T, F = 2, 5, 3
DEC_STEPS, DEC_F, LATENT = 4, 2, 4


# =========================================================================== models and data


class Subclassed(keras.Model):
    """A model pytest-rnn cannot copy."""

    def __init__(self) -> None:
        super().__init__(name="subclassed")
        self.rnn = L.LSTM(4, return_sequences=True)

    def call(self, x: Any) -> Any:
        return self.rnn(x)


class Zoo:
    """Small models and inputs the rows share, built on first use."""

    x = np.random.default_rng(0).normal(size=(B, T, F)).astype("float32")
    enc = np.random.default_rng(1).normal(size=(B, 6, F)).astype("float32")
    dec = np.random.default_rng(2).normal(size=(B, DEC_STEPS, DEC_F)).astype("float32")
    x_fit = np.random.default_rng(3).normal(size=(8, T, F)).astype("float32")
    y_fit = np.zeros((8, 1), "float32")
    series = np.sin(np.arange(12.0))

    @functools.cached_property
    def seq(self) -> keras.Model:
        return rnn_seq(name="seq")

    @functools.cached_property
    def causal_lm(self) -> Any:
        """A tiny KerasHub GPT-2 (random weights); the rows skip where KerasHub is missing."""
        hub = pytest.importorskip("keras_hub")
        backbone = hub.models.GPT2Backbone(
            vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
            max_sequence_length=16,
        )  # fmt: skip
        return hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)

    tokens = np.random.default_rng(4).integers(1, 50, size=(B, 6)).astype("int32")

    @functools.cached_property
    def last(self) -> keras.Model:
        """Returns its last step only: no per-step output to check for causality."""
        return seq(L.LSTM(4), features=F, name="last")

    @functools.cached_property
    def two_inputs(self) -> keras.Model:
        a, b = keras.Input((None, F), name="a"), keras.Input((None, F), name="b")
        out = L.LSTM(4, return_sequences=True)(L.Concatenate()([a, b]))
        return keras.Model([a, b], out, name="two_inputs")

    @functools.cached_property
    def stateful(self) -> keras.Model:
        return seq(L.LSTM(4, stateful=True), features=F, batch=B, name="stateful")

    @functools.cached_property
    def stateful_3(self) -> keras.Model:
        """A streaming copy for batch 3: neither 1 nor x's batch."""
        return seq(L.LSTM(4, stateful=True), features=F, batch=3, name="stateful_3")

    @functools.cached_property
    def one_step(self) -> keras.Model:
        """A streaming copy that takes chunks of exactly 1 step."""
        return rnn_seq(stateful=True, batch=B, steps=1, name="one_step")

    @functools.cached_property
    def subclassed(self) -> keras.Model:
        model = Subclassed()
        model(self.x)
        return model

    @functools.cached_property
    def s2s(self) -> tuple[keras.Model, tuple[keras.Model, keras.Model]]:
        """``(train_model, (encoder_model, decoder_step_model))``, the Keras tutorial form."""
        net = build_net(
            latent=LATENT, enc_features=F, dec_steps=DEC_STEPS, features=DEC_F, name="train",
            input_names=False, layer_names=False,
        )  # fmt: skip
        return net.train, pair(net, names=("encoder", "step"))

    @property
    def train(self) -> keras.Model:
        return self.s2s[0]

    @property
    def pair(self) -> tuple[keras.Model, keras.Model]:
        return self.s2s[1]

    def make_model(self) -> keras.Model:
        return regressor(T, F, optimizer="sgd")

    def uncompiled(self) -> keras.Model:
        return regressor(T, F)


#: The make_windows the rows pass: correct windows of 3 over the zoo's series.
windows_of_3 = functools.partial(windows, window=3)


# =========================================================================== the table


@dataclass(frozen=True)
class Row:
    """A malformed call of ``fn`` and the argument its error must name."""

    fn: str  # "assert_model_causal" or "strategies.chunkings"
    label: str
    call: Callable[[Zoo], Any]
    names: str  # a regex the message must match: the argument's name

    @property
    def id(self) -> str:
        return f"{self.fn}-{self.label}"


def rows(fn: str, names: str, cases: dict[str, Callable[[Zoo], Any]]) -> list[Row]:
    return [Row(fn, label, call, names) for label, call in cases.items()]


def _tolerance_rows(fn: str, call: Callable[..., Any]) -> list[Row]:
    """rtol/atol: one without the other, negative, not finite, not a number."""
    return [
        Row(fn, "rtol-without-atol", lambda z: call(z, rtol=1e-3), "atol"),
        Row(fn, "atol-without-rtol", lambda z: call(z, atol=1e-3), "rtol"),
        Row(fn, "negative-rtol", lambda z: call(z, rtol=-1.0, atol=0.0), "rtol"),
        Row(fn, "nan-atol", lambda z: call(z, rtol=0.0, atol=float("nan")), "atol"),
        Row(fn, "string-rtol", lambda z: call(z, rtol="tight", atol=0.0), "rtol"),
    ]


def _seed_rows(fn: str, call: Callable[..., Any]) -> list[Row]:
    return [
        Row(fn, "negative-seed", lambda z: call(z, seed=-1), "seed"),
        Row(fn, "float-seed", lambda z: call(z, seed=1.5), "seed"),
        Row(fn, "string-seed", lambda z: call(z, seed="0"), "seed"),
        Row(fn, "bool-seed", lambda z: call(z, seed=True), "seed"),
    ]


def _count_rows(fn: str, arg: str, least: int, call: Callable[..., Any]) -> list[Row]:
    return [
        Row(fn, f"{arg}-below-{least}", lambda z: call(z, **{arg: least - 1}), arg),
        Row(fn, f"negative-{arg}", lambda z: call(z, **{arg: -3}), arg),
        Row(fn, f"float-{arg}", lambda z: call(z, **{arg: 2.0}), arg),
        Row(fn, f"bool-{arg}", lambda z: call(z, **{arg: True}), arg),
        Row(fn, f"string-{arg}", lambda z: call(z, **{arg: "2"}), arg),
    ]


def _x_rows(fn: str, call: Callable[..., Any], *, model: bool = True) -> list[Row]:
    """``x`` malformed in itself, and (``model``) for a model taking ``(batch, steps, 3)``."""
    x = Zoo.x
    cases = {
        "x-none": lambda z: call(z, None),
        "x-string": lambda z: call(z, "abc"),
        "x-1d": lambda z: call(z, x[0, 0]),
        "x-object-dtype": lambda z: call(z, np.array([[object()] * T] * B)),
        "x-nan": lambda z: call(z, np.where(x > 1, np.nan, x)),
        "x-empty-batch": lambda z: call(z, x[:0]),
        "x-no-steps": lambda z: call(z, x[:, :0]),
    }
    if model:
        cases["x-5-features"] = lambda z: call(z, np.concatenate([x, x[..., :2]], axis=-1))
        cases["x-4d"] = lambda z: call(z, x[..., None])
        cases["x-two-arrays-for-one-input"] = lambda z: call(z, [x, x])
    return rows(fn, r"\bx\b", cases)


#: "x not given": the row's wrapper passes the zoo's good input.
GOOD: Any = object()


def _stateful(z: Zoo, x: Any = GOOD, **kw: Any) -> None:
    pytest_rnn.assert_stateful_equals_batch(z.seq, z.x if x is GOOD else x, **kw)


def _model_causal(z: Zoo, x: Any = GOOD, **kw: Any) -> None:
    pytest_rnn.assert_model_causal(z.seq, z.x if x is GOOD else x, **kw)


def _labels(z: Zoo, x: Any = GOOD, **kw: Any) -> None:
    pytest_rnn.assert_labels_causal(cumsum_labels, z.x if x is GOOD else x, **kw)


def _labels_with_model(z: Zoo, x: Any = GOOD, **kw: Any) -> None:
    pytest_rnn.assert_labels_causal(cumsum_labels, z.x if x is GOOD else x, model=z.seq, **kw)


def _map(z: Zoo, x: Any = GOOD, **kw: Any) -> None:
    pytest_rnn.dependence_map(z.seq, z.x if x is GOOD else x, **kw)


def _windows(z: Zoo, series: Any = GOOD, **kw: Any) -> None:
    pytest_rnn.assert_windows_causal(windows_of_3, z.series if series is GOOD else series, **kw)


def _inference(z: Zoo, **kw: Any) -> None:
    args = {"train_model": z.train, "inference": z.pair, "encoder_inputs": z.enc, **kw}
    pytest_rnn.assert_inference_matches_training(
        args.pop("train_model"), args.pop("inference"), args.pop("encoder_inputs"), **args
    )


def _gap(z: Zoo, **kw: Any) -> None:
    args = {"train_model": z.train, "inference": z.pair, "encoder_inputs": z.enc, **kw}
    args.setdefault("targets", z.dec)
    pytest_rnn.teacher_forcing_gap(
        args.pop("train_model"),
        args.pop("inference"),
        args.pop("encoder_inputs"),
        args.pop("targets"),
        **args,
    )


def _fit(z: Zoo, **kw: Any) -> None:
    args = {"make_model": z.make_model, "x": z.x_fit, "y": z.y_fit, **kw}
    pytest_rnn.assert_fit_equivalent(args.pop("make_model"), args.pop("x"), args.pop("y"), **args)


def _resume(z: Zoo, **kw: Any) -> None:
    args = {"make_model": z.make_model, "x": z.x_fit, "y": z.y_fit, **kw}
    pytest_rnn.assert_resume_equivalent(args.pop("make_model"), args.pop("x"), args.pop("y"), **args)


def _stream_resume(z: Zoo, x: Any = GOOD, **kw: Any) -> None:
    kw.setdefault("at", 2)
    pytest_rnn.assert_stream_resumable(z.seq, z.x if x is GOOD else x, **kw)


def _running_sum_step(chunk: Any, state: Any, start: int) -> tuple[Any, Any]:
    base = np.zeros_like(chunk[:, 0]) if state is None else state
    y = base[:, None] + np.cumsum(chunk, axis=1)
    return y, y[:, -1]


def _incremental(z: Zoo, x: Any = GOOD, **kw: Any) -> None:
    args = {"step": _running_sum_step, "full": lambda a: np.cumsum(a, axis=1), **kw}
    pytest_rnn.assert_incremental_matches_full(
        args.pop("step"), args.pop("full"), z.x if x is GOOD else x, **args
    )


def _cached(z: Zoo, **kw: Any) -> None:
    args = {"causal_lm": z.causal_lm, "token_ids": z.tokens, **kw}
    pytest_rnn.assert_cached_decoding_matches_full(
        args.pop("causal_lm"), args.pop("token_ids"), **args
    )


def _trained(z: Zoo) -> keras.Model:
    model = z.make_model()
    model.fit(z.x_fit, z.y_fit, verbose=0)
    return model


def _reproducible(z: Zoo, **kw: Any) -> None:
    args = {"train": lambda: _trained(z), **kw}
    pytest_rnn.assert_training_reproducible(args.pop("train"), **args)


def _states_of(z: Zoo) -> dict[str, list[np.ndarray]]:
    z.stateful(z.x)
    return pytest_rnn.get_states(z.stateful)


def _same_model(z: Zoo) -> Callable[[], keras.Model]:
    model = z.make_model()
    return lambda: model


NOT_A_MODEL = {
    "array": lambda z: z.x,
    "none": lambda z: None,
    "function": lambda z: cumsum_labels,
}

ROWS: list[Row] = [
    # ---------------------------------------------------------------- assert_stateful_equals_batch
    *(
        Row("assert_stateful_equals_batch", f"model-{k}",
            lambda z, v=v: pytest_rnn.assert_stateful_equals_batch(v(z), z.x), r"\bmodel\b")
        for k, v in NOT_A_MODEL.items()
    ),
    *_x_rows("assert_stateful_equals_batch", _stateful),
    Row("assert_stateful_equals_batch", "x-batch-mismatch",
        lambda z: pytest_rnn.assert_stateful_equals_batch(z.two_inputs, [z.x, z.x[:1]]), r"x\[1\]"),
    Row("assert_stateful_equals_batch", "x-steps-mismatch",
        lambda z: pytest_rnn.assert_stateful_equals_batch(z.two_inputs, [z.x, z.x[:, :2]]),
        r"x\[1\]"),
    *rows("assert_stateful_equals_batch", "chunks", {
        "chunks-zero": lambda z: _stateful(z, chunks=0),
        "chunks-negative": lambda z: _stateful(z, chunks=-2),
        "chunks-float": lambda z: _stateful(z, chunks=1.5),
        "chunks-bool": lambda z: _stateful(z, chunks=True),
        "chunks-string": lambda z: _stateful(z, chunks="23"),
        "chunks-empty": lambda z: _stateful(z, chunks=[]),
        "chunks-sum-short": lambda z: _stateful(z, chunks=[2, 2]),
        "chunks-sum-long": lambda z: _stateful(z, chunks=[3, 3]),
        "chunks-zero-length": lambda z: _stateful(z, chunks=[0, 5]),
        "chunks-float-lengths": lambda z: _stateful(z, chunks=[2.0, 3.0]),
        "chunks-dict": lambda z: _stateful(z, chunks={"a": 5}),
    }),
    *rows("assert_stateful_equals_batch", "stateful_model", {
        "stateful_model-array": lambda z: _stateful(z, stateful_model=z.x),
        "stateful_model-batch-3": lambda z: _stateful(z, stateful_model=z.stateful_3),
        "stateful_model-fixed-steps": lambda z: _stateful(z, stateful_model=z.one_step, chunks=2),
    }),
    *_tolerance_rows("assert_stateful_equals_batch", _stateful),
    # ---------------------------------------------------------------- assert_inference_matches_training
    *(
        Row("assert_inference_matches_training", f"train_model-{k}",
            lambda z, v=v: _inference(z, train_model=v(z)), "train_model")
        for k, v in NOT_A_MODEL.items()
    ),
    Row("assert_inference_matches_training", "train_model-one-input",
        lambda z: _inference(z, train_model=z.seq), "train_model"),
    *rows("assert_inference_matches_training", "inference", {
        "inference-number": lambda z: _inference(z, inference=42),
        "inference-one-model-tuple": lambda z: _inference(z, inference=(z.pair[0],)),
        "inference-three-models": lambda z: _inference(z, inference=(*z.pair, z.seq)),
        "inference-model-one-input": lambda z: _inference(z, inference=z.seq),
        "inference-pair-of-arrays": lambda z: _inference(z, inference=(z.x, z.x)),
        "inference-step-model-alone": lambda z: _inference(z, inference=z.pair[1]),
    }),
    *rows("assert_inference_matches_training", "encoder_inputs", {
        "encoder_inputs-none": lambda z: _inference(z, encoder_inputs=None),
        "encoder_inputs-string": lambda z: _inference(z, encoder_inputs="abc"),
        "encoder_inputs-1d": lambda z: _inference(z, encoder_inputs=z.enc[0, 0]),
        "encoder_inputs-4d": lambda z: _inference(z, encoder_inputs=z.enc[..., None]),
        "encoder_inputs-5-features": lambda z: _inference(
            z, encoder_inputs=np.concatenate([z.enc, z.enc[..., :2]], axis=-1)),
        "encoder_inputs-empty-batch": lambda z: _inference(z, encoder_inputs=z.enc[:0]),
        "encoder_inputs-nan": lambda z: _inference(
            z, encoder_inputs=np.where(z.enc > 1, np.nan, z.enc)),
    }),
    *rows("assert_inference_matches_training", "decoder_inputs", {
        "decoder_inputs-batch-mismatch": lambda z: _inference(z, decoder_inputs=z.dec[:1]),
        "decoder_inputs-steps-mismatch": lambda z: _inference(z, decoder_inputs=z.dec[:, :2]),
        "decoder_inputs-features": lambda z: _inference(z, decoder_inputs=z.dec[..., :1]),
        "decoder_inputs-string": lambda z: _inference(z, decoder_inputs="abc"),
        "decoder_inputs-nan": lambda z: _inference(
            z, decoder_inputs=np.where(z.dec > 1, np.nan, z.dec)),
    }),
    *rows("assert_inference_matches_training", "start", {
        "start-bool": lambda z: _inference(z, start=True),
        "start-string": lambda z: _inference(z, start="go"),
        "start-wrong-shape": lambda z: _inference(z, start=np.zeros((3, 5))),
    }),
    *rows("assert_inference_matches_training", "feedback", {
        "feedback-unknown-name": lambda z: _inference(z, feedback="max"),
        "feedback-number": lambda z: _inference(z, feedback=3),
        "feedback-argmax-for-float-decoder": lambda z: _inference(z, feedback="argmax"),
    }),
    *rows("assert_inference_matches_training", "steps", {
        "steps-zero": lambda z: _inference(z, steps=0),
        "steps-bool": lambda z: _inference(z, steps=True),
        "steps-float": lambda z: _inference(z, steps=2.0),
        "steps-disagreeing": lambda z: _inference(z, steps=z.dec.shape[1] + 1),
    }),
    *rows("per_sample", "fn", {
        "fn-number": lambda z: pytest_rnn.per_sample(3),
        "fn-none": lambda z: pytest_rnn.per_sample(None),
    }),
    *_tolerance_rows("assert_inference_matches_training", _inference),
    # ---------------------------------------------------------------- teacher_forcing_gap
    Row("teacher_forcing_gap", "train_model-array", lambda z: _gap(z, train_model=z.x),
        "train_model"),
    Row("teacher_forcing_gap", "inference-number", lambda z: _gap(z, inference=7), "inference"),
    Row("teacher_forcing_gap", "encoder_inputs-none", lambda z: _gap(z, encoder_inputs=None),
        "encoder_inputs"),
    *rows("teacher_forcing_gap", "targets", {
        "targets-none": lambda z: _gap(z, targets=None),
        "targets-1d": lambda z: _gap(z, targets=z.dec[0, 0]),
        "targets-batch-mismatch": lambda z: _gap(z, targets=z.dec[:1]),
        "targets-steps-mismatch": lambda z: _gap(z, targets=z.dec[:, :2]),
        "targets-features": lambda z: _gap(z, targets=z.dec[..., :1]),
        "targets-nan": lambda z: _gap(z, targets=np.where(z.dec > 1, np.nan, z.dec)),
    }),
    *rows("teacher_forcing_gap", "loss", {
        "loss-unknown-name": lambda z: _gap(z, loss="hinge-ish"),
        "loss-number": lambda z: _gap(z, loss=3),
    }),
    Row("teacher_forcing_gap", "feedback-unknown", lambda z: _gap(z, feedback="max"), "feedback"),
    *_tolerance_rows("teacher_forcing_gap", _gap),
    # ---------------------------------------------------------------- assert_labels_causal
    *rows("assert_labels_causal", "make_labels", {
        "make_labels-array": lambda z: pytest_rnn.assert_labels_causal(cumsum_labels(z.x), z.x),
        "make_labels-model": lambda z: pytest_rnn.assert_labels_causal(z.seq, z.x),
        "make_labels-none": lambda z: pytest_rnn.assert_labels_causal(None, z.x),
        "make_labels-one-label-per-sequence": lambda z: pytest_rnn.assert_labels_causal(
            lambda x: x.sum(axis=(1, 2)), z.x),
        "make_labels-other-batch": lambda z: pytest_rnn.assert_labels_causal(
            lambda x: x[:1], z.x),
        "make_labels-strings": lambda z: pytest_rnn.assert_labels_causal(
            lambda x: np.full(x.shape[:2], "a"), z.x),
    }),
    *_x_rows("assert_labels_causal", _labels, model=False),
    *(Row(r.fn, f"{r.label}-for-model", r.call, r.names)
      for r in _x_rows("assert_labels_causal", _labels_with_model)[-3:]),
    Row("assert_labels_causal", "x-function", lambda z: _labels(z, cumsum_labels), r"\bx\b"),
    Row("assert_labels_causal", "x-constant", lambda z: _labels(z, np.ones((B, T, F))), r"\bx\b"),
    Row("assert_labels_causal", "x-list-batch-mismatch", lambda z: _labels(z, [z.x, z.x[:1]]),
        r"\bx\b"),
    Row("assert_labels_causal", "model-array", lambda z: _labels(z, model=z.x), r"\bmodel\b"),
    Row("assert_labels_causal", "model-function",
        lambda z: _labels(z, model=cumsum_labels), r"\bmodel\b"),
    Row("assert_labels_causal", "model-last-step-only",
        lambda z: _labels(z, model=z.last), r"\bmodel\b"),
    *_count_rows("assert_labels_causal", "horizon", 0, _labels),
    *_count_rows("assert_labels_causal", "trials", 1, _labels),
    *_seed_rows("assert_labels_causal", _labels),
    *_tolerance_rows("assert_labels_causal", _labels),
    # ---------------------------------------------------------------- assert_model_causal
    *(
        Row("assert_model_causal", f"model-{k}",
            lambda z, v=v: pytest_rnn.assert_model_causal(v(z), z.x), r"\bmodel\b")
        for k, v in NOT_A_MODEL.items()
    ),
    Row("assert_model_causal", "model-last-step-only",
        lambda z: pytest_rnn.assert_model_causal(z.last, z.x), r"\bmodel\b"),
    *_x_rows("assert_model_causal", _model_causal),
    Row("assert_model_causal", "x-constant", lambda z: _model_causal(z, np.ones((B, T, F))),
        r"\bx\b"),
    *_count_rows("assert_model_causal", "trials", 1, _model_causal),
    *_seed_rows("assert_model_causal", _model_causal),
    *_tolerance_rows("assert_model_causal", _model_causal),
    # ---------------------------------------------------------------- assert_windows_causal
    *rows("assert_windows_causal", "make_windows", {
        "make_windows-array": lambda z: pytest_rnn.assert_windows_causal(z.series, z.series),
        "make_windows-none": lambda z: pytest_rnn.assert_windows_causal(None, z.series),
        "make_windows-returns-one-array": lambda z: pytest_rnn.assert_windows_causal(
            lambda s: s[:, None], z.series),
        "make_windows-returns-three": lambda z: pytest_rnn.assert_windows_causal(
            lambda s: (*windows_of_3(s), s), z.series),
        "make_windows-no-windows": lambda z: pytest_rnn.assert_windows_causal(
            lambda s: (s[:0, None], s[:0]), z.series),
    }),
    *rows("assert_windows_causal", "series", {
        "series-scalar": lambda z: _windows(z, np.float64(1.0)),
        "series-function": lambda z: _windows(z, windows_of_3),
        "series-dict": lambda z: _windows(z, {"s": z.series}),
        "series-one-position": lambda z: _windows(z, z.series[:1]),
        "series-constant": lambda z: _windows(z, np.ones(12)),
        "series-nan": lambda z: _windows(z, np.where(z.series > 0.9, np.nan, z.series)),
        "series-strings": lambda z: _windows(z, np.array(["a"] * 12)),
    }),
    *_count_rows("assert_windows_causal", "anchor_steps", 0, _windows),
    *_count_rows("assert_windows_causal", "trials", 1, _windows),
    *_seed_rows("assert_windows_causal", _windows),
    *_tolerance_rows("assert_windows_causal", _windows),
    # ---------------------------------------------------------------- dependence_map
    *rows("dependence_map", r"\bfn\b", {
        "fn-array": lambda z: pytest_rnn.dependence_map(z.x, z.x),
        "fn-none": lambda z: pytest_rnn.dependence_map(None, z.x),
        "fn-model-last-step-only": lambda z: pytest_rnn.dependence_map(z.last, z.x),
        "fn-returns-other-steps": lambda z: pytest_rnn.dependence_map(lambda x: x[:, :2], z.x),
    }),
    *_x_rows("dependence_map", _map),
    *_count_rows("dependence_map", "trials", 1, _map),
    *_seed_rows("dependence_map", _map),
    *_tolerance_rows("dependence_map", _map),
    # ---------------------------------------------------------------- assert_fit_equivalent
    *rows("assert_fit_equivalent", "make_model", {
        "make_model-model": lambda z: _fit(z, make_model=z.make_model()),
        "make_model-none": lambda z: _fit(z, make_model=None),
        "make_model-returns-array": lambda z: _fit(z, make_model=lambda: z.x),
        "make_model-uncompiled": lambda z: _fit(z, make_model=z.uncompiled),
        "make_model-same-model-twice": lambda z: _fit(z, make_model=_same_model(z)),
    }),
    *rows("assert_fit_equivalent", r"\bx\b", {
        "x-none": lambda z: _fit(z, x=None),
        "x-list-of-lists": lambda z: _fit(z, x=[[1.0, 2.0]]),
        "x-generator": lambda z: _fit(z, x=iter(z.x_fit)),
        "x-scalar": lambda z: _fit(z, x=np.float32(1.0)),
        "x-y-lengths-differ": lambda z: _fit(z, y=z.y_fit[:3]),
    }),
    *_count_rows("assert_fit_equivalent", "epochs", 1, _fit),
    *rows("assert_fit_equivalent", "fit_kwargs", {
        "fit_kwargs-list": lambda z: _fit(z, fit_kwargs=[("batch_size", 4)]),
        "fit_kwargs-sets-epochs": lambda z: _fit(z, fit_kwargs={"epochs": 3}),
        "fit_kwargs-sets-x": lambda z: _fit(z, fit_kwargs={"x": z.x_fit}),
        "fit_kwargs-callbacks-not-list": lambda z: _fit(
            z, fit_kwargs={"callbacks": pytest_rnn.ResetStatesCallback()}),
        "fit_kwargs-unknown-key": lambda z: _fit(z, fit_kwargs={"batch_sizee": 4}),
    }),
    *rows("assert_fit_equivalent", "reset_states", {
        "reset_states-string": lambda z: _fit(z, reset_states="yes"),
        "reset_states-int": lambda z: _fit(z, reset_states=1),
    }),
    *_seed_rows("assert_fit_equivalent", _fit),
    Row("assert_fit_equivalent", "seed-2**32", lambda z: _fit(z, seed=2**32), "seed"),
    *_tolerance_rows("assert_fit_equivalent", _fit),
    # ---------------------------------------------------------------- assert_resume_equivalent
    *rows("assert_resume_equivalent", "make_model", {
        "make_model-model": lambda z: _resume(z, make_model=z.make_model()),
        "make_model-none": lambda z: _resume(z, make_model=None),
        "make_model-returns-array": lambda z: _resume(z, make_model=lambda: z.x),
        "make_model-uncompiled": lambda z: _resume(z, make_model=z.uncompiled),
        # (called once: the resumed run goes on from the checkpoint, not a new model)
    }),
    *rows("assert_resume_equivalent", r"\bx\b", {
        "x-none": lambda z: _resume(z, x=None),
        "x-generator": lambda z: _resume(z, x=iter(z.x_fit)),
        "x-y-lengths-differ": lambda z: _resume(z, y=z.y_fit[:3]),
    }),
    *_count_rows("assert_resume_equivalent", "epochs", 2, _resume),
    *rows("assert_resume_equivalent", "resume_at", {
        "resume_at-zero": lambda z: _resume(z, resume_at=0),
        "resume_at-last-epoch": lambda z: _resume(z, resume_at=2),
        "resume_at-float": lambda z: _resume(z, resume_at=1.0),
        "resume_at-empty": lambda z: _resume(z, epochs=3, resume_at=[]),
        "resume_at-twice": lambda z: _resume(z, epochs=3, resume_at=[1, 1]),
    }),
    *rows("assert_resume_equivalent", r"\bsave\b", {
        "save-string": lambda z: _resume(z, save="model.keras"),
        "save-model": lambda z: _resume(z, save=z.seq),
    }),
    *rows("assert_resume_equivalent", r"\bload\b", {
        "load-int": lambda z: _resume(z, load=3),
        "load-returns-string": lambda z: _resume(z, load=lambda folder: "model"),
    }),
    *rows("assert_resume_equivalent", "fit_kwargs", {
        "fit_kwargs-list": lambda z: _resume(z, fit_kwargs=[("batch_size", 4)]),
        "fit_kwargs-sets-initial_epoch": lambda z: _resume(z, fit_kwargs={"initial_epoch": 1}),
        "fit_kwargs-unknown-key": lambda z: _resume(z, fit_kwargs={"batch_sizee": 4}),
    }),
    *_seed_rows("assert_resume_equivalent", _resume),
    *_tolerance_rows("assert_resume_equivalent", _resume),
    # ---------------------------------------------------------------- assert_incremental_matches_full
    *rows("assert_incremental_matches_full", r"\bstep\b", {
        "step-array": lambda z: _incremental(z, step=z.x),
        "step-returns-array": lambda z: _incremental(z, step=lambda c, s, t: c),
        "step-too-few-steps": lambda z: _incremental(
            z, step=lambda c, s, t: (c[:, :1], s), chunks=[2, T - 2]),
    }),
    *rows("assert_incremental_matches_full", r"\bfull\b", {
        "full-none": lambda z: _incremental(z, full=None),
        "full-returns-last-step": lambda z: _incremental(z, full=lambda a: a[:, -1]),
    }),
    *rows("assert_incremental_matches_full", r"\binit\b", {
        "init-array": lambda z: _incremental(z, init=np.zeros(3)),
    }),
    *_x_rows("assert_incremental_matches_full", _incremental, model=False),
    *rows("assert_incremental_matches_full", r"\bchunks\b", {
        "chunks-zero": lambda z: _incremental(z, chunks=0),
        "chunks-wrong-sum": lambda z: _incremental(z, chunks=[1, 1]),
        "chunks-string": lambda z: _incremental(z, chunks="2"),
    }),
    *rows("assert_incremental_matches_full", r"\bvalid\b", {
        "valid-wrong-shape": lambda z: _incremental(z, valid=np.ones((B, T + 1), bool)),
        "valid-floats": lambda z: _incremental(z, valid=np.ones((B, T))),
        "valid-all-false": lambda z: _incremental(z, valid=np.zeros((B, T), bool)),
    }),
    *_tolerance_rows("assert_incremental_matches_full", _incremental),
    # ---------------------------------------------------------------- assert_cached_decoding_matches_full
    *rows("assert_cached_decoding_matches_full", r"\bcausal_lm\b", {
        "causal_lm-keras-model": lambda z: _cached(z, causal_lm=z.seq),
        "causal_lm-none": lambda z: _cached(z, causal_lm=None),
    }),
    *rows("assert_cached_decoding_matches_full", r"\btoken_ids\b", {
        "token_ids-floats": lambda z: _cached(z, token_ids=z.tokens.astype("float32")),
        "token_ids-3d": lambda z: _cached(z, token_ids=z.tokens[..., None]),
        "token_ids-past-vocabulary": lambda z: _cached(z, token_ids=z.tokens + 50),
        "token_ids-longer-than-the-model": lambda z: _cached(
            z, token_ids=np.tile(z.tokens, (1, 3))),
    }),
    *rows("assert_cached_decoding_matches_full", r"\bpadding_mask\b", {
        "padding_mask-shape": lambda z: _cached(z, padding_mask=np.ones((B, 5), bool)),
        "padding_mask-floats": lambda z: _cached(z, padding_mask=np.full((B, 6), 0.5)),
        "padding_mask-left": lambda z: _cached(
            z, padding_mask=np.arange(6)[None, :] >= np.array([[0], [2]])),
    }),
    *rows("assert_cached_decoding_matches_full", r"\bchunks\b", {
        "chunks-zero": lambda z: _cached(z, chunks=0),
        "chunks-wrong-sum": lambda z: _cached(z, chunks=[2, 2]),
    }),
    *rows("assert_cached_decoding_matches_full", r"\bgenerate\b", {
        "generate-string": lambda z: _cached(z, generate="yes"),
    }),
    *_tolerance_rows("assert_cached_decoding_matches_full", _cached),
    # ---------------------------------------------------------------- assert_stream_resumable
    *(
        Row("assert_stream_resumable", f"model-{k}",
            lambda z, v=v: pytest_rnn.assert_stream_resumable(v(z), z.x, at=2), r"\bmodel\b")
        for k, v in NOT_A_MODEL.items()
    ),
    *_x_rows("assert_stream_resumable", _stream_resume),
    *rows("assert_stream_resumable", r"\bat\b", {
        "at-zero": lambda z: _stream_resume(z, at=0),
        "at-steps": lambda z: _stream_resume(z, at=T),
        "at-float": lambda z: _stream_resume(z, at=1.5),
        "at-empty": lambda z: _stream_resume(z, at=[]),
        "at-twice": lambda z: _stream_resume(z, at=[2, 2]),
    }),
    *rows("assert_stream_resumable", r"\bsave\b", {
        "save-string": lambda z: _stream_resume(z, save="model.keras"),
        "save-model": lambda z: _stream_resume(z, save=z.seq),
    }),
    *rows("assert_stream_resumable", r"\bload\b", {
        "load-int": lambda z: _stream_resume(z, load=3),
        "load-returns-none": lambda z: _stream_resume(z, load=lambda folder: None),
    }),
    *rows("assert_stream_resumable", "stateful_model", {
        "stateful_model-array": lambda z: _stream_resume(z, stateful_model=z.x),
        "stateful_model-stateless": lambda z: _stream_resume(z, stateful_model=z.seq),
    }),
    *_tolerance_rows("assert_stream_resumable", _stream_resume),
    # ---------------------------------------------------------------- assert_training_reproducible
    *rows("assert_training_reproducible", r"\btrain\b", {
        "train-model": lambda z: _reproducible(z, train=z.make_model()),
        "train-none": lambda z: _reproducible(z, train=None),
        "train-returns-none": lambda z: _reproducible(z, train=lambda: None),
        "train-same-model-twice": lambda z: _reproducible(z, train=_same_model(z)),
    }),
    *_count_rows("assert_training_reproducible", "runs", 2, _reproducible),
    *_seed_rows("assert_training_reproducible", _reproducible),
    *_tolerance_rows("assert_training_reproducible", _reproducible),
    # ---------------------------------------------------------------- state helpers
    *(
        Row(fn, f"model-{k}", lambda z, fn=fn, v=v: getattr(pytest_rnn, fn)(v(z)), r"\bmodel\b")
        for fn in ("reset_states", "get_states")
        for k, v in NOT_A_MODEL.items()
    ),
    *(
        Row("set_states", f"model-{k}", lambda z, v=v: pytest_rnn.set_states(v(z), {}),
            r"\bmodel\b")
        for k, v in NOT_A_MODEL.items()
    ),
    *rows("set_states", r"\bstates\b", {
        "states-list": lambda z: pytest_rnn.set_states(z.stateful, list(_states_of(z).values())),
        "states-none": lambda z: pytest_rnn.set_states(z.stateful, None),
        "states-unknown-layer": lambda z: pytest_rnn.set_states(
            z.stateful, {"nope": _states_of(z)[next(iter(_states_of(z)))]}),
        "states-wrong-shape": lambda z: pytest_rnn.set_states(
            z.stateful, {k: [np.zeros((B, 9))] * 2 for k in _states_of(z)}),
        "states-too-few-arrays": lambda z: pytest_rnn.set_states(
            z.stateful, {k: v[:1] for k, v in _states_of(z).items()}),
        "states-strings": lambda z: pytest_rnn.set_states(
            z.stateful, {k: ["h", "c"] for k in _states_of(z)}),
    }),
    *(
        Row("stateful_twin", f"model-{k}", lambda z, v=v: pytest_rnn.stateful_twin(v(z), 1),
            r"\bmodel\b")
        for k, v in NOT_A_MODEL.items()
    ),
    Row("stateful_twin", "model-subclassed",
        lambda z: pytest_rnn.stateful_twin(z.subclassed, 1), r"\bmodel\b|stateful_model"),
    *(
        Row("stateful_twin", f"batch_size-{k}",
            lambda z, v=v: pytest_rnn.stateful_twin(z.seq, v), "batch_size")
        for k, v in {"zero": 0, "negative": -1, "float": 1.0, "bool": True, "string": "1",
                     "none": None}.items()
    ),
    # ---------------------------------------------------------------- strategies
    *rows("strategies.sequence_shapes", "min_batch", {
        "min_batch-zero": lambda z: strategies.sequence_shapes(min_batch=0),
        "min_batch-float": lambda z: strategies.sequence_shapes(min_batch=1.5),
        "min_batch-bool": lambda z: strategies.sequence_shapes(min_batch=True),
        "min_batch-above-max": lambda z: strategies.sequence_shapes(min_batch=5, max_batch=2),
    }),
    *rows("strategies.sequence_shapes", "steps", {
        "min_steps-zero": lambda z: strategies.sequence_shapes(min_steps=0),
        "max_steps-string": lambda z: strategies.sequence_shapes(max_steps="9"),
        "min_steps-above-max": lambda z: strategies.sequence_shapes(min_steps=9, max_steps=3),
    }),
    *rows("strategies.sequence_shapes", "features", {
        "features-zero": lambda z: strategies.sequence_shapes(features=0),
        "features-tuple-with-zero": lambda z: strategies.sequence_shapes(features=(3, 0)),
        "features-string": lambda z: strategies.sequence_shapes(features="3"),
    }),
    *rows("strategies.sequences", "shape", {
        "shape-1d": lambda z: strategies.sequences(shape=(2,)),
        "shape-zero-dim": lambda z: strategies.sequences(shape=(0, 3, 1)),
        "shape-int": lambda z: strategies.sequences(shape=3),
    }),
    *rows("strategies.sequences", "dtype", {
        "dtype-int": lambda z: strategies.sequences(dtype="int32"),
        "dtype-unknown": lambda z: strategies.sequences(dtype="float33"),
    }),
    *rows("strategies.sequences", "value|elements", {
        "min_value-nan": lambda z: strategies.sequences(min_value=float("nan")),
        "min_value-above-max": lambda z: strategies.sequences(min_value=2.0, max_value=1.0),
        "max_value-too-big-for-float16": lambda z: strategies.sequences(
            dtype="float16", max_value=1e6),
        "elements-not-strategy": lambda z: strategies.sequences(elements=3),
        "elements-and-bounds": lambda z: strategies.sequences(
            elements=st.floats(0, 1), min_value=0.0),
    }),
    *rows("strategies.padded_sequences", "padding|length|value|shape", {
        "padding-middle": lambda z: strategies.padded_sequences(padding="middle"),
        "min_length-zero": lambda z: strategies.padded_sequences(min_length=0),
        "max_length-below-min": lambda z: strategies.padded_sequences(min_length=3, max_length=2),
        "value-inf": lambda z: strategies.padded_sequences(value=float("inf")),
        "shape-shorter-than-min_length": lambda z: strategies.padded_sequences(
            shape=(2, 2, 1), min_length=3),
        "value-only-value": lambda z: strategies.padded_sequences(
            min_value=0.0, max_value=0.0, value=0.0),
    }),
    *rows("strategies.chunkings", "steps|chunk", {
        "steps-zero": lambda z: strategies.chunkings(0),
        "steps-float": lambda z: strategies.chunkings(4.0),
        "steps-bool": lambda z: strategies.chunkings(True),
        "min_chunk-zero": lambda z: strategies.chunkings(4, min_chunk=0),
        "max_chunk-below-min": lambda z: strategies.chunkings(4, min_chunk=3, max_chunk=2),
        "min_chunks-zero": lambda z: strategies.chunkings(4, min_chunks=0),
        "max_chunks-below-min": lambda z: strategies.chunkings(4, min_chunks=3, max_chunks=2),
        "no-schedule-fits": lambda z: strategies.chunkings(5, min_chunk=3, max_chunk=4),
    }),
    *rows("strategies.decode_schedules", "steps|prefill|chunk|boundar", {
        "steps-zero": lambda z: strategies.decode_schedules(0),
        "steps-float": lambda z: strategies.decode_schedules(4.0),
        "min_prefill-zero": lambda z: strategies.decode_schedules(4, min_prefill=0),
        "max_prefill-below-min": lambda z: strategies.decode_schedules(
            4, min_prefill=3, max_prefill=2),
        "max_chunk-zero": lambda z: strategies.decode_schedules(4, max_chunk=0),
        "prefill-longer-than-steps": lambda z: strategies.decode_schedules(4, min_prefill=5),
        "boundaries-string": lambda z: strategies.decode_schedules(4, boundaries="8"),
        "boundary-zero": lambda z: strategies.decode_schedules(4, boundaries=[0]),
    }),
    *rows("strategies.token_sequences", "vocab_size|min_token|dtype|shape", {
        "vocab_size-zero": lambda z: strategies.token_sequences(vocab_size=0),
        "min_token-at-vocab_size": lambda z: strategies.token_sequences(vocab_size=4, min_token=4),
        "min_token-negative": lambda z: strategies.token_sequences(min_token=-1),
        "dtype-float": lambda z: strategies.token_sequences(dtype="float32"),
        "dtype-too-small": lambda z: strategies.token_sequences(vocab_size=1000, dtype="int8"),
        "shape-3d": lambda z: strategies.token_sequences(shape=(2, 3, 4)),
    }),
    *rows("strategies.padded_token_sequences", "min_token|padding|length|shape", {
        "min_token-zero": lambda z: strategies.padded_token_sequences(min_token=0),
        "padding-both": lambda z: strategies.padded_token_sequences(padding="both"),
        "min_length-zero": lambda z: strategies.padded_token_sequences(min_length=0),
        "shape-shorter-than-min_length": lambda z: strategies.padded_token_sequences(
            shape=(2, 2), min_length=4),
    }),
    *rows("strategies.sequence_models", "cells|layers|units|max_features|dtypes|return_sequences|tokens", {
        "cells-unknown": lambda z: strategies.sequence_models(cells=("LSTM", "Transformer")),
        "cells-empty": lambda z: strategies.sequence_models(cells=()),
        "min_layers-zero": lambda z: strategies.sequence_models(min_layers=0),
        "max_layers-below-min": lambda z: strategies.sequence_models(min_layers=3, max_layers=2),
        "max_units-below-min": lambda z: strategies.sequence_models(min_units=5, max_units=4),
        "max_features-zero": lambda z: strategies.sequence_models(max_features=0),
        "dtypes-int": lambda z: strategies.sequence_models(dtypes=("int32",)),
        "tokens-string": lambda z: strategies.sequence_models(tokens="yes"),
    }),
    *rows("strategies.seq2seq_models", "cells|units|max_features|decoder_steps|dtypes|tokens", {
        "cells-unknown": lambda z: strategies.seq2seq_models(cells=("Transformer",)),
        "min_units-zero": lambda z: strategies.seq2seq_models(min_units=0),
        "max_decoder_steps-below-min": lambda z: strategies.seq2seq_models(
            min_decoder_steps=4, max_decoder_steps=3),
        "min_decoder_steps-float": lambda z: strategies.seq2seq_models(min_decoder_steps=1.5),
        "dtypes-float16": lambda z: strategies.seq2seq_models(dtypes=("float16",)),
    }),
]  # fmt: skip

#: Public callables without rows, with why: they take no argument a user gets wrong.
NO_ROWS = {
    "RNNAssertionError": "the exception class the assertions raise",
    "DependenceMap": "a result object the library builds, not a user",
    "TeacherForcingGap": "a result object the library builds, not a user",
    "ResetStatesCallback": "takes no arguments (a Keras callback)",
    "strategies.PaddedSequences": "a result object the strategies build",
    "strategies.rnn_settings": "a Hypothesis settings object, validated by Hypothesis",
    "strategies.LayerSpec": "a drawn spec the model strategies build, not a user",
    "strategies.SequenceModel": "a drawn spec the model strategies build, not a user",
    "strategies.Seq2SeqModel": "a drawn spec the model strategies build, not a user",
    "strategies.Seq2SeqNet": "the built models of a drawn Seq2SeqModel, not a user's input",
}


@pytest.fixture(scope="module")
def zoo() -> Zoo:
    return Zoo()


def test_every_public_callable_has_rows() -> None:
    public = {n for n in pytest_rnn.__all__ if callable(getattr(pytest_rnn, n))}
    public |= {f"strategies.{n}" for n in strategies.__all__ if callable(getattr(strategies, n))}
    covered = {r.fn for r in ROWS}
    assert not public - covered - set(NO_ROWS), sorted(public - covered - set(NO_ROWS))
    assert covered | set(NO_ROWS) == public, sorted((covered | set(NO_ROWS)) ^ public)
    assert len({r.id for r in ROWS}) == len(ROWS), "row ids must be unique"


def _raised_in(error: BaseException) -> Path:
    """The file of the innermost Python frame that raised ``error``."""
    tb = error.__traceback__
    assert tb is not None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return Path(tb.tb_frame.f_code.co_filename)


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_malformed_call_is_refused_by_name(row: Row, zoo: Zoo) -> None:
    try:
        row.call(zoo)
    except RNNAssertionError as error:
        pytest.fail(f"reported as a model failure instead of a bad argument: {error}")
    except Exception as error:
        expected = InvalidArgument if row.fn.startswith("strategies.") else (TypeError, ValueError)
        assert isinstance(error, expected), f"{type(error).__name__}: {error}"
        assert re.search(row.names, str(error)), f"does not name {row.names!r}: {error}"
        origin = _raised_in(error)
        assert origin.is_relative_to(PACKAGE), f"raised inside {origin}, not by pytest-rnn: {error}"
    else:
        pytest.fail("passed silently")


def test_an_error_from_keras_is_told_apart(zoo: Zoo) -> None:
    """``_raised_in`` is not blind: Keras's own error deep in a layer is not pytest-rnn's."""
    with pytest.raises(Exception) as info:
        zoo.seq(np.zeros((B, T, 5), "float32"))
    assert not _raised_in(info.value).is_relative_to(PACKAGE)
    with pytest.raises(ValueError) as info:
        pytest_rnn.assert_model_causal(zoo.seq, np.zeros((B, T, 5), "float32"))
    assert _raised_in(info.value).is_relative_to(PACKAGE)
