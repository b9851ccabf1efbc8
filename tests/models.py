"""The models, labels, windows and global-state snapshot the test files share: one copy of each.

- The Keras seq2seq tutorial net (:func:`build_net`: LSTM or GRU, float or token
  inputs) with its inference forms, correct or with one wiring bug:
  :func:`unrolled` (seed 000's loop as one model) and :func:`pair` (the
  tutorial's encoder model and decoder step model).
- Small Sequential builders: :func:`seq` (any layers on a sequence input),
  :func:`rnn_seq` (an output per step), :func:`regressor` (one value per
  sequence), the seed models :func:`seed002_model`, :func:`seed003_model` and
  :func:`time_distributed` (seed 001), and :func:`nested_stateful`.
- Seed 001's label bug and its fix, cumulative labels, and the window
  functions (correct and off by one).
- :func:`global_state_snapshot`: what a user owns process-wide, compared with
  :func:`changed`.
- :data:`STREAM_FRONTS`: RNN fronts a compiled stream must run as the eager one
  does (unrolled on TensorFlow, traced on torch).

Test files import it as ``from models import ...``: ``tests/`` has no
``__init__.py``, so pytest's default "prepend" import mode puts ``tests/`` on
``sys.path`` (in xdist workers too). Each caller passes its own sizes and names.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import hypothesis
import keras
import numpy as np
from keras import layers as L
from keras import ops

from pytest_rnn import _config

# =========================================================================== the seq2seq tutorial net

LATENT = 8
DEC_STEPS = 5
ENC_FEATURES = 3
# Decoder features equal the latent size only so that the seed answer's variant
# (feeding the LSTM output back into the LSTM) can be built at all.
FEATURES = LATENT
VOCAB = 12
EMBED = 4


@dataclass(eq=False)
class Net:
    """A teacher-forced seq2seq model, the layers it was built from and its sizes."""

    cell: str
    tokens: bool
    enc_in: Any
    enc_states: list[Any]
    embed: Any
    decoder_rnn: Any
    dense: Any
    train: Any
    latent: int = LATENT
    dec_steps: int = DEC_STEPS
    features: int = FEATURES

    def rnn(self) -> Any:
        """A new decoder RNN of the same kind and size: none of the training model's weights."""
        cls = L.LSTM if self.cell == "lstm" else L.GRU
        return cls(self.latent, return_sequences=True, return_state=True)


def build_net(
    cell: str = "lstm",
    tokens: bool = False,
    *,
    batch: int | None = None,
    stateful: bool = False,
    latent: int = LATENT,
    enc_features: int = ENC_FEATURES,
    dec_steps: int = DEC_STEPS,
    features: int = FEATURES,
    name: str | None = None,
    input_names: bool = True,
    layer_names: bool = True,
) -> Net:
    """The tutorial's teacher-forced training model: encoder RNN states start the decoder RNN.

    Args:
        cell: ``"lstm"`` or ``"gru"``.
        tokens: token ids in (an Embedding each side) and a softmax over
            ``VOCAB`` out, instead of float features.
        batch: a static batch size (``None``: open).
        stateful: both RNNs stateful.
        latent: the RNNs' units.
        enc_features: encoder input features (float inputs).
        dec_steps: the decoder's (fixed) number of steps.
        features: decoder input and output features (float inputs).
        name: the training model's name (default ``train_<cell>``).
        input_names: name the inputs (``enc_x``/``dec_x``, ``enc_ids``/``dec_ids``).
        layer_names: name the layers (``encoder_rnn``, ``decoder_rnn``,
            ``decoder_dense`` or ``probs``); else Keras numbers them.
    """
    cls = L.LSTM if cell == "lstm" else L.GRU

    def named(text: str, wanted: bool) -> str | None:
        """``text`` as a name where names are wanted, else ``None`` (Keras numbers it)."""
        return text if wanted else None

    if tokens:
        enc_in = keras.Input(
            batch_shape=(batch, None), dtype="int32", name=named("enc_ids", input_names)
        )
        dec_in = keras.Input(
            batch_shape=(batch, dec_steps), dtype="int32", name=named("dec_ids", input_names)
        )
        enc_x = L.Embedding(VOCAB, EMBED)(enc_in)
        embed = L.Embedding(VOCAB, EMBED)
        dense = L.Dense(VOCAB, activation="softmax", name=named("probs", layer_names))
    else:
        enc_in = keras.Input(
            batch_shape=(batch, None, enc_features), name=named("enc_x", input_names)
        )
        dec_in = keras.Input(
            batch_shape=(batch, dec_steps, features), name=named("dec_x", input_names)
        )
        enc_x, embed = enc_in, None
        dense = L.Dense(features, name=named("decoder_dense", layer_names))
    encoder = cls(
        latent, return_state=True, stateful=stateful, name=named("encoder_rnn", layer_names)
    )
    _, *states = encoder(enc_x)
    decoder = cls(
        latent,
        return_sequences=True,
        return_state=True,
        stateful=stateful,
        name=named("decoder_rnn", layer_names),
    )
    seq, *_ = decoder(embed(dec_in) if tokens else dec_in, initial_state=states)
    train = keras.Model([enc_in, dec_in], dense(seq), name=name or f"train_{cell}")
    sizes = {"latent": latent, "dec_steps": dec_steps, "features": features}
    return Net(cell, tokens, enc_in, list(states), embed, decoder, dense, train, **sizes)


def decoder_step(
    net: Net, cur: Any, states: list[Any], *, rnn: Any = None, dense: Any = None
) -> tuple[Any, Any, list[Any]]:
    """One decoder step on ``net``'s layers: ``(rnn output, prediction, new states)``."""
    x = net.embed(cur) if net.tokens else cur
    out, *new = (rnn or net.decoder_rnn)(x, initial_state=states)
    return out, (dense or net.dense)(out), new


def ids(y: Any) -> Any:
    """The argmax token ids of the predictions ``y``."""
    return ops.cast(ops.argmax(y, axis=-1), "int32")


def unrolled(
    net: Net, bug: str | None = None, *, stacked: bool = False, batch: int | None = None
) -> Any:
    """Seed 000's inference loop as one model ``[encoder inputs, start] -> outputs``.

    Args:
        net: the training net whose layers it reuses.
        bug: ``None`` (correct) or one wiring bug: ``"swap"`` (h and c swapped),
            ``"fresh_dense"`` (a new output layer), ``"reinit"`` (encoder states
            at every step), ``"start_every_step"``, ``"feed_rnn_output"`` (the
            seed answer's 'fix'), ``"id_off_by_one"`` (tokens).
        stacked: one output ``(batch, steps, ...)`` instead of one per step.
        batch: a static batch size for the start input.
    """
    shape = (batch, 1) if net.tokens else (batch, 1, net.features)
    start = keras.Input(batch_shape=shape, dtype="int32" if net.tokens else "float32")
    states = net.enc_states[::-1] if bug == "swap" else list(net.enc_states)
    dense = L.Dense(net.features) if bug == "fresh_dense" else None
    cur, outs = start, []
    for _ in range(net.dec_steps):
        if bug == "reinit":
            states = list(net.enc_states)
        out, y, states = decoder_step(net, cur, states, dense=dense)
        outs.append(y if net.tokens else L.Reshape((net.features,))(y))
        if bug == "start_every_step":
            cur = start
        elif bug == "feed_rnn_output":  # the seed answer's 'fix'
            cur = out
        elif bug == "id_off_by_one":
            cur = (ids(y) + 1) % VOCAB
        else:
            cur = ids(y) if net.tokens else y
    if stacked:
        outs = L.Concatenate(axis=1)([L.Reshape((1, -1))(o) for o in outs])
    return keras.Model([net.enc_in, start], outs, name=f"inference_{bug or 'ok'}")


def encoder_model(net: Net, bug: str | None = None, *, name: str | None = None) -> Any:
    """The tutorial's ``encoder_model``: encoder inputs -> states (``"swap"``: h and c swapped)."""
    states = net.enc_states[::-1] if bug == "swap" else net.enc_states
    return keras.Model(net.enc_in, states if len(states) > 1 else states[0], name=name)


def step_model(net: Net, bug: str | None = None, *, name: str | None = None) -> Any:
    """The tutorial's ``decoder_step_model``: ``[previous output, *states] -> [output, *states]``.

    ``bug``: ``"new_rnn"`` (a new decoder RNN, none of the training weights) or
    ``"keep_states"`` (hands back the states it was given: re-initialised every step).
    """
    y_prev = keras.Input((1,), dtype="int32") if net.tokens else keras.Input((1, net.features))
    state_in = [keras.Input((net.latent,)) for _ in net.enc_states]
    rnn = net.rnn() if bug == "new_rnn" else None
    _, y, new = decoder_step(net, y_prev, state_in, rnn=rnn)
    if bug == "keep_states":  # hands back the states it was given: re-initialised every step
        new = [L.Identity()(s) for s in state_in]
    return keras.Model([y_prev, *state_in], [y, *new], name=name)


def pair(
    net: Net, bug: str | None = None, *, names: tuple[str | None, str | None] = (None, None)
) -> tuple[Any, Any]:
    """The Keras tutorial form ``(encoder_model, decoder_step_model)``, with ``bug`` as each takes it."""
    return encoder_model(net, bug, name=names[0]), step_model(net, bug, name=names[1])


# =========================================================================== Sequential builders


def seq(
    *body: Any,
    features: int = 3,
    steps: int | None = None,
    batch: int | None = None,
    dtype: str | None = None,
    name: str | None = "m",
) -> Any:
    """``keras.Sequential`` of ``body`` on an input of ``(batch, steps, features)`` (``None``: open)."""
    inputs = keras.Input(batch_shape=(batch, steps, features), dtype=dtype)
    return keras.Sequential([inputs, *body], name=name)


def rnn_seq(
    rnn: type = L.LSTM,
    *,
    units: int = 4,
    conv: bool = False,
    stateful: bool = False,
    batch: int | None = None,
    steps: int | None = None,
    dtype: str | None = None,
    name: str = "seq",
) -> Any:
    """An output per step on 3 features: [Conv1D 'conv' ->] ``rnn(units)`` -> Dense(2).

    ``conv``: a front Conv1D with ``padding='same'``, which reads one future
    step (neither streamable nor causal).
    """
    front = [L.Conv1D(4, 3, padding="same", name="conv")] if conv else []
    return seq(
        *front,
        rnn(units, return_sequences=True, stateful=stateful, dtype=dtype),
        L.Dense(2, dtype=dtype),
        steps=steps,
        batch=batch,
        dtype=dtype,
        name=name,
    )


def regressor(
    steps: int,
    features: int,
    *,
    rnn: type = L.LSTM,
    optimizer: Any = None,
    layer_names: bool = False,
    name: str | None = None,
) -> Any:
    """One value per sequence: ``rnn(4)`` -> Dense(1), compiled with an mse loss if ``optimizer``.

    ``layer_names``: the layers named after their kind (``'lstm'`` or ``'gru'``,
    ``'dense'``) instead of Keras's numbered names.
    """
    model = seq(
        rnn(4, name=rnn.__name__.lower() if layer_names else None),
        L.Dense(1, name="dense" if layer_names else None),
        features=features,
        steps=steps,
        name=name,
    )
    if optimizer is not None:
        model.compile(optimizer=optimizer, loss="mse")
    return model


def seed002_model(*, batch: int, steps: int, features: int) -> Any:
    """Seed 002's shape, small: two stacked stateful LSTMs with a static batch (adadelta, mse)."""
    model = seq(
        L.LSTM(4, return_sequences=True, stateful=True, name="lstm"),
        L.LSTM(4, stateful=True, name="lstm_1"),
        L.Dense(1, name="dense"),
        features=features,
        steps=steps,
        batch=batch,
        name="stateful",
    )
    model.compile(optimizer="adadelta", loss="mse")
    return model


def seed003_model(
    *,
    batch: int | None = None,
    stateful: bool = False,
    steps: int | None = None,
    name: str = "seed003",
    forgot: str | None = None,
) -> Any:
    """Seed 003's stack: LSTM -> LeakyReLU -> Dropout -> LSTM -> Dropout -> LeakyReLU -> LSTM -> LeakyReLU -> Dense.

    ``forgot``: the last LSTM, under this name, left ``stateful=False`` (a
    user's streaming copy that forgot one layer).
    """
    return seq(
        L.LSTM(8, return_sequences=True, stateful=stateful),
        L.LeakyReLU(),
        L.Dropout(0.2),
        L.LSTM(6, return_sequences=True, stateful=stateful),
        L.Dropout(0.2),
        L.LeakyReLU(),
        L.LSTM(4, return_sequences=False, stateful=stateful and forgot is None, name=forgot),
        L.LeakyReLU(),
        L.Dense(1, activation="sigmoid"),
        steps=steps,
        batch=batch,
        name=name,
    )


def time_distributed(features: int = 20) -> Any:
    """Seed 001's model, small: per-step Dense layers and a softmax, model 'td'."""
    return seq(
        L.TimeDistributed(L.Dense(4)),
        L.TimeDistributed(L.Dense(2)),
        L.Activation("softmax"),
        features=features,
        name="td",
    )


def nested_stateful(batch: int = 2, steps: int = 5, features: int = 3) -> Any:
    """Functional model with stateful RNNs at every depth the state helpers must reach.

    - ``inner/inner_lstm``: a nested Sequential inside the Functional model
    - ``deep/mid/deep_gru``: a Functional inside a Sequential inside the Functional model
    - ``bi/forward_gru``, ``bi/backward_gru``: a Bidirectional wrapper
    - ``td/td_lstm``: a TimeDistributed wrapper (over a 4-D copy of the input)
    - ``top_gru``: a plain top-level layer
    - ``plain_lstm``: stateless, must be left alone
    """
    inner = keras.Sequential(
        [
            keras.Input(batch_shape=(batch, None, features)),
            L.LSTM(4, stateful=True, return_sequences=True, name="inner_lstm"),
        ],
        name="inner",
    )
    mid_in = keras.Input(batch_shape=(batch, None, 4))
    mid = keras.Model(
        mid_in, L.GRU(4, stateful=True, return_sequences=True, name="deep_gru")(mid_in), name="mid"
    )
    deep = keras.Sequential([keras.Input(batch_shape=(batch, None, 4)), mid], name="deep")
    inp = keras.Input(batch_shape=(batch, steps, features))
    h = deep(inner(inp))
    h = L.Bidirectional(L.GRU(3, stateful=True, return_sequences=True, name="gru"), name="bi")(h)
    h = L.LSTM(4, return_sequences=True, name="plain_lstm")(h)
    top = L.GRU(4, stateful=True, name="top_gru")(h)
    # TimeDistributed over a (batch, steps, 2, features) view: the inner LSTM runs on each
    # step's 2 sub-steps.
    sub = L.Reshape((steps, 1, features))(inp)
    sub = L.Concatenate(axis=2)([sub, sub])
    td = L.TimeDistributed(L.LSTM(2, stateful=True, name="td_lstm"), name="td")(sub)
    td = L.Flatten()(td)
    return keras.Model(inp, L.Concatenate()([top, td]), name="nested")


# =========================================================================== labels and windows


def labels_from_last_step(x: np.ndarray, threshold: float = 10) -> np.ndarray:
    """Seed 001's loop: y[i, :, :] is overwritten at every step, so the last step wins.

    ``x`` holds 0/1 features stored centred (``0/1 - 0.5``); a step's one-hot
    label is ``[0, 1]`` where its 0/1 features sum above ``threshold``.
    """
    y = np.zeros((x.shape[0], x.shape[1], 2))
    for i in range(x.shape[0]):
        for t in range(x.shape[1]):
            if np.sum(x[i, t] + 0.5) > threshold:
                y[i, :, :] = [0, 1]
            else:
                y[i, :, :] = [1, 0]
    return y


def labels_per_step(x: np.ndarray, threshold: float = 10) -> np.ndarray:
    """The fix of :func:`labels_from_last_step`: the label of step t from step t alone."""
    up = (x + 0.5).sum(axis=-1) > threshold
    return np.stack([~up, up], axis=-1).astype("float32")


def cumsum_labels(x: np.ndarray) -> np.ndarray:
    """Causal labels: the running sum of the inputs over time."""
    return np.cumsum(x, axis=1)


def windows(
    series: np.ndarray, window: int = 5, offset: int = 0, horizon: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Correct sliding windows: inputs ``series[i : i + window]``, targets the ``horizon``
    positions that start ``offset`` after the window (targets ``(windows, horizon, ...)``)."""
    n = len(series) - window - max(offset, 0) - horizon + 1
    xs = np.stack([series[i : i + window] for i in range(n)])
    ys = np.stack([series[i + window + offset : i + window + offset + horizon] for i in range(n)])
    return xs, ys


def windows_off_by_one(series: np.ndarray, window: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The off-by-one bug: each window's target is its own last input position."""
    xs, _ = windows(series, window)
    return xs, series[window - 1 : window - 1 + len(xs)]


# =========================================================================== the global-state snapshot

#: The snapshot's keys for Python's and numpy's global random state (a documented subset).
RANDOM_STATE = ("python random state", "numpy global random state")
#: The snapshot's key for Keras's automatic layer-name counters.
NAME_COUNTERS = "keras object name counters"


def numpy_value(v: Any) -> np.ndarray:
    """``v`` (a variable, tensor or array) as a numpy array."""
    return np.array(v.numpy() if hasattr(v, "numpy") else v)


def global_state_snapshot(
    keys: Collection[str] | None = None, *, without: Collection[str] = ()
) -> dict[str, Any]:
    """Process-wide state a user owns: random streams, precision and dtype settings.

    Python's and numpy's global random state, Keras's global seed, seed
    generator, name counters, floatx, dtype policy, image data format and
    epsilon, pytest-rnn's session settings and the Hypothesis profile; where
    those modules are loaded, TensorFlow's TF32 and op-determinism flags, eager
    switch, global seed, op-seed stream and global generator, JAX's matmul
    precision, and torch's TF32 and determinism flags and global RNG.

    Args:
        keys: only these entries (e.g. :data:`RANDOM_STATE`); the others are not read.
        without: all entries but these (e.g. :data:`NAME_COUNTERS`).

    Returns:
        ``{what: value}``; compare two with :func:`changed`.
    """
    wanted = {key: read for key, read in _readers().items() if keys is None or key in keys}
    return {key: read() for key, read in wanted.items() if key not in without}


def _readers() -> dict[str, Callable[[], Any]]:
    """Each snapshot entry and the function that reads it now."""
    from keras.src.backend.common import global_state

    def keras_generator() -> Any:
        """Keras's global seed generator: which object, and its state."""
        gen = global_state.get_global_attribute("global_seed_generator")
        return None if gen is None else (id(gen), numpy_value(gen.state))

    def name_counters() -> Any:
        """Keras's automatic layer-name counters, copied."""
        uids = global_state.get_global_attribute("object_name_uids")
        return None if uids is None else dict(uids)

    readers: dict[str, Callable[[], Any]] = {
        "python random state": random.getstate,
        "numpy global random state": lambda: np.random.get_state(legacy=False),
        "np.random.default_rng is numpy's own": lambda: np.random.default_rng,
        "keras floatx": keras.config.floatx,
        "keras dtype policy": lambda: keras.config.dtype_policy().name,
        "keras image data format": keras.config.image_data_format,
        "keras epsilon": keras.config.epsilon,
        "keras global random seed": lambda: global_state.get_global_attribute("global_random_seed"),
        "keras global seed generator": keras_generator,
        NAME_COUNTERS: name_counters,
        "pytest-rnn settings": lambda: (
            _config.settings.rtol,
            _config.settings.atol,
            _config.settings.seed,
        ),
        "hypothesis profile": hypothesis.settings.get_current_profile_name,
    }
    if "tensorflow" in sys.modules:
        readers.update(_tensorflow_readers())
    jax = sys.modules.get("jax")
    if jax is not None:
        readers["jax default matmul precision"] = lambda: jax.config.jax_default_matmul_precision
    torch = sys.modules.get("torch")
    if torch is not None:
        readers["torch TF32 flags"] = lambda: (
            torch.backends.cuda.matmul.allow_tf32,
            torch.backends.cudnn.allow_tf32,
            torch.are_deterministic_algorithms_enabled(),
        )
        readers["torch global RNG"] = lambda: numpy_value(torch.get_rng_state())
    return readers


def _tensorflow_readers() -> dict[str, Callable[[], Any]]:
    """TensorFlow's entries of the snapshot."""
    import tensorflow as tf
    from tensorflow.python.eager import context as tf_context
    from tensorflow.python.framework import config as tf_config

    def op_seed_stream() -> Any:
        """The state of TensorFlow's op-seed stream (``None`` before it exists)."""
        rng = getattr(tf_context.context(), "_rng", None)
        return None if rng is None else rng.getstate()

    return {
        "tensorflow TF32": tf.config.experimental.tensor_float_32_execution_enabled,
        "tensorflow op determinism": tf_config.is_op_determinism_enabled,
        "tensorflow run functions eagerly": tf.config.functions_run_eagerly,
        "tensorflow global seed": lambda: getattr(tf_context.context(), "_seed", None),
        "tensorflow op-seed stream": op_seed_stream,
        "tensorflow global generator": lambda: numpy_value(tf.random.get_global_generator().state),
    }


def _same(a: Any, b: Any) -> bool:
    """``a`` and ``b`` are equal bit for bit: arrays by dtype, shape and bytes, containers item by item."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a is b or a == b


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The keys whose value differs bit for bit (or that appeared or vanished), sorted."""
    keys = sorted(before.keys() | after.keys())
    return [k for k in keys if k not in before or k not in after or not _same(before[k], after[k])]


# --------------------------------------------------------------------------- pytester runs


def assert_ran_on_workers(result: Any) -> None:
    """A pytester session under ``-n 2`` ran on xdist workers (any xdist >= 3: no header text).

    The failure headers ``[gw0] linux -- Python ...`` name the worker; the
    ``created: 2/2 workers`` line exists only from xdist 3.3.
    """
    import re

    assert re.search(r"^\[gw[01]\] ", result.stdout.str(), re.M), result.stdout.str()


#: RNN fronts (layers between the input and a Dense head) that compiled streams are
#: checked on: three cell kinds, a mask, stacked cells, a last-step output.
STREAM_FRONTS: dict[str, Callable[[], list[Any]]] = {
    "lstm-gru-rnn": lambda: [
        keras.layers.LSTM(5, return_sequences=True),
        keras.layers.GRU(4, return_sequences=True),
        keras.layers.SimpleRNN(3, return_sequences=True),
    ],
    "masked-lstm": lambda: [keras.layers.Masking(0.0), keras.layers.LSTM(4, return_sequences=True)],
    "stacked-cells": lambda: [
        keras.layers.RNN([keras.layers.GRUCell(3), keras.layers.LSTMCell(2)], return_sequences=True)
    ],
    "last-step": lambda: [keras.layers.LSTM(4)],
}
