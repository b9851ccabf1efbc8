"""Seed 003: a stateful copy, fed one step at a time, must compute the model it was copied from.

The question: an LSTM classifier is trained stateless on whole sequences of
100 steps; for live prediction a stateful batch-1 copy gets the weights and is
fed one sample at a time (``reset_states`` every 100 samples). Is the
probability it prints after step t what the trained model says about the
first t steps? ``assert_stateful_equals_batch`` answers that in one line,
and names what is wrong when the copy is broken.

Run: ``pytest examples/test_stateful_streaming.py -s`` to see the messages.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import functools

import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from keras import layers

import pytest_rnn
from pytest_rnn import strategies as rnn_st
from pytest_rnn.strategies import rnn_settings

FEATURES = 3


def build_model(*, batch_size: int | None, stateful: bool, name: str) -> keras.Model:
    """Seed 003's build_model (Keras 3 spelling): three LSTMs, LeakyReLU, Dropout."""
    return keras.Sequential(
        [
            keras.Input(batch_shape=(batch_size, None, FEATURES)),
            layers.LSTM(32, return_sequences=True, activation="tanh", stateful=stateful),
            layers.LeakyReLU(),
            layers.Dropout(0.2),
            layers.LSTM(16, return_sequences=True, activation="tanh", stateful=stateful),
            layers.Dropout(0.2),
            layers.LeakyReLU(),
            layers.LSTM(8, return_sequences=False, activation="tanh", stateful=stateful),
            layers.LeakyReLU(),
            layers.Dense(1, activation="sigmoid"),
        ],
        name=name,
    )


@functools.cache
def trained_model() -> keras.Model:
    """The stateless model, trained briefly on whole sequences (class: is the mean positive?)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 20, FEATURES)).astype("float32")
    y = (x.mean(axis=(1, 2)) > 0).astype("float32")
    keras.utils.set_random_seed(0)
    model = build_model(batch_size=None, stateful=False, name="trained")
    model.compile(loss="binary_crossentropy", optimizer=keras.optimizers.Adam(5e-3))
    model.fit(x, y, epochs=2, batch_size=32, verbose=0)
    return model


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(1).normal(size=(4, 30, FEATURES)).astype("float32")


def test_seed003_stateful_copy_streams_the_trained_model(x: np.ndarray) -> None:
    trained = trained_model()
    predicting = build_model(batch_size=1, stateful=True, name="predicting")
    predicting.set_weights(trained.get_weights())
    # Fed one step at a time, one sample at a time, reset between samples:
    # the probability after step t is the trained model on x[:, :t+1].
    pytest_rnn.assert_stateful_equals_batch(trained, x, stateful_model=predicting, chunks=1)


def test_broken_copy_weights_never_copied(x: np.ndarray) -> None:
    predicting = build_model(batch_size=1, stateful=True, name="predicting")  # forgot set_weights
    with pytest.raises(pytest_rnn.RNNAssertionError) as caught:
        pytest_rnn.assert_stateful_equals_batch(trained_model(), x, stateful_model=predicting)
    print(f"\n{caught.value}")
    assert "stateful_model's weights are not model's" in str(caught.value)


def test_broken_copy_one_layer_left_stateless(x: np.ndarray) -> None:
    trained = trained_model()
    predicting = build_model(batch_size=1, stateful=True, name="predicting")
    predicting.layers[3].stateful = False  # the middle LSTM forgets its state after every call
    predicting.set_weights(trained.get_weights())
    with pytest.raises(pytest_rnn.RNNAssertionError) as caught:
        pytest_rnn.assert_stateful_equals_batch(trained, x, stateful_model=predicting)
    print(f"\n{caught.value}")
    assert "has stateful=False" in str(caught.value)


def test_a_same_padded_convolution_cannot_stream(x: np.ndarray) -> None:
    # A common front end that reads one step ahead: fine on whole sequences,
    # wrong when streamed. No stateful copy needed: pytest-rnn builds its own.
    model = keras.Sequential(
        [
            keras.Input((None, FEATURES)),
            layers.Conv1D(8, 3, padding="same", name="lookahead"),
            layers.LSTM(8, return_sequences=True),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="conv_front",
    )
    with pytest.raises(pytest_rnn.RNNAssertionError) as caught:
        pytest_rnn.assert_stateful_equals_batch(model, x, chunks=[5, 1, 24])
    print(f"\n{caught.value}")
    assert "first layer that differs: 'lookahead'" in str(caught.value)


@rnn_settings  # no deadline: the first call traces TensorFlow functions (seconds)
@given(
    data=st.data(),
    shape=rnn_st.sequence_shapes(
        min_batch=1, max_batch=4, min_steps=1, max_steps=24, features=FEATURES
    ),
)
def test_streaming_holds_for_any_shape_and_chunking(
    data: st.DataObject, shape: tuple[int, ...]
) -> None:
    x = data.draw(rnn_st.sequences(shape=shape))
    chunks = data.draw(rnn_st.chunkings(shape[1]))
    pytest_rnn.assert_stateful_equals_batch(trained_model(), x, chunks=chunks)
