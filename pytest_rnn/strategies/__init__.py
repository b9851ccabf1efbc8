"""Hypothesis strategies for sequence-model inputs.

Written in the style of :mod:`hypothesis.extra.numpy`. Each function is a noun
naming what it generates. Bounds are keyword-only ``min_*``/``max_*``
arguments with small defaults. Arguments documented as "value or strategy"
take a plain value or a Hypothesis strategy of such values. Invalid arguments
raise :class:`hypothesis.errors.InvalidArgument` when the function is called,
before any test draws from the strategy.

Defaults stay small (batch <= 4, steps <= 16, values in [-1, 1]) so that
tests running a recurrent model on every example finish quickly and the model
does not saturate.

:func:`sequence_models` and :func:`seq2seq_models` draw small Keras models as
readable specs (:class:`SequenceModel`, :class:`Seq2SeqModel`) whose ``build()``
makes the model with seeded weights.

This module imports only Hypothesis and NumPy. No deep-learning backend is
loaded when you build these strategies or draw specs; ``build()`` imports Keras.

Example:
    A streaming test that draws a batch and a schedule to feed it in::

        from hypothesis import given, strategies as st
        from pytest_rnn.strategies import chunkings, rnn_settings, sequences

        @rnn_settings
        @given(st.data())
        def test_streaming(data):
            x = data.draw(sequences())
            chunks = data.draw(chunkings(x.shape[1]))
            ...
"""

from __future__ import annotations

from pytest_rnn.strategies._checks import Padding as Padding
from pytest_rnn.strategies._chunkings import chunkings as chunkings
from pytest_rnn.strategies._decode import decode_schedules as decode_schedules
from pytest_rnn.strategies._floats import padded_sequences as padded_sequences
from pytest_rnn.strategies._floats import sequences as sequences
from pytest_rnn.strategies._models import seq2seq_models as seq2seq_models
from pytest_rnn.strategies._models import sequence_models as sequence_models
from pytest_rnn.strategies._seq2seq_specs import Seq2SeqModel as Seq2SeqModel
from pytest_rnn.strategies._seq2seq_specs import Seq2SeqNet as Seq2SeqNet
from pytest_rnn.strategies._settings import rnn_settings as rnn_settings
from pytest_rnn.strategies._shapes import PaddedSequences as PaddedSequences
from pytest_rnn.strategies._shapes import sequence_shapes as sequence_shapes
from pytest_rnn.strategies._specs import LayerSpec as LayerSpec
from pytest_rnn.strategies._specs import SequenceModel as SequenceModel
from pytest_rnn.strategies._tokens import padded_token_sequences as padded_token_sequences
from pytest_rnn.strategies._tokens import token_sequences as token_sequences

__all__ = [
    "LayerSpec",
    "PaddedSequences",
    "Seq2SeqModel",
    "Seq2SeqNet",
    "SequenceModel",
    "chunkings",
    "decode_schedules",
    "padded_sequences",
    "padded_token_sequences",
    "rnn_settings",
    "seq2seq_models",
    "sequence_models",
    "sequence_shapes",
    "sequences",
    "token_sequences",
]
