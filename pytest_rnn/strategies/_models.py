"""The model strategies: ``sequence_models`` and ``seq2seq_models``.

They check their arguments, then draw the specs of :mod:`._specs` and
:mod:`._seq2seq_specs` (no Keras import: ``build()`` does that), shrinking
towards the smallest plain model.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_rnn.strategies._checks import (
    _check_bounds,
    _check_int,
    _check_names,
    _check_optional_bool,
)
from pytest_rnn.strategies._seq2seq_specs import Seq2SeqModel
from pytest_rnn.strategies._specs import _CELLS, LayerSpec, SequenceModel

_SEQ2SEQ_CELLS = ("LSTM", "GRU")
_MODEL_DTYPES = ("float32", "float64")
_HEAD_ACTIVATIONS = (None, "tanh", "sigmoid", "softmax")
_DROPOUT_RATES = (0.1, 0.25, 0.5)


def sequence_models(
    *,
    cells: tuple[str, ...] | list[str] = _CELLS,
    min_layers: int = 1,
    max_layers: int = 2,
    min_units: int = 2,
    max_units: int = 8,
    max_features: int = 4,
    return_sequences: bool | SearchStrategy[bool] | None = None,
    tokens: bool | SearchStrategy[bool] | None = None,
    dtypes: tuple[str, ...] | list[str] = _MODEL_DTYPES,
) -> SearchStrategy[SequenceModel]:
    """Small Keras sequence models of the kinds people build, as readable specs.

    A drawn model has, in order: a float input (optionally ``Masking``) or token
    ids into an ``Embedding`` (``mask_zero`` drawn); optional ``Dropout``; one to
    ``max_layers`` recurrent layers (``cells``; all but the last return
    sequences), each optionally followed by ``LayerNormalization`` over features
    or ``Dropout``; and optionally a head, ``Dense`` or ``TimeDistributed(Dense)``
    (``tanh``, ``sigmoid``, ``softmax`` over at least 2 units, or linear). Every
    such model is correct: it streams, it is causal when it returns sequences.
    Models shrink towards one LSTM on float inputs without extras.

    Args:
        cells: Recurrent layer kinds to draw from: ``"LSTM"``, ``"GRU"``, ``"SimpleRNN"``.
        min_layers: Fewest recurrent layers, at least 1.
        max_layers: Most recurrent layers.
        min_units: Fewest units per recurrent and head layer, at least 1.
        max_units: Most units.
        max_features: Most input features (float inputs) or embedding size.
        return_sequences: Value or strategy. Whether the output has a time axis;
            ``None`` draws both.
        tokens: Value or strategy. Token-id inputs into an ``Embedding``; ``None``
            draws both.
        dtypes: Dtype policies to draw from (``"float32"``, ``"float64"``).

    Returns:
        A strategy of :class:`SequenceModel`; ``.build()`` makes the Keras model,
        ``.inputs()`` draws inputs for it.

    Raises:
        InvalidArgument: On an unknown cell or dtype, a bound below its minimum, or a
            minimum above its maximum.

    Example:
        ::

            @rnn_settings
            @given(st.data())
            def test_streams(data):
                spec = data.draw(sequence_models(cells=["GRU"], return_sequences=True))
                pytest_rnn.assert_model_causal(spec.build(), data.draw(spec.inputs()))
    """
    cell_names = _check_names(cells, "cells", _CELLS)
    dtype_names = _check_names(dtypes, "dtypes", _MODEL_DTYPES)
    layers = _check_bounds(min_layers, max_layers, "min_layers", "max_layers", 1)
    units = _check_bounds(min_units, max_units, "min_units", "max_units", 1)
    features = _check_int(max_features, "max_features", minimum=1)
    sequence = _check_optional_bool(return_sequences, "return_sequences")
    token = _check_optional_bool(tokens, "tokens")
    return _sequence_models(cell_names, dtype_names, layers, units, features, sequence, token)


@st.composite
def _sequence_models(
    draw: st.DrawFn,
    cells: tuple[str, ...],
    dtypes: tuple[str, ...],
    layer_bounds: tuple[int, int],
    unit_bounds: tuple[int, int],
    max_features: int,
    sequence: SearchStrategy[bool],
    token: SearchStrategy[bool],
) -> SequenceModel:
    units = st.integers(*unit_bounds)
    rates = st.sampled_from(_DROPOUT_RATES)
    layers: list[LayerSpec] = []
    tokens = draw(token, label="tokens")
    features: int | None = None
    if tokens:
        vocab = draw(st.integers(4, 16), label="vocab_size")
        embed = draw(st.integers(1, max_features), label="embedding_dim")
        mask_zero = draw(st.booleans(), label="mask_zero")
        layers.append(LayerSpec.of("Embedding", vocab, embed, mask_zero=mask_zero))
    else:
        features = draw(st.integers(1, max_features), label="features")
        if draw(st.booleans(), label="masking"):
            layers.append(LayerSpec.of("Masking", mask_value=0.0))
    if draw(st.booleans(), label="input dropout"):
        layers.append(LayerSpec.of("Dropout", draw(rates)))
    n_rnn = draw(st.integers(*layer_bounds), label="recurrent layers")
    returns = draw(sequence, label="return_sequences")
    for i in range(n_rnn):
        cell = draw(st.sampled_from(cells), label="cell")
        last = i == n_rnn - 1
        width = draw(units)
        layers.append(LayerSpec.of(cell, width, return_sequences=returns or not last))
        extra = draw(st.sampled_from([None, "LayerNormalization", "Dropout"]), label="after")
        if extra == "LayerNormalization" and width > 1:  # one feature normalises to a constant
            layers.append(LayerSpec.of("LayerNormalization"))
        elif extra == "Dropout":
            layers.append(LayerSpec.of("Dropout", draw(rates)))
    head = draw(st.sampled_from([None, "Dense", "TimeDistributed"]), label="head")
    if head == "TimeDistributed" and not returns:
        head = "Dense"
    if head is not None:
        width = draw(units)
        activations = [a for a in _HEAD_ACTIVATIONS if a != "softmax" or width > 1]
        activation = draw(st.sampled_from(activations), label="activation")
        wrapper = "TimeDistributed" if head == "TimeDistributed" else None
        layers.append(LayerSpec.of("Dense", width, wrapper=wrapper, activation=activation))
    dtype = draw(st.sampled_from(dtypes), label="dtype")
    seed = draw(st.integers(0, 2**16), label="seed")
    return SequenceModel(tuple(layers), features, dtype, seed)


def seq2seq_models(
    *,
    cells: tuple[str, ...] | list[str] = _SEQ2SEQ_CELLS,
    min_units: int = 2,
    max_units: int = 8,
    max_features: int = 4,
    min_decoder_steps: int = 1,
    max_decoder_steps: int = 6,
    tokens: bool | SearchStrategy[bool] | None = None,
    dtypes: tuple[str, ...] | list[str] = _MODEL_DTYPES,
) -> SearchStrategy[Seq2SeqModel]:
    """Encoder-decoder models in the Keras tutorial form, for the seq2seq assertion.

    The encoder's final states start the decoder; the decoder is teacher-forced
    in ``train`` and stepped one output at a time by the tutorial's
    ``(encoder_model, decoder_step_model)`` pair built from the same layers.
    Float models feed their output back unchanged; token models feed back its
    argmax. Every drawn pair is correctly wired.

    Args:
        cells: Recurrent layer kinds to draw from: ``"LSTM"``, ``"GRU"``.
        min_units: Smallest latent size, at least 1.
        max_units: Largest latent size.
        max_features: Most float features per step, or the largest embedding size.
        min_decoder_steps: Fewest decoder steps, at least 1.
        max_decoder_steps: Most decoder steps.
        tokens: Value or strategy. Token models; ``None`` draws both.
        dtypes: Dtype policies to draw from (``"float32"``, ``"float64"``).

    Returns:
        A strategy of :class:`Seq2SeqModel`.

    Raises:
        InvalidArgument: On an unknown cell or dtype, or bad bounds.

    Example:
        ::

            @rnn_settings
            @given(st.data())
            def test_inference(data):
                spec = data.draw(seq2seq_models())
                net = spec.build()
                enc, dec = data.draw(spec.inputs())
                pytest_rnn.assert_inference_matches_training(
                    net.train, net.pair, enc, decoder_inputs=dec, **spec.inference_kwargs
                )
    """
    cell_names = _check_names(cells, "cells", _SEQ2SEQ_CELLS)
    dtype_names = _check_names(dtypes, "dtypes", _MODEL_DTYPES)
    units = _check_bounds(min_units, max_units, "min_units", "max_units", 1)
    features = _check_int(max_features, "max_features", minimum=1)
    steps = _check_bounds(
        min_decoder_steps, max_decoder_steps, "min_decoder_steps", "max_decoder_steps", 1
    )
    token = _check_optional_bool(tokens, "tokens")
    return st.builds(
        Seq2SeqModel,
        cell=st.sampled_from(cell_names),
        units=st.integers(*units),
        # Both branches draw the same choices, so shrinking reaches float inputs.
        features=st.tuples(token, st.integers(1, features)).map(lambda p: None if p[0] else p[1]),
        vocab_size=st.integers(4, 16),
        embedding_dim=st.integers(1, features),
        decoder_steps=st.integers(*steps),
        activation=st.sampled_from([None, "tanh"]),
        dtype=st.sampled_from(dtype_names),
        seed=st.integers(0, 2**16),
    )
