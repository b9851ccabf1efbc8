"""Copies of a user's model: clones with other settings, weight copies, stateful twins.

A clone never changes the model it copies, nor the global random state.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from pytest_rnn._core.validate import check_int
from pytest_rnn._keras.backend import to_numpy
from pytest_rnn._keras.calls import ModelCache
from pytest_rnn._keras.layers import check_model, is_graph_model, keras_module
from pytest_rnn._keras.timing import acts_per_step, reads_past_only
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


def _input_specs(model: Any) -> list[Any]:
    inputs = model.inputs
    if not inputs:
        raise TypeError(
            f"model {model.name!r} has no defined inputs; build it with keras.Input(...) "
            "(or call it once) before passing it to pytest-rnn"
        )
    return list(inputs)


def clone(
    model: Any,
    *,
    batch_size: int | None,
    stateful: bool | None,
    dtype: str | None = None,
    free_time: bool = True,
) -> Any:
    """A copy of a Sequential/Functional ``model`` with the same weights.

    ``stateful`` (if not None) is set on every RNN layer, nested ones too; the
    inputs get ``batch_size`` and (``free_time``) an open time dimension;
    ``dtype`` (if given) replaces every layer's dtype policy. Python's and
    numpy's global random state are left as they were.
    """
    keras = keras_module()
    if not is_graph_model(model):
        raise TypeError(
            f"model {model.name!r} is a subclassed {type(model).__name__}; pytest-rnn can "
            "copy only Sequential and Functional models. Pass your own copy "
            "(stateful_model=...) instead."
        )

    def clone_layer(layer: Any) -> Any:
        if isinstance(layer, keras.Model):
            # A nested model gets its own inputs, with the same static batch size.
            return clone(
                layer, batch_size=batch_size, stateful=stateful, dtype=dtype, free_time=free_time
            )
        # An open time axis cannot be unrolled; unrolling does not change the math.
        cfg = _patch_config(
            layer.get_config(), stateful=stateful, dtype=dtype, unroll=False if free_time else None
        )
        return layer.__class__.from_config(cfg)

    inputs = []
    for spec in _input_specs(model):
        shape = tuple(spec.shape)
        time = (None,) if free_time and len(shape) >= 2 else shape[1:2]
        in_dtype = spec.dtype
        if dtype is not None and "float" in str(in_dtype):
            in_dtype = dtype
        inputs.append(
            keras.Input(batch_shape=(batch_size, *time, *shape[2:]), dtype=in_dtype, name=None)
        )
    with kept():
        twin = keras.models.clone_model(
            model,
            input_tensors=inputs if len(inputs) > 1 else inputs[0],
            clone_function=clone_layer,
        )
    copy_weights(model, twin)
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


def stateful_twin(model: Any, batch_size: int) -> Any:
    """A stateful copy of ``model`` for streaming, with the same weights.

    Every RNN layer (nested ones too) gets ``stateful=True``, the inputs a
    static ``batch_size`` (Keras 3 requires it for stateful RNNs) and an open
    time dimension, so the copy takes chunks of any length. ``model`` itself
    is not changed, nor is the global random state.

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


def cached_clone(model: Any, kind: str, batch: int | None) -> Any:
    """``clone(model)`` made once per (model, kind, batch), its weights synced at every use.

    ``kind`` is ``"stateful"`` (every RNN layer stateful) or ``"stateless"``.
    """
    per_model = _TWINS.of(model)
    twin = per_model.get((kind, batch))
    if twin is None:
        twin = clone(model, batch_size=batch, stateful=(kind == "stateful"))
        per_model[(kind, batch)] = twin
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


# model -> {"every_step": its every-step copy, or None where there is none}; weak keys.
_EVERY_STEP = ModelCache()


def every_step_copy(model: Any) -> Any:
    """A stateless copy of a last-step Sequential whose last RNN returns every step, or ``None``.

    Only where that copy's output at step ``t - 1`` is the model's output on
    ``x[:, :t]``: every top-level layer is a forward, stateless RNN or acts
    on each step alone (:func:`acts_per_step`, normalising the feature axis only), no
    layer masks, and the last layer that changes the output's rank is that RNN.
    Made once per model, its weights synced at every use.
    """
    per_model = _EVERY_STEP.of(model)
    if "every_step" in per_model:
        copy = per_model["every_step"]
        if copy is not None:
            sync_weights(model, copy)  # the model may have been trained since
        return copy
    copy = None
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
                return layer.__class__.from_config(cfg)

            try:
                with kept():
                    copy = keras.models.clone_model(model, clone_function=clone_layer)
                copy_weights(model, copy)
            except Exception:  # best effort: the prefix calls are always right
                copy = None
    per_model["every_step"] = copy
    return copy
