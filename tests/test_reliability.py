"""No false alarms: every correct model drawn at random passes every assertion that applies.

Models come from ``sequence_models()`` and ``seq2seq_models()``: LSTM/GRU/SimpleRNN,
stacked, last-step or sequence outputs, Dense/TimeDistributed heads, Masking,
Embedding with and without mask_zero, Dropout, LayerNormalization, float32 and
float64. Any failure here is a false alarm, a bug in pytest-rnn: Hypothesis
shrinks it to the smallest model and input that show it.

The number of examples comes from ``RNN_RELIABILITY_EXAMPLES`` (default 9 per
test, about 15 s each on a 2-core CPU). The long run:
``RNN_RELIABILITY_EXAMPLES=300 pytest -m reliability -p no:xdist -s``.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest_rnn
from pytest_rnn.strategies import (
    Seq2SeqModel,
    SequenceModel,
    chunkings,
    rnn_settings,
    seq2seq_models,
    sequence_models,
)

EXAMPLES = int(os.environ.get("RNN_RELIABILITY_EXAMPLES", "9"))

pytestmark = pytest.mark.reliability

RELIABILITY = settings(rnn_settings, max_examples=EXAMPLES, database=None)


def _varied(x: np.ndarray) -> bool:
    # Causality is measured by swapping steps; constant data cannot show dependence.
    return len(np.unique(x)) > 1


def aligned_labels(x: np.ndarray) -> np.ndarray:
    """Per-step labels from the same step only: what a correct labelling looks like."""
    per_step = x % 3 if x.ndim == 2 else x.sum(axis=-1) > 0
    return np.asarray(per_step, dtype="int32")


def test_drawn_models_stream_and_are_causal() -> None:
    seen: Counter[str] = Counter()

    @RELIABILITY
    @given(data=st.data(), spec=sequence_models())
    def check(data: st.DataObject, spec: SequenceModel) -> None:
        x = data.draw(spec.inputs(min_steps=2, max_steps=10), label="x")
        chunks = data.draw(chunkings(x.shape[1]), label="chunks")
        model = spec.build()
        user_copy = data.draw(st.booleans(), label="user's batch-1 copy")
        # The spec seeds its weights, so a second build is a correct copy.
        stream = spec.build(batch_size=1, stateful=True) if user_copy else None
        pytest_rnn.assert_stateful_equals_batch(model, x, stateful_model=stream, chunks=chunks)
        seen["stateful"] += 1
        if spec.return_sequences and _varied(x):
            pytest_rnn.assert_model_causal(model, x)
            pytest_rnn.assert_labels_causal(aligned_labels, x, model=model)
            seen["causal"] += 1
        seen["models"] += 1
        seen["masked"] += spec.masked
        seen["float64"] += spec.dtype == "float64"

    check()
    print(f"\nreliability: {dict(seen)} (false alarms: 0)")
    assert seen["models"] >= 1


def test_drawn_encoder_decoders_match_their_inference() -> None:
    seen: Counter[str] = Counter()

    @RELIABILITY
    @given(data=st.data(), spec=seq2seq_models())
    def check(data: st.DataObject, spec: Seq2SeqModel) -> None:
        enc, dec = data.draw(spec.inputs(), label="inputs")
        net = spec.build()
        teacher = data.draw(st.booleans(), label="teacher-forced replay")
        pytest_rnn.assert_inference_matches_training(
            net.train,
            net.pair,
            enc,
            decoder_inputs=dec if teacher else None,
            **spec.inference_kwargs,
        )
        seen["seq2seq"] += 1
        seen["tokens"] += spec.tokens

    check()
    print(f"\nreliability: {dict(seen)} (false alarms: 0)")
    assert seen["seq2seq"] >= 1


def test_a_drawn_model_is_rebuilt_with_the_same_weights() -> None:
    # The property tests rely on it: a second build is the user's correct copy.
    @settings(RELIABILITY, max_examples=3)
    @given(spec=sequence_models())
    def check(spec: SequenceModel) -> None:
        first, second = spec.build(), spec.build(batch_size=1, stateful=True)
        for a, b in zip(first.get_weights(), second.get_weights()):
            np.testing.assert_array_equal(a, b)

    check()
