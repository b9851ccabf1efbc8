"""Tests for pytest_rnn.strategies: every drawn value keeps its documented contract."""

from __future__ import annotations

import ast
import itertools
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pytest_rnn import strategies as rs
from pytest_rnn.strategies import (
    LayerSpec,
    PaddedSequences,
    Seq2SeqModel,
    SequenceModel,
    chunkings,
    padded_sequences,
    padded_token_sequences,
    rnn_settings,
    seq2seq_models,
    sequence_models,
    sequence_shapes,
    sequences,
    token_sequences,
)

FIND = settings(database=None, max_examples=2000)  # find() shrinks to the minimal example
EXISTS = settings(FIND, phases=[Phase.generate])  # any example will do: skip shrinking
PROPERTY = settings(max_examples=50)  # keeps this file within a few seconds


def draw_once(strategy: st.SearchStrategy[Any]) -> Any:
    """Draw one value from ``strategy`` inside a real ``@given`` run."""
    drawn: list[Any] = []

    @settings(max_examples=1, database=None, phases=[Phase.generate])
    @given(strategy)
    def run(value: Any) -> None:
        drawn.append(value)

    run()
    return drawn[0]


def check_padded(
    batch: PaddedSequences, *, min_length: int = 1, max_length: int | None = None
) -> None:
    """Assert everything PaddedSequences promises about one drawn batch."""
    x, lengths, mask = batch.x, batch.lengths, batch.mask
    n, steps = x.shape[:2]
    assert lengths.shape == (n,)
    assert lengths.dtype == np.int32
    assert mask.shape == (n, steps)
    assert mask.dtype == np.bool_
    assert batch.padding in ("pre", "post")
    longest = steps if max_length is None else min(max_length, steps)
    assert ((lengths >= min_length) & (lengths <= longest)).all()
    assert (mask.sum(axis=1) == lengths).all()
    for i, length in enumerate(lengths):
        expected = np.zeros(steps, dtype=bool)
        if batch.padding == "post":
            expected[:length] = True
        else:
            expected[steps - length :] = True
        assert (mask[i] == expected).all()
        assert batch.unpadded(i).shape == (length, *x.shape[2:])
    pad = x.dtype.type(batch.value)
    flat = x.reshape(n, steps, -1)
    assert (flat[~mask] == pad).all()
    # Keras Masking semantics: a step is valid iff some feature differs from the pad value.
    assert (np.any(flat != pad, axis=2) == mask).all()


# --------------------------------------------------------------------------- sequence_shapes


@PROPERTY
@given(sequence_shapes())
def test_sequence_shapes_defaults_are_small(shape: tuple[int, ...]) -> None:
    batch, steps, features = shape
    assert 1 <= batch <= 4
    assert 1 <= steps <= 16
    assert features == 3


@PROPERTY
@given(sequence_shapes(min_batch=2, max_batch=3, min_steps=5, max_steps=7, features=(2, 4)))
def test_sequence_shapes_respect_bounds(shape: tuple[int, ...]) -> None:
    assert len(shape) == 4
    assert 2 <= shape[0] <= 3
    assert 5 <= shape[1] <= 7
    assert shape[2:] == (2, 4)


@PROPERTY
@given(sequence_shapes(min_batch=9, min_steps=20))
def test_sequence_shapes_default_maximums_follow_minimums(shape: tuple[int, ...]) -> None:
    assert shape[0] == 9
    assert shape[1] == 20


@pytest.mark.parametrize(
    ("features", "allowed"),
    [
        (5, {(5,)}),
        ((2, 3), {(2, 3)}),
        ((), {()}),
        (st.integers(1, 3), {(1,), (2,), (3,)}),
        (st.sampled_from([(2,), (2, 2)]), {(2,), (2, 2)}),
    ],
    ids=["int", "tuple", "empty", "strategy-of-int", "strategy-of-tuple"],
)
def test_sequence_shapes_features_value_or_strategy(features: Any, allowed: set[Any]) -> None:
    @given(sequence_shapes(features=features))
    def run(shape: tuple[int, ...]) -> None:
        assert shape[2:] in allowed

    run()


def test_sequence_shapes_shrink_to_smallest() -> None:
    assert find(sequence_shapes(), lambda s: True, settings=FIND) == (1, 1, 3)


# --------------------------------------------------------------------------- sequences


@PROPERTY
@given(sequences())
def test_sequences_default_contract(x: np.ndarray) -> None:
    assert x.dtype == np.float32
    assert x.ndim == 3
    assert 1 <= x.shape[0] <= 4
    assert 1 <= x.shape[1] <= 16
    assert np.isfinite(x).all()
    assert ((x >= -1.0) & (x <= 1.0)).all()
    tiny = np.finfo(np.float32).tiny
    assert ((x == 0) | (np.abs(x) >= tiny)).all(), "no subnormals"


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", np.float32])
def test_sequences_bounds_are_rounded_into_the_dtype(dtype: Any) -> None:
    @given(sequences(shape=(2, 3, 4), dtype=dtype, min_value=0.1, max_value=0.3))
    def run(x: np.ndarray) -> None:
        assert x.dtype == np.dtype(dtype)
        assert x.shape == (2, 3, 4)
        assert ((x >= 0.1) & (x <= 0.3)).all()

    run()


@PROPERTY
@given(
    sequences(
        shape=st.sampled_from([(1, 2), (2, 3, 4, 5)]),
        dtype=st.sampled_from(["float16", "float64"]),
    )
)
def test_sequences_shape_and_dtype_accept_strategies(x: np.ndarray) -> None:
    assert x.shape in {(1, 2), (2, 3, 4, 5)}
    assert x.dtype.name in {"float16", "float64"}
    assert np.isfinite(x).all()


@PROPERTY
@given(sequences(shape=(3, 4, 2), elements=st.sampled_from([0.5, 2.0])))
def test_sequences_custom_elements(x: np.ndarray) -> None:
    assert set(np.unique(x)) <= {0.5, 2.0}


# --------------------------------------------------------------------------- padded_sequences


@PROPERTY
@given(padded_sequences())
def test_padded_sequences_default_contract(batch: PaddedSequences) -> None:
    check_padded(batch)
    assert batch.padding == "post"
    assert batch.value == 0.0
    assert batch.x.dtype == np.float32
    assert np.isfinite(batch.x).all()


@PROPERTY
@given(padded_sequences(padding="pre", shape=(3, 6, 2), value=-2.5))
def test_padded_sequences_pre_with_a_value_outside_the_range(batch: PaddedSequences) -> None:
    check_padded(batch)
    assert batch.padding == "pre"
    assert batch.x.shape == (3, 6, 2)


@PROPERTY
@given(padded_sequences(padding=st.sampled_from(["pre", "post"]), min_length=3, max_length=5))
def test_padded_sequences_padding_strategy_and_length_bounds(batch: PaddedSequences) -> None:
    check_padded(batch, min_length=3, max_length=5)
    assert batch.x.shape[1] >= 3


@PROPERTY
@given(padded_sequences(shape=(4, 5, 3), elements=st.sampled_from([0.0, 1.0])))
def test_padded_sequences_valid_steps_never_look_like_padding(batch: PaddedSequences) -> None:
    # Elements are mostly the pad value here, so the redraw of all-pad valid steps runs.
    check_padded(batch)


@PROPERTY
@given(padded_sequences(shape=(2, 4), elements=st.sampled_from([0.0, 1.0]), padding="pre"))
def test_padded_sequences_rank_two(batch: PaddedSequences) -> None:
    check_padded(batch)
    assert (batch.x[batch.mask] == 1.0).all()


@PROPERTY
@given(padded_sequences(shape=st.sampled_from([(2, 1, 3), (2, 4, 3)]), min_length=3))
def test_padded_sequences_reject_drawn_shapes_shorter_than_min_length(
    batch: PaddedSequences,
) -> None:
    assert batch.x.shape == (2, 4, 3)
    check_padded(batch, min_length=3)


@PROPERTY
@given(padded_sequences(dtype=st.sampled_from(["float16", "float64"]), value=0.1))
def test_padded_sequences_dtype_strategy_with_inexact_pad_value(batch: PaddedSequences) -> None:
    check_padded(batch)
    assert (batch.x[~batch.mask] == batch.value).all()
    assert batch.value == float(batch.x.dtype.type(0.1))


def test_padded_sequences_draw_both_sides_and_shrink_to_one_padded_step() -> None:
    both = padded_sequences(padding=st.sampled_from(["pre", "post"]))
    assert find(both, lambda b: b.padding == "pre", settings=EXISTS).padding == "pre"
    assert find(both, lambda b: b.padding == "post", settings=EXISTS).padding == "post"
    minimal = find(padded_sequences(), lambda b: not b.mask.all(), settings=FIND)
    assert minimal.x.shape == (1, 2, 3)
    assert minimal.lengths.tolist() == [1]


# --------------------------------------------------------------------------- chunkings


@PROPERTY
@given(st.data())
def test_chunkings_contract_under_any_feasible_bounds(data: st.DataObject) -> None:
    steps = data.draw(st.integers(1, 40), label="steps")
    min_chunk = data.draw(st.integers(1, 6), label="min_chunk")
    max_chunk = data.draw(st.none() | st.integers(min_chunk, 12), label="max_chunk")
    min_chunks = data.draw(st.integers(1, 4), label="min_chunks")
    max_chunks = data.draw(st.none() | st.integers(min_chunks, 10), label="max_chunks")
    kwargs: dict[str, Any] = {
        "min_chunk": min_chunk,
        "max_chunk": max_chunk,
        "min_chunks": min_chunks,
        "max_chunks": max_chunks,
    }
    largest = steps if max_chunk is None else min(max_chunk, steps)
    fewest = max(min_chunks, -(-steps // largest))
    most = steps // min_chunk if max_chunks is None else min(steps // min_chunk, max_chunks)
    if fewest > most:
        with pytest.raises(InvalidArgument, match="no schedule"):
            chunkings(steps, **kwargs)
        return
    chunks = data.draw(chunkings(steps, **kwargs), label="chunks")
    assert isinstance(chunks, list)
    assert sum(chunks) == steps
    assert all(isinstance(c, int) and c >= min_chunk for c in chunks)
    assert max_chunk is None or max(chunks) <= max_chunk
    assert min_chunks <= len(chunks)
    assert max_chunks is None or len(chunks) <= max_chunks


def test_chunkings_reach_uneven_all_ones_and_whole_schedules() -> None:
    uneven = find(chunkings(8), lambda c: len(set(c)) == 3 and c != sorted(c), settings=EXISTS)
    assert sum(uneven) == 8
    assert find(chunkings(8), lambda c: c == [1] * 8, settings=EXISTS) == [1] * 8
    assert find(chunkings(8), lambda c: True, settings=FIND) == [8]


def test_chunkings_shrink_to_two_chunks_for_a_hand_over_bug() -> None:
    assert find(chunkings(8), lambda c: len(c) > 1, settings=FIND) == [1, 7]
    assert find(chunkings(8, min_chunks=3), lambda c: True, settings=FIND) == [1, 1, 6]


def _hands_over_at(chunks: list[int], *steps: int) -> bool:
    return set(steps) <= set(itertools.accumulate(chunks))


@pytest.mark.parametrize(
    ("steps", "at", "shrunk"),
    [(12, (7,), [7, 5]), (20, (13,), [13, 7]), (8, (3,), [3, 5]), (12, (7, 9), [7, 2, 3])],
)
def test_chunkings_shrink_to_the_hand_overs_a_bug_needs(
    steps: int, at: tuple[int, ...], shrunk: list[int]
) -> None:
    # Ends are drawn as positions: shrinking away an earlier chunk keeps the
    # later hand-overs in place (drawn as lengths, (12, 7) shrank to [1, 1, 1, 4, 5]).
    assert find(chunkings(steps), lambda c: _hands_over_at(c, *at), settings=FIND) == shrunk


@PROPERTY
@given(chunkings(st.integers(1, 12), max_chunk=3, max_chunks=2))
def test_chunkings_steps_strategy_rejects_unsplittable_draws(chunks: list[int]) -> None:
    assert 1 <= len(chunks) <= 2
    assert all(1 <= c <= 3 for c in chunks)
    assert sum(chunks) <= 6


@PROPERTY
@given(st.data())
def test_chunkings_fit_a_drawn_sequence(data: st.DataObject) -> None:
    x = data.draw(sequences())
    chunks = data.draw(chunkings(x.shape[1], min_chunks=min(2, x.shape[1])))
    pieces = np.split(x, np.cumsum(chunks)[:-1], axis=1)
    assert np.array_equal(np.concatenate(pieces, axis=1), x)


# --------------------------------------------------------------------------- tokens


@PROPERTY
@given(token_sequences())
def test_token_sequences_default_contract(tokens: np.ndarray) -> None:
    assert tokens.dtype == np.int32
    assert tokens.ndim == 2
    assert 1 <= tokens.shape[0] <= 4
    assert 1 <= tokens.shape[1] <= 16
    assert ((tokens >= 1) & (tokens <= 15)).all()


@PROPERTY
@given(
    token_sequences(
        shape=st.sampled_from([(1, 3), (2, 7)]),
        vocab_size=300,
        min_token=0,
        dtype=st.sampled_from(["int64", "uint16"]),
    )
)
def test_token_sequences_value_or_strategy(tokens: np.ndarray) -> None:
    assert tokens.shape in {(1, 3), (2, 7)}
    assert tokens.dtype.name in {"int64", "uint16"}
    assert ((tokens >= 0) & (tokens < 300)).all()


@PROPERTY
@given(padded_token_sequences(padding=st.sampled_from(["pre", "post"]), vocab_size=5))
def test_padded_token_sequences_match_mask_zero(batch: PaddedSequences) -> None:
    check_padded(batch)
    assert batch.value == 0
    assert batch.x.dtype == np.int32
    assert batch.x.ndim == 2
    assert (batch.mask == (batch.x != 0)).all()
    assert (batch.x < 5).all()


@PROPERTY
@given(padded_token_sequences(shape=(3, 6), padding="pre", min_length=2, max_length=4))
def test_padded_token_sequences_fixed_shape_and_lengths(batch: PaddedSequences) -> None:
    assert batch.x.shape == (3, 6)
    assert batch.padding == "pre"
    check_padded(batch, min_length=2, max_length=4)


# --------------------------------------------------------------------------- models


def check_spec(spec: SequenceModel) -> None:
    """What every drawn SequenceModel promises, checked without building it."""
    rnns = [layer for layer in spec.layers if layer.recurrent]
    assert rnns and all(layer.wrapper is None for layer in rnns)
    assert all(layer.options["return_sequences"] for layer in rnns[:-1])
    assert spec.return_sequences == rnns[-1].options["return_sequences"]
    if spec.tokens:
        assert spec.layers[0].kind == "Embedding"
        assert spec.vocab_size is not None and spec.vocab_size >= 4
    else:
        assert spec.features is not None and spec.features >= 1
        assert all(layer.kind != "Embedding" for layer in spec.layers)
    for layer in spec.layers:
        if layer.wrapper == "TimeDistributed":
            assert spec.return_sequences
        if layer.kind == "LayerNormalization":
            assert "axis" not in layer.options  # over features: it streams
        if layer.options.get("activation") == "softmax":
            assert layer.args[0] > 1
    text = repr(spec)  # what Hypothesis prints for a falsifying example
    assert text.startswith("SequenceModel(") and all(repr(x) in text for x in spec.layers)


@PROPERTY
@given(sequence_models())
def test_sequence_models_default_contract(spec: SequenceModel) -> None:
    check_spec(spec)
    rnns = [layer for layer in spec.layers if layer.recurrent]
    assert 1 <= len(rnns) <= 2
    assert all(2 <= layer.args[0] <= 8 for layer in rnns)
    assert spec.dtype in ("float32", "float64")


@PROPERTY
@given(
    sequence_models(
        cells=["GRU"], min_layers=3, max_layers=3, min_units=5, max_units=6, max_features=2,
        return_sequences=True, tokens=False, dtypes=["float64"],
    )
)  # fmt: skip
def test_sequence_models_bounds_are_respected(spec: SequenceModel) -> None:
    check_spec(spec)
    rnns = [layer for layer in spec.layers if layer.recurrent]
    assert [layer.kind for layer in rnns] == ["GRU"] * 3
    assert all(5 <= layer.args[0] <= 6 for layer in rnns)
    assert spec.return_sequences and not spec.tokens and spec.dtype == "float64"
    assert spec.features is not None and spec.features <= 2


@PROPERTY
@given(sequence_models(tokens=st.just(True), return_sequences=st.sampled_from([False])))
def test_sequence_models_value_or_strategy(spec: SequenceModel) -> None:
    check_spec(spec)
    assert spec.tokens and not spec.return_sequences


def test_sequence_models_reach_every_layer_kind_and_shrink_to_one_lstm() -> None:
    models = sequence_models()
    for kind in ["LSTM", "GRU", "SimpleRNN", "Masking", "Dropout", "LayerNormalization", "Dense"]:
        found = find(models, lambda s, k=kind: any(x.kind == k for x in s.layers), settings=EXISTS)
        assert any(layer.kind == kind for layer in found.layers)
    assert find(
        models, lambda s: any(x.wrapper == "TimeDistributed" for x in s.layers), settings=EXISTS
    )
    assert (
        find(models, lambda s: s.tokens and s.masked, settings=EXISTS)
        .layers[0]
        .options["mask_zero"]
    )
    assert find(models, lambda s: len([x for x in s.layers if x.recurrent]) == 2, settings=EXISTS)
    assert find(models, lambda s: s.dtype == "float64", settings=EXISTS).dtype == "float64"
    minimal = find(models, lambda s: True, settings=FIND)
    assert repr(minimal) == (
        "SequenceModel(features=1, layers=[LSTM(2, return_sequences=False)], dtype='float32', seed=0)"
    )


@settings(max_examples=3, database=None, deadline=None)
@given(st.data())
def test_built_models_take_the_drawn_inputs(data: st.DataObject) -> None:
    spec = data.draw(sequence_models(max_layers=1))
    x = data.draw(spec.inputs(min_batch=2, max_batch=3, min_steps=2, max_steps=5))
    assert 2 <= x.shape[0] <= 3 and 2 <= x.shape[1] <= 5
    if spec.tokens:
        assert x.ndim == 2 and x.dtype == np.int32 and x.max() < (spec.vocab_size or 0)
    else:
        assert x.shape[2] == spec.features and x.dtype == np.dtype(spec.dtype)
    model = spec.build()
    y = keras.ops.convert_to_numpy(model(x))
    assert y.shape[0] == x.shape[0] and (y.ndim == 3) == spec.return_sequences
    assert y.dtype == np.dtype(spec.dtype)
    stream = spec.build(batch_size=1, stateful=True)
    assert all(layer.stateful for layer in stream.layers if hasattr(layer, "stateful"))
    for a, b in zip(model.get_weights(), stream.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_building_leaves_the_global_random_state_alone() -> None:
    import random

    py, np_state = random.getstate(), np.random.get_state()
    SequenceModel((LayerSpec.of("GRU", 3), LayerSpec.of("Dense", 2))).build()
    assert random.getstate() == py
    assert np.array_equal(np.random.get_state()[1], np_state[1])


def test_layer_specs_read_like_the_keras_call() -> None:
    spec = LayerSpec.of("LSTM", 4, wrapper="Bidirectional", return_sequences=True)
    assert repr(spec) == "Bidirectional(LSTM(4, return_sequences=True))"
    assert repr(spec.replace(go_backwards=True)).endswith("go_backwards=True))")
    model = SequenceModel((spec,)).build()
    assert type(model.layers[0]).__name__ == "Bidirectional"
    inserted = SequenceModel((LayerSpec.of("GRU", 2),)).inserted(0, LayerSpec.of("Masking"))
    assert [x.kind for x in inserted.layers] == ["Masking", "GRU"]


@PROPERTY
@given(seq2seq_models(cells=["GRU"], min_units=3, max_units=3, max_decoder_steps=2, tokens=True))
def test_seq2seq_models_bounds_are_respected(spec: Seq2SeqModel) -> None:
    assert spec.cell == "GRU" and spec.units == 3 and spec.tokens
    assert 1 <= spec.decoder_steps <= 2
    assert spec.inference_kwargs == {"start": 1, "feedback": "argmax"}


def test_seq2seq_models_shrink_to_a_small_float_lstm() -> None:
    minimal = find(seq2seq_models(), lambda s: True, settings=FIND)
    assert repr(minimal) == (
        "Seq2SeqModel(LSTM(2), features=1, activation=None, decoder_steps=1, "
        "dtype='float32', seed=0)"
    )
    assert find(seq2seq_models(), lambda s: s.tokens, settings=EXISTS).tokens


@settings(max_examples=3, database=None, deadline=None)
@given(st.data())
def test_built_encoder_decoders_fit_their_inputs(data: st.DataObject) -> None:
    spec = data.draw(seq2seq_models(max_decoder_steps=3))
    enc, dec = data.draw(spec.inputs(min_batch=2, max_batch=2))
    assert enc.shape[0] == dec.shape[0] == 2
    assert dec.shape[1] == spec.decoder_steps
    assert (dec[:, 0] == spec.start).all()
    net = spec.build()
    y = keras.ops.convert_to_numpy(net.train([enc, dec]))
    assert y.shape[:2] == (2, spec.decoder_steps)
    states = net.encoder_model(enc)
    states = states if isinstance(states, (list, tuple)) else [states]
    states = [keras.ops.convert_to_numpy(a) for a in states]
    assert len(states) == (2 if spec.cell == "LSTM" else 1)
    step = net.decoder_step_model([dec[:, :1], *states])
    first = keras.ops.convert_to_numpy(step[0])[:, 0]
    np.testing.assert_allclose(first, y[:, 0], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- invalid arguments

INVALID: list[tuple[Callable[..., Any], dict[str, Any], str]] = [
    (sequence_shapes, {"min_batch": 0}, "min_batch"),
    (sequence_shapes, {"min_batch": 1.5}, "min_batch"),
    (sequence_shapes, {"max_batch": True}, "max_batch"),
    (sequence_shapes, {"min_batch": 3, "max_batch": 2}, "max_batch"),
    (sequence_shapes, {"min_steps": 0}, "min_steps"),
    (sequence_shapes, {"min_steps": 5, "max_steps": 4}, "max_steps"),
    (sequence_shapes, {"features": 0}, "features"),
    (sequence_shapes, {"features": (3, 0)}, "features[1]"),
    (sequence_shapes, {"features": "3"}, "features"),
    (sequences, {"shape": (4,)}, "shape"),
    (sequences, {"shape": (2, 0, 3)}, "shape[1]"),
    (sequences, {"shape": 5}, "shape"),
    (sequences, {"dtype": "int32"}, "dtype"),
    (sequences, {"dtype": "not-a-dtype"}, "dtype"),
    (sequences, {"min_value": 1.0, "max_value": -1.0}, "min_value"),
    (sequences, {"min_value": float("nan")}, "min_value"),
    (sequences, {"max_value": float("inf")}, "max_value"),
    (sequences, {"max_value": 1e6, "dtype": "float16"}, "max_value"),
    (sequences, {"min_value": 0.1, "max_value": 0.1, "dtype": "float16"}, "min_value"),
    (sequences, {"elements": st.just(1.0), "min_value": 0.0}, "elements"),
    (sequences, {"elements": 1.0}, "elements"),
    (padded_sequences, {"padding": "middle"}, "padding"),
    (padded_sequences, {"min_length": 0}, "min_length"),
    (padded_sequences, {"min_length": 4, "max_length": 3}, "max_length"),
    (padded_sequences, {"shape": (2, 3, 1), "min_length": 4}, "min_length"),
    (padded_sequences, {"value": float("nan")}, "value"),
    (padded_sequences, {"min_value": 0.0, "max_value": 0.0}, "value"),
    (padded_sequences, {"dtype": "int8"}, "dtype"),
    (chunkings, {"steps": 0}, "steps"),
    (chunkings, {"steps": 4.0}, "steps"),
    (chunkings, {"steps": 5, "min_chunk": 0}, "min_chunk"),
    (chunkings, {"steps": 5, "min_chunk": 3, "max_chunk": 2}, "max_chunk"),
    (chunkings, {"steps": 5, "min_chunk": 3, "max_chunk": 4}, "min_chunk=3"),
    (chunkings, {"steps": 5, "min_chunks": 6}, "min_chunks=6"),
    (chunkings, {"steps": 9, "max_chunk": 2, "max_chunks": 4}, "max_chunks=4"),
    (chunkings, {"steps": 5, "min_chunks": 3, "max_chunks": 2}, "max_chunks"),
    (token_sequences, {"vocab_size": 1}, "vocab_size"),
    (token_sequences, {"vocab_size": 0}, "vocab_size"),
    (token_sequences, {"min_token": -1}, "min_token"),
    (token_sequences, {"shape": (2, 3, 4)}, "shape"),
    (token_sequences, {"dtype": "float32"}, "dtype"),
    (token_sequences, {"dtype": "int8", "vocab_size": 1000}, "dtype"),
    (padded_token_sequences, {"min_token": 0}, "min_token"),
    (padded_token_sequences, {"padding": "both"}, "padding"),
    (padded_token_sequences, {"shape": (2, 2), "min_length": 3}, "min_length"),
    (sequence_models, {"cells": ["LSTM", "Transformer"]}, "cells"),
    (sequence_models, {"cells": "LSTM"}, "cells"),
    (sequence_models, {"cells": []}, "cells"),
    (sequence_models, {"min_layers": 0}, "min_layers"),
    (sequence_models, {"min_layers": 3, "max_layers": 2}, "max_layers"),
    (sequence_models, {"min_units": 0}, "min_units"),
    (sequence_models, {"min_units": 5, "max_units": 4}, "max_units"),
    (sequence_models, {"max_features": 0}, "max_features"),
    (sequence_models, {"return_sequences": "yes"}, "return_sequences"),
    (sequence_models, {"tokens": 1}, "tokens"),
    (sequence_models, {"dtypes": ["float16"]}, "dtypes"),
    (seq2seq_models, {"cells": ["SimpleRNN"]}, "cells"),
    (seq2seq_models, {"min_units": 4, "max_units": 3}, "max_units"),
    (seq2seq_models, {"min_decoder_steps": 0}, "min_decoder_steps"),
    (seq2seq_models, {"min_decoder_steps": 3, "max_decoder_steps": 2}, "max_decoder_steps"),
    (seq2seq_models, {"tokens": "no"}, "tokens"),
    (seq2seq_models, {"dtypes": ("bfloat16",)}, "dtypes"),
]


@pytest.mark.parametrize(
    ("function", "kwargs", "fragment"),
    INVALID,
    ids=[f"{f.__name__}-{'-'.join(map(str, kw))}" for f, kw, _ in INVALID],
)
def test_invalid_arguments_fail_at_call_time(
    function: Callable[..., Any], kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        function(**kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("strategy", "fragment"),
    [
        (lambda: sequence_shapes(features=st.just(0)), "features"),
        (lambda: sequences(shape=st.just((2, 0, 3))), "shape[1]"),
        (lambda: sequences(dtype=st.just("int32")), "dtype"),
        (lambda: padded_sequences(padding=st.just("middle")), "padding"),
        (lambda: chunkings(st.just(0)), "steps"),
        (lambda: token_sequences(shape=st.just((2, 3, 4))), "shape"),
        (lambda: sequence_models(return_sequences=st.just(1)), "return_sequences"),
    ],
    ids=["features", "shape", "dtype", "padding", "steps", "token-shape", "return-sequences"],
)
def test_invalid_drawn_values_fail_when_drawn(
    strategy: Callable[[], st.SearchStrategy[Any]], fragment: str
) -> None:
    built = strategy()  # a strategy argument cannot be checked before it is drawn
    with pytest.raises(InvalidArgument) as info:
        draw_once(built)
    assert fragment in str(info.value)


# --------------------------------------------------------------------------- settings and imports


def test_rnn_settings_tolerate_slow_models() -> None:
    assert rnn_settings.deadline is None
    assert rnn_settings.max_examples == 25
    for check in (HealthCheck.too_slow, HealthCheck.data_too_large):
        assert check in rnn_settings.suppress_health_check

    calls: list[int] = []

    @rnn_settings
    @given(sequences())
    def slow(x: np.ndarray) -> None:
        calls.append(x.ndim)

    slow()
    assert 1 <= len(calls) <= 25


def test_rnn_settings_lift_the_deadline_for_a_slow_first_call() -> None:
    calls: list[int] = []

    @settings(rnn_settings, max_examples=3, database=None)
    @given(padded_sequences())
    def first_call_traces(batch: PaddedSequences) -> None:
        if not calls:
            time.sleep(0.25)  # longer than Hypothesis's default 200 ms deadline
        calls.append(1)

    first_call_traces()
    assert len(calls) == 3


@pytest.mark.parametrize(
    "strategy",
    [
        sequence_shapes(),
        sequences(),
        padded_sequences(padding=st.sampled_from(["pre", "post"])),
        chunkings(st.integers(1, 16)),
        token_sequences(),
        padded_token_sequences(),
    ],
    ids=["shapes", "sequences", "padded", "chunkings", "tokens", "padded-tokens"],
)
def test_strategies_pass_stock_health_checks(strategy: st.SearchStrategy[Any]) -> None:
    # The plugin's profile relaxes health checks; the strategies must not need it.
    @settings(settings.get_profile("default"), database=None)
    @given(strategy)
    def run(value: Any) -> None:
        pass

    run()


def _import_roots(nodes: Any) -> set[str]:
    """Top-level packages imported by ``nodes``; ``pytest_rnn`` modules by full name."""
    roots: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:  # relative to the package
            base = ["pytest_rnn", "strategies"][: 3 - node.level]
            names = [".".join([*base, *([node.module] if node.module else [])])]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            root = name.split(".")[0]
            roots.add(name if root == "pytest_rnn" else root)
    return roots


# Light pytest_rnn modules the strategies may import: stdlib only at import time.
_LIGHT_PYTEST_RNN = {"pytest_rnn._config", "pytest_rnn._random"}


def _allowed_pytest_rnn(names: set[str]) -> set[str]:
    return {
        name
        for name in names
        if name in _LIGHT_PYTEST_RNN
        or name == "pytest_rnn.strategies"
        or name.startswith("pytest_rnn.strategies.")
    }


@pytest.mark.parametrize(
    "path", sorted(Path(rs.__file__).parent.glob("*.py")), ids=lambda path: path.name
)
def test_module_imports_only_hypothesis_numpy_and_stdlib(path: Path) -> None:
    tree = ast.parse(path.read_text())
    allowed = {"hypothesis", "numpy"} | set(sys.stdlib_module_names)
    top_level = _import_roots(tree.body)
    top_level -= _allowed_pytest_rnn(top_level)
    assert top_level <= allowed, top_level - allowed
    # Building a drawn model needs Keras: imported inside the functions that build.
    everywhere = _import_roots(ast.walk(tree))
    everywhere -= _allowed_pytest_rnn(everywhere)
    assert everywhere <= allowed | {"keras"}, everywhere - allowed - {"keras"}


def test_the_import_rule_covers_the_whole_package() -> None:
    files = {path.name for path in Path(rs.__file__).parent.glob("*.py")}
    assert {"__init__.py", "_specs.py", "_models.py"} <= files
    assert len(files) > 3  # a package of several files, every one checked above


def test_the_import_rule_rejects_backends_and_heavy_pytest_rnn_modules() -> None:
    source = (
        "import keras\nfrom tensorflow import nn\nfrom pytest_rnn import _keras\n"
        "from pytest_rnn._stateful import x\nimport pytest_rnn\n"
        "from pytest_rnn._config import y\nfrom pytest_rnn.strategies._checks import z\n"
        "from . import _specs\nfrom ._tokens import t\nfrom .._stateful import u\n"
    )
    roots = _import_roots(ast.parse(source).body)
    rest = roots - _allowed_pytest_rnn(roots)
    assert rest == {"keras", "tensorflow", "pytest_rnn", "pytest_rnn._stateful"}


def test_drawing_model_specs_loads_no_backend() -> None:
    code = (
        "import sys\n"
        "from hypothesis import given, settings\n"
        "from pytest_rnn.strategies import seq2seq_models, sequence_models\n"
        "@settings(max_examples=20, database=None)\n"
        "@given(sequence_models(), seq2seq_models())\n"
        "def run(a, b): repr(a), repr(b)\n"
        "run()\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_lists_the_public_api() -> None:
    public = {name for name in vars(rs) if not name.startswith("_")}
    assert set(rs.__all__) <= public
    for name in rs.__all__:
        obj = getattr(rs, name)
        if callable(obj) and name != "rnn_settings":
            assert obj.__doc__ and "Example" in obj.__doc__, name


def test_padded_sequences_results_are_frozen() -> None:
    batch = draw_once(padded_sequences(shape=(1, 2, 1)))
    with pytest.raises(AttributeError):
        batch.padding = "pre"


def test_the_readme_pattern_shrinks_a_streaming_bug_to_its_smallest_case() -> None:
    # Conv1D(padding="same") reads one step ahead: the smallest case that shows it is one
    # sample of two steps streamed one step at a time. The failure path is cached (float64
    # copies included), so shrinking costs seconds, not a minute.
    import keras

    import pytest_rnn

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(4, 3, padding="same"),
            keras.layers.LSTM(4, return_sequences=True),
        ]
    )
    failing: list[tuple[tuple[int, ...], list[int]]] = []

    @settings(max_examples=30, deadline=None, database=None, derandomize=True)
    @given(data=st.data(), shape=rs.sequence_shapes(max_steps=24))
    def test_streaming(data: st.DataObject, shape: tuple[int, ...]) -> None:
        x = data.draw(rs.sequences(shape=shape))
        chunks = data.draw(rs.chunkings(shape[1]))
        try:
            pytest_rnn.assert_stateful_equals_batch(model, x, chunks=chunks)
        except AssertionError:
            failing.append((shape, list(chunks)))
            raise

    with pytest.raises(pytest_rnn.RNNAssertionError, match="Conv1D padding='same' reads"):
        test_streaming()
    assert failing[-1] == ((1, 2, 3), [1, 1])  # the final replay: the shrunk example
