"""Side effects, proven: every public call leaves what a user owns as it was.

One table holds, for every public assertion and helper that touches models, a
passing call and a failing call (where the function can fail). Around each
call everything a user owns is snapshotted and must come back bit for bit:
the weights and variables of every model involved, RNN states, optimizer
variables and compile state, Python's and numpy's global random state,
TensorFlow's global seed, op-seed stream and global generator, Keras's global
seed and seed generator, floatx, dtype policy, image data format, the TF32
and op-determinism flags (JAX's matmul precision and torch's TF32 flags where
those modules are loaded), and pytest-rnn's own session settings.

The second half proves that no cache keeps a model alive: after an assertion
of every family, passing and failing, ``del model; gc.collect()`` frees it.
"""

from __future__ import annotations

import functools
import gc
import random
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers as L
from keras.src.backend.common import global_state
from models import (
    NAME_COUNTERS,
    Net,
    build_net,
    changed,
    cumsum_labels,
    global_state_snapshot,
    labels_from_last_step,
    numpy_value,
    pair,
    regressor,
    rnn_seq,
    seq,
    step_model,
    windows,
    windows_off_by_one,
)
from tensorflow.python.eager import context as tf_context
from tensorflow.python.framework import config as tf_config

import pytest_rnn
from pytest_rnn import _config, _keras
from pytest_rnn._errors import RNNAssertionError

B, T, F = 2, 5, 3
DEC_STEPS, DEC_F, LATENT = 4, 2, 4


# =========================================================================== the snapshot


def model_state(model: Any, *, with_states: bool = True) -> dict[str, Any]:
    """Everything of ``model`` a user owns, keyed by what it is."""
    name = f"model {model.name!r}"
    snap: dict[str, Any] = {
        f"{name} built/trainable/dtype policy": (
            model.built,
            model.trainable,
            model.dtype_policy.name,
        ),
    }
    for v in model.variables:
        snap[f"{name} variable {v.path}"] = numpy_value(v)
    for path, layer in _keras.iter_layers(model):
        snap[f"{name} layer {path} trainable/stateful"] = (
            layer.trainable,
            getattr(layer, "stateful", None),
        )
    if with_states:
        for path, layer in _keras.rnn_layers(model):
            if layer.stateful and layer.states is not None:
                for i, s in enumerate(layer.states):
                    snap[f"{name} RNN state {path}[{i}]"] = numpy_value(s)
    optimizer = getattr(model, "optimizer", None)
    snap[f"{name} compile state"] = (
        model.compiled,
        id(optimizer),
        repr(getattr(model, "loss", None)),
        id(getattr(model, "train_function", None)),
        id(getattr(model, "predict_function", None)),
    )
    for v in getattr(optimizer, "variables", None) or []:
        snap[f"{name} optimizer variable {v.path}"] = numpy_value(v)
    return snap


def snapshot(models: list[Any], *, states_by_design: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Globals plus every model's state (RNN states left out where the call sets them).

    The globals are all of :func:`global_state_snapshot` but Keras's layer-name
    counters: only the fit family keeps those; the twins and probes of the other
    families take new layer names.
    """
    snap = global_state_snapshot(without=[NAME_COUNTERS])
    for m in models:
        snap.update(model_state(m, with_states=not any(m is d for d in states_by_design)))
    return snap


# =========================================================================== models


def compiled(model: keras.Model) -> keras.Model:
    """Compile ``model`` and give its optimizer state, as training would (without tracing fit)."""
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(3)
    model.optimizer.variables[-1].assign(np.ones(model.optimizer.variables[-1].shape))
    return model


def dirty(model: keras.Model, x: np.ndarray) -> keras.Model:
    """Run a stateful model once so its states are not zeros."""
    model(x, training=False)
    return model


def fit_factory(template: keras.Model, built: list[Any] | None = None) -> Callable[[], Any]:
    """``make_model`` for the fit assertions: a fresh compiled copy of ``template``'s weights."""

    def make_model() -> keras.Model:
        model = regressor(T, F, optimizer="sgd")
        model.set_weights(template.get_weights())
        if built is not None:
            built.append(weakref.ref(model))
        return model

    return make_model


#: Seed 001's labels on this table's x (3 features): a step is up where x sums above 0.
last_step_labels = functools.partial(labels_from_last_step, threshold=F / 2)


class Zoo:
    """The small models the table shares, built on first use (once per module)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.x = rng.normal(size=(B, T, F)).astype("float32")
        self.x_fit = rng.normal(size=(8, T, F)).astype("float32")
        self.y_fit = rng.normal(size=(8, 1)).astype("float32")
        self.enc = rng.normal(size=(B, 6, F)).astype("float32")
        self.dec = rng.normal(size=(B, DEC_STEPS, DEC_F)).astype("float32")
        self.series = np.sin(np.arange(12.0))
        self.tokens = np.random.default_rng(4).integers(1, 50, size=(B, 6)).astype("int32")

    @functools.cached_property
    def causal_lm(self) -> Any:
        """A tiny KerasHub GPT-2 (random weights); its cases skip where KerasHub is missing."""
        hub = pytest.importorskip("keras_hub")
        return hub.models.GPT2CausalLM(backbone=_tiny_gpt2(hub), preprocessor=None)

    @functools.cached_property
    def stale_lm(self) -> Any:
        """The same, handing back the cache it was given: its cached decoding is wrong."""
        hub = pytest.importorskip("keras_hub")

        class Stale(hub.models.GPT2CausalLM):  # type: ignore[misc, name-defined]
            def call_with_cache(self, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
                logits, hidden, _ = super().call_with_cache(token_ids, cache, cache_update_index)
                return logits, hidden, cache

        return Stale(backbone=_tiny_gpt2(hub), preprocessor=None)

    @functools.cached_property
    def good(self) -> keras.Model:
        """Compiled, its optimizer built and stepped: it has variables and iterations."""
        return compiled(rnn_seq(name="good"))

    @functools.cached_property
    def conv(self) -> keras.Model:
        return rnn_seq(conv=True, name="conv_front")

    @functools.cached_property
    def copy(self) -> keras.Model:
        """The user's stateful streaming copy of ``good``, states not zero."""
        copy = rnn_seq(stateful=True, batch=B, name="user_copy")
        copy.set_weights(self.good.get_weights())
        return dirty(copy, self.x)

    @functools.cached_property
    def stale_copy(self) -> keras.Model:
        """A stateful copy whose weights are not ``good``'s, states not zero."""
        stale = rnn_seq(stateful=True, batch=B, name="stale_copy")
        rng = np.random.default_rng(1)  # not its own init: a seeded test could repeat good's
        stale.set_weights([w + rng.normal(size=w.shape) for w in self.good.get_weights()])
        return dirty(stale, self.x)

    def stateful(self, name: str) -> keras.Model:
        """A fresh two-layer stateful model with states that are not zeros."""
        model = seq(
            L.GRU(4, stateful=True, return_sequences=True),
            L.LSTM(3, stateful=True, return_sequences=True),
            features=F,
            batch=B,
            name=name,
        )
        return dirty(model, self.x)

    @functools.cached_property
    def streaming(self) -> keras.Model:
        return self.stateful("streaming")

    @functools.cached_property
    def s2s(self) -> Net:
        """The tutorial seq2seq net: its training model is 'train'."""
        return build_net(
            latent=LATENT, enc_features=F, dec_steps=DEC_STEPS, features=DEC_F, name="train",
            layer_names=False,
        )  # fmt: skip

    @functools.cached_property
    def ok(self) -> tuple[keras.Model, keras.Model]:
        """The tutorial pair: encoder model 'encoder', decoder step model 'step'."""
        return pair(self.s2s, names=("encoder", "step"))

    @functools.cached_property
    def broken(self) -> tuple[keras.Model, keras.Model]:
        """The pair whose step 'broken_step' hands back the states it was given (re-initialised)."""
        return self.ok[0], step_model(self.s2s, "keep_states", name="broken_step")

    @functools.cached_property
    def template(self) -> keras.Model:
        return regressor(T, F, name="template")


# =========================================================================== the table


@dataclass(frozen=True)
class Case:
    """One call: ``make(zoo) -> (models involved, the call)``; how it must end."""

    name: str  # the public name called
    label: str
    outcome: str  # "pass", "fail" (RNNAssertionError) or "error" (ValueError)
    make: Callable[[Zoo], tuple[list[Any], Callable[[], Any]]]
    match: str = ""
    states_by_design: bool = False  # the call's job is to set the first model's states

    @property
    def id(self) -> str:
        return f"{self.name}-{self.label}"


def _fit_kwargs(**more: Any) -> dict[str, Any]:
    return {"batch_size": 4, "shuffle": False, **more}


def _lr_restarts(epoch: int, lr: float) -> float:
    return 0.1 if epoch == 0 else 0.01


def _train_with(z: Zoo, *, seeded: bool) -> Callable[[], Any]:
    def train() -> Any:
        model = fit_factory(z.template)()
        rng = np.random.default_rng(0) if seeded else np.random.default_rng()
        # Noise on the targets, not a shuffle: two unseeded shuffles of 8 samples in
        # batches of 4 train alike once in 70 runs (same batches, summed gradients).
        y = z.y_fit + 0.1 * rng.standard_normal(z.y_fit.shape).astype(z.y_fit.dtype)
        model.fit(z.x_fit, y, batch_size=4, shuffle=False, verbose=0)
        return model

    return train


def _adam_factory(z: Zoo) -> Callable[[], keras.Model]:
    def make_model() -> keras.Model:
        model = regressor(T, F, optimizer="adam")
        model.set_weights(z.template.get_weights())
        return model

    return make_model


def _weights_only(z: Zoo) -> dict[str, Any]:
    """The hand-written save_weights/load_weights pair: Adam's slots are not restored.

    (With plain SGD it resumes exactly: its two variables, iteration and learning
    rate, are all an unbuilt SGD has, so Keras loads them.)
    """
    make_model = _adam_factory(z)

    def load(folder: Any) -> keras.Model:
        model = make_model()
        model.load_weights(folder / "w.weights.h5")
        return model

    return {"save": lambda m, folder: m.save_weights(folder / "w.weights.h5"), "load": load}


def _reset_call(model: keras.Model) -> tuple[list[Any], Callable[[], Any]]:
    return [model], lambda: pytest_rnn.reset_states(model)


def _tiny_gpt2(hub: Any) -> Any:
    return hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=1, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=16,
    )  # fmt: skip


def _running_sum(x: np.ndarray) -> np.ndarray:
    return np.cumsum(x, axis=1)


def _sum_step(*, carry: bool) -> Callable[..., Any]:
    """A running sum stepped chunk by chunk; ``carry=False`` starts every chunk from zero."""

    def step(chunk: np.ndarray, state: Any, start: int) -> tuple[np.ndarray, np.ndarray]:
        base = state if carry and state is not None else np.zeros_like(chunk[:, 0])
        y = base[:, None] + np.cumsum(chunk, axis=1)
        return y, y[:, -1]

    return step


def _bad_states(z: Zoo) -> dict[str, list[np.ndarray]]:
    """A states dict whose first entry fits and whose second does not: nothing may be set."""
    states = pytest_rnn.get_states(z.streaming)
    first, second = sorted(states)
    return {first: [s + 1 for s in states[first]], second: [np.zeros((B, 99))] * 2}


CASES = [
    # ---------------------------------------------------------------- seed 003
    Case(
        "assert_stateful_equals_batch", "your-stateful-copy", "pass",
        lambda z: ([z.good, z.copy], lambda: pytest_rnn.assert_stateful_equals_batch(
            z.good, z.x, stateful_model=z.copy, chunks=[2, 3]))),
    Case(
        "assert_stateful_equals_batch", "twin-conv-same", "fail",
        lambda z: ([z.conv], lambda: pytest_rnn.assert_stateful_equals_batch(z.conv, z.x)),
        match="Streamed output differs.*float64 re-run"),
    Case(
        "assert_stateful_equals_batch", "copy-without-weights", "fail",
        lambda z: ([z.good, z.stale_copy], lambda: pytest_rnn.assert_stateful_equals_batch(
            z.good, z.x, stateful_model=z.stale_copy)),
        match="weights are not model's"),
    # ---------------------------------------------------------------- seed 000
    Case(
        "assert_inference_matches_training", "tutorial-pair", "pass",
        lambda z: ([z.s2s.train, *z.ok],
                   lambda: pytest_rnn.assert_inference_matches_training(
                       z.s2s.train, z.ok, z.enc, decoder_inputs=z.dec))),
    Case(
        "assert_inference_matches_training", "states-re-initialised", "fail",
        lambda z: ([z.s2s.train, *z.broken],
                   lambda: pytest_rnn.assert_inference_matches_training(
                       z.s2s.train, z.broken, z.enc, decoder_inputs=z.dec)),
        match="does not reproduce the training model"),
    Case(
        "teacher_forcing_gap", "tutorial-pair", "pass",
        lambda z: ([z.s2s.train, *z.ok],
                   lambda: pytest_rnn.teacher_forcing_gap(z.s2s.train, z.ok, z.enc, z.dec))),
    Case(  # it does not raise: the wiring bug is in its result
        "teacher_forcing_gap", "states-re-initialised", "pass",
        lambda z: ([z.s2s.train, *z.broken],
                   lambda: pytest_rnn.teacher_forcing_gap(z.s2s.train, z.broken, z.enc, z.dec))),
    # ---------------------------------------------------------------- seed 001
    Case(
        "assert_labels_causal", "cumulative-labels", "pass",
        lambda z: ([z.good], lambda: pytest_rnn.assert_labels_causal(
            cumsum_labels, z.x, model=z.good, trials=3))),
    Case(
        "assert_labels_causal", "last-step-labels", "fail",
        lambda z: ([z.good], lambda: pytest_rnn.assert_labels_causal(
            last_step_labels, z.x, model=z.good, trials=3)),
        match="model cannot see"),
    Case(
        "assert_model_causal", "stateful-lstm", "pass",
        lambda z: ([z.copy], lambda: pytest_rnn.assert_model_causal(z.copy, z.x))),
    Case(
        "assert_model_causal", "conv-same", "fail",
        lambda z: ([z.conv], lambda: pytest_rnn.assert_model_causal(z.conv, z.x)),
        match="first layer whose output leaks: 'conv'"),
    Case(
        "assert_windows_causal", "windows", "pass",
        lambda z: ([], lambda: pytest_rnn.assert_windows_causal(
            functools.partial(windows, window=3), z.series, trials=3))),
    Case(
        "assert_windows_causal", "off-by-one", "fail",
        lambda z: ([], lambda: pytest_rnn.assert_windows_causal(
            functools.partial(windows_off_by_one, window=3), z.series, trials=3)),
        match="off-by-one"),
    Case(
        "dependence_map", "stateful-model", "pass",
        lambda z: ([z.copy], lambda: pytest_rnn.dependence_map(z.copy, z.x, trials=2))),
    Case(
        "dependence_map", "function", "pass",
        lambda z: ([], lambda: pytest_rnn.dependence_map(last_step_labels, z.x, trials=2))),
    # ---------------------------------------------------------------- seed 002
    Case(
        "assert_fit_equivalent", "plain-loop", "pass",
        lambda z: ([z.template], lambda: pytest_rnn.assert_fit_equivalent(
            fit_factory(z.template), z.x_fit, z.y_fit, fit_kwargs=_fit_kwargs()))),
    Case(
        "assert_fit_equivalent", "lr-schedule-restarts", "fail",
        lambda z: ([z.template], lambda: pytest_rnn.assert_fit_equivalent(
            fit_factory(z.template), z.x_fit, z.y_fit,
            fit_kwargs=_fit_kwargs(callbacks=[keras.callbacks.LearningRateScheduler(
                _lr_restarts)])),
        ),
        match="LearningRateScheduler"),
    Case(
        "assert_resume_equivalent", "model-save", "pass",
        lambda z: ([z.template], lambda: pytest_rnn.assert_resume_equivalent(
            fit_factory(z.template), z.x_fit, z.y_fit, fit_kwargs=_fit_kwargs()))),
    Case(
        "assert_resume_equivalent", "weights-only", "fail",
        lambda z: ([z.template], lambda: pytest_rnn.assert_resume_equivalent(
            _adam_factory(z), z.x_fit, z.y_fit, fit_kwargs=_fit_kwargs(), **_weights_only(z))),
        match="the optimizer state was not restored"),
    Case(
        "assert_stream_resumable", "your-stateful-copy", "pass",
        lambda z: ([z.good, z.copy], lambda: pytest_rnn.assert_stream_resumable(
            z.good, z.x, at=[1, 3], stateful_model=z.copy))),
    Case(
        "assert_stream_resumable", "states-not-restored", "fail",
        lambda z: ([z.good], lambda: pytest_rnn.assert_stream_resumable(
            z.good, z.x, at=2, load=lambda f: keras.models.load_model(f / "model.keras"))),
        match="states not restored"),
    Case(
        "assert_cached_decoding_matches_full", "tiny-gpt2", "pass",
        lambda z: ([z.causal_lm], lambda: pytest_rnn.assert_cached_decoding_matches_full(
            z.causal_lm, z.tokens, chunks=[3, 1, 2]))),
    Case(
        "assert_cached_decoding_matches_full", "stale-cache", "fail",
        lambda z: ([z.stale_lm], lambda: pytest_rnn.assert_cached_decoding_matches_full(
            z.stale_lm, z.tokens, chunks=[3, 1, 2])),
        match="Cached decoding differs from the full pass"),
    Case(  # the model is only looked at: the step functions are the user's numpy code
        "assert_incremental_matches_full", "running-sum", "pass",
        lambda z: ([z.good], lambda: pytest_rnn.assert_incremental_matches_full(
            _sum_step(carry=True), _running_sum, z.x, chunks=[2, 3]))),
    Case(
        "assert_incremental_matches_full", "state-not-carried", "fail",
        lambda z: ([z.good], lambda: pytest_rnn.assert_incremental_matches_full(
            _sum_step(carry=False), _running_sum, z.x, chunks=[2, 3])),
        match="Incremental output differs from the full output"),
    Case(
        "assert_training_reproducible", "seeded", "pass",
        lambda z: ([z.template], lambda: pytest_rnn.assert_training_reproducible(
            _train_with(z, seeded=True)))),
    Case(
        "assert_training_reproducible", "unseeded-generator", "fail",
        lambda z: ([z.template], lambda: pytest_rnn.assert_training_reproducible(
            _train_with(z, seeded=False))),
        match="without a seed was called at test_side_effects.py"),
    # ---------------------------------------------------------------- state helpers
    Case(
        "get_states", "stateful", "pass",
        lambda z: ([z.streaming], lambda: pytest_rnn.get_states(z.streaming))),
    Case(
        "reset_states", "stateful", "pass",
        lambda z: _reset_call(z.stateful("to_reset")),
        states_by_design=True),
    Case(
        "set_states", "round-trip", "pass",
        lambda z: ([z.streaming], lambda: pytest_rnn.set_states(
            z.streaming, pytest_rnn.get_states(z.streaming))),
        states_by_design=True),
    Case(
        "set_states", "second-entry-misshapen", "error",
        lambda z: ([z.streaming], lambda: pytest_rnn.set_states(z.streaming, _bad_states(z))),
        match="has shape"),
    Case(
        "stateful_twin", "batch-1", "pass",
        lambda z: ([z.good], lambda: pytest_rnn.stateful_twin(z.good, 1))),
]  # fmt: skip

#: Public names that touch no model, or whose job is to change one, with why.
NO_ENTRY = {
    "RNNAssertionError": "the exception the assertions raise",
    "DependenceMap": "a result object: built from numbers, holds no model",
    "TeacherForcingGap": "a result object: built from numbers, holds no model",
    "ResetStatesCallback": "resets states inside fit by design (tests/test_states.py)",
    "per_sample": "marks the user's function for the inference argument; touches no model",
}
#: Helpers that never raise RNNAssertionError: their failing call is a refused argument.
CANNOT_FAIL = {"dependence_map", "teacher_forcing_gap", "get_states", "reset_states"}
CANNOT_FAIL |= {"set_states", "stateful_twin"}


@pytest.fixture(scope="module")
def zoo() -> Zoo:
    return Zoo()


@pytest.fixture
def user_world() -> Iterator[None]:
    """Global state as a user's test might leave it: seeded, generators created, drawn from.

    Python's and numpy's global random states are put back after the test.
    """
    saved = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(7)
    keras.random.normal((1,))  # creates Keras's global seed generator
    tf.random.get_global_generator().normal((1,))
    random.random()
    np.random.rand()
    yield
    random.setstate(saved[0])
    np.random.set_state(saved[1])


def test_every_public_name_has_an_entry() -> None:
    """A new public assertion without an entry in CASES fails here."""
    named = {c.name for c in CASES}
    missing = set(pytest_rnn.__all__) - set(NO_ENTRY) - named
    assert not missing, f"public names without a side-effect entry: {sorted(missing)}"
    assert named <= set(pytest_rnn.__all__)
    for name in named:
        outcomes = {c.outcome for c in CASES if c.name == name}
        assert "pass" in outcomes, f"{name} has no passing call"
        if name not in CANNOT_FAIL:
            assert "fail" in outcomes, f"{name} has no failing call"


@pytest.mark.usefixtures("user_world")
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_call_leaves_what_the_user_owns_as_it_was(case: Case, zoo: Zoo) -> None:
    models, call = case.make(zoo)
    by_design = (models[0],) if case.states_by_design else ()
    before = snapshot(models, states_by_design=by_design)
    if case.outcome == "pass":
        call()
    else:
        kind = RNNAssertionError if case.outcome == "fail" else ValueError
        with pytest.raises(kind, match=f"(?s){case.match}"):
            call()
    after = snapshot(models, states_by_design=by_design)
    assert not changed(before, after), f"{case.id} changed: {changed(before, after)}"
    if case.name == "reset_states":  # and it did its job
        states = pytest_rnn.get_states(models[0]).values()
        assert states and not any(np.any(s) for ss in states for s in ss)


def test_snapshot_sees_every_kind_of_change(zoo: Zoo) -> None:
    """The snapshot is not blind: each thing it covers, changed, shows up under its key."""
    model = compiled(zoo.stateful("probe"))
    ctx = tf_context.context()
    changes: list[tuple[str, Callable[[], Any]]] = [
        ("variable", lambda: model.weights[0].assign(model.weights[0] * 2)),
        ("RNN state", lambda: pytest_rnn.reset_states(model)),
        ("optimizer variable", lambda: model.optimizer.iterations.assign_add(1)),
        ("trainable/stateful", lambda: setattr(model.layers[0], "trainable", False)),
        ("compile state", lambda: model.compile(optimizer="sgd", loss="mae")),
        ("python random state", random.random),
        ("numpy global random state", np.random.rand),
        ("keras floatx", lambda: keras.config.set_floatx("float64")),
        ("keras dtype policy", lambda: keras.config.set_dtype_policy("mixed_float16")),
        ("keras image data format", lambda: keras.config.set_image_data_format("channels_first")),
        ("keras global seed generator", lambda: keras.random.normal((1,))),
        ("keras global random seed", lambda: global_state.set_global_attribute(
            "global_random_seed", 99)),
        ("tensorflow TF32", lambda: tf.config.experimental.enable_tensor_float_32_execution(
            not tf.config.experimental.tensor_float_32_execution_enabled())),
        ("tensorflow op determinism", tf_config.enable_op_determinism),
        ("tensorflow op-seed stream", lambda: ctx._rng.random()),
        ("tensorflow global generator", lambda: tf.random.get_global_generator().normal((1,))),
        ("pytest-rnn settings", lambda: setattr(_config.settings, "seed", 12345)),
    ]  # fmt: skip
    saved = (
        keras.config.floatx(),
        keras.config.dtype_policy(),
        keras.config.image_data_format(),
        tf.config.experimental.tensor_float_32_execution_enabled(),
        tf_config.is_op_determinism_enabled(),
        _config.settings.seed,
        random.getstate(),
        np.random.get_state(),
    )
    keras.utils.set_random_seed(7)
    keras.random.normal((1,))
    try:
        for key, change in changes:
            before = snapshot([model])
            change()
            found = changed(before, snapshot([model]))
            assert any(key in k for k in found), (key, found)
    finally:
        keras.config.set_floatx(saved[0])
        keras.config.set_dtype_policy(saved[1])
        keras.config.set_image_data_format(saved[2])
        tf.config.experimental.enable_tensor_float_32_execution(saved[3])
        if not saved[4]:
            tf_config.disable_op_determinism()
        _config.settings.seed = saved[5]
        random.setstate(saved[6])
        np.random.set_state(saved[7])


# =========================================================================== garbage collection


def _run(call: Callable[[], Any], fails: bool) -> None:
    """Run ``call``; the RNNAssertionError it raises is dropped with its traceback's frames."""
    try:
        call()
    except RNNAssertionError:
        raised = True
    else:
        raised = False
    assert raised == fails


def _assert_freed(refs: list[weakref.ref[Any]]) -> None:
    gc.collect()
    alive = [r() for r in refs if r() is not None]
    names = [getattr(m, "name", type(m).__name__) for m in alive]
    del alive
    assert not names, f"still alive after del + gc.collect(): {names}"


def _streaming_family(x: np.ndarray) -> list[weakref.ref[Any]]:
    good, conv = rnn_seq(name="gc_good"), rnn_seq(conv=True, name="gc_conv")
    copy = rnn_seq(stateful=True, batch=B, name="gc_copy")
    copy.set_weights(good.get_weights())
    _run(lambda: pytest_rnn.assert_stateful_equals_batch(good, x, chunks=[2, 3]), fails=False)
    _run(lambda: pytest_rnn.assert_stateful_equals_batch(good, x, stateful_model=copy), fails=False)
    _run(lambda: pytest_rnn.assert_stateful_equals_batch(conv, x), fails=True)
    twin = pytest_rnn.stateful_twin(good, B)
    return [weakref.ref(m) for m in (good, conv, copy, twin)]


def _seq2seq_family(enc: np.ndarray, dec: np.ndarray) -> list[weakref.ref[Any]]:
    s = Zoo()  # a fresh zoo: its models are this function's alone
    train, ok, broken = s.s2s.train, s.ok, s.broken
    _run(
        lambda: pytest_rnn.assert_inference_matches_training(train, ok, enc, decoder_inputs=dec),
        fails=False,
    )
    _run(lambda: pytest_rnn.assert_inference_matches_training(train, broken, enc), fails=True)
    pytest_rnn.teacher_forcing_gap(train, ok, enc, dec)
    return [weakref.ref(m) for m in (train, *ok, broken[1])]


def _causal_family(x: np.ndarray) -> list[weakref.ref[Any]]:
    good, conv = rnn_seq(name="gc_causal"), rnn_seq(conv=True, name="gc_leaky")
    stateful = dirty(rnn_seq(stateful=True, batch=B, name="gc_stateful"), x)
    _run(lambda: pytest_rnn.assert_model_causal(good, x), fails=False)
    _run(lambda: pytest_rnn.assert_model_causal(stateful, x), fails=False)
    _run(lambda: pytest_rnn.assert_model_causal(conv, x), fails=True)
    _run(lambda: pytest_rnn.assert_labels_causal(last_step_labels, x, model=good, trials=2), True)
    return [weakref.ref(m) for m in (good, conv, stateful)]


def _fit_family(x: np.ndarray, y: np.ndarray) -> list[weakref.ref[Any]]:
    template = regressor(T, F, name="gc_tpl")
    built: list[weakref.ref[Any]] = []
    make_model = fit_factory(template, built)
    _run(
        lambda: pytest_rnn.assert_fit_equivalent(make_model, x, y, fit_kwargs=_fit_kwargs()),
        fails=False,
    )

    def train() -> Any:  # noisy targets from an unseeded generator
        model = make_model()
        noise = 0.1 * np.random.default_rng().standard_normal(y.shape).astype(y.dtype)
        model.fit(x, y + noise, batch_size=4, shuffle=False, verbose=0)
        return model

    _run(lambda: pytest_rnn.assert_training_reproducible(train), fails=True)
    return [weakref.ref(template), *built]


def test_no_cache_keeps_a_model_alive(zoo: Zoo) -> None:
    """Models of every family are freed after their assertions passed and failed.

    Each family runs in its own function, so its models are local names that
    are gone when it returns; the failures' exceptions are dropped in ``_run``.
    """
    refs = _streaming_family(zoo.x)
    refs += _seq2seq_family(zoo.enc, zoo.dec)
    refs += _causal_family(zoo.x)
    refs += _fit_family(zoo.x_fit, zoo.y_fit)
    assert len(refs) == 4 + 4 + 3 + 1 + 4  # the fit family built 4 models
    _assert_freed(refs)


def test_a_model_held_elsewhere_keeps_the_others_collectable(zoo: Zoo) -> None:
    """Deleting the training model frees it while its inference models live on."""
    s = Zoo()  # a fresh zoo, not the module's: its models must be collectable
    ok = s.ok
    pytest_rnn.assert_inference_matches_training(s.s2s.train, ok, zoo.enc, decoder_inputs=zoo.dec)
    train = weakref.ref(s.s2s.train)
    del s.s2s.train
    _assert_freed([train])
    assert ok[1].name == "step"  # still alive, and its cached decoder with it
