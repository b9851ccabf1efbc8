"""Copies of a user's model: clones with other settings, weight copies, stateful twins.

A copy computes what its model computes: besides the weights it gets every
layer's state that is not a weight (an adapted ``Normalization``'s statistics,
a lookup layer's vocabulary), carried the way Keras's own saving carries it,
and ``Lambda`` layers are rebuilt around the live function rather than from
their config (which Keras's safe mode refuses for a Python lambda). A clone
never changes the model it copies, nor the global random state or Keras's
settings.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from pytest_rnn._core.validate import check_int
from pytest_rnn._keras.backend import name as backend_name
from pytest_rnn._keras.backend import to_numpy
from pytest_rnn._keras.calls import ModelCache
from pytest_rnn._keras.everystep import acts_per_step, reads_past_only
from pytest_rnn._keras.layers import (
    check_model,
    is_graph_model,
    keras_module,
)
from pytest_rnn._keras.layerstate import NotCopied as _NotCopied
from pytest_rnn._keras.layerstate import carry_states as _carry_states
from pytest_rnn._keras.layerstate import named as _named
from pytest_rnn._keras.layerstate import state_print as _state_print
from pytest_rnn._keras.lookahead import lookahead_copy
from pytest_rnn._random import kept

__all__ = [
    "cached_clone",
    "clone",
    "copy_weights",
    "every_step_copy",
    "stateful_twin",
    "sync_weights",
]


def _patch_config(cfg: Any, **overrides: Any) -> Any:
    """Copy of a (nested) layer config with the given keys overridden everywhere.

    An override of ``None`` leaves that key alone; ``dtype`` is replaced only
    where the config has one (layers, not their sub-configs that lack it).
    """
    if isinstance(cfg, list):
        return [_patch_config(c, **overrides) for c in cfg]
    if not isinstance(cfg, dict):
        return cfg
    out = {}
    for key, value in cfg.items():
        new = overrides.get(key)
        if (new is not None and key in ("stateful", "unroll") and isinstance(value, bool)) or (
            new is not None and key == "dtype" and value is not None
        ):
            out[key] = new
        else:
            out[key] = _patch_config(value, **overrides)
    return out


def _zero_initialised(cfg: Any) -> Any:
    """A (nested) Keras layer config with every ``*_initializer`` set to zeros.

    A copy's weights are all assigned from the model's right after it is built
    (:func:`copy_weights` refuses a copy with other variables), so what they
    start from is never read; on JAX the random initializers cost most of a
    first clone (an LSTM's orthogonal recurrent kernel compiles a QR: 0.5 s).
    Only Keras's own layers (:func:`_starts_from_zeros`).
    """
    if isinstance(cfg, list):
        return [_zero_initialised(c) for c in cfg]
    if not isinstance(cfg, dict):
        return cfg
    return {
        key: "zeros" if key.endswith("_initializer") and value is not None
        else _zero_initialised(value)
        for key, value in cfg.items()
    }  # fmt: skip


def _starts_from_zeros(layer: Any) -> bool:
    """Whether a copy of ``layer`` is built with zero initializers (:func:`_zero_initialised`).

    Only Keras's own classes: a user's layer may read its config's initializers
    beyond building weights. Not on torch: a torch variable keeps the memory
    layout its initializer gave it (``Orthogonal``'s recurrent kernel is a
    transposed view) and ``assign`` copies values into that layout, and a
    matmul rounds by layout: a zero-initialised copy of a SimpleRNN model
    (float64, its matmuls computed in float32) was 3.2e-7 off its model, where
    the copy built with the model's initializers agrees bit for bit.
    """
    return type(layer).__module__.startswith("keras.") and backend_name() != "torch"


def _built_like(layer: Any, cfg: Any) -> Any:
    """``type(layer).from_config(cfg)``, zero-initialised where :func:`_starts_from_zeros`."""
    return layer.__class__.from_config(_zero_initialised(cfg) if _starts_from_zeros(layer) else cfg)


def _new_inputs(model: Any, batch_size: int | None, dtype: str | None, free_time: bool) -> Any:
    """Fresh inputs in the structure of ``model.input``: a dict keeps its keys, a nested list its nesting."""
    keras = keras_module()
    if not model.inputs:
        raise TypeError(
            f"model {model.name!r} has no defined inputs; build it with keras.Input(...) "
            "(or call it once) before passing it to pytest-rnn"
        )

    def new_input(spec: Any) -> Any:
        shape = tuple(spec.shape)
        time = (None,) if free_time and len(shape) >= 2 else shape[1:2]
        in_dtype = spec.dtype
        if dtype is not None and "float" in str(in_dtype):
            in_dtype = dtype
        # The input's own name: Keras matches the keys of a dict input by name.
        return keras.Input(
            batch_shape=(batch_size, *time, *shape[2:]), dtype=in_dtype, name=spec.name
        )

    # A Sequential has one input (and no ``model.input`` before its first call).
    structure = model.inputs[0] if isinstance(model, keras.Sequential) else model.input
    return keras.tree.map_structure(new_input, structure)


def _rebuild(layer: Any, overrides: dict[str, Any]) -> Any:
    """A new layer like ``layer``, its config patched with ``overrides``; no weights yet.

    A ``Lambda`` is rebuilt around its live function: rebuilding a Python lambda
    from its config is what Keras's safe mode refuses, and the live function is
    the same code with the same closure and globals. A wrapper (TimeDistributed)
    is rebuilt as Keras's ``Wrapper.from_config`` does, around its inner layer
    rebuilt the same way.
    """
    keras = keras_module()
    if type(layer) is keras.layers.Lambda:
        return keras.layers.Lambda(
            layer.function,
            output_shape=getattr(layer, "_output_shape", None),
            mask=layer.mask,
            arguments=dict(layer.arguments),
            name=layer.name,
            trainable=layer.trainable,
            dtype=overrides.get("dtype") or layer.dtype_policy,
        )
    cfg = _patch_config(layer.get_config(), **overrides)
    if _starts_from_zeros(layer):
        cfg = _zero_initialised(cfg)
    wrapper = keras.layers.Wrapper
    if (
        isinstance(layer, wrapper)
        and type(layer).from_config.__func__ is wrapper.from_config.__func__
    ):
        del cfg["layer"]
        return type(layer)(_rebuild(layer.layer, overrides), **cfg)
    return type(layer).from_config(cfg)


def _cannot_copy(
    model: Any, failed: _NotCopied, stateful: bool | None, dtype: str | None
) -> TypeError:
    """The error for a model pytest-rnn cannot copy: the layer, Keras's reason, what to pass instead."""
    kind = dtype or ("stateful" if stateful else "stateless" if stateful is False else "")
    # Keras's first paragraph, its lines joined (it wraps its messages by hand).
    reason = " ".join(str(failed.error).strip().split("\n\n")[0].split()).rstrip(".")
    text = (
        f"pytest-rnn cannot build a {kind + ' ' if kind else ''}copy of model {model.name!r}: "
        f"{failed.what} ({type(failed.error).__name__}: {reason})."
    )
    if dtype is None and stateful:
        text += " Pass your own stateful copy (same weights) as stateful_model=... instead."
    elif dtype is None:
        text += " Pass a stateless copy of it (same weights, no stateful layer) as model instead."
    return TypeError(text)


def clone(
    model: Any,
    *,
    batch_size: int | None,
    stateful: bool | None,
    dtype: str | None = None,
    free_time: bool = True,
) -> Any:
    """A copy of a Sequential/Functional ``model`` with the same weights and layer states.

    ``stateful`` (if not None) is set on every RNN layer, nested ones too; the
    inputs get ``batch_size`` and (``free_time``) an open time dimension, in
    ``model.input``'s structure; ``dtype`` (if given) replaces every layer's
    dtype policy. Every layer's state that is not a weight is carried as
    Keras's saving carries it (:func:`_carry_states`). Python's and numpy's
    global random state are left as they were.

    Raises:
        TypeError: ``model`` is subclassed, or Keras cannot rebuild one of its
            layers (or carry its state); the message names the layer and what
            to pass instead.
    """
    keras = keras_module()
    if not is_graph_model(model):
        raise TypeError(
            f"model {model.name!r} is a subclassed {type(model).__name__}; pytest-rnn can "
            "copy only Sequential and Functional models. Pass your own copy "
            "(stateful_model=...) instead."
        )
    overrides = {"stateful": stateful, "dtype": dtype, "unroll": False if free_time else None}

    def clone_layer(layer: Any) -> Any:
        if isinstance(layer, keras.Model):
            # A nested model gets its own inputs, with the same static batch size.
            return clone(
                layer, batch_size=batch_size, stateful=stateful, dtype=dtype, free_time=free_time
            )
        # An open time axis cannot be unrolled (``unroll``); unrolling does not change the math.
        try:
            return _rebuild(layer, overrides)
        except Exception as error:
            what = f"Keras cannot rebuild its layer {_named(layer.name, layer)} from its config"
            raise _NotCopied(what, error) from error

    inputs = _new_inputs(model, batch_size, dtype, free_time)
    try:
        with kept():
            twin = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone_layer)
        copy_weights(model, twin)
        _carry_states(model, twin)
    except _NotCopied as failed:
        raise _cannot_copy(model, failed, stateful, dtype) from failed.error
    return twin


def copy_weights(source: Any, target: Any) -> None:
    """Assign ``source``'s weights to ``target`` (same architecture), casting dtypes."""
    src, dst = source.weights, target.weights
    if len(src) != len(dst):
        raise ValueError(
            f"cannot copy weights: {source.name!r} has {len(src)} variables, "
            f"{target.name!r} has {len(dst)}"
        )
    for s, d in zip(src, dst):
        if tuple(s.shape) != tuple(d.shape):
            raise ValueError(
                f"cannot copy weights: {s.path} has shape {tuple(s.shape)}, "
                f"{d.path} has {tuple(d.shape)}"
            )
        d.assign(np.asarray(to_numpy(s), dtype=d.dtype))


# --------------------------------------------------------------------------- twins


def stateful_twin(model: Any, batch_size: int) -> Any:
    """A stateful copy of ``model`` for streaming, with the same weights.

    Every RNN layer (nested ones too) gets ``stateful=True``, the inputs a
    static ``batch_size`` (Keras 3 requires it for stateful RNNs) and an open
    time dimension, so the copy takes chunks of any length; an adapted layer's
    statistics or vocabulary come along. ``model`` itself is not changed, nor is
    the global random state.

    Example:
        >>> stream = pytest_rnn.stateful_twin(model, batch_size=1)
        >>> for t in range(steps):
        ...     y_t = stream(x[:1, t : t + 1])
    """
    check_model(model, "model")
    return clone(model, batch_size=check_int(batch_size, "batch_size", 1), stateful=True)


# --------------------------------------------------------------------------- cached copies

# model -> {(kind, batch): twin}; weak keys so a cached twin never keeps a model alive.
_TWINS = ModelCache()
# copy -> the source's weight values it was last synced to; weak keys.
_SYNCED: weakref.WeakKeyDictionary[Any, list[np.ndarray]] = weakref.WeakKeyDictionary()
# copy -> the source's layer states (:func:`_state_print`) it was made with; weak keys.
_STATES: weakref.WeakKeyDictionary[Any, list[bytes]] = weakref.WeakKeyDictionary()


def cached_clone(model: Any, kind: str, batch: int | None, dtype: str | None = None) -> Any:
    """``clone(model)`` made once per (model, kind, batch, dtype), its weights synced at every use.

    ``kind`` is ``"stateful"`` (every RNN layer stateful) or ``"stateless"``;
    ``dtype`` (``"float64"`` for a failure's re-run) replaces every layer's
    dtype policy. Made again where a layer's state that is not a weight
    changed since.
    """
    per_model = _TWINS.of(model)
    key = (kind, batch, dtype)
    twin = per_model.get(key)
    state = _state_print(model)
    if twin is None or _STATES.get(twin) != state:
        twin = clone(model, batch_size=batch, stateful=(kind == "stateful"), dtype=dtype)
        per_model[key] = twin
        _STATES[twin] = state
    else:
        sync_weights(model, twin)  # the model may have been trained since
    return twin


def sync_weights(source: Any, target: Any) -> None:
    """:func:`copy_weights` for a cached copy: assigns only the variables that may differ.

    A trainable variable of the copy changes only when the source's does, so it is
    compared with the source values of the last sync; non-trainable variables
    (which a layer may assign while it runs) are always copied back.
    """
    src, dst = source.weights, target.weights
    seen = _SYNCED.get(target)
    now = [np.asarray(to_numpy(v)) for v in src]
    if seen is None or len(seen) != len(now) or len(dst) != len(now):
        copy_weights(source, target)
    else:
        for s, d, new, old in zip(src, dst, now, seen):
            if not d.trainable or new.shape != old.shape or not np.array_equal(new, old):
                if tuple(s.shape) != tuple(d.shape):
                    copy_weights(source, target)  # raises the shape error
                d.assign(np.asarray(new, dtype=d.dtype))
    _SYNCED[target] = now


# model -> {"every_step": (its every-step copy or None, the copy its weights are synced to)}; weak keys.
_EVERY_STEP = ModelCache()


def every_step_copy(model: Any) -> Any:
    """A stateless copy of a last-step Sequential giving at every step ``t - 1`` its output on ``x[:, :t]``, or ``None``.

    Its output has a time axis: position ``t - 1`` is ``model(x[:, :t])``, for every
    ``t`` in one call. Every layer after the last RNN acts on each step alone
    (:func:`acts_per_step`, normalising the feature axis only) and that RNN is
    a forward, stateless stock RNN returning its last step. Where every layer
    before it is such an RNN or acts on each step alone, the copy is the model
    with that RNN returning every step; where some read a bounded number of
    neighbouring steps instead (a convolution, ``'same'`` or ``'causal'``), it is
    a :func:`lookahead copy <pytest_rnn._keras.lookahead.lookahead_copy>`. No layer masks. Made once per
    model, its weights synced at every use.
    """
    per_model = _EVERY_STEP.of(model)
    if "every_step" in per_model:
        copy, synced = per_model["every_step"]
        if copy is not None:
            sync_weights(model, synced)  # the model may have been trained since
        return copy
    copy = synced = None
    keras = keras_module()
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
        rnns = [n for n, lyr in enumerate(layers) if isinstance(lyr, keras.layers.RNN)]
        ok = bool(rnns) and all(
            reads_past_only(lyr, last=(n == rnns[-1]))
            if isinstance(lyr, keras.layers.RNN)
            else acts_per_step(lyr)
            for n, lyr in enumerate(layers)
        )
        if ok:
            last = layers[rnns[-1]]

            def clone_layer(layer: Any) -> Any:
                cfg = layer.get_config()
                if layer is last:
                    cfg = {**cfg, "return_sequences": True}
                return _built_like(layer, cfg)

            try:
                with kept():
                    copy = keras.models.clone_model(model, clone_function=clone_layer)
                copy_weights(model, copy)
                _carry_states(model, copy)
                synced = copy
            except Exception:  # best effort: the prefix calls are always right
                copy = None
        elif rnns:
            try:
                copy, synced = lookahead_copy(model, rnns[-1], _synced_clone) or (None, None)
            except Exception:  # best effort: the prefix calls are always right
                copy = synced = None
    per_model["every_step"] = (copy, synced)
    return copy


def _synced_clone(model: Any) -> Any:
    """A clone of ``model`` with its weights and the layer state that is not a weight."""
    with kept():
        copy = keras_module().models.clone_model(
            model, clone_function=lambda layer: _built_like(layer, layer.get_config())
        )
    copy_weights(model, copy)
    _carry_states(model, copy)
    return copy
