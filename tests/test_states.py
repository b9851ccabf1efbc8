"""Tests of the state helpers: reset_states, get_states, set_states, stateful_twin, ResetStatesCallback.

Keras 3 removed ``Model.reset_states``; these helpers replace it and must reach
every stateful RNN layer, wherever it sits: at the top level, inside a
Bidirectional or TimeDistributed wrapper, inside a nested Sequential inside a
Functional model.
"""

from __future__ import annotations

import random
from typing import Any

import keras
import numpy as np
import pytest
from models import nested_stateful

import pytest_rnn
from pytest_rnn import get_states, reset_states, set_states, stateful_twin

B, T, F = 2, 5, 3


# nested_stateful() is built at B, T, F (its defaults); these are its stateful layers.
STATEFUL_PATHS = {
    "inner/inner_lstm",
    "deep/mid/deep_gru",
    "bi/forward_gru",
    "bi/backward_gru",
    "top_gru",
    "td/td_lstm",
}


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(B, T, F)).astype("float32")


@pytest.fixture
def model(x: np.ndarray) -> keras.Model:
    m = nested_stateful()
    m(x)  # create and move every state
    return m


def _all_zero(states: dict[str, list[np.ndarray]]) -> bool:
    return all(not np.any(a) for arrays in states.values() for a in arrays)


def _assert_states_equal(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert len(a[key]) == len(b[key]), key
        for u, v in zip(a[key], b[key]):
            np.testing.assert_array_equal(u, v, err_msg=key)


# --------------------------------------------------------------------------- get / reset


@pytest.mark.backends
def test_get_states_finds_every_stateful_layer_and_only_those(model: keras.Model) -> None:
    states = get_states(model)
    assert set(states) == STATEFUL_PATHS
    assert [a.shape for a in states["inner/inner_lstm"]] == [(B, 4), (B, 4)]  # h and c
    assert [a.shape for a in states["bi/backward_gru"]] == [(B, 3)]
    assert all(isinstance(a, np.ndarray) for arrays in states.values() for a in arrays)
    # A call moved every state away from zero: the reset test below is meaningful.
    assert all(np.any(a) for arrays in states.values() for a in arrays)


def test_get_states_returns_copies(model: keras.Model, x: np.ndarray) -> None:
    before = get_states(model)
    kept = {k: [a.copy() for a in v] for k, v in before.items()}
    model(x)
    _assert_states_equal(before, kept)  # the model moved on; the saved arrays did not


def test_reset_states_zeroes_every_stateful_layer_nested_ones_too(model: keras.Model) -> None:
    assert not _all_zero(get_states(model))
    reset_states(model)
    states = get_states(model)
    assert set(states) == STATEFUL_PATHS
    assert _all_zero(states)


@pytest.mark.backends
def test_reset_states_makes_the_next_call_repeat_the_first(x: np.ndarray) -> None:
    m = nested_stateful()
    first = keras.ops.convert_to_numpy(m(x))
    second = keras.ops.convert_to_numpy(m(x))
    assert not np.allclose(first, second)  # states carried over
    reset_states(m)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(m(x)), first)


def test_a_model_never_called_starts_from_zero_states() -> None:
    states = get_states(nested_stateful())  # a static batch shape builds the states at once
    assert set(states) == STATEFUL_PATHS
    assert _all_zero(states)


def test_unbuilt_stateful_layers_are_left_out() -> None:
    m = keras.Sequential([keras.layers.LSTM(4, stateful=True, name="lstm")])  # no Input: unbuilt
    reset_states(m)  # harmless
    assert get_states(m) == {}
    with pytest.raises(ValueError, match=r"\['lstm'\]; known: \[\]"):
        set_states(m, {"lstm": [np.zeros((B, 4))] * 2})


def test_stateless_model_has_no_states(x: np.ndarray) -> None:
    m = keras.Sequential([keras.Input((T, F)), keras.layers.LSTM(4)])
    m(x)
    assert get_states(m) == {}
    reset_states(m)  # nothing to do, no error


@pytest.mark.parametrize("fn", [reset_states, get_states])
def test_helpers_reject_a_non_model(fn: Any) -> None:
    with pytest.raises(TypeError, match="model must be a Keras model"):
        fn(keras.layers.LSTM(4, stateful=True))


# --------------------------------------------------------------------------- set


@pytest.mark.backends
def test_round_trip_get_set_get(model: keras.Model, x: np.ndarray) -> None:
    saved = get_states(model)
    expected_next = keras.ops.convert_to_numpy(
        model(x)
    )  # what the model does from the saved states
    assert not _states_close(get_states(model), saved)
    set_states(model, saved)
    _assert_states_equal(get_states(model), saved)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), expected_next)


def test_round_trip_after_reset(model: keras.Model) -> None:
    saved = get_states(model)
    reset_states(model)
    set_states(model, saved)
    _assert_states_equal(get_states(model), saved)


def test_set_states_casts_and_accepts_a_subset(model: keras.Model) -> None:
    before = get_states(model)
    new = [np.full((B, 4), 0.5, dtype=np.float64), np.full((B, 4), -0.25, dtype=np.float64)]
    set_states(model, {"inner/inner_lstm": new})
    after = get_states(model)
    assert after["inner/inner_lstm"][0].dtype == np.float32
    np.testing.assert_array_equal(after["inner/inner_lstm"][1], np.full((B, 4), -0.25))
    for key in STATEFUL_PATHS - {"inner/inner_lstm"}:  # the others are untouched
        _assert_states_equal({key: after[key]}, {key: before[key]})


def test_states_move_between_twins(x: np.ndarray) -> None:
    """get_states of one model sets another of the same architecture (paths match)."""
    a = nested_stateful()
    b = keras.models.clone_model(a)
    a(x)
    b(x)
    set_states(b, get_states(a))
    _assert_states_equal(get_states(b), get_states(a))


def _states_close(a: dict[str, list[np.ndarray]], b: dict[str, list[np.ndarray]]) -> bool:
    return all(np.allclose(u, v) for k in a for u, v in zip(a[k], b[k]))


@pytest.mark.parametrize(
    ("states", "error", "match"),
    [
        ([np.zeros((B, 4))], TypeError, "states must be a dict"),
        (
            {"no_such_layer": [np.zeros((B, 4))]},
            ValueError,
            r"not stateful RNN layers.*no_such_layer",
        ),
        ({"plain_lstm": [np.zeros((B, 4))] * 2}, ValueError, "plain_lstm"),
        (
            {"top_gru": [np.zeros((B, 4))] * 2},
            ValueError,
            r"states\['top_gru'\] has 2 arrays, the layer has 1",
        ),
        (
            {"top_gru": [np.zeros((B + 1, 4))]},
            ValueError,
            r"states\['top_gru'\] has shape \(3, 4\)",
        ),
        ({"inner/inner_lstm": [np.zeros((B, 4))]}, ValueError, "has 1 arrays, the layer has 2"),
    ],
    ids=[
        "not-a-dict",
        "unknown-path",
        "stateless-layer",
        "too-many-arrays",
        "bad-shape",
        "too-few-arrays",
    ],
)
def test_set_states_bad_input(
    model: keras.Model, states: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        set_states(model, states)


def test_set_states_rejects_a_non_model() -> None:
    with pytest.raises(TypeError, match="model must be a Keras model"):
        set_states("model", {})


def test_set_states_on_a_fresh_model_of_the_same_build(x: np.ndarray) -> None:
    source = nested_stateful()
    source(x)
    fresh = nested_stateful()
    set_states(fresh, get_states(source))
    _assert_states_equal(get_states(fresh), get_states(source))


@pytest.mark.backends
def test_set_states_changes_nothing_when_it_raises(model: keras.Model) -> None:
    before = get_states(model)
    bad = {
        "top_gru": [np.full((B, 4), 7.0)],  # valid, listed first
        "inner/inner_lstm": [np.zeros((B + 1, 4))] * 2,  # invalid
    }
    with pytest.raises(ValueError):
        set_states(model, bad)
    _assert_states_equal(get_states(model), before)


class _Block(keras.layers.Layer):
    """A custom layer holding a stateful RNN as an attribute (a common way to write a block)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rnn = keras.layers.GRU(4, stateful=True, return_sequences=True, name="inner_gru")
        self.proj = keras.layers.Dense(2)

    def build(self, input_shape: Any) -> None:
        self.rnn.build(input_shape)
        self.proj.build((*input_shape[:-1], 4))

    def call(self, x: Any) -> Any:
        return self.proj(self.rnn(x))


def test_a_stateful_rnn_inside_a_custom_layer_is_reset(x: np.ndarray) -> None:
    inp = keras.Input(batch_shape=(B, None, F))
    model = keras.Model(inp, _Block(name="block")(inp))
    model(x)
    assert model.layers[1].rnn.states is not None
    assert np.any(np.asarray(model.layers[1].rnn.states[0]))  # the call moved the state
    reset_states(model)
    assert not np.any(np.asarray(model.layers[1].rnn.states[0]))
    assert set(get_states(model)) == {"block/inner_gru"}


# --------------------------------------------------------------------------- stateful_twin


def _stack(units: int = 4) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((None, F)),
            keras.layers.LSTM(units, return_sequences=True),
            keras.layers.GRU(units, return_sequences=True),
            keras.layers.Dense(2),
        ],
        name="stack",
    )


def _nested_stateless() -> keras.Model:
    inner = keras.Sequential(
        [keras.Input((None, F)), keras.layers.GRU(4, return_sequences=True, name="g")], name="inner"
    )
    inp = keras.Input((None, F))
    h = inner(inp)
    h = keras.layers.TimeDistributed(keras.layers.Dense(3), name="td")(h)
    out = keras.layers.LSTM(4, return_sequences=True, name="l")(h)
    return keras.Model(inp, out, name="outer")


@pytest.mark.parametrize("build", [_stack, _nested_stateless], ids=["sequential", "nested"])
@pytest.mark.parametrize("chunks", [[1, 1, 1, 1, 1], [2, 3], [3, 1, 1]], ids=str)
@pytest.mark.backends
def test_twin_streamed_chunk_by_chunk_equals_the_full_pass(
    build: Any, chunks: list[int], x: np.ndarray
) -> None:
    model = build()
    full = keras.ops.convert_to_numpy(model(x))
    twin = stateful_twin(model, batch_size=B)
    reset_states(twin)
    parts, start = [], 0
    for n in chunks:
        parts.append(keras.ops.convert_to_numpy(twin(x[:, start : start + n])))
        start += n
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=1e-5, atol=1e-6)


@pytest.mark.backends
def test_twin_is_stateful_everywhere_with_the_batch_size(x: np.ndarray) -> None:
    model = _nested_stateless()
    twin = stateful_twin(model, batch_size=1)
    layers = dict(pytest_rnn._keras.rnn_layers(twin))
    assert set(layers) == {"inner/g", "l"}
    assert all(layer.stateful for layer in layers.values())
    assert all(i.shape[0] == 1 for i in twin.inputs)
    # One sample, one step at a time, equals the full pass on that sample.
    full = keras.ops.convert_to_numpy(model(x[:1]))
    steps = [keras.ops.convert_to_numpy(twin(x[:1, t : t + 1])) for t in range(T)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-5, atol=1e-6)


@pytest.mark.backends
def test_twin_leaves_the_original_untouched(x: np.ndarray) -> None:
    model = _nested_stateless()
    weights = [w.copy() for w in model.get_weights()]
    out = keras.ops.convert_to_numpy(model(x))
    py_state, np_state = random.getstate(), np.random.get_state()
    twin = stateful_twin(model, batch_size=B)
    twin(x)  # move the twin's states
    assert random.getstate() == py_state
    assert all(
        np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_state) if a is not None
    )
    assert twin is not model
    assert not any(layer.stateful for _, layer in pytest_rnn._keras.rnn_layers(model))
    assert all(i.shape[0] is None for i in model.inputs)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), out)
    # The twin has its own variables: changing them leaves the model alone.
    for w in twin.weights:
        w.assign(np.zeros(w.shape, dtype=w.dtype))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), out)


def test_twin_of_a_stateful_model_does_not_touch_its_states(model: keras.Model) -> None:
    before = get_states(model)
    stateful_twin(model, batch_size=B)
    _assert_states_equal(get_states(model), before)


@pytest.mark.parametrize(
    ("batch_size", "error", "match"),
    [(0, ValueError, "batch_size must be >= 1"), (1.0, TypeError, "batch_size must be an int"),
     (True, TypeError, "batch_size must be an int"), ("2", TypeError, "batch_size")],
)  # fmt: skip
def test_twin_bad_batch_size(batch_size: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        stateful_twin(_stack(), batch_size=batch_size)


def test_twin_rejects_a_non_model() -> None:
    with pytest.raises(TypeError, match="model must be a Keras model"):
        stateful_twin(object(), batch_size=1)


# --------------------------------------------------------------------------- ResetStatesCallback


class _Recorder(keras.callbacks.Callback):
    """Records the states every epoch starts from (after callbacks listed before it)."""

    def __init__(self) -> None:
        super().__init__()
        self.at_epoch_begin: list[dict[str, list[np.ndarray]]] = []

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.at_epoch_begin.append(get_states(self.model))


def _stateful_regressor() -> keras.Model:
    inner = keras.Sequential(
        [
            keras.Input(batch_shape=(4, None, F)),
            keras.layers.LSTM(4, stateful=True, return_sequences=True, name="lstm"),
        ],
        name="inner",
    )
    inp = keras.Input(batch_shape=(4, T, F))
    out = keras.layers.Dense(1)(keras.layers.GRU(4, stateful=True, name="gru")(inner(inp)))
    model = keras.Model(inp, out)
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.fixture(scope="module")
def train_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(16, T, F)).astype("float32"), rng.normal(size=(16, 1)).astype("float32")


@pytest.mark.backends
@pytest.mark.fit_carries_states
def test_reset_callback_resets_at_every_epoch_start(
    train_data: tuple[np.ndarray, np.ndarray],
) -> None:
    model = _stateful_regressor()
    recorder = _Recorder()
    model.fit(
        *train_data, epochs=3, batch_size=4, shuffle=False, verbose=0,
        callbacks=[pytest_rnn.ResetStatesCallback(), recorder],
    )  # fmt: skip
    assert len(recorder.at_epoch_begin) == 3
    for states in recorder.at_epoch_begin[1:]:  # epoch 0 starts unbuilt or at zero anyway
        assert set(states) == {"inner/lstm", "gru"}
        assert _all_zero(states)
    assert not _all_zero(get_states(model))  # training moved them again


@pytest.mark.backends
@pytest.mark.fit_carries_states
def test_without_the_callback_states_carry_into_the_next_epoch(
    train_data: tuple[np.ndarray, np.ndarray],
) -> None:
    model = _stateful_regressor()
    recorder = _Recorder()
    model.fit(*train_data, epochs=2, batch_size=4, shuffle=False, verbose=0, callbacks=[recorder])
    assert not _all_zero(recorder.at_epoch_begin[1])


def test_reset_callback_is_a_keras_callback_from_the_package() -> None:
    cls = pytest_rnn.ResetStatesCallback
    assert issubclass(cls, keras.callbacks.Callback)
    assert cls is pytest_rnn._keras.ResetStatesCallback  # built once, cached


# --------------------------------------------------------------------------- stacked cells


def stacked_cells(kind: str, *, stateful: bool) -> keras.Model:
    """``RNN([Cell(5), Cell(3)])``: one RNN layer whose states are a list per cell."""
    cell = {"lstm": keras.layers.LSTMCell, "gru": keras.layers.GRUCell,
            "simple": keras.layers.SimpleRNNCell}[kind]  # fmt: skip
    inputs = keras.Input(batch_shape=(B, None, F)) if stateful else keras.Input((None, F))
    rnn = keras.layers.RNN([cell(5), cell(3)], stateful=stateful, return_sequences=True)
    return keras.Model(inputs, keras.layers.Dense(2)(rnn(inputs)), name=f"stacked_{kind}")


@pytest.mark.parametrize(
    "kind", [pytest.param("lstm", marks=pytest.mark.backends), "gru", "simple"]
)
def test_stacked_cells_reset_get_and_set(kind: str, x: np.ndarray) -> None:
    # Keras 3.15's own RNN.reset_state raises AttributeError ('ListWrapper' object
    # has no attribute 'assign') on stacked cells; the helpers assign each state.
    model = stacked_cells(kind, stateful=True)
    model(x)
    states = get_states(model)
    (path,) = states
    n = {"lstm": 4, "gru": 2, "simple": 2}[kind]  # two cells, each with its states
    assert len(states[path]) == n and any(np.any(s) for s in states[path])
    reset_states(model)
    assert not any(np.any(s) for s in get_states(model)[path])
    set_states(model, states)
    for got, want in zip(get_states(model)[path], states[path]):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kind", [pytest.param("lstm", marks=pytest.mark.backends), "gru"])
def test_stacked_cells_stream_like_the_batch_model(kind: str, x: np.ndarray) -> None:
    pytest_rnn.assert_stateful_equals_batch(
        stacked_cells(kind, stateful=False), x, chunks=[2, 1, 2]
    )


def test_a_stacked_cells_copy_without_weights_is_caught(x: np.ndarray) -> None:
    model = stacked_cells("lstm", stateful=False)
    copy = stacked_cells("lstm", stateful=True)  # same architecture, its own weights
    with pytest.raises(pytest_rnn.RNNAssertionError, match="Streamed output differs"):
        pytest_rnn.assert_stateful_equals_batch(model, x, stateful_model=copy)
