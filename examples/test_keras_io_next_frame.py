"""keras-io's next-frame prediction with ConvLSTM2D: each predicted frame reads the next one.

The example trains on moving-digit videos: the inputs are frames ``0..n-2``,
the targets frames ``1..n-1``, so the output at step t is the prediction of
frame t + 1. Its model stacks ``ConvLSTM2D`` layers (causal: a recurrent
state over time) and ends in ``Conv3D(1, (3, 3, 3), padding="same")``. A
Conv3D over ``(time, height, width)`` frames has time as its first spatial
axis, and a kernel of 3 with ``padding="same"`` there reads frame t + 1 to
make output t: the model is shown the frame it is asked to predict, so
training loss looks good and frame-by-frame generation (feeding back its own
predictions) cannot work.

``assert_model_causal`` names the head and why; both fixes it suggests pass:
a head that works within each frame (``kernel_size=(1, 3, 3)``), or one that
reads the two previous frames and this one (``ZeroPadding3D`` on the left of
the time axis only, then ``padding="valid"``). The models here are
small (8 x 8 frames, 4 filters) and untrained: causality is a property of the
wiring, not of the weights.

Run: ``pytest examples/test_keras_io_next_frame.py -s`` to see the message.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest
from keras import layers

from pytest_rnn import RNNAssertionError, assert_model_causal

FRAMES, SIZE = 6, 8


def next_frame_model(head: str = "published") -> keras.Model:
    """The keras-io model, small: ConvLSTM2D x 3 with BatchNormalization, a Conv3D head.

    ``head``: "published" (3 x 3 x 3, padding "same"), "per-frame" (1 x 3 x 3)
    or "past-frames" (3 x 3 x 3 over the two previous frames and this one: the
    time axis padded on the left only, then padding "valid").
    """
    keras.utils.set_random_seed(0)
    inp = layers.Input(shape=(None, SIZE, SIZE, 1))
    x = layers.ConvLSTM2D(4, (5, 5), padding="same", return_sequences=True, activation="relu")(inp)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(4, (3, 3), padding="same", return_sequences=True, activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.ConvLSTM2D(4, (1, 1), padding="same", return_sequences=True, activation="relu")(x)
    if head == "past-frames":
        x = layers.ZeroPadding3D(((2, 0), (1, 1), (1, 1)))(x)
        x = layers.Conv3D(1, (3, 3, 3), activation="sigmoid", padding="valid", name="head")(x)
    else:
        kernel = (1, 3, 3) if head == "per-frame" else (3, 3, 3)
        x = layers.Conv3D(1, kernel, activation="sigmoid", padding="same", name="head")(x)
    model = keras.Model(inp, x)
    model.compile(loss="binary_crossentropy", optimizer="adam")
    return model


def frames(samples: int = 2, seed: int = 0) -> np.ndarray:
    """Random videos ``(samples, FRAMES, SIZE, SIZE, 1)`` in [0, 1], as the example's data."""
    return np.random.default_rng(seed).random((samples, FRAMES, SIZE, SIZE, 1)).astype("float32")


def test_the_published_head_reads_the_frame_it_predicts() -> None:
    with pytest.raises(RNNAssertionError) as info:
        assert_model_causal(next_frame_model(), frames())
    print(info.value)
    message = str(info.value)
    assert "output at steps 0-4 of 6 changes when later steps change" in message
    assert "it reads up to 1 step ahead" in message
    assert (
        "first layer whose output leaks: 'head' (Conv3D(1, k=(3, 3, 3), padding='same')): "
        "Conv3D padding='same' reads 1 future step along its first spatial axis, the time axis "
        "here (kernel_size[0] > 1)" in message
    )


@pytest.mark.parametrize("head", ["per-frame", "past-frames"])
def test_the_fixed_heads_pass(head: str) -> None:
    assert_model_causal(next_frame_model(head), frames())
