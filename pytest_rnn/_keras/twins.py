"""Copies of a user's model: clones with other settings, weight copies, stateful twins.

A clone never changes the model it copies, nor the global random state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_rnn._keras.backend import to_numpy
from pytest_rnn._keras.layers import check_model, is_graph_model, keras_module
from pytest_rnn._random import kept

__all__ = ["clone", "copy_weights", "stateful_twin"]


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
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return clone(model, batch_size=int(batch_size), stateful=True)
