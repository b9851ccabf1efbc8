"""The one table of layers that read other steps (``_keras.timing``) and its two renderers.

Every row pins what :func:`timing`, :func:`stream_reason` and
:func:`causal_reason` say about one real Keras layer today, and whether the
every-step copy counts it as acting per step. The three tables this one
replaced disagree in places (ARCHITECTURE 2.1b); each disagreement is kept
on purpose in this step and marked ``DISAGREE`` below, so the next person
reconciling them sees every one here, and changes the row with the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import pytest
from keras import layers

from pytest_rnn import _keras as K
from pytest_rnn._keras import Timing


def called(layer: Any, shape: tuple[int | None, ...] = (None, 3)) -> Any:
    """``layer`` after one symbolic call on an input of ``shape`` (without the batch)."""
    layer(keras.Input(shape))
    return layer


def attention(causal: bool) -> tuple[Any, Sequence[Any]]:
    """A MultiHeadAttention called once, and the nodes of its calls (as the walk passes them)."""
    mha = layers.MultiHeadAttention(2, 4)
    h = keras.Input((None, 3))
    mha(h, h, use_causal_mask=causal)
    return mha, mha._inbound_nodes


def nested() -> Any:
    inner = keras.Sequential(
        [keras.Input((None, 3)), layers.Conv1D(2, 3, padding="same", name="inner_conv")],
        name="inner",
    )
    return inner


@dataclass(frozen=True)
class Row:
    """One layer and what each table says of it."""

    build: Callable[[], Any]  # the layer, or (layer, nodes)
    timing: Timing | None
    stream: str | None
    causal: str | None


SAME_1 = "Conv1D padding='same' reads 1 future step"
ROWS = {
    # ----------------------------------------------------------------- convolutions
    "conv-same": Row(
        lambda: layers.Conv1D(2, 3, padding="same"),
        Timing("future", "Conv1D", 1, "same", streams=True, causal=True),
        "Conv1D padding='same' reads 1 future step(s)",
        "Conv1D padding='same' reads 1 future step; use padding='causal'",
    ),
    "conv-same-dilated": Row(
        lambda: layers.Conv1D(2, 3, padding="same", dilation_rate=2),
        Timing("future", "Conv1D", 2, "same", streams=True, causal=True),
        "Conv1D padding='same' reads 2 future step(s)",
        "Conv1D padding='same' reads 2 future steps; use padding='causal'",
    ),
    "conv-valid": Row(
        lambda: layers.Conv1D(2, 3, padding="valid"),
        Timing("future", "Conv1D", 2, "valid", streams=True, causal=True),
        "Conv1D padding='valid' reads 2 future step(s) and shortens the sequence",
        "Conv1D padding='valid' puts output step t over input steps t..t+2 (reads later steps); "
        "use padding='causal'",
    ),
    # Only streaming names a causal convolution: a chunk lacks the steps before it.
    "conv-causal-dilated": Row(
        lambda: layers.Conv1D(2, 3, padding="causal", dilation_rate=2),
        Timing("buffer", "Conv1D", 4, "causal", streams=True),
        "Conv1D padding='causal' needs the previous 4 step(s), which a streamed chunk does not "
        "carry (no streaming buffer)",
        None,
    ),
    # DISAGREE (per-step): a kernel of 1 acts on each step alone, but the
    # every-step table (names) does not list Conv1D, so per_step is False.
    "conv-kernel-1": Row(
        lambda: layers.Conv1D(2, 1, padding="same"),
        Timing("per-step", "Conv1D", 0, "same"),
        None,
        None,
    ),
    # DISAGREE (conv): causality knows SeparableConv1D by name; streaming asks
    # isinstance(Conv1D) or a "Conv1D" prefix, and SeparableConv1D is neither.
    "separable-conv-same": Row(
        lambda: layers.SeparableConv1D(2, 3, padding="same"),
        Timing("future", "SeparableConv1D", 1, "same", causal=True),
        None,
        "SeparableConv1D padding='same' reads 1 future step; use padding='causal'",
    ),
    # DISAGREE (conv): streaming names Conv1DTranspose by its "Conv1D" prefix
    # (and prints "Conv1D"); causality's exact list of three names does not.
    "conv-transpose-same": Row(
        lambda: layers.Conv1DTranspose(2, 3, padding="same"),
        Timing("future", "Conv1DTranspose", 1, "same", streams=True),
        "Conv1D padding='same' reads 1 future step(s)",
        None,
    ),
    # ----------------------------------------------------------------- recurrent
    "bidirectional": Row(
        lambda: layers.Bidirectional(layers.LSTM(2, return_sequences=True)),
        Timing("bidirectional", "Bidirectional", streams=True, causal=True),
        "Bidirectional reads the sequence backwards too: every step depends on the whole sequence",
        "Bidirectional: its backward RNN reads the sequence from the last step",
    ),
    "gru-go-backwards": Row(
        lambda: layers.GRU(2, return_sequences=True, go_backwards=True),
        Timing("backwards", "GRU", streams=True, causal=True),
        "go_backwards=True runs from the last step: every output depends on later steps",
        "go_backwards=True: it reads the sequence from the last step",
    ),
    "lstm": Row(lambda: layers.LSTM(2), Timing("recurrent", "LSTM", stock=True), None, None),
    "lstm-stateful-sequences": Row(
        lambda: layers.LSTM(2, stateful=True, return_sequences=True),
        Timing("recurrent", "LSTM", sequences=True, stateful=True, stock=True),
        None,
        None,
    ),
    "lstm-return-state": Row(
        lambda: layers.LSTM(2, return_state=True),
        Timing("recurrent", "LSTM"),
        None,
        None,
    ),
    # ----------------------------------------------------------------- attention
    "attention-uncalled": Row(
        lambda: layers.MultiHeadAttention(2, 4),
        Timing("attention", "MultiHeadAttention", streams=True, causal=True),
        "MultiHeadAttention attends over its whole input; a streamed chunk sees only itself",
        "MultiHeadAttention called without use_causal_mask=True: every step attends to later steps",
    ),
    "attention-unmasked": Row(
        lambda: attention(causal=False),
        Timing("attention", "MultiHeadAttention", streams=True, causal=True),
        "MultiHeadAttention attends over its whole input; a streamed chunk sees only itself",
        "MultiHeadAttention called without use_causal_mask=True: every step attends to later steps",
    ),
    # keras.layers.GroupQueryAttention is an alias: the class is GroupedQueryAttention.
    "group-query-attention": Row(
        lambda: layers.GroupQueryAttention(head_dim=2, num_query_heads=2, num_key_value_heads=1),
        Timing("attention", "GroupedQueryAttention", streams=True, causal=True),
        "GroupedQueryAttention attends over its whole input; a streamed chunk sees only itself",
        "GroupedQueryAttention called without use_causal_mask=True: every step attends to later steps",
    ),
    # Only causality reads a call's use_causal_mask: a causal mask still needs
    # a cache to stream, so streaming names it either way.
    "attention-causal-mask": Row(
        lambda: attention(causal=True),
        Timing("attention", "MultiHeadAttention", streams=True),
        "MultiHeadAttention attends over its whole input; a streamed chunk sees only itself",
        None,
    ),
    # ----------------------------------------------------------------- normalisation
    "layernorm-time": Row(
        lambda: called(layers.LayerNormalization(axis=1), (5, 3)),
        Timing("time-normalisation", "LayerNormalization", axis=[1], streams=True, causal=True),
        "LayerNormalization(axis=[1]) normalises over the time axis: every step depends on the "
        "whole sequence",
        "LayerNormalization(axis=[1]) normalises over the time axis: every step sees statistics "
        "of the whole sequence",
    ),
    # A built LayerNormalization's config spells its axis as a list.
    "layernorm-features": Row(
        lambda: called(layers.LayerNormalization(axis=-1)),
        Timing("per-step", "LayerNormalization", axis=[-1], per_step=True),
        None,
        None,
    ),
    # DISAGREE (normalisation): on a 2-D input (after a last-step RNN) streaming
    # takes axis -1 % 2 == 1 for the time axis; causality (literal 1 or -2) and
    # the every-step table (axis -1) see a per-step layer.
    "layernorm-features-2d": Row(
        lambda: called(layers.LayerNormalization(axis=-1), (3,)),
        Timing("time-normalisation", "LayerNormalization", axis=[-1], streams=True, per_step=True),
        "LayerNormalization(axis=[-1]) normalises over the time axis: every step depends on the "
        "whole sequence",
        None,
    ),
    # DISAGREE (normalisation): causality names any *Normalization but
    # BatchNormalization; streaming only LayerNormalization.
    "unitnorm-time": Row(
        lambda: layers.UnitNormalization(axis=1),
        Timing("time-normalisation", "UnitNormalization", axis=1, causal=True),
        None,
        "UnitNormalization(axis=1) normalises over the time axis: every step sees statistics "
        "of the whole sequence",
    ),
    "batchnorm": Row(
        lambda: layers.BatchNormalization(),
        Timing("per-step", "BatchNormalization", axis=-1, per_step=True),
        None,
        None,
    ),
    # ----------------------------------------------------------------- pooling
    # DISAGREE (pooling): streaming names every MaxPooling1D; causality only
    # padding='same'.
    # Over (time, space...): the first spatial axis of a sequence is time.
    "conv3d-same": Row(
        lambda: layers.Conv3D(1, (3, 3, 3), padding="same"),
        Timing("future", "Conv3D", 1, "same", streams=True, causal=True, spatial=True),
        "Conv3D padding='same' reads 1 future step(s) along its first spatial axis, which is "
        "the time axis here",
        "Conv3D padding='same' reads 1 future step along its first spatial axis, the time axis "
        "here (kernel_size[0] > 1): make that axis causal (kernel_size[0] = 1, or pad the time "
        "axis on the left only with ZeroPadding and use padding='valid')",
    ),
    "conv2d-valid": Row(
        lambda: layers.Conv2D(2, (3, 1)),
        Timing("future", "Conv2D", 2, "valid", streams=True, causal=True, spatial=True),
        "Conv2D padding='valid' reads 2 future step(s) along its first spatial axis, which is "
        "the time axis here",
        "Conv2D padding='valid' reads 2 future steps along its first spatial axis, the time axis "
        "here (kernel_size[0] > 1): make that axis causal (kernel_size[0] = 1, or pad the time "
        "axis on the left only with ZeroPadding and use padding='valid')",
    ),
    "conv2d-per-frame": Row(
        lambda: layers.Conv2D(2, (1, 3), padding="same"),
        Timing("per-step", "Conv2D", 0, "same", spatial=True),
        None,
        None,
    ),
    "conv-causal-strided": Row(
        lambda: layers.Conv1D(2, 4, strides=2, padding="causal"),
        Timing("buffer", "Conv1D", 3, "causal", streams=True, stride=2),
        "Conv1D padding='causal' needs the previous 3 step(s), which a streamed chunk does not "
        "carry (no streaming buffer)",
        None,
    ),
    "maxpool-valid": Row(
        lambda: layers.MaxPooling1D(),
        Timing("pooling", "MaxPooling1D", padding="valid", streams=True, stride=2),
        "MaxPooling1D pools neighbouring steps together",
        None,
    ),
    "maxpool-same": Row(
        lambda: layers.MaxPooling1D(padding="same"),
        Timing("pooling", "MaxPooling1D", padding="same", streams=True, causal=True, stride=2),
        "MaxPooling1D pools neighbouring steps together",
        "MaxPooling1D padding='same' pools over later steps",
    ),
    # DISAGREE (global): only streaming knows Global*Pooling1D and Flatten.
    "global-average-pooling": Row(
        lambda: layers.GlobalAveragePooling1D(),
        Timing("global", "GlobalAveragePooling1D", streams=True),
        "GlobalAveragePooling1D mixes every step of the sequence",
        None,
    ),
    "flatten": Row(
        lambda: layers.Flatten(),
        Timing("global", "Flatten", streams=True),
        "Flatten mixes every step of the sequence",
        None,
    ),
    # DISAGREE (repeat): only streaming knows RepeatVector; it takes no time axis,
    # so causality has nothing to say of its input.
    "repeat-vector": Row(
        lambda: layers.RepeatVector(4),
        Timing("repeat", "RepeatVector", steps=4, streams=True),
        "RepeatVector repeats one vector over 4 new steps: its output steps are not the "
        "input's (an encoder's last step repeated), so it cannot stream",
        None,
    ),
    # ----------------------------------------------------------------- per step
    "dense": Row(lambda: layers.Dense(2), Timing("per-step", "Dense", per_step=True), None, None),
    # DISAGREE (per-step): TimeDistributed works within each step, but the
    # every-step table does not list it.
    "time-distributed": Row(
        lambda: layers.TimeDistributed(layers.Conv1D(2, 3, padding="same")),
        Timing("per-step", "TimeDistributed"),
        None,
        None,
    ),
    # A nested model: causality names what it holds; streaming walks into it instead.
    "nested-model": Row(
        nested,
        Timing("nested", "Sequential", nested=True),
        None,
        "nested model containing 'inner_conv' (" + SAME_1 + "; use padding='causal')",
    ),
    "embedding": Row(lambda: layers.Embedding(5, 2), None, None, None),
}


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_each_table_says_today_what_it_said(row: Row) -> None:
    built = row.build()
    layer, nodes = built if isinstance(built, tuple) else (built, ())
    assert K.timing(layer, nodes) == row.timing
    assert K.stream_reason(layer) == row.stream
    assert K.causal_reason(layer, nodes) == row.causal
    assert K.acts_per_step(layer) == bool(row.timing and row.timing.per_step)


@pytest.mark.parametrize(
    ("layer", "last", "expected"),
    [
        (layers.LSTM(2), True, True),
        (layers.LSTM(2), False, False),
        (layers.GRU(2, return_sequences=True), False, True),
        (layers.SimpleRNN(2, return_sequences=True), True, False),
        (layers.LSTM(2, go_backwards=True), True, False),
        (layers.LSTM(2, stateful=True), True, False),
        (layers.LSTM(2, return_state=True), True, False),
        (layers.RNN(layers.LSTMCell(2)), True, False),  # not a stock class
        (layers.Dense(2), True, False),
    ],
    ids=[
        "last-step-last",
        "last-step-not-last",
        "sequences-not-last",
        "sequences-last",
        "go-backwards",
        "stateful",
        "return-state",
        "custom-rnn",
        "dense",
    ],
)
def test_reads_past_only(layer: Any, last: bool, expected: bool) -> None:
    assert K.reads_past_only(layer, last=last) is expected


def wrapped_model() -> keras.Model:
    """Wrapped, nested and top-level suspects, for the two walks."""
    inp = keras.Input((None, 4, 3))
    h = layers.TimeDistributed(layers.Conv1D(2, 3, padding="same", name="conv_in_td"), name="td")(
        inp
    )
    h = layers.TimeDistributed(layers.Flatten(name="flat"), name="td_flat")(h)
    h = layers.Bidirectional(layers.LSTM(2, return_sequences=True), name="both")(h)
    h = nested()(layers.Dense(3)(h))
    return keras.Model(inp, h, name="wrapped")


def test_the_two_walks_differ_on_wrapped_layers() -> None:
    model = wrapped_model()
    # The streaming walk looks inside wrappers (DISAGREE: even TimeDistributed's
    # inner layers, which work within one step) and nested models; it does not
    # repeat the layers inside a named one (the Bidirectional's two LSTMs).
    streaming = K.suspects(model, K.stream_reason, wrapped=True)
    assert [(s.path, s.reason) for s in streaming] == [
        ("td/conv_in_td", "Conv1D padding='same' reads 1 future step(s)"),
        ("td_flat/flat", "Flatten mixes every step of the sequence"),
        (
            "both",
            "Bidirectional reads the sequence backwards too: every step depends on the whole "
            "sequence",
        ),
        ("inner/inner_conv", "Conv1D padding='same' reads 1 future step(s)"),
    ]
    assert streaming[2].layer is model.get_layer("both")
    # The causality walk: top-level layers and nested models' layers only.
    causal = K.suspects(model, K.causal_reason)
    assert [(s.path, s.reason) for s in causal] == [
        ("both", "Bidirectional: its backward RNN reads the sequence from the last step"),
        ("inner/inner_conv", SAME_1 + "; use padding='causal'"),
    ]


def test_the_causality_walk_reads_each_call_of_an_attention_layer() -> None:
    h = keras.Input((None, 3))
    masked = layers.MultiHeadAttention(2, 4, name="masked")(h, h, use_causal_mask=True)
    free = layers.MultiHeadAttention(2, 4, name="free")(masked, masked)
    model = keras.Model(h, free)
    assert [s.path for s in K.suspects(model, K.causal_reason)] == ["free"]
    assert [s.path for s in K.suspects(model, K.stream_reason, wrapped=True)] == ["masked", "free"]


def test_the_face_exports_the_table_and_not_the_old_name() -> None:
    for name in (
        "Timing",
        "acts_per_step",
        "causal_reason",
        "reads_past_only",
        "stream_reason",
        "suspects",
        "timing",
    ):
        assert name in K.__all__ and hasattr(K, name)
    assert not hasattr(K, "time_hazard")
