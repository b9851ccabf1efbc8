"""Seed 000: "the inference model scores 0.16 where the training model scored 0.045".

A seq2seq LSTM is trained with teacher forcing (the decoder input at step t is
the target at t - 1, behind a start value of -1). An inference loop built from
the same layers feeds each output back as the next input. On the same data the
loop's loss is several times the training loss, and nobody can tell whether
the loop is wired wrong.

One assertion settles the wiring: the seed's loop IS the training graph run on
its own outputs. ``teacher_forcing_gap`` then shows what the gap is: exposure
bias (a model trained on true previous values now sees its own errors, which
compound from step to step), not a bug. The answer's "fix" (feed the LSTM
output back instead of the Dense output) is the bug, and the assertion says
so, as it does for a loop that re-initialises the decoder state every step.

Run with ``pytest -s examples/test_seq2seq_inference.py`` to see the messages.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from keras.layers import LSTM, Dense, Input, Reshape
from keras.models import Model

from pytest_rnn import RNNAssertionError, assert_inference_matches_training, teacher_forcing_gap
from pytest_rnn.strategies import rnn_settings, sequence_shapes, sequences

# The seed's names. The decoder's feature size equals latent_dim only so that
# the answer's variant (which feeds the LSTM's latent output back into the
# LSTM) can be built at all: with other sizes Keras refuses to build it.
latent_dim = 8
encoder_input_dim = decoder_input_dim = decoder_output_dim = 8
Tx, Ty = 6, 4  # encoder and decoder steps
START = -1.0  # "the input for the first timestep in the decoder is -1"


def series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A random walk in 8 channels: the past Tx steps and the next Ty steps."""
    g = np.random.default_rng(seed)
    level = g.uniform(-0.5, 0.5, size=(n, 1, encoder_input_dim))
    walk = level + np.cumsum(g.normal(scale=0.1, size=(n, Tx + Ty, encoder_input_dim)), axis=1)
    walk = walk.astype("float32")
    return walk[:, :Tx], walk[:, Tx:]


def teacher_forced(y: np.ndarray) -> np.ndarray:
    """Decoder inputs for training: the targets shifted right behind the start value."""
    start = np.full_like(y[:, :1], START)
    return np.concatenate([start, y[:, :-1]], axis=1)


class Seq2Seq:
    """Seed 000's shared layers, its training model, and its inference loop."""

    def __init__(self) -> None:
        self.encoder_lstm = LSTM(latent_dim, return_state=True, name="encoder_lstm")
        self.decoder_lstm = LSTM(
            latent_dim, return_sequences=True, return_state=True, name="decoder_lstm"
        )
        self.decoder_dense = Dense(decoder_output_dim, activation="linear", name="decoder_dense")
        self.decoder_reshape = Reshape((decoder_output_dim,), name="decoder_reshape")

        # None instead of the seed's Tx: any encoder length (the @given test varies it).
        self.encoder_inputs = Input(shape=(None, encoder_input_dim), name="encoder_input")
        _, self.h, self.c = self.encoder_lstm(self.encoder_inputs)
        decoder_inputs = Input(shape=(Ty, decoder_input_dim), name="decoder_input")
        decoder_outputs, _, _ = self.decoder_lstm(decoder_inputs, initial_state=[self.h, self.c])
        decoder_outputs = self.decoder_dense(decoder_outputs)
        self.train_model = Model([self.encoder_inputs, decoder_inputs], decoder_outputs)

    def inference_model(self, variant: str = "seed") -> Model:
        """The seed's unrolled loop; ``variant`` names a broken version of it."""
        decoder_input = Input(shape=(1, decoder_input_dim), name="decoder_input")
        current_input, h, c = decoder_input, self.h, self.c
        decoder_outputs = []
        for _ in range(Ty):
            if variant == "reinit_state":  # BUG: the decoder restarts from the encoder states
                h, c = self.h, self.c
            out, h, c = self.decoder_lstm(current_input, initial_state=[h, c])
            if variant == "answer":  # the answer's "fix": feed back before the Dense layer
                current_input = out
                out = self.decoder_dense(out)
            else:  # the seed: the Dense output is what training feeds at the next step
                out = self.decoder_dense(out)
                current_input = out
            decoder_outputs.append(self.decoder_reshape(out))
        return Model([self.encoder_inputs, decoder_input], decoder_outputs, name=variant)


@pytest.fixture(scope="module")
def seq2seq() -> Seq2Seq:
    """Seed 000's model, trained briefly with teacher forcing (a few seconds)."""
    keras.utils.set_random_seed(0)
    net = Seq2Seq()
    x, y = series(384, seed=0)
    net.train_model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    net.train_model.fit([x, teacher_forced(y)], y, batch_size=16, epochs=3, verbose=0)
    return net


@pytest.fixture(scope="module")
def seed_inference(seq2seq: Seq2Seq) -> Model:
    return seq2seq.inference_model()


@pytest.fixture(scope="module")
def reinit_inference(seq2seq: Seq2Seq) -> Model:
    return seq2seq.inference_model("reinit_state")


def test_seed_loop_is_wired_like_training_and_the_gap_is_exposure_bias(
    seq2seq: Seq2Seq, seed_inference: Model
) -> None:
    x_valid, y_valid = series(64, seed=1)
    # The wiring: fed its own outputs, the training model gives the loop's outputs.
    assert_inference_matches_training(seq2seq.train_model, seed_inference, x_valid, start=START)
    # ... also checked against the training data's own start value.
    assert_inference_matches_training(
        seq2seq.train_model, seed_inference, x_valid, decoder_inputs=teacher_forced(y_valid)
    )

    gap = teacher_forcing_gap(seq2seq.train_model, seed_inference, x_valid, y_valid, start=START)
    print(f"\n{gap}")
    assert gap.wiring_consistent
    # The seed's 0.16 vs 0.045: free running is worse, and worse at every later step.
    assert gap.free_running_loss > 1.2 * gap.teacher_forced_loss
    assert np.all(np.diff(gap.free_running_per_step) > 0)
    assert gap.verdict.startswith("Exposure bias, not a bug")


def test_answers_fix_feeds_the_wrong_tensor_back(seq2seq: Seq2Seq) -> None:
    x_valid, _ = series(16, seed=2)
    with pytest.raises(RNNAssertionError, match="step 1 is the first that differs") as info:
        assert_inference_matches_training(
            seq2seq.train_model, seq2seq.inference_model("answer"), x_valid, start=START
        )
    print(f"\n{info.value}")


def test_state_reinitialised_every_step_is_caught(
    seq2seq: Seq2Seq, reinit_inference: Model
) -> None:
    x_valid, _ = series(16, seed=3)
    with pytest.raises(RNNAssertionError, match="re-initialised from the encoder") as info:
        assert_inference_matches_training(
            seq2seq.train_model, reinit_inference, x_valid, start=START
        )
    print(f"\n{info.value}")


@settings(rnn_settings, max_examples=10)
@given(
    x=sequences(
        shape=sequence_shapes(min_batch=1, max_batch=6, min_steps=1, max_steps=12, features=8)
    )
)
def test_wiring_holds_for_any_encoder_length_and_batch(
    seq2seq: Seq2Seq, seed_inference: Model, reinit_inference: Model, x: np.ndarray
) -> None:
    assert_inference_matches_training(seq2seq.train_model, seed_inference, x, start=START)
    with pytest.raises(RNNAssertionError, match="step 1 is the first that differs"):
        assert_inference_matches_training(seq2seq.train_model, reinit_inference, x, start=START)
