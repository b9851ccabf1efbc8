"""Causality assertions on real functions and small Keras models: the bug caught, the fix passing."""

from __future__ import annotations

import random
import re
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers
from models import (
    RANDOM_STATE,
    changed,
    cumsum_labels,
    global_state_snapshot,
    labels_from_last_step,
    labels_per_step,
    seq,
    time_distributed,
    windows,
    windows_off_by_one,
)

from pytest_rnn import RNNAssertionError
from pytest_rnn._causal import (
    DependenceMap,
    assert_labels_causal,
    assert_model_causal,
    assert_windows_causal,
    dependence_map,
)
from pytest_rnn._causal import model as C
from pytest_rnn._causal import windows as W
from pytest_rnn._core.compare import Tolerance
from pytest_rnn._core.validate import Batch

FEATURES = 20  # small seed 001: 0/1 features, label "sum > 10"


# --------------------------------------------------------------------------- data and models


def binary_x(samples: int = 32, steps: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 2, size=(samples, steps, FEATURES)).astype("float32") - 0.5


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(4, 8, 3)).astype("float32")


# --------------------------------------------------------------------------- labels


@pytest.mark.backends
def test_seed001_labels_fail_without_model() -> None:
    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(labels_from_last_step, binary_x())
    msg = str(info.value)
    assert "label at step 0 depends on input step 1 (" in msg
    assert re.search(r"\((3[0-2])/32 samples, 8 trials\)", msg)
    assert "horizon=0" in msg
    assert "set from one step" in msg  # the pattern is named
    assert "label \\ input" in msg  # the grid, for a short sequence
    assert "label at step 1 depends" not in msg  # step 1 using step 1 is fine


@pytest.mark.backends
def test_seed001_labels_fail_with_its_time_distributed_model() -> None:
    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(labels_from_last_step, binary_x(), model=time_distributed())
    msg = str(info.value)
    assert "label at step 0 depends on input step 1" in msg
    assert "the model's output at step 0 depends only on step 0" in msg
    assert "'td'" in msg


@pytest.mark.backends
def test_per_step_labels_pass_with_and_without_the_model() -> None:
    assert_labels_causal(labels_per_step, binary_x())
    assert_labels_causal(labels_per_step, binary_x(steps=3), model=time_distributed())


@pytest.mark.backends
def test_cumsum_labels_fail_with_time_distributed_pass_with_lstm(x: np.ndarray) -> None:
    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(cumsum_labels, x, model=time_distributed(3))
    msg = str(info.value)
    assert "label at step 3 depends on input steps 0-2 (4/4 samples, 8 trials)" in msg
    assert "the model's output at step 3 depends only on step 3" in msg
    assert "earlier steps the model cannot see" in msg
    assert_labels_causal(cumsum_labels, x, model=seq(layers.LSTM(4, return_sequences=True)))


@pytest.mark.backends
def test_long_memory_is_seen_through_gradients(rng: np.random.Generator) -> None:
    # 48 steps: a fresh LSTM's memory of step 0 fades below any tolerance long
    # before step 47, so perturbation alone would call it invisible.
    x = rng.normal(size=(2, 48, 3)).astype("float32")
    lstm = seq(layers.LSTM(4, return_sequences=True))
    assert_labels_causal(cumsum_labels, x, model=lstm, trials=1)
    m = dependence_map(lstm, x, trials=1)
    assert m.method == "perturbation + gradient"
    assert m.inputs_of(47) == list(range(48))


def test_forecast_needs_its_horizon(x: np.ndarray) -> None:
    def next_step(x: np.ndarray) -> np.ndarray:
        return x[:, 1:].sum(-1).repeat(2, axis=0).reshape(2 * len(x), -1)[: len(x)]

    def ahead(k: int) -> Any:
        def labels(x: np.ndarray) -> np.ndarray:
            y = np.zeros(x.shape[:2])
            y[:, :-k] = x[:, k:, 0]
            return y

        return labels

    assert_labels_causal(ahead(1), x, horizon=1)
    with pytest.raises(RNNAssertionError, match=r"label at step 0 depends on input step 1 "):
        assert_labels_causal(ahead(1), x)
    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(ahead(2), x, horizon=1)
    assert "label at step 0 depends on input step 2" in str(info.value)
    assert "horizon=2" in str(info.value)
    # With a model, the declared forecast window is exempt.
    assert_labels_causal(ahead(1), x, horizon=1, model=time_distributed(3))


def test_model_that_sees_the_future_may_have_future_labels(x: np.ndarray) -> None:
    def centred(x: np.ndarray) -> np.ndarray:
        return x + np.roll(x, -1, axis=1)

    bi = seq(layers.Bidirectional(layers.LSTM(3, return_sequences=True)))
    assert_labels_causal(centred, x, model=bi)
    with pytest.raises(RNNAssertionError, match="later steps the model cannot see"):
        assert_labels_causal(centred, x, model=seq(layers.LSTM(3, return_sequences=True)))


@pytest.mark.backends
def test_a_warm_labels_check_with_an_rnn_model_compiles_nothing(x: np.ndarray) -> None:
    """JAX: the model's input gradients are jitted once per shape and kept.

    An eager ``jax.grad`` compiled the LSTM's scan again at every check (0.3 of
    a warm check's 0.77 s).
    """
    if keras.backend.backend() != "jax":
        pytest.skip("TensorFlow and torch take the input gradients eagerly: nothing compiles")
    import jax.monitoring

    model = seq(layers.LSTM(4, return_sequences=True))
    assert_labels_causal(cumsum_labels, x, model=model)
    compiles: list[str] = []

    def seen(event: str, duration: float, **_: Any) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(seen)
    try:
        assert_labels_causal(cumsum_labels, x, model=model)
    finally:
        jax.monitoring.unregister_event_duration_listener(seen)
    assert compiles == []


def test_labels_from_the_first_step_with_a_per_step_model(x: np.ndarray) -> None:
    def first(x: np.ndarray) -> np.ndarray:
        return np.repeat(x[:, :1, 0], x.shape[1], axis=1)

    assert_labels_causal(first, x)  # causal: only earlier steps
    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(first, x, model=time_distributed(3))
    msg = str(info.value)
    assert "every label step depends on input step 0 alone" in msg
    assert "overwrites" not in msg


def test_long_sequences_cut_the_report(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 30, 2)).astype("float32")

    def last(x: np.ndarray) -> np.ndarray:
        return np.repeat(x[:, -1:, 0], x.shape[1], axis=1)

    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(last, x, trials=2)
    msg = str(info.value)
    assert "label at step 0 depends on input step 29 (3/3 samples, 2 trials)" in msg
    assert "... and 19 more label steps (29 in all)" in msg
    assert "label \\ input" not in msg  # no grid for 30 steps
    assert len(msg.splitlines()) < 20


def test_labels_that_mix_samples_fall_back_to_one_call_per_copy(x: np.ndarray) -> None:
    calls = []

    def batch_normalised(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return (x - x.mean(axis=0)) / (x.std(axis=0) + 1.0)  # per step, across samples

    assert_labels_causal(batch_normalised, x, trials=2)
    assert max(calls) > len(x) and calls[-1] == len(x)  # tried stacked, then per copy

    def future_mixed(x: np.ndarray) -> np.ndarray:
        return batch_normalised(np.roll(x, -1, axis=1))

    with pytest.raises(RNNAssertionError, match="label at step 0 depends on input step 1"):
        assert_labels_causal(future_mixed, x, trials=2)


def test_multi_input_labels_and_model(rng: np.random.Generator) -> None:
    a = rng.normal(size=(4, 5, 2)).astype("float32")
    b = rng.normal(size=(4, 5, 3)).astype("float32")
    ia, ib = keras.Input((None, 2), name="a"), keras.Input((None, 3), name="b")
    h = layers.Concatenate()([ia, ib])
    model = keras.Model({"a": ia, "b": ib}, layers.GRU(3, return_sequences=True)(h))

    def labels(xs: dict[str, np.ndarray]) -> np.ndarray:
        return np.cumsum(xs["a"][..., 0] + xs["b"][..., 1], axis=1)

    assert_labels_causal(labels, {"a": a, "b": b}, model=model, trials=2)

    def peek(xs: dict[str, np.ndarray]) -> np.ndarray:
        return np.roll(xs["b"][..., 0], -1, axis=1)

    with pytest.raises(RNNAssertionError, match="label at step 0 depends on input step 1"):
        assert_labels_causal(peek, {"a": a, "b": b}, model=model, trials=2)


def test_integer_and_boolean_labels(rng: np.random.Generator) -> None:
    tokens = rng.integers(0, 5, size=(6, 4))

    def is_repeat(x: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape, dtype=bool)
        out[:, 1:] = x[:, 1:] == x[:, :-1]
        return out

    assert_labels_causal(is_repeat, tokens)
    with pytest.raises(RNNAssertionError):
        assert_labels_causal(lambda x: is_repeat(x[:, ::-1])[:, ::-1], tokens)


# --------------------------------------------------------------------------- the map


def test_dependence_map_counts_and_grid(x: np.ndarray) -> None:
    m = dependence_map(cumsum_labels, x, trials=2)
    assert isinstance(m, DependenceMap)
    assert m.counts.shape == (8, 8) and m.samples == 4 and m.trials == 2 and m.of == "label"
    assert (m.depends == np.tril(np.ones((8, 8), dtype=bool))).all()
    assert m.inputs_of(3) == [0, 1, 2, 3]
    text = str(m)
    assert "label step x input step" in text and "#" in text and "." in text
    assert len(text.splitlines()) == 8 + 3


def test_dependence_map_is_deterministic_and_leaves_global_rng(x: np.ndarray) -> None:
    random.seed(3)
    np.random.seed(3)
    before = global_state_snapshot(RANDOM_STATE)
    a = dependence_map(labels_from_last_step, binary_x(steps=3), trials=3, seed=5)
    b = dependence_map(labels_from_last_step, binary_x(steps=3), trials=3, seed=5)
    assert (a.counts == b.counts).all()
    assert not changed(before, global_state_snapshot(RANDOM_STATE))


def test_dependence_map_str_is_capped(rng: np.random.Generator) -> None:
    x = rng.normal(size=(2, 40, 1))
    text = str(dependence_map(cumsum_labels, x, trials=1))
    assert "(first 24 of 40 steps shown)" in text
    assert max(len(line) for line in text.splitlines()) < 140


def test_dependence_map_of_a_model(x: np.ndarray) -> None:
    m = dependence_map(seq(layers.Conv1D(2, 3, padding="causal")), x, trials=1)
    assert m.of == "output"
    assert m.inputs_of(5) == [3, 4, 5]


# --------------------------------------------------------------------------- models


@pytest.mark.backends
def test_a_causal_check_compiles_one_input_shape(x: np.ndarray) -> None:
    """The model is first called on the stacked copies, not on x alone: one trace, not two.

    The failing check's per-layer probe is one more model, traced once too, and a
    short sequence's grid of single-step copies one more shape. (JAX compiles per
    input shape: a first call on x alone took 200 of a cold check's 450 ms.)
    """
    from pytest_rnn import _keras as K

    causal = seq(layers.LSTM(4, return_sequences=True))
    before = K.TRACES.count
    assert_model_causal(causal, x)
    assert K.TRACES.count - before <= 1  # torch does not trace at all
    leaking = seq(layers.Conv1D(3, 3, padding="same"), layers.LSTM(4, return_sequences=True))
    before = K.TRACES.count
    with pytest.raises(RNNAssertionError, match="Conv1D padding='same' reads 1 future step"):
        assert_model_causal(leaking, x)
    assert K.TRACES.count - before <= 3  # the model, its per-layer probe, the grid


LEAKS = [
    (lambda: [layers.Conv1D(4, 3, padding="same")], "conv1d", "padding='same' reads 1 future step"),
    (
        lambda: [layers.Conv1D(4, 3, padding="valid"), layers.ZeroPadding1D((0, 2))],
        "conv1d",
        "padding='valid'",
    ),
    (
        lambda: [layers.Bidirectional(layers.GRU(3, return_sequences=True)), layers.Dense(2)],
        "bidirectional",
        "backward RNN",
    ),
    (
        lambda: [layers.LSTM(3, return_sequences=True, go_backwards=True)],
        "lstm",
        "go_backwards=True",
    ),
    (
        lambda: [layers.Dense(4), layers.LayerNormalization(axis=(1, 2)), layers.Dense(1)],
        "layer_normalization",
        "over the time axis",
    ),
]


@pytest.mark.parametrize(("body", "layer", "why"), LEAKS)
@pytest.mark.backends
def test_leaking_layers_are_named(body: Any, layer: str, why: str, x: np.ndarray) -> None:
    keras.config.disable_interactive_logging()
    model = seq(*body(), steps=8)
    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(model, x)
    msg = str(info.value)
    assert "reads the future" in msg
    assert re.search(rf"first layer whose output leaks: '{layer}(_\d+)?'", msg), msg
    assert why in msg
    assert "output at step" in msg and "(4/4 samples" in msg
    assert "output \\ input" in msg  # grid for 8 steps


def test_valid_conv_shortening_the_output_is_compared_step_by_step(x: np.ndarray) -> None:
    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(seq(layers.Conv1D(2, 3, padding="valid")), x)
    msg = str(info.value)
    assert "the output has 6 steps for 8 input steps" in msg
    assert "it reads up to 2 steps ahead" in msg
    assert "padding='valid'" in msg


def attention_model(causal: bool) -> keras.Model:
    inp = keras.Input((None, 3))
    h = layers.Dense(4)(inp)
    a = layers.MultiHeadAttention(2, 4, name="mha")(h, h, use_causal_mask=causal)
    return keras.Model(inp, layers.Dense(1)(a), name="attn")


def test_attention_without_causal_mask_leaks_with_mask_passes(x: np.ndarray) -> None:
    with pytest.raises(RNNAssertionError, match=r"'mha' .*without use_causal_mask=True"):
        assert_model_causal(attention_model(False), x)
    assert_model_causal(attention_model(True), x)


CAUSAL = [
    lambda: [layers.Conv1D(4, 3, padding="causal", dilation_rate=2)],
    lambda: [layers.LSTM(4, return_sequences=True), layers.Dense(1)],
    lambda: [layers.GRU(4, return_sequences=True), layers.GRU(2, return_sequences=True)],
    lambda: [layers.TimeDistributed(layers.Dense(4)), layers.Activation("softmax")],
    lambda: [layers.LayerNormalization(axis=-1), layers.Dense(2)],
]


@pytest.mark.parametrize("body", CAUSAL)
@pytest.mark.backends
def test_causal_models_pass(body: Any, x: np.ndarray) -> None:
    assert_model_causal(seq(*body()), x)


def test_first_leak_of_a_branching_model_and_other_suspects(x: np.ndarray) -> None:
    inp = keras.Input((None, 3))
    left = layers.Conv1D(2, 2, padding="same", name="peek")(inp)
    right = layers.LSTM(2, return_sequences=True, name="past")(inp)
    h = layers.Concatenate()([left, right])
    out = layers.Bidirectional(layers.LSTM(2, return_sequences=True), name="both")(h)
    model = keras.Model(inp, out, name="branchy")
    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(model, x)
    msg = str(info.value)
    assert "first layer whose output leaks: 'peek'" in msg
    assert "other layers that read later steps by their configuration: 'both'" in msg
    assert "'past'" not in msg


def test_nested_model_is_named(x: np.ndarray) -> None:
    inner = seq(layers.Conv1D(3, 3, padding="same", name="inner_conv"), name="inner")
    model = seq(inner, layers.Dense(1), name="outer")
    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(model, x)
    msg = str(info.value)
    assert "first layer whose output leaks: 'inner'" in msg
    assert "inner_conv" in msg


def _stateful(go_backwards: bool = False) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(4, None, 3)),
            layers.LSTM(3, stateful=True, return_sequences=True, go_backwards=go_backwards),
        ]
    )
    return model


def _states(model: keras.Model) -> list[np.ndarray]:
    return [np.asarray(s.numpy()) for s in model.layers[0].states]


@pytest.mark.parametrize("go_backwards", [False, True])
@pytest.mark.backends
def test_stateful_model_is_measured_on_a_copy_and_left_alone(
    go_backwards: bool, x: np.ndarray
) -> None:
    model = _stateful(go_backwards)
    model(x)  # the states now hold something
    weights = [w.copy() for w in model.get_weights()]
    states = _states(model)
    random.seed(1)
    np.random.seed(1)
    before = global_state_snapshot(RANDOM_STATE)
    if go_backwards:
        with pytest.raises(RNNAssertionError, match="go_backwards"):
            assert_model_causal(model, x)
    else:
        assert_model_causal(model, x)
        assert_labels_causal(cumsum_labels, x, model=model, trials=1)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(_states(model), states):
        np.testing.assert_array_equal(a, b)
    assert not changed(before, global_state_snapshot(RANDOM_STATE))


@pytest.mark.backends
def test_weights_and_global_rng_unchanged_on_failure(x: np.ndarray) -> None:
    model = seq(layers.Conv1D(2, 3, padding="same"), layers.Dense(1))
    weights = [w.copy() for w in model.get_weights()]
    random.seed(2)
    np.random.seed(2)
    before = global_state_snapshot(RANDOM_STATE)
    with pytest.raises(RNNAssertionError):
        assert_model_causal(model, x)
    with pytest.raises(RNNAssertionError):
        assert_labels_causal(lambda x: np.roll(x, -1, 1), x, model=model)
    for a, b in zip(model.get_weights(), weights):
        np.testing.assert_array_equal(a, b)
    assert not changed(before, global_state_snapshot(RANDOM_STATE))


def test_multi_input_model_dict(rng: np.random.Generator) -> None:
    ia, ib = keras.Input((None, 2), name="a"), keras.Input((None, 1), name="b")
    h = layers.Concatenate()([ia, layers.Conv1D(2, 3, padding="same", name="look")(ib)])
    model = keras.Model({"a": ia, "b": ib}, layers.Dense(1)(h))
    xs = {"a": rng.normal(size=(3, 6, 2)), "b": rng.normal(size=(3, 6, 1))}
    with pytest.raises(RNNAssertionError, match="first layer whose output leaks: 'look'"):
        assert_model_causal(model, xs)


class _Subclassed(keras.Model):
    def __init__(self) -> None:
        super().__init__(name="sub")
        self.conv = layers.Conv1D(2, 3, padding="same", name="sub_conv")
        self.out = layers.Dense(1)

    def call(self, x: Any) -> Any:
        return self.out(self.conv(x))


def test_subclassed_model_leak_is_caught_and_suspects_listed(x: np.ndarray) -> None:
    model = _Subclassed()
    model(x)
    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(model, x)
    msg = str(info.value)
    assert "cannot be probed one by one" in msg
    assert "layers that read later steps by their configuration: 'sub_conv'" in msg


def test_multi_output_model_names_the_leaking_output(x: np.ndarray) -> None:
    inp = keras.Input((None, 3))
    h = layers.Dense(4)(inp)
    past = layers.LSTM(2, return_sequences=True)(h)
    both = layers.Bidirectional(layers.LSTM(2, return_sequences=True))(h)
    with pytest.raises(RNNAssertionError, match=r"outputs that leak: \[1\]"):
        assert_model_causal(keras.Model(inp, [past, both]), x)
    # A non-sequence output beside a sequence one is left out, not misread.
    assert_model_causal(keras.Model(inp, [past, layers.LSTM(3)(h)]), x)


def test_sequential_without_input_and_explicit_attention_mask(x: np.ndarray) -> None:
    plain = keras.Sequential([layers.GRU(2, return_sequences=True)])
    plain(x)
    assert_model_causal(plain, x)
    inp = keras.Input((8, 3))
    h = layers.Dense(4)(inp)
    mask = np.tril(np.ones((8, 8), dtype=bool))[None]
    attn = layers.MultiHeadAttention(2, 4)(h, h, attention_mask=mask)
    assert_model_causal(keras.Model(inp, attn), x)


def test_token_model(rng: np.random.Generator) -> None:
    tokens = rng.integers(0, 10, size=(4, 7))
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            layers.Embedding(10, 3),
            layers.GRU(2, return_sequences=True),
        ]
    )
    assert_model_causal(model, tokens)
    assert_labels_causal(cumsum_labels, tokens, model=model, trials=2)


def test_one_step_has_no_future(rng: np.random.Generator) -> None:
    bi = seq(layers.Bidirectional(layers.LSTM(2, return_sequences=True)))
    assert_model_causal(bi, rng.normal(size=(2, 1, 3)))


def test_model_rounding_noise_is_not_a_leak(rng: np.random.Generator) -> None:
    # Large stacked batches may round differently: the dtype tolerance absorbs it.
    model = seq(layers.GRU(8, return_sequences=True), layers.Dense(3), features=5)
    assert_model_causal(model, rng.normal(size=(16, 20, 5)).astype("float32"), trials=2)


def test_model_message_builder_on_arrays() -> None:
    leak = np.zeros((3, 2, 4), dtype=bool)  # starts 1..3, 2 samples, 4 steps
    leak[0, :, 0] = True  # output 0 changed when steps 1.. changed
    leak[1, 0, 1] = True  # output 1 (sample 0) changed when steps 2.. changed
    change = np.where(leak, 0.5, 0.0)
    change[1, 0, 1] = 0.75
    msg = C._model_message(
        seq(layers.Dense(1)),
        4,
        Batch(None, [np.zeros((2, 4, 1))], [""], 2, 4),
        1,
        C._Leak(leak, change),
        Tolerance(1e-6, 1e-5),
        ["  first layer whose output leaks: 'x' (X): why"],
        [],
    )
    assert "output at steps 0-1 of 4 changes when later steps change (1-2/2 samples each)" in msg
    assert "it reads up to 1 step ahead" in msg
    assert "greatest change: 0.75 at output step 1, sample 0, when steps 2.. changed" in msg


# --------------------------------------------------------------------------- strides and space-time


def _seq(*stack: Any, shape: tuple[int | None, ...] = (None, 3)) -> keras.Model:
    return keras.Sequential([keras.Input(shape), *stack])


@pytest.mark.parametrize(
    "stack",
    [
        lambda: [
            layers.Conv1D(4, 4, strides=2, padding="causal"),
            layers.LSTM(3, return_sequences=True),
        ],
        lambda: [layers.Conv1D(4, 3, padding="causal"), layers.MaxPooling1D(2)],
        lambda: [
            layers.Conv1D(4, 2, strides=2, padding="causal"),
            layers.Conv1D(2, 2, strides=2, padding="causal"),
        ],
    ],
    ids=["causal-strided", "pooled", "two-strides"],
)
def test_a_time_strided_causal_model_is_compared_by_the_block_it_covers(stack: Any) -> None:
    # Output step t of a stride-2 model covers input steps 2t..2t+1: aligned index by
    # index it would "read up to t steps ahead" though it reads none.
    x = np.random.default_rng(0).normal(size=(4, 20, 3)).astype("float32")
    assert_model_causal(_seq(*stack()), x)


def test_a_strided_convolution_reading_past_its_block_is_caught() -> None:
    x = np.random.default_rng(0).normal(size=(4, 20, 3)).astype("float32")
    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(
            _seq(layers.Conv1D(4, 5, strides=2, padding="same"), layers.Dense(1)), x
        )
    msg = str(info.value)
    assert (
        "the output has 10 steps for 20 input steps and the model strides time by 2: output "
        "step t covers input steps 2t..2t+1 and may read up to input step 2t+1" in msg
    )
    assert "it reads up to 2 steps ahead" in msg  # TensorFlow pads 1 left, 2 right: 2t+3
    assert "Conv1D padding='same' reads 2 future steps; use padding='causal'" in msg


def test_a_conv3d_head_over_convlstm_frames_reads_the_next_frame() -> None:
    # keras-io's next-frame model ends in Conv3D(1, (3, 3, 3), padding="same"): its first
    # spatial axis is time, so each predicted frame reads the next input frame.
    x = np.random.default_rng(0).normal(size=(2, 6, 8, 8, 1)).astype("float32")

    def next_frame(kernel: tuple[int, int, int]) -> keras.Model:
        return _seq(
            layers.ConvLSTM2D(4, 3, padding="same", return_sequences=True),
            layers.Conv3D(1, kernel, padding="same", name="head"),
            shape=(None, 8, 8, 1),
        )

    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(next_frame((3, 3, 3)), x)
    assert (
        "first layer whose output leaks: 'head' (Conv3D(1, k=(3, 3, 3), padding='same')): "
        "Conv3D padding='same' reads 1 future step along its first spatial axis, the time axis "
        "here (kernel_size[0] > 1)" in str(info.value)
    )
    assert_model_causal(next_frame((1, 3, 3)), x)  # the same head within each frame


def test_a_conv2d_spectrogram_front_end_is_named() -> None:
    x = np.random.default_rng(0).normal(size=(2, 20, 8, 1)).astype("float32")

    def front_end(kernel: tuple[int, int]) -> keras.Model:
        return _seq(
            layers.Conv2D(4, kernel, padding="same", name="front"),
            layers.Reshape((-1, 32)),
            layers.GRU(3, return_sequences=True),
            shape=(20, 8, 1),
        )

    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(front_end((3, 3)), x)
    assert "'front' (Conv2D(4, k=(3, 3), padding='same')): Conv2D padding='same' reads 1 " in str(
        info.value
    )
    assert_model_causal(front_end((1, 3)), x)  # frequency only: per time step


# --------------------------------------------------------------------------- windows


@pytest.fixture
def series(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(30, 2))


@pytest.fixture(params=["copies", "perturbation"])
def windows_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Plain windowing is read from tag series; the perturbation must give the same verdicts."""
    if request.param == "perturbation":
        monkeypatch.setattr(W, "_copied", lambda *args: None)
    return str(request.param)


@pytest.mark.usefixtures("windows_path")
def test_correct_windows_pass(series: np.ndarray) -> None:
    assert_windows_causal(windows, series)
    assert_windows_causal(lambda s: windows(s, horizon=3), series)
    assert_windows_causal(lambda s: windows(s, offset=2), series)  # a gap is fine


def test_off_by_one_window_is_caught(series: np.ndarray, windows_path: str) -> None:
    with pytest.raises(RNNAssertionError) as info:  # targets: the last input step
        assert_windows_causal(windows_off_by_one, series, trials=2)
    msg = str(info.value)
    how = "read from 3 tag series (its windows copy series values)"
    assert (how if windows_path == "copies" else "2 trials per position") in msg
    assert "25/25 windows" in msg
    assert "window 0: inputs read positions 0-4; target reads position 4, the last input" in msg
    assert "off-by-one" in msg
    assert "(first 5 of 25 leaking windows)" in msg


@pytest.mark.usefixtures("windows_path")
def test_target_inside_window_is_caught(series: np.ndarray) -> None:
    with pytest.raises(RNNAssertionError, match="inside the input window"):
        assert_windows_causal(lambda s: windows(s, offset=-3), series, trials=2)


@pytest.mark.usefixtures("windows_path")
def test_inputs_past_the_target_are_caught(series: np.ndarray) -> None:
    def centred(s: np.ndarray) -> Any:
        smooth = (s + np.roll(s, -2, axis=0)) / 2  # a feature with future values
        xs, ys = windows(s, horizon=3)
        xsm, _ = windows(smooth, horizon=3)
        return [xs, xsm], ys

    with pytest.raises(RNNAssertionError) as info:
        assert_windows_causal(centred, series, trials=2)
    assert "the inputs reach 2 positions into it" in str(info.value)
    assert "run past the start of the target" in str(info.value)


def test_a_whole_series_statistic_is_told_apart_from_a_target_inside_the_window(
    series: np.ndarray,
) -> None:
    # keras-io's weather example normalises with the statistics of the split; done
    # inside make_windows, the statistic reaches every target, future positions included.
    def normalised(s: np.ndarray) -> Any:
        return windows((s - s.mean(axis=0)) / s.std(axis=0))

    with pytest.raises(RNNAssertionError) as info:
        assert_windows_causal(normalised, series, trials=2)
    msg = str(info.value)
    assert "target reads positions 0-29, every position of the series" in msg
    assert "every target reads every position of the series (30 of 30)" in msg
    assert "a statistic of the whole series" in msg
    assert "Start the target after the last input position" not in msg
    # the same normalisation with statistics passed in (fixed before windowing) passes
    mean, std = series.mean(axis=0), series.std(axis=0)
    assert_windows_causal(lambda s: windows((s - mean) / std), series, trials=2)


def test_anchored_targets_need_anchor_steps(series: np.ndarray) -> None:
    def change(s: np.ndarray) -> Any:
        xs, ys = windows(s)
        return xs, ys[:, 0] - xs[:, -1]

    with pytest.raises(RNNAssertionError, match="anchor_steps=1"):
        assert_windows_causal(change, series, trials=2)
    assert_windows_causal(change, series, trials=2, anchor_steps=1)

    def last_only(s: np.ndarray) -> Any:
        xs, _ = windows(s)
        return xs, xs[:, -1] * 2

    with pytest.raises(RNNAssertionError, match="the last input position"):
        assert_windows_causal(last_only, series, trials=2, anchor_steps=1)


def test_thresholded_targets_are_found(rng: np.random.Generator) -> None:
    s = rng.normal(size=40)

    def up_tomorrow(s: np.ndarray) -> Any:
        xs, ys = windows(s)
        return xs, ys[:, 0] > xs[:, -1]

    assert_windows_causal(up_tomorrow, s, anchor_steps=1)

    def up_today(s: np.ndarray) -> Any:
        xs, _ = windows(s)
        return xs, xs[:, -1] > xs[:, -2]

    with pytest.raises(RNNAssertionError, match="inside the input window"):
        assert_windows_causal(up_today, s)


def test_plain_windowing_is_read_in_five_calls(series: np.ndarray) -> None:
    calls: list[int] = []

    def counted(s: np.ndarray) -> Any:
        calls.append(1)
        return windows(s)

    assert_windows_causal(counted, series)
    assert len(calls) == 2 + 3  # the series twice (determinism), then three tag series

    def computed(s: np.ndarray) -> Any:  # a difference is not a copy: measured by perturbation
        calls.append(1)
        xs, ys = windows(s)
        return xs, ys - 1.0

    calls.clear()
    assert_windows_causal(computed, series, trials=2)
    assert len(calls) == 2 + 3 + 30 * 2


def test_a_maximum_is_not_mistaken_for_a_copy(rng: np.random.Generator) -> None:
    # The window's maximum copies a value, but which one depends on the values: the tag
    # series disagree, and the perturbation finds that it reads the whole window.
    def peak(s: np.ndarray) -> Any:
        xs, _ = windows(s)
        return xs, xs.max(axis=1)

    with pytest.raises(RNNAssertionError) as info:
        assert_windows_causal(peak, rng.normal(size=30), trials=4)
    assert "target reads positions 0-4, all inside the inputs" in str(info.value)
    assert "4 trials per position" in str(info.value)


def _dataset_windows(s: np.ndarray, *, shift: int = 0) -> Any:
    """keras-io's windowing: inputs s[i : i + 10], target s[i + 10] (shift=-1: off by one)."""
    w = 10
    return keras.utils.timeseries_dataset_from_array(
        s[: len(s) - w], s[w + shift :], sequence_length=w, batch_size=16, shuffle=False
    )


def test_timeseries_dataset_from_array_windows_are_read_whole() -> None:
    s = np.sin(np.arange(80.0) * 0.3).astype("float32")[:, None]
    assert_windows_causal(_dataset_windows, s)  # the dataset itself
    with pytest.raises(RNNAssertionError) as info:
        assert_windows_causal(lambda a: _dataset_windows(a, shift=-1), s)
    msg = str(info.value)
    assert "on a series of 80 positions -> inputs (61, 10, 1), targets (61, 1); read from 3" in msg
    assert "window 0: inputs read positions 0-9; target reads position 9, the last input" in msg
    with pytest.raises(
        ValueError,
        match=r"^the dataset make_windows returned yields EagerTensor elements, not \(inputs, t",
    ):
        assert_windows_causal(
            lambda a: keras.utils.timeseries_dataset_from_array(a, None, sequence_length=10), s
        )


# --------------------------------------------------------------------------- bad calls


def _untyped(value: Any) -> Any:
    """A wrongly typed argument, on purpose."""
    return value


def _x() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(2, 3, 1))


BAD_CALLS = [
    (
        lambda: assert_labels_causal(_untyped(np.zeros((2, 3))), _x()),
        TypeError,
        r"make_labels.*function",
    ),
    (lambda: assert_labels_causal(labels_per_step, _x(), model="m"), TypeError, "model"),
    (lambda: assert_labels_causal(lambda x: x[:1], _x()), ValueError, r"make_labels.*batch"),
    (lambda: assert_labels_causal(lambda x: x[:, :2], _x()), ValueError, r"make_labels.*steps"),
    (lambda: assert_labels_causal(lambda x: x.sum(1), _x()), ValueError, r"make_labels.*steps"),
    (lambda: assert_labels_causal(cumsum_labels, _x(), horizon=-1), ValueError, "horizon"),
    (lambda: assert_labels_causal(cumsum_labels, _x(), horizon=True), TypeError, "horizon"),
    (lambda: assert_labels_causal(cumsum_labels, _x(), trials=0), ValueError, "trials"),
    (lambda: assert_labels_causal(cumsum_labels, _x(), seed=-1), ValueError, "seed"),
    (lambda: assert_labels_causal(cumsum_labels, _x(), rtol=1e-3), ValueError, "atol"),
    (lambda: assert_labels_causal(cumsum_labels, np.zeros((2, 0, 1))), ValueError, "x has zero"),
    (lambda: assert_labels_causal(cumsum_labels, np.zeros((2, 3))), ValueError, r"x has the same"),
    (lambda: assert_labels_causal(cumsum_labels, np.ones(3)), ValueError, r"x must be"),
    (
        lambda: assert_labels_causal(cumsum_labels, np.array([[[0.0], [np.nan]]])),
        ValueError,
        r"x contains NaN",
    ),
    (
        lambda: assert_labels_causal(
            lambda x: x + np.random.default_rng().normal(size=x.shape), _x()
        ),
        ValueError,
        r"make_labels.*deterministic",
    ),
    (lambda: assert_model_causal(object(), _x()), TypeError, "model"),
    (
        lambda: assert_model_causal(seq(layers.LSTM(2), features=1), _x()),
        ValueError,
        r"model .*per-step outputs",
    ),
    (lambda: assert_model_causal(seq(layers.Dense(1), features=1), "x"), ValueError, "x"),
    (
        lambda: assert_model_causal(seq(layers.Dense(1), features=1), [_x(), _x()[:, :2]]),
        ValueError,
        "share batch and steps",
    ),
    (
        lambda: assert_labels_causal(
            cumsum_labels, _x(), model=seq(layers.Conv1D(1, 2, padding="valid"), features=1)
        ),
        ValueError,
        "model",
    ),
    (lambda: dependence_map(cumsum_labels, _x(), trials=_untyped(1.5)), TypeError, "trials"),
    (
        lambda: assert_windows_causal(_untyped(np.zeros(3)), np.arange(5.0)),
        TypeError,
        "make_windows",
    ),
    (lambda: assert_windows_causal(windows, np.zeros(10)), ValueError, "same value"),
    (lambda: assert_windows_causal(windows, np.arange(1.0)), ValueError, "at least 2"),
    (lambda: assert_windows_causal(windows, lambda: 0), TypeError, "series"),
    (
        lambda: assert_windows_causal(windows, np.arange(10.0), anchor_steps=-1),
        ValueError,
        "anchor",
    ),
    (
        lambda: assert_windows_causal(lambda s: s, np.arange(10.0)),
        ValueError,
        r"\(inputs, targets\)",
    ),
    (
        lambda: assert_windows_causal(lambda s: (s[None], s[None] * 0), np.arange(10.0)),
        ValueError,
        "did not change",
    ),
    (
        lambda: assert_windows_causal(lambda s: windows(s[s > 3]), np.arange(20.0)),
        ValueError,
        "other shapes",
    ),
    (
        lambda: assert_windows_causal(lambda s: (s[:4, None], s[:3]), np.arange(20.0)),
        ValueError,
        "one row per window",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_CALLS)
def test_bad_calls(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- end to end


def test_pytest_session_shows_the_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import numpy as np
        from pytest_rnn._causal import assert_labels_causal

        X = np.random.default_rng(0).normal(size=(8, 4, 2))

        def test_last_step_labels():
            assert_labels_causal(lambda x: np.repeat(x[:, -1:, 0], 4, axis=1), X)

        def test_per_step_labels():
            assert_labels_causal(lambda x: x[..., 0] > 0, X)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*RNNAssertionError: Labels depend on later input steps*",
            "*label at step 0 depends on input step 3 (8/8 samples, 8 trials)*",
        ]
    )


def test_labels_one_step_short_are_told_how_to_align(rng: np.random.Generator) -> None:
    x = rng.normal(size=(3, 10, 2))
    with pytest.raises(ValueError) as info:
        assert_labels_causal(lambda a: a[:, 1:, :1], x)  # next-step labels, not aligned
    assert str(info.value) == (
        "make_labels returned of shape (3, 9, 1) for x of 10 steps (9 steps): one label per "
        "input step (batch, steps, ...) is needed, and these are 1 step short, as next-step "
        "labels (x[:, 1:]) are: make x and its labels the same length (x[:, :-1] with labels "
        "x[:, 1:]), so that label t belongs to input step t"
    )
    with pytest.raises(ValueError, match=r"a single label per sequence has no steps to check$"):
        assert_labels_causal(lambda a: a[:, -1, 0], x)
    with pytest.raises(ValueError, match=r"these are longer than x: per-step labels have one"):
        assert_labels_causal(lambda a: np.concatenate([a, a], axis=1), x)
    assert_labels_causal(lambda a: np.cumsum(a, axis=1), x)  # one label per step, causal


@pytest.mark.usefixtures("windows_path")
def test_a_target_between_sampled_inputs_is_inside_the_window(series: np.ndarray) -> None:
    def sampled(s: np.ndarray) -> Any:  # inputs every 2nd position of 0..8, target position 5
        n = len(s) - 9
        return np.stack([s[i : i + 9 : 2] for i in range(n)]), s[5 : 5 + n]

    with pytest.raises(RNNAssertionError) as info:
        assert_windows_causal(sampled, series, trials=2)
    msg = str(info.value)
    assert (
        "window 0: inputs read positions 0, 2, 4, 6, 8; target reads position 5, inside the "
        "span of the inputs (0-8)" in msg
    )
    assert "the target lies inside the input window" in msg


# A false alarm found by tests/test_reliability.py's sweep (2026-12-03): a drawn token
# model whose LayerNormalization over 2 features saturates (outputs near +-1) reacts to a
# swap between x's own ids (1 and 2) by 7e-6 at step 3, under float32's allowed 1.04e-5,
# and no gradient flows through ids: its map said the LSTM could not see step 3. The
# model map's extreme replacements now come from the Embedding's vocabulary (id 0 moves
# that output by 1.0e-4).
def _barely_reacting_token_model() -> Any:
    from pytest_rnn.strategies._specs import LayerSpec, SequenceModel

    spec = SequenceModel(
        (
            LayerSpec.of("Embedding", 4, 1, mask_zero=False),
            LayerSpec.of("LSTM", 2, return_sequences=True),
            LayerSpec.of("LayerNormalization"),
            LayerSpec.of("LSTM", 2, return_sequences=True),
        ),
        features=None,
        seed=0,
    )
    return spec.build()


@pytest.mark.tensorflow_only("the drawn weights' numbers, measured on TensorFlow")
def test_a_token_model_that_barely_reacts_still_sees_its_own_step() -> None:
    model = _barely_reacting_token_model()
    x = np.array([[1, 2, 2, 2]], dtype="int32")
    out = np.asarray(model(x))[0, 3]
    swapped = x.copy()
    swapped[0, 3] = 1  # an id x holds: the change is under the tolerance
    allowed = 1e-5 + 1.3e-6 * np.abs(out).max()  # float32: atol 1e-5, rtol 1.3e-6
    assert np.abs(np.asarray(model(swapped))[0, 3] - out).max() < allowed
    assert_labels_causal(lambda v: np.asarray(v % 3, dtype="int32"), x, model=model)
    assert dependence_map(model, x).inputs_of(3) == [0, 1, 2, 3]


@pytest.mark.tensorflow_only("the drawn weights' numbers, measured on TensorFlow")
def test_a_token_model_still_fails_labels_from_the_next_step() -> None:
    model = _barely_reacting_token_model()
    x = np.array([[1, 2, 3, 1, 2, 3]], dtype="int32")

    def next_step(v: np.ndarray) -> np.ndarray:
        return np.asarray(np.concatenate([v[:, 1:], v[:, -1:]], axis=1) % 3, dtype="int32")

    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(next_step, x, model=model)
    assert (
        "label at step 3 depends on input step 4 (1/1 samples, 8 trials); the model's output "
        "at step 3 depends on steps 0-3"
    ) in str(info.value)


def test_token_ids_are_the_embeddings_vocabulary() -> None:
    from pytest_rnn import _keras as K

    def model(*front: Any) -> keras.Model:
        return keras.Sequential([keras.Input((None,), dtype="int32"), *front, layers.GRU(2)])

    assert K.token_ids(model(layers.Embedding(7, 2))) == [(0, 6)]
    assert K.token_ids(model(layers.Embedding(7, 2, mask_zero=True))) == [(1, 6)]
    assert K.token_ids(keras.Sequential([keras.Input((None, 3)), layers.GRU(2)])) is None
