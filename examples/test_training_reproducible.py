"""Seed 002: fit(epochs=1) in a loop, with or without reset_states, vs one fit(epochs=N).

The question (Keras 2, 2017): a stateful LSTM learning a sine wave from a
noisy one, trained

    for i in range(epochs):                 # case 1
        model.fit(x, y, epochs=1, batch_size=100, shuffle=False)
        model.reset_states()

    model.fit(x, y, epochs=epochs, batch_size=100, shuffle=False)   # case 2

gave different results, and showing when the two agree took restarting
Python between the cases. With pytest-rnn each claim is one line, in one
process:

- without resets, the loop and the single fit train the same model;
- with resets before every epoch in *both* (``reset_states=True``: a reset
  before each call of the loop, ``ResetStatesCallback`` in the single fit), too;
- an epoch-indexed ``LearningRateScheduler`` breaks the loop (the epoch index
  restarts at 0 at every call): caught, and the fix passes;
- a training function that shuffles with an unseeded numpy Generator does not
  reproduce: caught, with the line that did it.

Run with ``pytest -s examples/test_training_reproducible.py`` to see the messages.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest
from hypothesis import given, settings

import pytest_rnn
from pytest_rnn import assert_fit_equivalent, assert_training_reproducible
from pytest_rnn.strategies import chunkings

BATCH = 100  # the seed's batch size; the sample count must stay a multiple of it
EPOCHS = 3


def sine_wave() -> tuple[np.ndarray, np.ndarray]:
    """The seed's data: a noisy sine wave in, the clean one out, one step per sample."""
    rng = np.random.default_rng(1)
    y = np.sin(np.arange(0, 10, 0.01))  # 1000 points
    x = y + rng.normal(loc=0, scale=0.1, size=len(y))
    return x.reshape(-1, 1, 1).astype("float32"), y.reshape(-1, 1).astype("float32")


X, Y = sine_wave()
FIT = {"batch_size": BATCH, "shuffle": False}


def make_model(optimizer: object = None) -> keras.Model:
    """The seed's model: two stacked stateful LSTM(10), a static batch of 100.

    The seed's ``optimizer='adadelta'`` meant a learning rate of 1.0 in Keras 2;
    Keras 3's default is 0.001, so it is spelled out.
    """
    if optimizer is None:
        optimizer = keras.optimizers.Adadelta(learning_rate=1.0)
    model = keras.Sequential(
        [
            keras.Input(batch_shape=(BATCH, 1, 1)),
            keras.layers.LSTM(10, return_sequences=True, stateful=True),
            keras.layers.LSTM(10, stateful=True),
            keras.layers.Dense(1),
        ]
    )
    model.compile(loss="mse", optimizer=optimizer)
    return model


# --------------------------------------------------------------------------- the seed's question


@pytest.mark.parametrize("reset", [False, True], ids=["without-resets", "with-resets"])
def test_loop_of_fit_epochs_1_equals_one_fit(reset: bool) -> None:
    """Both of the seed's cases, settled: the same model either way."""
    assert_fit_equivalent(
        make_model, X, Y, epochs=EPOCHS, fit_kwargs=FIT, reset_states=reset, rtol=0, atol=0
    )


# --------------------------------------------------------------------------- what breaks the loop


def halve_each_epoch(epoch: int, lr: float) -> float:
    return 1.0 * 0.5**epoch


def test_epoch_indexed_learning_rate_schedule_is_caught() -> None:
    """The bug: in the loop the scheduler sees epoch 0 at every call."""
    scheduler = keras.callbacks.LearningRateScheduler(halve_each_epoch)
    with pytest.raises(pytest_rnn.RNNAssertionError) as info:
        assert_fit_equivalent(
            make_model, X, Y, epochs=EPOCHS, fit_kwargs={**FIT, "callbacks": [scheduler]}
        )
    print(info.value)
    assert "LearningRateScheduler" in str(info.value)
    assert "initial_epoch=i" in str(info.value)


def test_step_based_learning_rate_schedule_passes() -> None:
    """The fix: schedule by optimizer step; optimizer.iterations carries over between calls.

    (Or keep the scheduler and fix the loop:
    ``for i in range(epochs): model.fit(x, y, epochs=i + 1, initial_epoch=i, ...)``.)
    """

    def make() -> keras.Model:
        # 10 steps per epoch: the same halving per epoch as above, counted in steps.
        lr = keras.optimizers.schedules.ExponentialDecay(1.0, decay_steps=10, decay_rate=0.5)
        return make_model(keras.optimizers.Adadelta(learning_rate=lr))

    assert_fit_equivalent(make, X, Y, epochs=EPOCHS, fit_kwargs=FIT)


# --------------------------------------------------------------------------- repeatable training


def train(order_seed: int | None = 0) -> keras.Model:
    """Build and train; the batches are visited in a random (seeded) order."""
    batches = np.random.default_rng(order_seed).permutation(len(X) // BATCH)
    order = (batches[:, None] * BATCH + np.arange(BATCH)).ravel()
    model = make_model()
    model.fit(X[order], Y[order], epochs=2, verbose=0, **FIT)
    return model


def test_seeded_training_reproduces() -> None:
    assert_training_reproducible(train)


def test_unseeded_numpy_generator_is_caught() -> None:
    """The bug: ``np.random.default_rng()`` without a seed ignores set_random_seed."""
    with pytest.raises(pytest_rnn.RNNAssertionError) as info:
        assert_training_reproducible(lambda: train(order_seed=None))
    print(info.value)
    assert "np.random.default_rng() without a seed was called at" in str(info.value)


# --------------------------------------------------------------------------- resuming a stream


@pytest.fixture(scope="module")
def streaming_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return make_model()


@settings(max_examples=5, deadline=None)
@given(chunks=chunkings(len(X) // BATCH, min_chunks=2))
def test_saved_states_resume_the_stream(streaming_model: keras.Model, chunks: list[int]) -> None:
    """get_states/set_states checkpoint a stateful stream: whatever runs in between,
    restoring the states resumes it exactly (here: after each chunk of batches)."""
    model = streaming_model
    batches = np.split(X, len(X) // BATCH)
    pytest_rnn.reset_states(model)
    uninterrupted = np.concatenate([np.asarray(model(b)) for b in batches])

    pytest_rnn.reset_states(model)
    resumed, start = [], 0
    for n in chunks:
        resumed += [np.asarray(model(b)) for b in batches[start : start + n]]
        start += n
        saved = pytest_rnn.get_states(model)
        model(-batches[0])  # something else runs on the model in between
        pytest_rnn.set_states(model, saved)
    np.testing.assert_array_equal(np.concatenate(resumed), uninterrupted)
