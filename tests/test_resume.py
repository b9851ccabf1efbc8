"""Tests of assert_resume_equivalent: training resumed from a checkpoint (seed 002, today).

Tiny models (LSTM(4)), 32 samples of 5 steps, 2-3 epochs: every call trains
two models and saves and loads one of them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers
from models import RANDOM_STATE, changed, global_state_snapshot

import pytest_rnn
from pytest_rnn._errors import LossPicture, RNNAssertionError

T, F, N, BATCH = 5, 2, 32, 8
FIT = {"batch_size": BATCH, "shuffle": False}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(N, T, F)).astype("float32")
    return x, np.cumsum(x, axis=1)[..., :1].astype("float32")


def make(
    *, dropout: float = 0.0, stateful: bool = False, lr: Any = 0.01
) -> Callable[[], keras.Model]:
    """A factory of compiled LSTM(4) -> [Dropout] -> Dense(1) models, an output per step."""

    def make_model() -> keras.Model:
        inputs = keras.Input(batch_shape=(BATCH, T, F)) if stateful else keras.Input((T, F))
        # Names fixed: the messages below name them, whatever other tests built before.
        h = layers.LSTM(4, stateful=stateful, return_sequences=True, name="lstm")(inputs)
        if dropout:
            h = layers.Dropout(dropout, name="dropout")(h)
        model = keras.Model(inputs, layers.Dense(1, name="dense")(h), name="resumable")
        model.compile(optimizer=keras.optimizers.Adam(lr, name="adam"), loss="mse")
        return model

    return make_model


def failure(*args: Any, **kwargs: Any) -> str:
    with pytest.raises(RNNAssertionError) as info:
        pytest_rnn.assert_resume_equivalent(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------- save and load pairs


def save_weights(model: keras.Model, folder: Path) -> None:
    model.save_weights(folder / "w.weights.h5")


def load_weights_into(make_model: Callable[[], keras.Model]) -> Callable[[Path], keras.Model]:
    """The common hand-written load: a new model from the factory, then load_weights."""

    def load(folder: Path) -> keras.Model:
        model = make_model()
        model.load_weights(folder / "w.weights.h5")
        return model

    return load


def save_everything(model: keras.Model, folder: Path) -> None:
    """The documented fix: the .keras file plus RNN states and SeedGenerator states."""
    model.save(folder / "model.keras")
    states = pytest_rnn.get_states(model)
    seeds = [v.numpy() for v in model.variables if v.name == "seed_generator_state"]
    np.savez(
        folder / "extra.npz",
        *seeds,
        **{f"s{i}:{k}": np.stack(v) for i, (k, v) in enumerate(states.items())},
    )


def load_everything(folder: Path) -> keras.Model:
    model = keras.models.load_model(folder / "model.keras")
    extra = np.load(folder / "extra.npz")
    seeds = [v for v in model.variables if v.name == "seed_generator_state"]
    for n, v in enumerate(seeds):
        v.assign(extra[f"arr_{n}"])
    states = {k.split(":", 1)[1]: list(extra[k]) for k in extra.files if k.startswith("s")}
    pytest_rnn.set_states(model, states)
    return model


# --------------------------------------------------------------------------- correct resumes pass


@pytest.mark.backends
def test_a_plain_model_resumes_exactly(data: tuple[np.ndarray, np.ndarray]) -> None:
    pytest_rnn.assert_resume_equivalent(make(), *data, epochs=3, resume_at=[1, 2], fit_kwargs=FIT)


def test_an_epoch_schedule_and_a_step_schedule_resume(data: tuple[np.ndarray, np.ndarray]) -> None:
    # initial_epoch gives LearningRateScheduler the true epoch; the optimizer's schedule
    # reads the restored iteration count.
    decay = keras.optimizers.schedules.ExponentialDecay(0.02, decay_steps=3, decay_rate=0.5)
    halve = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.02 * 0.5**epoch)
    pytest_rnn.assert_resume_equivalent(
        make(lr=decay), *data, epochs=3, resume_at=2, fit_kwargs=FIT
    )
    pytest_rnn.assert_resume_equivalent(
        make(), *data, epochs=3, fit_kwargs={**FIT, "callbacks": [halve]}
    )


@pytest.mark.backends
def test_fits_shuffle_order_after_a_resume(data: tuple[np.ndarray, np.ndarray]) -> None:
    # TensorFlow's shuffle of arrays resumes exactly (measured, Keras 3.15); on JAX and
    # torch the resumed process draws its first epoch's order from the restarted stream.
    shuffled = {"batch_size": BATCH, "shuffle": True}
    if keras.backend.backend() == "tensorflow":
        pytest_rnn.assert_resume_equivalent(make(), *data, epochs=3, fit_kwargs=shuffled)
        return
    text = failure(make(), *data, epochs=3, fit_kwargs=shuffled)
    assert "checkpoint after epoch 1: the loaded model equals the saved one" in text
    assert "the shuffle order: with shuffle=False both runs agree" in text
    assert "fit shuffles (shuffle=True) and on the " in text


def test_a_dataset_resumes(data: tuple[np.ndarray, np.ndarray]) -> None:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(data).batch(BATCH)
    pytest_rnn.assert_resume_equivalent(make(), dataset, None, epochs=2)
    # A function building the dataset is called again by the resumed process.
    built: list[object] = []

    def make_dataset() -> tf.data.Dataset:
        built.append(tf.data.Dataset.from_tensor_slices(data).batch(BATCH))
        return built[-1]

    pytest_rnn.assert_resume_equivalent(make(), make_dataset, None, epochs=3, resume_at=[1, 2])
    assert len(built) == 3


@pytest.mark.fits_stateful
def test_the_documented_fix_carries_rnn_and_dropout_states(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    for make_model in (make(stateful=True), make(dropout=0.5)):
        pytest_rnn.assert_resume_equivalent(
            make_model, *data, epochs=3, resume_at=[1, 2], fit_kwargs=FIT,
            save=save_everything, load=load_everything,
        )  # fmt: skip


@pytest.mark.fits_stateful
def test_states_reset_every_epoch_need_not_be_saved(data: tuple[np.ndarray, np.ndarray]) -> None:
    callbacks = [pytest_rnn.ResetStatesCallback()]
    pytest_rnn.assert_resume_equivalent(
        make(stateful=True), *data, epochs=2, fit_kwargs={**FIT, "callbacks": callbacks}
    )


# --------------------------------------------------------------------------- each cause caught


@pytest.mark.backends
def test_load_weights_into_an_unbuilt_optimizer_is_caught(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    text = failure(
        make(), *data, epochs=3, fit_kwargs=FIT, save=save_weights, load=load_weights_into(make())
    )
    assert text.startswith(
        "Training resumed from a checkpoint after epoch 1 differs from one uninterrupted "
        "fit(epochs=3).\n"
    )
    assert "checkpoint: save save_weights, load " in text
    assert "first epoch whose loss differs: epoch 2/3" in text
    assert "optimizer adam/iteration" in text
    assert "checkpoint after epoch 1: the loaded model differs from the saved one" in text
    assert (
        "the optimizer state was not restored (checkpoint after epoch 1: its iteration count "
        "is 0 instead of 4)" in text
    )
    assert "build the optimizer before loading" in text
    assert "Keras warned while loading" in text and "Skipping variable loading" in text


@pytest.mark.fit_carries_states
def test_rnn_states_dropped_by_model_save_are_caught(data: tuple[np.ndarray, np.ndarray]) -> None:
    text = failure(make(stateful=True), *data, epochs=2, fit_kwargs=FIT)
    assert "RNN state 0 of layer 'lstm' (LSTM(4)), shape (8, 4)" in text
    assert "saved " in text and "loaded 0;" in text
    assert (
        "the RNN states of ['lstm'] are not in the checkpoint (after the load at epoch 1 they "
        "are not what was saved): Keras's model.save and save_weights do not save RNN states"
    ) in text
    assert "pytest_rnn.set_states(loaded, states)" in text


def test_dropout_states_not_saved_are_caught(data: tuple[np.ndarray, np.ndarray]) -> None:
    text = failure(make(dropout=0.5), *data, epochs=2, fit_kwargs=FIT)
    if keras.backend.backend() == "torch":
        # Keras 3.15 on torch: the SeedGenerator's state variable stays at [seed, 0]
        # through fit (measured), so the round trip shows nothing; the runs still part.
        assert "the uninterrupted fit repeats itself" in text
        return
    assert "layer 'dropout' (Dropout) 'seed_generator_state'" in text
    assert "the SeedGenerator states that Dropout and recurrent_dropout draw from end apart" in text
    assert "Keras keeps them in model.variables but does not save them" in text


def test_an_unused_seed_generator_is_no_false_alarm(data: tuple[np.ndarray, np.ndarray]) -> None:
    # Dropout(0.5) that training never draws from (inference only): its SeedGenerator
    # is not saved either, but nothing trained depends on it.
    def make_model() -> keras.Model:
        model = make()()
        model.unused = layers.Dropout(0.5, seed=1)  # tracked, never called
        return model

    pytest_rnn.assert_resume_equivalent(make_model, *data, epochs=2, fit_kwargs=FIT)


def test_early_stopping_restarting_its_count_is_caught(data: tuple[np.ndarray, np.ndarray]) -> None:
    # min_delta larger than any improvement: the uninterrupted run stops after
    # patience + 1 epochs, the resumed one counts again from the checkpoint.
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10)
    text = failure(make(), *data, epochs=4, fit_kwargs={**FIT, "callbacks": [stop]})
    assert "'loss' has 2 values in A, 3 in B" in text
    assert "checkpoint after epoch 1: the loaded model equals the saved one" in text
    assert (
        "fit_kwargs['callbacks'][0] (EarlyStopping) keeps its count of epochs without "
        "improvement and its best value in the callback object, which no checkpoint holds"
    ) in text
    assert stop.wait == 0 and stop.model is None  # the user's callback is not used


def test_a_load_that_changes_the_learning_rate_is_caught(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    def load(folder: Path) -> keras.Model:
        model = keras.models.load_model(folder / "model.keras", compile=False)
        model.compile(optimizer=keras.optimizers.Adam(0.001), loss="mse")
        return model

    text = failure(make(), *data, epochs=2, fit_kwargs=FIT, load=load)
    assert "optimizer learning_rate: 0.01 -> 0.001" in text
    assert "the checkpoint after epoch 1 changed a setting" in text
    assert "the optimizer state was not restored" in text  # a new optimizer: iteration 0


def test_a_load_that_changes_a_weight_is_caught(data: tuple[np.ndarray, np.ndarray]) -> None:
    def load(folder: Path) -> keras.Model:
        model = keras.models.load_model(folder / "model.keras")
        bias = model.layers[-1].bias
        bias.assign(bias + 0.5)
        return model

    text = failure(make(), *data, epochs=2, fit_kwargs=FIT, load=load)
    assert "layer 'dense' (Dense(1)) 'bias'" in text
    assert "the loaded weights differ from the saved ones (checkpoint after epoch 1)" in text


def test_a_dataset_that_reshuffles_is_named(data: tuple[np.ndarray, np.ndarray]) -> None:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(data).shuffle(N, seed=1).batch(BATCH)
    text = failure(make(), dataset, None, epochs=2)
    assert "x tf.data.Dataset" in text
    assert "x is a tf.data.Dataset: if it shuffles, every pass over it draws a new order" in text
    # Built afresh by the resumed process, its unseeded shuffle starts again from the seed.
    text = failure(
        make(), lambda: tf.data.Dataset.from_tensor_slices(data).shuffle(N).batch(BATCH), None
    )
    assert "; x <lambda>() (a new tf.data.Dataset per run), y None;" in text
    assert "x is a tf.data.Dataset: if it shuffles, every pass over it draws a new order" in text


def test_a_failure_draws_the_resume_point(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(RNNAssertionError) as info:
        pytest_rnn.assert_resume_equivalent(
            make(), *data, epochs=3, resume_at=[1, 2], fit_kwargs=FIT,
            save=save_weights, load=load_weights_into(make()),
        )  # fmt: skip
    picture = info.value.picture
    assert isinstance(picture, LossPicture)
    assert list(picture.losses) == ["fit(epochs=3)", "resumed"]
    assert picture.marks == ((1, "resumed after epoch 1"), (2, "resumed after epoch 2"))
    assert picture.first_epoch == 1


# --------------------------------------------------------------------------- calls and side effects


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"epochs": 1}, ValueError, "epochs must be >= 2, got 1"),
        ({"resume_at": 0}, ValueError, "resume_at must be >= 1, got 0"),
        (
            {"resume_at": 2},
            ValueError,
            "resume_at must lie in 1..1 (before the last of epochs=2), got 2",
        ),
        ({"epochs": 3, "resume_at": []}, ValueError, "resume_at must name at least one epoch"),
        ({"epochs": 3, "resume_at": [1, 1]}, ValueError, "resume_at names an epoch twice: [1, 1]"),
        ({"resume_at": 1.0}, TypeError, "resume_at must be an int, got float"),
        (
            {"save": "model.keras"},
            TypeError,
            "save must be a function save(model, folder), got str",
        ),
        ({"load": 3}, TypeError, "load must be a function load(folder) -> model, got int"),
        ({"fit_kwargs": {"initial_epoch": 1}}, ValueError, "passes x, y, epochs and initial_epoch"),
        (
            {"load": lambda folder: "model"},
            TypeError,
            "load(folder) must return a Keras model, got str",
        ),
    ],
)
def test_malformed_calls_name_the_argument(
    data: tuple[np.ndarray, np.ndarray], kwargs: dict[str, Any], error: type, words: str
) -> None:
    with pytest.raises(error) as info:
        pytest_rnn.assert_resume_equivalent(make(), *data, **kwargs)
    assert words in str(info.value)


def test_training_that_stops_before_the_resume_point_is_refused(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=10)
    with pytest.raises(ValueError, match=r"training stopped after epoch 2 .* before resume_at=3"):
        pytest_rnn.assert_resume_equivalent(
            make(), *data, epochs=4, resume_at=3, fit_kwargs={**FIT, "callbacks": [stop]}
        )


def test_a_load_must_give_a_new_compiled_model(data: tuple[np.ndarray, np.ndarray]) -> None:
    kept: list[keras.Model] = []

    def save(model: keras.Model, folder: Path) -> None:
        kept.append(model)

    with pytest.raises(ValueError, match=r"returned the model it was saved from"):
        pytest_rnn.assert_resume_equivalent(make(), *data, save=save, load=lambda f: kept[-1])

    def uncompiled(folder: Path) -> keras.Model:
        return keras.models.load_model(folder / "model.keras", compile=False)

    with pytest.raises(ValueError, match=r"returned the uncompiled model 'resumable'"):
        pytest_rnn.assert_resume_equivalent(make(), *data, load=uncompiled)


def test_data_checks(data: tuple[np.ndarray, np.ndarray]) -> None:
    import tensorflow as tf

    x, y = data
    with pytest.raises(ValueError, match="x and y must hold as many samples: x has 32, y has 8"):
        pytest_rnn.assert_resume_equivalent(make(), x, y[:8])
    with pytest.raises(ValueError, match=r"y must be None when x is a tf\.data\.Dataset"):
        pytest_rnn.assert_resume_equivalent(make(), tf.data.Dataset.from_tensor_slices(data), y)
    with pytest.raises(TypeError, match=r"generators are not taken \(a tf.data.Dataset is\)"):
        pytest_rnn.assert_resume_equivalent(make(), [[1.0]], y)


def test_no_side_effects_on_success_and_failure(
    data: tuple[np.ndarray, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # this test's own temp folder
    cwd_files = sorted(os.listdir())
    before = global_state_snapshot(RANDOM_STATE)
    pytest_rnn.assert_resume_equivalent(make(), *data, fit_kwargs=FIT)
    failure(make(), *data, fit_kwargs=FIT, save=save_weights, load=load_weights_into(make()))
    assert changed(before, global_state_snapshot(RANDOM_STATE)) == []
    assert list(tmp_path.iterdir()) == []  # every checkpoint folder removed
    assert sorted(os.listdir()) == cwd_files


def test_a_load_warning_of_a_passing_resume_reaches_the_user(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    def load(folder: Path) -> keras.Model:
        import warnings

        warnings.warn("custom loader: deprecated format", UserWarning, stacklevel=1)
        return keras.models.load_model(folder / "model.keras")

    with pytest.warns(UserWarning, match="custom loader: deprecated format"):
        pytest_rnn.assert_resume_equivalent(make(), *data, fit_kwargs=FIT, load=load)
