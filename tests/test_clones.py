"""The plugin's own copies of a user's model compute what the model computes.

Correct but tricky models, each checked by ``assert_stateful_equals_batch``
(the stateful twin, and the stateless copy of a stateful model) and by
``assert_model_causal`` (the stateless copy of a stateful model), passing as
they are and caught with one bug each:

- a Functional model whose inputs are a dict (or a nested list): copies keep
  the input structure;
- a ``Lambda`` layer around a Python lambda (which Keras's safe mode refuses
  to rebuild from its config): copies are built around the live function;
- an adapted ``Normalization`` (and an adapted ``IntegerLookup``): copies get
  the adapted statistics (vocabulary), the float64 re-run's copies too, so a
  logic bug in such a model is never called rounding.

And what a copy cannot carry (a custom layer's plain attribute, a layer Keras
cannot rebuild) gives a clear error or an honest "not told apart", never a
wrong verdict; neither the model nor Keras's settings change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers as L
from keras import ops
from keras.src.backend.common import global_state
from models import NAME_COUNTERS, changed, global_state_snapshot, numpy_value, seq

import pytest_rnn
from pytest_rnn import RNNAssertionError, assert_model_causal, assert_stateful_equals_batch
from pytest_rnn import _keras as K

B, T, F = 4, 6, 3

LOGIC = "-> a logic difference, not rounding"
ROUNDING = "float32 rounding, not logic"


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(B, T, F)).astype("float32")


def _safe_mode() -> Any:
    """Keras's global safe-deserialization flag (``enable_unsafe_deserialization`` sets it)."""
    return global_state.get_global_attribute("safe_mode_saving")


@pytest.fixture
def unsafe_flag_restored() -> Iterator[None]:
    """Puts Keras's safe-mode flag back after a test that sets it, as a user would."""
    saved = _safe_mode()
    try:
        yield
    finally:
        global_state.set_global_attribute("safe_mode_saving", saved)


# =========================================================================== (a) dict inputs


def dict_model(*, look: bool = False, stateful: bool = False) -> keras.Model:
    """``{"a": (steps, 3), "b": (steps, 2)}`` -> Concatenate -> LSTM(4) per step.

    ``look``: a Conv1D ``padding='same'`` on ``"a"`` reads one future step.
    """
    batch = B if stateful else None
    ia = keras.Input(batch_shape=(batch, None, F), name="a")
    ib = keras.Input(batch_shape=(batch, None, 2), name="b")
    a = L.Conv1D(F, 3, padding="same", name="look")(ia) if look else ia
    out = L.LSTM(4, return_sequences=True, stateful=stateful)(L.Concatenate()([a, ib]))
    return keras.Model({"a": ia, "b": ib}, out, name="by_key")


def dict_x(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "a": rng.normal(size=(B, T, F)).astype("float32"),
        "b": rng.normal(size=(B, T, 2)).astype("float32"),
    }


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_dict_input_model_streams_and_is_causal(rng: np.random.Generator, stateful: bool) -> None:
    model, x = dict_model(stateful=stateful), dict_x(rng)
    assert_stateful_equals_batch(model, x, chunks=[2, 1, 3])
    assert_model_causal(model, x)


def test_copies_keep_the_input_structure(rng: np.random.Generator) -> None:
    twin = pytest_rnn.stateful_twin(dict_model(), batch_size=B)
    assert isinstance(twin.input, dict) and sorted(twin.input) == ["a", "b"]
    assert [tuple(twin.input[k].shape) for k in ("a", "b")] == [(B, None, F), (B, None, 2)]

    ia, ib, ic = (keras.Input((None, n)) for n in (F, 2, 1))
    out = L.GRU(3, return_sequences=True)(L.Concatenate()([ia, ib, ic]))
    nested = keras.Model([ia, [ib, ic]], out, name="nested_inputs")
    twin = pytest_rnn.stateful_twin(nested, batch_size=B)
    assert isinstance(twin.input, list) and isinstance(twin.input[1], list)
    assert len(twin.input[1]) == 2
    x = [rng.normal(size=(B, T, n)).astype("float32") for n in (F, 2, 1)]
    assert_stateful_equals_batch(nested, [x[0], [x[1], x[2]]], chunks=2)


def test_dict_input_model_that_reads_the_future_is_caught(rng: np.random.Generator) -> None:
    model, x = dict_model(look=True), dict_x(rng)
    with pytest.raises(AssertionError, match=r"first layer that differs: 'look' \(Conv1D") as info:
        assert_stateful_equals_batch(model, x)
    assert LOGIC in str(info.value)  # the float64 copies keep the dict inputs too
    with pytest.raises(AssertionError, match="first layer whose output leaks: 'look'"):
        assert_model_causal(model, x)


def test_stateful_dict_input_model_that_reads_the_future_is_caught(
    rng: np.random.Generator,
) -> None:
    with pytest.raises(AssertionError, match="first layer whose output leaks: 'look'"):
        assert_model_causal(dict_model(look=True, stateful=True), dict_x(rng))


# =========================================================================== (b) Lambda layers


def _twice(t: Any) -> Any:
    return t * 2.0 + 1.0


def lambdas() -> dict[str, Callable[[Any], Any]]:
    """Per-step functions as users write them: a lambda, one with a closure, a local def."""
    scale = 3.0

    def local(t: Any) -> Any:
        return ops.tanh(t) * scale

    return {
        "lambda": lambda t: t * 2.0,
        "closure": lambda t: t * scale - 1.0,
        "local def": local,
        "module def": _twice,
    }


@pytest.mark.parametrize("kind", list(lambdas()))
def test_lambda_model_streams_and_is_causal(x: np.ndarray, kind: str) -> None:
    model = seq(L.Lambda(lambdas()[kind], name="fn"), L.LSTM(4, return_sequences=True))
    assert_stateful_equals_batch(model, x, chunks=[1, 3, 2])
    assert_model_causal(model, x)


def test_stateful_lambda_model_is_checked(x: np.ndarray) -> None:
    model = seq(
        L.Lambda(lambda t: t * 2.0, name="fn"),
        L.GRU(4, return_sequences=True, stateful=True),
        batch=B,
    )
    assert_stateful_equals_batch(model, x, chunks=2)  # a stateless copy is the reference
    assert_model_causal(model, x)


def test_lambda_inside_a_wrapper_is_copied(x: np.ndarray) -> None:
    model = seq(L.TimeDistributed(L.Lambda(lambda t: t * 2.0)), L.LSTM(4, return_sequences=True))
    assert_stateful_equals_batch(model, x, chunks=3)


def test_lambda_that_reads_the_future_is_caught(x: np.ndarray) -> None:
    centre = L.Lambda(lambda t: t - ops.mean(t, axis=1, keepdims=True), name="centre")
    model = seq(centre, L.LSTM(4, return_sequences=True))
    with pytest.raises(
        AssertionError, match=r"first layer that differs: 'centre' \(Lambda\)"
    ) as info:
        assert_stateful_equals_batch(model, x)
    assert LOGIC in str(info.value)
    with pytest.raises(
        AssertionError, match="first layer whose output leaks: 'centre' \\(Lambda\\)"
    ):
        assert_model_causal(model, x)


class Table:
    """A plain object a layer is built around: Keras cannot serialize it into a config."""

    def __init__(self, k: float) -> None:
        self.k = k


class Scale(L.Layer):
    """Multiplies by ``table.k``: its config cannot hold ``table``, so Keras cannot rebuild it."""

    def __init__(self, table: Table, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table

    def call(self, inputs: Any) -> Any:
        return inputs * self.table.k


def test_a_layer_keras_cannot_rebuild_is_named_with_what_to_pass(x: np.ndarray) -> None:
    model = seq(Scale(Table(2.0), name="scale"), L.LSTM(4, return_sequences=True))
    pattern = (
        r"pytest-rnn cannot build a stateful copy of model 'm': Keras cannot rebuild its layer "
        r"'scale' \(Scale\) from its config \(NotImplementedError: .*\)\. Pass your own stateful "
        r"copy \(same weights\) as stateful_model=\.\.\. instead\."
    )
    with pytest.raises(TypeError, match=pattern):
        assert_stateful_equals_batch(model, x)
    # What the message says to do works.
    own = seq(
        Scale(Table(2.0), name="scale"),
        L.LSTM(4, return_sequences=True, stateful=True),
        batch=B,
        name="own",
    )
    own.set_weights(model.get_weights())
    assert_stateful_equals_batch(model, x, stateful_model=own, chunks=2)

    stateful = seq(
        Scale(Table(2.0), name="scale"), L.LSTM(4, return_sequences=True, stateful=True), batch=B
    )
    with pytest.raises(
        TypeError, match=r"stateless copy of model 'm': .*'scale' \(Scale\).* as model instead"
    ):
        assert_model_causal(stateful, x)


# =========================================================================== (c) adapted layers


def adapted_norm(rng: np.random.Generator) -> L.Normalization:
    """A Normalization adapted to data far from mean 0, variance 1 (where a lost adapt shows)."""
    norm = L.Normalization(name="norm")
    norm.adapt((rng.normal(size=(32, T, F)) * 2.0 + 3.0).astype("float32"))
    return norm


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_adapted_normalization_model_streams_and_is_causal(
    rng: np.random.Generator, x: np.ndarray, stateful: bool
) -> None:
    model = seq(
        adapted_norm(rng),
        L.LSTM(4, return_sequences=True, stateful=stateful),
        batch=B if stateful else None,
    )
    assert_stateful_equals_batch(model, x, chunks=[2, 4])
    assert_model_causal(model, x)


def test_copies_normalise_with_the_adapted_statistics(
    rng: np.random.Generator, x: np.ndarray
) -> None:
    model = seq(adapted_norm(rng), L.LSTM(4, return_sequences=True))
    twin = pytest_rnn.stateful_twin(model, batch_size=B)
    np.testing.assert_allclose(K.eager_call(twin, x), K.eager_call(model, x), rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow_only("JAX computes float64 as float32 unless jax_enable_x64 is set")
def test_the_float64_copy_normalises_with_the_adapted_statistics(
    rng: np.random.Generator, x: np.ndarray
) -> None:
    model = seq(adapted_norm(rng), L.LSTM(4, return_sequences=True))
    want = K.eager_call(model, x)
    wide = K.clone(model, batch_size=None, stateful=False, dtype="float64")
    assert wide.layers[0].mean.dtype == "float64"
    got = K.eager_call(wide, x.astype("float64"))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_normalization_model_with_a_logic_bug_is_not_called_rounding(
    rng: np.random.Generator, x: np.ndarray
) -> None:
    model = seq(
        adapted_norm(rng),
        L.Conv1D(4, 3, padding="same", name="look"),
        L.LSTM(4, return_sequences=True),
    )
    with pytest.raises(AssertionError, match="first layer that differs: 'look'") as info:
        assert_stateful_equals_batch(model, x)
    message = str(info.value)
    assert LOGIC in message and ROUNDING not in message
    with pytest.raises(AssertionError, match="first layer whose output leaks: 'look'"):
        assert_model_causal(model, x)


def test_readapted_normalization_gets_new_copies(rng: np.random.Generator, x: np.ndarray) -> None:
    model = seq(adapted_norm(rng), L.LSTM(4, return_sequences=True))
    first = K.cached_clone(model, "stateful", B)
    assert K.cached_clone(model, "stateful", B) is first  # nothing changed: the same copy
    model.layers[0].adapt((rng.normal(size=(32, T, F)) * 5.0 - 4.0).astype("float32"))
    again = K.cached_clone(model, "stateful", B)
    assert again is not first  # its compiled callers hold the old statistics
    pytest_rnn.reset_states(again)
    np.testing.assert_allclose(K.eager_call(again, x), K.eager_call(model, x), rtol=1e-5, atol=1e-6)


def test_a_check_after_a_new_adapt_traces_the_new_statistics(
    rng: np.random.Generator, x: np.ndarray
) -> None:
    # The compiled full pass of the model itself holds the statistics it was traced with.
    model = seq(adapted_norm(rng), L.LSTM(4, return_sequences=True))
    assert_stateful_equals_batch(model, x, chunks=2)
    model.layers[0].adapt((rng.normal(size=(32, T, F)) * 5.0 - 4.0).astype("float32"))
    assert_stateful_equals_batch(model, x, chunks=2)


@pytest.mark.tensorflow_only("Keras's lookup layers cannot run inside jax.jit (tf.lookup tables)")
def test_adapted_lookup_model_streams_and_is_causal(rng: np.random.Generator) -> None:
    lookup = L.IntegerLookup(name="ids")
    lookup.adapt(np.array([3, 7, 11, 13, 17, 19, 19, 3]))
    ids = keras.Input((None,), dtype="int64")
    model = keras.Sequential([ids, lookup, L.Embedding(8, 3), L.GRU(4, return_sequences=True)])
    x = rng.choice([3, 7, 11, 13, 17, 19, 23], size=(B, T)).astype("int64")
    assert_stateful_equals_batch(model, x, chunks=[3, 3])
    assert_model_causal(model, x)
    twin = pytest_rnn.stateful_twin(model, batch_size=B)
    assert twin.layers[0].get_vocabulary() == lookup.get_vocabulary()


# =========================================================================== (d) the float64 verdict


class Shift(L.Layer):
    """Adds ``offset``, a plain attribute set after construction: no weight, no config.

    No copy can know it, so the plugin's twin and both float64 copies add 0:
    the float64 copies agree with each other but not with the model.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offset = 0.0

    def call(self, inputs: Any) -> Any:
        return inputs + self.offset


def test_a_float64_copy_that_computes_otherwise_is_not_called_rounding(x: np.ndarray) -> None:
    shift = Shift(name="shift")
    shift.offset = 5.0
    model = seq(shift, L.LSTM(4, return_sequences=True))
    with pytest.raises(AssertionError) as info:
        assert_stateful_equals_batch(model, x)
    message = str(info.value)
    assert ROUNDING not in message and LOGIC not in message
    assert (
        "float64 re-run: not possible (the float64 copy of the full-sequence model differs "
        "from that model by up to " in message
    )
    assert (
        "far beyond rounding: a layer's state that is not a weight may not have been copied"
        in message
    )
    assert message.endswith("rounding and logic are not told apart")


# =========================================================================== side effects


def _model_state(model: keras.Model) -> dict[str, Any]:
    snap: dict[str, Any] = {f"variable {v.path}": numpy_value(v) for v in model.variables}
    for path, layer in K.iter_layers(model):
        if isinstance(layer, L.Normalization):
            snap[f"{path} mean/variance"] = (numpy_value(layer.mean), numpy_value(layer.variance))
        if isinstance(layer, L.Lambda):
            snap[f"{path} function"] = id(layer.function)
    structure = model.inputs if isinstance(model, keras.Sequential) else model.input
    snap["input structure"] = repr(keras.tree.map_structure(lambda t: t.name, structure))
    return snap


def _cases(rng: np.random.Generator) -> list[tuple[keras.Model, Any]]:
    """Passing and failing models of each kind, stateless and stateful, with their inputs."""
    x = rng.normal(size=(B, T, F)).astype("float32")
    centre = L.Lambda(lambda t: t - ops.mean(t, axis=1, keepdims=True))
    return [
        (dict_model(), dict_x(rng)),
        (dict_model(look=True, stateful=True), dict_x(rng)),
        (seq(L.Lambda(lambda t: t * 2.0), L.LSTM(4, return_sequences=True)), x),
        (seq(centre, L.LSTM(4, return_sequences=True, stateful=True), batch=B), x),
        (seq(adapted_norm(rng), L.LSTM(4, return_sequences=True)), x),
        (
            seq(
                adapted_norm(rng), L.Conv1D(4, 3, padding="same"), L.LSTM(4, return_sequences=True)
            ),
            x,
        ),
    ]


@pytest.mark.parametrize("unsafe", [False, True], ids=["default", "user enabled unsafe"])
def test_checks_leave_the_model_and_keras_settings_alone(
    rng: np.random.Generator, unsafe: bool, unsafe_flag_restored: None
) -> None:
    if unsafe:
        keras.config.enable_unsafe_deserialization()
    for model, x in _cases(rng):
        before = _model_state(model)
        flag = _safe_mode()
        globals_before = global_state_snapshot(without=[NAME_COUNTERS])
        for check in (assert_stateful_equals_batch, assert_model_causal):
            with contextlib.suppress(RNNAssertionError):
                check(model, x)
        assert _safe_mode() is flag
        assert changed(globals_before, global_state_snapshot(without=[NAME_COUNTERS])) == []
        assert changed(before, _model_state(model)) == []


@pytest.mark.backends
def test_a_copy_starts_from_zeros_and_ends_with_the_models_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Keras's layers are copied without their random initializers (JAX: 0.9 s of a first check).

    Every weight is assigned from the model right after, so none is read. Not on
    torch, where a variable keeps the memory layout its initializer gave it and a
    matmul rounds by layout: there the copy runs the model's initializers.
    """
    model = seq(L.LSTM(8, return_sequences=True), L.GRU(4), L.Dense(2))
    drawn = _initializers_drawn(monkeypatch)
    copy = K.clone(model, batch_size=None, stateful=False)
    _check_started_from_zeros(drawn)
    for a, b in zip(model.weights, copy.weights):
        np.testing.assert_array_equal(numpy_value(a), numpy_value(b))
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_array_equal(K.eager_call(model, x), K.eager_call(copy, x))


def _check_started_from_zeros(drawn: list[str]) -> None:
    """No random initializer ran for a copy, except on torch, where the model's own run (see above)."""
    if K.backend_name() == "torch":
        assert "Orthogonal" in drawn
    else:
        assert drawn == []


def _initializers_drawn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the random initializers called from now on (the list fills as they are)."""
    drawn: list[str] = []
    for cls in (keras.initializers.Orthogonal, keras.initializers.GlorotUniform):
        original = cls.__call__

        def counted(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            drawn.append(type(self).__name__)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__call__", counted)
    return drawn


@pytest.mark.parametrize(
    "front", [[], [L.Conv1D(4, 3, padding="same")]], ids=["every-step", "lookahead"]
)
def test_an_every_step_copy_starts_from_zeros_too(
    monkeypatch: pytest.MonkeyPatch, front: list[Any]
) -> None:
    """The every-step reference's copies too (JAX: 4.5 of a first check's 7.5 s, on a slow CPU)."""
    model = seq(*front, L.LSTM(8), L.Dense(2))
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    want = np.stack([K.eager_call(model, x[:, :t]) for t in range(1, 6)], axis=1)
    drawn = _initializers_drawn(monkeypatch)
    copy = K.every_step_copy(model)
    assert copy is not None
    _check_started_from_zeros(drawn)
    np.testing.assert_allclose(K.eager_call(copy, x), want, rtol=1e-6, atol=1e-6)
