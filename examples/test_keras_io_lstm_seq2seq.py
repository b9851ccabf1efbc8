"""The keras-io character-level ``lstm_seq2seq`` tutorial, checked without labels.

The tutorial trains an LSTM encoder-decoder with teacher forcing on one-hot
characters, then builds an inference pair from the trained layers
(``encoder_model -> [h, c]``; ``decoder_model([token, h, c]) -> [probs, h,
c]``) and decodes with ``decode_sequence(input_seq)``: one sample at a time, a
Python loop of ``predict`` calls that feeds back the argmax character as a
one-hot vector and stops at the stop character ``"\\n"`` or at a maximum
length. Here the same code runs small (11 characters each side, 16 units) on
untrained weights: a wiring check needs no training and no labels.

- The pair: ``steps=`` says how many decoder steps to run, since the
  tutorial's decoder input has an open length ``(None, None, num_tokens)``.
- ``decode_sequence``: passed as ``pytest_rnn.per_sample(decode_sequence)``
  once it returns the per-step outputs it computed instead of the text (the
  one change, marked below). A sample that stopped at ``"\\n"`` is compared on
  the steps it produced.

The bugs such code is written with are caught: a decoder model that hands
back the states it was given (the encoder's at every step; with the training
data's decoder inputs the message also says the step model, not the
feedback, is wrong), a ``decode_sequence`` that never updates
``states_value``, and one that keeps the old one-hot vector and adds the new
character to it.

Run with ``pytest -s examples/test_keras_io_lstm_seq2seq.py`` to see the messages.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import functools
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

from pytest_rnn import RNNAssertionError, assert_inference_matches_training, per_sample

# The tutorial's data, small and offline: lower-case words "translated" to upper case.
input_texts = ["bad", "cab", "face", "hag", "bead", "cage"]
target_texts = ["\t" + text.upper() + "\n" for text in input_texts]  # start and stop characters
input_characters = sorted("abcdefghij ")
target_characters = sorted("\t\n ABCDEFGH")
num_encoder_tokens = len(input_characters)  # 11
num_decoder_tokens = len(target_characters)  # 11
max_encoder_seq_length = max(len(text) for text in input_texts)
max_decoder_seq_length = max(len(text) for text in target_texts)
latent_dim = 16

input_token_index = {char: i for i, char in enumerate(input_characters)}
target_token_index = {char: i for i, char in enumerate(target_characters)}
reverse_target_char_index = {i: char for char, i in target_token_index.items()}


def encoder_input_data() -> np.ndarray:
    """The tutorial's one-hot encoder inputs, padded with spaces."""
    data = np.zeros((len(input_texts), max_encoder_seq_length, num_encoder_tokens), "float32")
    for i, text in enumerate(input_texts):
        for t, char in enumerate(text):
            data[i, t, input_token_index[char]] = 1.0
        data[i, len(text) :, input_token_index[" "]] = 1.0
    return data


def decoder_input_data() -> np.ndarray:
    """The tutorial's teacher-forced decoder inputs: the targets, one-hot, padded with spaces."""
    data = np.zeros((len(target_texts), max_decoder_seq_length, num_decoder_tokens), "float32")
    for i, text in enumerate(target_texts):
        for t, char in enumerate(text):
            data[i, t, target_token_index[char]] = 1.0
        data[i, len(text) :, target_token_index[" "]] = 1.0
    return data


# The decoder's first input: the one-hot start character, as decode_sequence builds it.
START = np.eye(num_decoder_tokens, dtype="float32")[target_token_index["\t"]]


@functools.cache
def training_model() -> keras.Model:
    """The tutorial's model, untrained (random weights, seeded)."""
    keras.utils.set_random_seed(1)
    encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
    encoder = keras.layers.LSTM(latent_dim, return_state=True)
    _, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]

    decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
    decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    return keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)


@functools.cache
def inference_models(bug: str | None = None) -> tuple[keras.Model, keras.Model]:
    """The tutorial's sampling models, built from the trained model's layers.

    ``bug="input_states"``: the decoder model returns the states it was given
    instead of the new ones, so every step starts from the encoder's states.
    """
    model = training_model()
    encoder_inputs = model.input[0]  # input_1
    _, state_h_enc, state_c_enc = model.layers[2].output  # lstm_1
    encoder_states = [state_h_enc, state_c_enc]
    encoder_model = keras.Model(encoder_inputs, encoder_states)

    decoder_inputs = model.input[1]  # input_2
    decoder_state_input_h = keras.Input(shape=(latent_dim,))
    decoder_state_input_c = keras.Input(shape=(latent_dim,))
    decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
    decoder_lstm = model.layers[3]
    decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(
        decoder_inputs, initial_state=decoder_states_inputs
    )
    decoder_states = [state_h_dec, state_c_dec]
    if bug == "input_states":  # BUG: hands back what it was given
        decoder_states = [keras.layers.Identity()(s) for s in decoder_states_inputs]
    decoder_dense = model.layers[4]
    decoder_outputs = decoder_dense(decoder_outputs)
    decoder_model = keras.Model(
        [decoder_inputs, *decoder_states_inputs], [decoder_outputs, *decoder_states]
    )
    return encoder_model, decoder_model


def make_decode_sequence(bug: str | None = None) -> Callable[[np.ndarray], list[Any]]:
    """The tutorial's ``decode_sequence``, returning its per-step outputs.

    ``bug="encoder_states"``: ``states_value`` is never updated, so every step
    starts from the encoder's states. ``bug="stale_target"``: ``target_seq`` is
    not cleared before the sampled character is written, so the decoder is fed
    every character so far at once.
    """
    encoder_model, decoder_model = inference_models()

    def decode_sequence(input_seq: np.ndarray) -> list[Any]:
        # Encode the input as state vectors.
        states_value = encoder_model.predict(input_seq, verbose=0)

        # Generate empty target sequence of length 1.
        target_seq = np.zeros((1, 1, num_decoder_tokens))
        # Populate the first character of target sequence with the start character.
        target_seq[0, 0, target_token_index["\t"]] = 1.0

        # Sampling loop for a batch of sequences
        # (to simplify, here we assume a batch of size 1).
        stop_condition = False
        decoded_sentence = ""
        outputs = []  # the one change: keep what each step computed ...
        while not stop_condition:
            output_tokens, h, c = decoder_model.predict([target_seq, *states_value], verbose=0)
            outputs.append(output_tokens)

            # Sample a token
            sampled_token_index = np.argmax(output_tokens[0, -1, :])
            sampled_char = reverse_target_char_index[sampled_token_index]
            decoded_sentence += sampled_char

            # Exit condition: either hit max length
            # or find stop character.
            if sampled_char == "\n" or len(decoded_sentence) > max_decoder_seq_length:
                stop_condition = True

            # Update the target sequence (of length 1).
            if bug != "stale_target":  # BUG when skipped: the old character stays set
                target_seq = np.zeros((1, 1, num_decoder_tokens))
            target_seq[0, 0, sampled_token_index] = 1.0

            # Update states
            if bug != "encoder_states":  # BUG when skipped: the encoder's states every step
                states_value = [h, c]
        return outputs  # ... and return it instead of decoded_sentence

    return decode_sequence


# The tutorial's loop stops after max_decoder_seq_length + 1 characters at most.
LOOP_STEPS = max_decoder_seq_length + 1


def test_tutorial_inference_matches_training_without_labels() -> None:
    x = encoder_input_data()
    # The pair, stepped here: no ground-truth decoder inputs, the number of steps instead.
    assert_inference_matches_training(
        training_model(), inference_models(), x, start=START, feedback="onehot",
        steps=max_decoder_seq_length,
    )  # fmt: skip
    # The tutorial's own loop, one sample at a time; samples that emit "\n" stop early.
    assert_inference_matches_training(
        training_model(), per_sample(make_decode_sequence()), x, start=START, feedback="onehot",
        steps=LOOP_STEPS,
    )  # fmt: skip


def test_decoder_model_that_hands_back_its_input_states_is_caught() -> None:
    broken = inference_models("input_states")
    with pytest.raises(RNNAssertionError, match="step 1 is the first that differs") as info:
        assert_inference_matches_training(
            training_model(), broken, encoder_input_data(), start=START, feedback="onehot",
            steps=max_decoder_seq_length,
        )  # fmt: skip
    print(f"\n{info.value}")
    # With the training data's decoder inputs, a teacher-forced replay runs as well, and
    # its failure says the step model is wrong, not what is fed back.
    with pytest.raises(RNNAssertionError, match="the teacher-forced replay fails too") as info:
        assert_inference_matches_training(
            training_model(), broken, encoder_input_data(), decoder_inputs=decoder_input_data(),
            feedback="onehot",
        )  # fmt: skip
    print(f"\n{info.value}")


@pytest.mark.parametrize(
    ("bug", "fragment"),
    [
        ("encoder_states", "re-initialised from the encoder at every step"),
        ("stale_target", "what is fed back differs"),
    ],
)
def test_decode_sequence_bugs_are_caught(bug: str, fragment: str) -> None:
    with pytest.raises(RNNAssertionError, match=fragment) as info:
        assert_inference_matches_training(
            training_model(), per_sample(make_decode_sequence(bug)), encoder_input_data(),
            start=START, feedback="onehot", steps=LOOP_STEPS,
        )  # fmt: skip
    print(f"\n{info.value}")
