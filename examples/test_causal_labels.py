"""Seed 001: per-step labels the model can actually learn.

The question: a TimeDistributed(Dense) model learns "is the sum of 100 binary
features above 50?" perfectly with sequences of one step, and barely better
than chance with two. Why? The data generator sets the label of *every* step
inside a loop over steps (``y[i, :, :] = ...``), so the last step overwrites
the others: the label at step 0 is decided by step 1, which a TimeDistributed
model never sees at step 0. ``assert_labels_causal`` catches the generator
before any training is wasted, with or without the model, and passes the
fixed generator (each step labelled from its own step).

Run: ``pytest examples/test_causal_labels.py -s`` to see the messages.
"""

from __future__ import annotations

import functools
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import layers

from pytest_rnn import RNNAssertionError
from pytest_rnn._causal import (
    assert_labels_causal,
    assert_model_causal,
    assert_windows_causal,
    dependence_map,
)
from pytest_rnn.strategies import rnn_settings, sequence_shapes

FEATURES = 100


def make_other_date(samples: int = 720, sequence: int = 1, features: int = FEATURES, seed: int = 0):
    """Seed 001's generator, unchanged but for a seeded RNG: returns (x, y)."""
    rng = np.random.default_rng(seed)
    x_train = rng.integers(2, size=(samples, sequence, features))
    return x_train - 0.5, labels_as_in_seed(x_train - 0.5)


def labels_as_in_seed(x: np.ndarray) -> np.ndarray:
    """Seed 001's labelling loop, as a function of x (what the assertion needs).

    The threshold is half the features: 50 for the seed's 100.
    """
    samples, sequence, features = x.shape
    y_train = np.zeros((samples, sequence, 2))
    for i_sample in range(samples):
        for i_sequence in range(sequence):
            if np.sum(x[i_sample, i_sequence, :] + 0.5) > features / 2:
                y_train[i_sample, :, :] = np.array([0, 1])  # every step: the bug
            else:
                y_train[i_sample, :, :] = np.array([1, 0])
    return y_train


def labels_per_step(x: np.ndarray) -> np.ndarray:
    """The fix: the label of step t from step t's own sum."""
    above = (x + 0.5).sum(axis=-1) > x.shape[-1] / 2
    return np.stack([~above, above], axis=-1).astype("float32")


def seed_model(nsequence: int | None, features: int = FEATURES) -> keras.Model:
    """Seed 001's model (Keras 3 spelling)."""
    model = keras.Sequential(
        [
            keras.Input((nsequence, features)),
            layers.TimeDistributed(layers.Dense(10)),
            layers.TimeDistributed(layers.Dense(10)),
            layers.TimeDistributed(layers.Dense(2)),
            layers.Activation("softmax"),
        ]
    )
    model.compile(loss="categorical_crossentropy", optimizer="adam")
    return model


def test_seed001_generator_is_caught_before_training() -> None:
    x, _ = make_other_date(64, sequence=2)
    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(labels_as_in_seed, x)
    print(info.value)
    assert "label at step 0 depends on input step 1 (64/64 samples, 8 trials)" in str(info.value)


def test_seed001_generator_is_caught_with_its_model() -> None:
    x, _ = make_other_date(64, sequence=2)
    with pytest.raises(RNNAssertionError) as info:
        assert_labels_causal(labels_as_in_seed, x, model=seed_model(2))
    print(info.value)
    message = str(info.value)
    assert "label at step 0 depends on input step 1 (64/64 samples, 8 trials)" in message
    assert "the model's output at step 0 depends only on step 0" in message


def test_fixed_generator_passes_with_the_same_model() -> None:
    x, _ = make_other_date(64, sequence=2)
    assert_labels_causal(labels_per_step, x, model=seed_model(2))
    assert_model_causal(seed_model(2), x)  # the model itself is causal too


def test_the_dependence_map_shows_it() -> None:
    x, _ = make_other_date(64, sequence=3)
    picture = dependence_map(labels_as_in_seed, x)
    print(picture)
    assert picture.inputs_of(0) == [2]  # every step's label comes from the last step


@functools.cache
def small_model() -> keras.Model:
    """Seed 001's model for 12 features, any length: built once for all examples."""
    return seed_model(None, features=12)


@rnn_settings
@given(shape=sequence_shapes(min_batch=8, max_batch=8, min_steps=1, max_steps=6, features=12))
def test_per_step_labels_are_causal_for_any_length(shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).integers(2, size=shape) - 0.5
    assert_labels_causal(labels_per_step, x, model=small_model(), trials=4)


@rnn_settings
@given(steps=st.integers(2, 6))
def test_seed_generator_is_caught_for_any_length(steps: int) -> None:
    x, _ = make_other_date(16, sequence=steps, features=12)
    with pytest.raises(RNNAssertionError, match=f"depends on input step {steps - 1} "):
        assert_labels_causal(labels_as_in_seed, x, trials=4)


# The same bug in its most common real-world form: windows cut from one series.


def make_windows(series: np.ndarray, window: int = 10):
    """A window of `window` values and the value that follows it."""
    n = len(series) - window
    inputs = np.stack([series[i : i + window] for i in range(n)])
    targets = np.array([series[i + window] for i in range(n)])
    return inputs, targets


def make_windows_off_by_one(series: np.ndarray, window: int = 10):
    n = len(series) - window
    inputs = np.stack([series[i : i + window] for i in range(n)])
    targets = np.array([series[i + window - 1] for i in range(n)])  # the last input value
    return inputs, targets


def test_off_by_one_window_is_caught_and_the_fix_passes() -> None:
    series = np.sin(np.arange(60) / 3.0) + np.random.default_rng(0).normal(0, 0.1, 60)
    with pytest.raises(RNNAssertionError) as info:
        assert_windows_causal(make_windows_off_by_one, series)
    print(info.value)
    assert "off-by-one" in str(info.value)
    assert_windows_causal(make_windows, series)
