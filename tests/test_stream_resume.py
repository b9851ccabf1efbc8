"""assert_stream_resumable: streams saved, loaded and continued; broken resumes are named."""

from __future__ import annotations

import pathlib
import pickle
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers
from models import RANDOM_STATE, changed, global_state_snapshot

import pytest_rnn
from pytest_rnn import RNNAssertionError, assert_stream_resumable
from pytest_rnn import _keras as K

FEATURES = 3
STEPS = 10


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    # Inputs of scale 2: states far from zero, so a float16 round trip shows in the outputs.
    return (2 * rng.normal(size=(2, STEPS, FEATURES))).astype("float32")


def seq_model(rnn: type = layers.LSTM, *, name: str = "seq") -> keras.Model:
    """RNN(4) -> Dense(2), an output per step."""
    return keras.Sequential(
        [keras.Input((None, FEATURES)), rnn(4, return_sequences=True), layers.Dense(2)], name=name
    )


def stacked_model() -> keras.Model:
    """Two LSTM(4) of the same shapes ('lower', 'upper'): their states could be swapped."""
    return keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            layers.LSTM(4, return_sequences=True, name="lower"),
            layers.LSTM(4, return_sequences=True, name="upper"),
            layers.Dense(2),
        ],
        name="stacked",
    )


def last_step_model() -> keras.Model:
    """GRU(4) -> Dense(1): one output per sequence."""
    return keras.Sequential(
        [keras.Input((None, FEATURES)), layers.GRU(4), layers.Dense(1)], name="last"
    )


# The save/load pair of the docstring: model.save plus the states beside it.
def good_save(model: keras.Model, folder: pathlib.Path) -> None:
    model.save(folder / "model.keras")
    (folder / "states.pkl").write_bytes(pickle.dumps(pytest_rnn.get_states(model)))


def good_load(folder: pathlib.Path) -> keras.Model:
    loaded = keras.models.load_model(folder / "model.keras")
    pytest_rnn.set_states(loaded, pickle.loads((folder / "states.pkl").read_bytes()))
    return loaded


def failure(model: keras.Model, x: np.ndarray, **kwargs: Any) -> str:
    with pytest.raises(RNNAssertionError) as info:
        assert_stream_resumable(model, x, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------- correct streams pass


@pytest.mark.parametrize("rnn", [layers.LSTM, layers.GRU])
@pytest.mark.backends
def test_sequence_model_resumes_with_the_default_save_and_load(rnn: type, x: np.ndarray) -> None:
    assert_stream_resumable(seq_model(rnn), x, at=4)


def test_stacked_model_resumes_at_several_points(x: np.ndarray) -> None:
    assert_stream_resumable(stacked_model(), x, at=[7, 2, 5])  # sorted: 2, 5, 7


@pytest.mark.backends
def test_last_step_model_resumes(x: np.ndarray) -> None:
    assert_stream_resumable(last_step_model(), x, at=[3, 6])


def test_own_save_and_load_that_keep_the_states_pass(x: np.ndarray) -> None:
    assert_stream_resumable(stacked_model(), x, at=[3, 6], save=good_save, load=good_load)


def test_user_stateful_model_streams_both_runs(x: np.ndarray) -> None:
    model = seq_model()
    stream = keras.Sequential(
        [
            keras.Input(batch_shape=(2, None, FEATURES)),
            layers.LSTM(4, return_sequences=True, stateful=True),
            layers.Dense(2),
        ],
        name="my_stream",
    )
    stream.set_weights(model.get_weights())
    assert_stream_resumable(model, x, at=[4, 8], stateful_model=stream)


def test_two_input_model_resumes(rng: np.random.Generator) -> None:
    a, b = keras.Input((None, 2), name="a"), keras.Input((None, 1), name="b")
    seq = layers.LSTM(4, return_sequences=True)(layers.Concatenate()([a, b]))
    model = keras.Model([a, b], layers.Dense(1)(seq), name="two")
    xs = [
        rng.normal(size=(3, 8, 2)).astype("float32"),
        rng.normal(size=(3, 8, 1)).astype("float32"),
    ]
    assert_stream_resumable(model, xs, at=5)


# --------------------------------------------------------------------------- broken resumes named


@pytest.mark.backends
def test_plain_load_model_without_the_states_is_caught(x: np.ndarray) -> None:
    text = failure(
        seq_model(), x, at=4, load=lambda folder: keras.models.load_model(folder / "model.keras")
    )
    assert text.startswith("Stream resumed after step 4 differs from the uninterrupted stream.")
    assert (
        "model 'seq' (LSTM(4) -> Dense(2)), batch 2, 10 steps, interrupted after x[:, :4]" in text
    )
    assert "first mismatch: step 4, sample " in text
    assert "resumed" in text and "uninterrupted" in text
    assert "states not restored: the loaded model starts from zero states" in text
    assert "model.save does not save RNN states" in text
    assert "pytest_rnn.get_states(model)" in text and "pytest_rnn.set_states(loaded" in text


def test_states_restored_into_the_wrong_layers_are_caught(x: np.ndarray) -> None:
    def swapped(folder: pathlib.Path) -> keras.Model:
        loaded = keras.models.load_model(folder / "model.keras")
        states = pickle.loads((folder / "states.pkl").read_bytes())
        pytest_rnn.set_states(loaded, {"lower": states["upper"], "upper": states["lower"]})
        return loaded

    text = failure(stacked_model(), x, at=5, save=good_save, load=swapped)
    assert "Stream resumed after step 5" in text
    assert "states restored into the wrong layer/order" in text
    assert "layer 'lower' got the states of 'upper'" in text
    assert "layer 'upper' got the states of 'lower'" in text


def test_lstm_states_in_the_wrong_order_are_caught(x: np.ndarray) -> None:
    def h_and_c_swapped(folder: pathlib.Path) -> keras.Model:
        loaded = good_load(folder)
        pytest_rnn.set_states(
            loaded, {p: s[::-1] for p, s in pytest_rnn.get_states(loaded).items()}
        )
        return loaded

    text = failure(seq_model(), x, at=4, save=good_save, load=h_and_c_swapped)
    assert "states restored into the wrong layer/order" in text
    assert "state [0] got its state [1]" in text


def test_load_that_rebuilds_the_model_stateless_is_caught(x: np.ndarray) -> None:
    def stateless(folder: pathlib.Path) -> keras.Model:
        loaded = good_load(folder)
        config = loaded.get_config()
        for layer in config["layers"]:
            layer["config"].pop("stateful", None)  # Keras's default: stateful=False
        rebuilt = keras.Sequential.from_config(config)
        rebuilt.set_weights(loaded.get_weights())
        return rebuilt

    text = failure(seq_model(), x, at=4, save=good_save, load=stateless)
    assert "the loaded model is not stateful (layers '" in text
    assert "(LSTM(4))" in text
    assert "rebuilt it with stateful=False" in text


def test_states_saved_as_float16_are_caught(x: np.ndarray) -> None:
    def float16_save(model: keras.Model, folder: pathlib.Path) -> None:
        model.save(folder / "model.keras")
        states = pytest_rnn.get_states(model)
        arrays = {
            f"{p}:{n}": v.astype("float16") for p, s in states.items() for n, v in enumerate(s)
        }
        np.savez(folder / "states.npz", **arrays)  # the default load reads them back

    model = seq_model()
    dense = model.layers[-1]
    dense.kernel.assign(20 * dense.kernel)  # the rounding shows well above the tolerance
    text = failure(model, x, at=4, save=float16_save)
    assert "with your save" in text
    assert "states cast to float16 on the way" in text
    assert "state [0]" in text and "state [1]" in text


def test_load_that_changes_a_weight_is_caught(x: np.ndarray) -> None:
    def perturbed(folder: pathlib.Path) -> keras.Model:
        loaded = good_load(folder)
        bias = loaded.layers[-1].bias
        bias.assign(bias + 0.1)
        return loaded

    text = failure(last_step_model(), x, at=4, save=good_save, load=perturbed)
    assert "last-step output: compared at the end of every piece" in text
    assert "first mismatch: step 9, sample " in text  # the end of the resumed piece
    assert "the loaded weights differ from the saved model's (first: '" in text
    assert "bias', by up to 0.1)" in text
    assert "states" not in text.split("\n")[-1]


def test_states_and_weights_that_agree_are_said_to(x: np.ndarray) -> None:
    def other_activation(folder: pathlib.Path) -> keras.Model:
        loaded = good_load(folder)
        config = loaded.get_config()
        config["layers"][-1]["config"]["activation"] = "tanh"
        rebuilt = keras.Sequential.from_config(config)
        rebuilt.set_weights(loaded.get_weights())
        pytest_rnn.set_states(rebuilt, pytest_rnn.get_states(loaded))
        return rebuilt

    text = failure(seq_model(), x, at=4, save=good_save, load=other_activation)
    assert "states and weights agree after load (1 stateful layer(s), 5 weights compared)" in text
    assert "the difference is elsewhere" in text


def test_load_that_changes_the_outputs_shape_is_caught(x: np.ndarray) -> None:
    def last_step_only(folder: pathlib.Path) -> keras.Model:
        loaded = good_load(folder)
        config = loaded.get_config()
        for layer in config["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["return_sequences"] = False
        rebuilt = keras.Sequential.from_config(config)
        rebuilt.set_weights(loaded.get_weights())
        pytest_rnn.set_states(rebuilt, pytest_rnn.get_states(loaded))
        return rebuilt

    text = failure(seq_model(), x, at=4, save=good_save, load=last_step_only)
    assert "Stream resumed after step 4" in text
    assert "resumed has shape (2, 2) where (2, 6, 2) was expected" in text
    assert "states and weights agree after load" in text


def test_the_broken_interruption_is_the_one_named(x: np.ndarray) -> None:
    loads: list[pathlib.Path] = []

    def second_forgets(folder: pathlib.Path) -> keras.Model:
        loads.append(folder)
        if len(loads) == 1:
            return good_load(folder)
        return keras.models.load_model(folder / "model.keras")

    text = failure(seq_model(), x, at=[3, 7], save=good_save, load=second_forgets)
    assert text.startswith("Stream resumed after step 7 differs")
    assert "interrupted after x[:, :3], x[:, :7]" in text
    assert "first mismatch: step 7, sample " in text
    assert "states not restored" in text


# --------------------------------------------------------------------------- malformed calls


@pytest.mark.parametrize(
    ("at", "error", "words"),
    [
        (0, ValueError, "at must be >= 1, got 0"),
        (STEPS, ValueError, "at must be in 1..9 (x has 10 steps"),
        (2.5, TypeError, "at must be an int, got float"),
        (True, TypeError, "at must be an int, got bool"),
        ([3, 6, 3], ValueError, "at holds [3] more than once"),
        ([], ValueError, "at is an empty list"),
        ([4, STEPS], ValueError, "at must be in 1..9"),
    ],
    ids=["zero", "steps", "float", "bool", "duplicate", "empty", "list-past-end"],
)
def test_bad_at_is_named(at: Any, error: type, words: str, x: np.ndarray) -> None:
    with pytest.raises(error) as info:
        assert_stream_resumable(seq_model(), x, at=at)
    assert words in str(info.value)


@pytest.mark.parametrize("arg", ["save", "load"])
def test_save_and_load_must_be_functions(arg: str, x: np.ndarray) -> None:
    model = seq_model()
    with pytest.raises(TypeError, match=rf"^{arg} must be a function .*got int"):
        assert_stream_resumable(model, x, at=4, **{arg: 5})
    with pytest.raises(TypeError, match=rf"^{arg} must be a function .*got a Keras model"):
        assert_stream_resumable(model, x, at=4, **{arg: model})


def test_load_must_return_a_model(x: np.ndarray) -> None:
    with pytest.raises(TypeError, match=r"^load must return a Keras model, got str"):
        assert_stream_resumable(seq_model(), x, at=4, load=lambda folder: str(folder))


def test_bad_models_are_named(x: np.ndarray) -> None:
    dense = keras.Sequential([keras.Input((None, FEATURES)), layers.Dense(2)], name="dense")
    with pytest.raises(ValueError, match="model 'dense' has no RNN layer"):
        assert_stream_resumable(dense, x, at=4)
    with pytest.raises(ValueError, match="stateful_model 'seq' has no stateful RNN layer"):
        assert_stream_resumable(seq_model(), x, at=4, stateful_model=seq_model())
    one = keras.Sequential(
        [keras.Input(batch_shape=(1, None, FEATURES)), layers.LSTM(4, stateful=True)]
    )
    with pytest.raises(ValueError, match="stateful_model has batch size 1; it must be x's batch"):
        assert_stream_resumable(seq_model(), x, at=4, stateful_model=one)
    with pytest.raises(TypeError, match="stateful_model must be a Keras model"):
        assert_stream_resumable(seq_model(), x, at=4, stateful_model="stream")


# --------------------------------------------------------------------------- side effects


def recording(save: Callable[..., None], folders: list[pathlib.Path]) -> Callable[..., None]:
    """``save`` that notes each folder it is given (and that it exists then)."""

    def wrapped(model: keras.Model, folder: pathlib.Path) -> None:
        assert isinstance(folder, pathlib.Path) and folder.is_dir()
        folders.append(folder)
        save(model, folder)

    return wrapped


@pytest.mark.parametrize("broken", [False, True], ids=["passes", "fails"])
def test_models_globals_and_folders_are_left_as_they_were(broken: bool, x: np.ndarray) -> None:
    model = seq_model()
    stream = keras.Sequential(
        [
            keras.Input(batch_shape=(2, None, FEATURES)),
            layers.LSTM(4, return_sequences=True, stateful=True),
            layers.Dense(2),
        ]
    )
    stream.set_weights(model.get_weights())
    stream(x[:, :3])  # mid-stream: states that are not zeros
    states = pytest_rnn.get_states(stream)
    weights = [w.copy() for w in model.get_weights()]
    random_state = global_state_snapshot(RANDOM_STATE)
    folders: list[pathlib.Path] = []
    save = recording(K.save_stream, folders)
    load = (lambda f: keras.models.load_model(f / "model.keras")) if broken else None
    for streamer in (None, stream):
        if broken:
            with pytest.raises(RNNAssertionError, match="states not restored"):
                assert_stream_resumable(
                    model, x, at=[3, 6], stateful_model=streamer, save=save, load=load
                )
        else:
            assert_stream_resumable(model, x, at=[3, 6], stateful_model=streamer, save=save)
    assert len(folders) == 4
    assert not any(f.exists() for f in folders)
    assert changed(random_state, global_state_snapshot(RANDOM_STATE)) == []
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))
    after = pytest_rnn.get_states(stream)
    assert all(np.array_equal(a, b) for p in states for a, b in zip(states[p], after[p]))
