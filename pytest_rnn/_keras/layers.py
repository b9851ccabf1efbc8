"""The adapter's ground floor: what a Keras model is made of.

Walks (every layer, wrappers and nested models included), descriptions for
messages, argument checks for models, and the only readers of a model's
inputs. Imports nothing else of :mod:`pytest_rnn._keras`; Keras is imported
inside functions only.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np


def keras_module() -> Any:
    """The ``keras`` module (imported on first use)."""
    import keras

    return keras


def is_model(obj: Any) -> bool:
    """Whether ``obj`` is a Keras model (without importing Keras if it is not loaded)."""
    keras = sys.modules.get("keras")
    if keras is None:
        return False
    return isinstance(obj, keras.Model)


def check_model(obj: Any, arg: str) -> Any:
    """Return ``obj`` if it is a Keras model, else raise a TypeError naming ``arg``."""
    keras = keras_module()
    if not isinstance(obj, keras.Model):
        raise TypeError(
            f"{arg} must be a Keras model (keras.Model, Sequential or Functional), "
            f"got {type(obj).__name__}"
        )
    return obj


def check_input_shapes(model: Any, leaves: list[tuple[str, np.ndarray]], arg: str) -> None:
    """``arg``'s arrays fit ``model``'s inputs: as many, same rank, same fixed feature sizes.

    Raises a ValueError naming ``arg`` before Keras raises its own deep inside a layer.
    """
    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        return
    if len(leaves) != len(inputs):
        raise ValueError(
            f"{arg} holds {len(leaves)} array(s) but model {model.name!r} has {len(inputs)} input(s)"
        )
    by_name = {getattr(i, "name", None): i for i in inputs}
    for pos, (path, arr) in enumerate(leaves):
        key = path[2:-2] if path.startswith("['") else None
        spec = by_name.get(key, inputs[pos])
        want = tuple(spec.shape)
        if len(want) != np.ndim(arr) or any(
            w is not None and w != g for w, g in zip(want[2:], np.shape(arr)[2:])
        ):
            raise ValueError(
                f"{arg}{path} has shape {np.shape(arr)} but model {model.name!r}'s input "
                f"{getattr(spec, 'name', pos)!r} takes {want} (batch, steps, features...)"
            )


def is_graph_model(model: Any) -> bool:
    """Sequential or Functional (a model whose layer graph can be cloned and probed)."""
    keras = keras_module()
    return isinstance(model, keras.Sequential) or type(model).__name__ == "Functional"


def needs_static_time(model: Any) -> bool:
    """Whether ``model`` must be traced with a static time axis (one trace per length).

    Keras 3 ``TimeDistributed`` maps over the *batch* size when the time axis
    is unknown at trace time (it reads ``ops.shape`` before transposing), so
    a model holding one is traced with static shapes.
    """
    keras = keras_module()
    return any(isinstance(lyr, keras.layers.TimeDistributed) for _, lyr in iter_layers(model))


# --------------------------------------------------------------------------- layers


def _children(layer: Any) -> list[Any]:
    keras = keras_module()
    if isinstance(layer, keras.Model):
        return list(layer.layers)
    if isinstance(layer, keras.layers.RNN):
        return []  # its cell is not a layer of the model
    kids = []
    for attr in ("forward_layer", "backward_layer", "layer"):
        child = getattr(layer, attr, None)
        if isinstance(child, keras.layers.Layer) and child not in kids:
            kids.append(child)
    # Sublayers a custom layer holds as attributes (Keras 3 tracks them).
    with contextlib.suppress(AttributeError, TypeError):
        for child in layer._flatten_layers(include_self=False, recursive=False):
            if child not in kids:
                kids.append(child)
    return kids


def iter_layers(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, layer)`` for every layer, depth first: wrappers and nested models included.

    Paths join names with ``/``: ``"time_distributed/lstm"``.
    """
    for layer in _children(model):
        path = f"{prefix}{layer.name}"
        yield path, layer
        yield from iter_layers(layer, path + "/")


def rnn_layers(model: Any) -> list[tuple[str, Any]]:
    """Every ``keras.layers.RNN`` (LSTM, GRU, SimpleRNN, custom cells), nested ones too."""
    keras = keras_module()
    return [(p, lyr) for p, lyr in iter_layers(model) if isinstance(lyr, keras.layers.RNN)]


def stateful_layers(model: Any) -> list[tuple[str, Any]]:
    """The RNN layers of ``model`` with ``stateful=True``."""
    return [(p, lyr) for p, lyr in rnn_layers(model) if lyr.stateful]


# --------------------------------------------------------------------------- descriptions


def describe_layer(layer: Any) -> str:
    """Short, human description: ``LSTM(32)``, ``Conv1D(8, k=3, padding='same')``."""
    keras = keras_module()
    name = type(layer).__name__
    cfg: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        cfg = layer.get_config()
    if isinstance(layer, keras.Model):
        return f"{name} '{layer.name}'"
    if "units" in cfg:
        return f"{name}({cfg['units']})"
    if "filters" in cfg:
        k = cfg.get("kernel_size")
        k = k[0] if isinstance(k, (list, tuple)) and len(k) == 1 else k
        return f"{name}({cfg['filters']}, k={k}, padding={cfg.get('padding')!r})"
    if isinstance(layer, (keras.layers.Bidirectional, keras.layers.TimeDistributed)):
        return f"{name}({describe_layer(layer.layer if hasattr(layer, 'layer') else layer.forward_layer)})"
    return name


def describe_model(model: Any, limit: int = 6) -> str:
    """``'seq' (LSTM(32) -> Dense(1))``; long models are cut after ``limit`` layers."""
    keras = keras_module()
    layers = [
        lyr for lyr in getattr(model, "layers", []) if not isinstance(lyr, keras.layers.InputLayer)
    ]
    parts = [describe_layer(lyr) for lyr in layers[:limit]]
    if len(layers) > limit:
        parts.append(f"... {len(layers) - limit} more")
    return f"'{model.name}' ({' -> '.join(parts)})" if parts else f"'{model.name}'"
