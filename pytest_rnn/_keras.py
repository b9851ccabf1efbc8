"""Keras adapter: every place pytest-rnn touches Keras or a backend.

Assertion modules ask this module for layers, states, twins and compiled
callers and never branch on the backend themselves: what differs between
TensorFlow, JAX and torch lives in :mod:`pytest_rnn._backend` and is re-exported
here. Keras is imported inside functions only: importing pytest_rnn must not
pay for TensorFlow.
"""

from __future__ import annotations

import contextlib
import random
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pytest_rnn._backend import (
    DETERMINISM,
    compile_call,
    determinism_guard,
    eager_call,
    float64_missing,
    float64_scope,
    graph_decoder,
    graph_stream,
    input_gradients,
    precision_guard,
    seed_guard,
    to_numpy,
)
from pytest_rnn._backend import name as backend_name
from pytest_rnn._compare import flatten, map_structure

__all__ = [
    "DETERMINISM",
    "backend_name",
    "compiled",
    "copy_weights",
    "describe_layer",
    "describe_model",
    "determinism_guard",
    "eager_call",
    "float64_missing",
    "float64_scope",
    "get_states",
    "graph_decoder",
    "graph_stream",
    "input_gradients",
    "iter_layers",
    "map_structure",
    "precision_guard",
    "reset_states",
    "rng_guard",
    "rnn_layers",
    "seed_guard",
    "set_states",
    "stateful_twin",
    "to_numpy",
]


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


def reset_states(model: Any) -> None:
    """Reset every stateful RNN layer of ``model`` to zeros, nested ones included.

    Keras 3 removed ``Model.reset_states``; this is its replacement.

    Example:
        >>> pytest_rnn.reset_states(streaming_model)
    """
    check_model(model, "model")
    for _, layer in stateful_layers(model):
        layer.reset_state()


def get_states(model: Any) -> dict[str, list[np.ndarray]]:
    """The states of every stateful RNN layer, as numpy arrays keyed by layer path.

    Layers whose states were not created yet (the model never ran) are left
    out. The result can be given back to :func:`set_states`.
    """
    check_model(model, "model")
    return {
        path: [np.array(v.numpy() if hasattr(v, "numpy") else v) for v in layer.states]
        for path, layer in stateful_layers(model)
        if layer.states is not None
    }


def set_states(model: Any, states: dict[str, list[np.ndarray]]) -> None:
    """Assign states saved by :func:`get_states` back to ``model``'s stateful layers.

    Raises:
        ValueError: a path names no stateful layer with created states, or a
            state has another shape than the layer's.
    """
    check_model(model, "model")
    if not isinstance(states, dict):
        raise TypeError(f"states must be a dict from get_states(), got {type(states).__name__}")
    layers = {p: lyr for p, lyr in stateful_layers(model) if lyr.states is not None}
    unknown = sorted(set(states) - set(layers))
    if unknown:
        raise ValueError(
            f"states names layers that are not stateful RNN layers with states in model: "
            f"{unknown}; known: {sorted(layers)}"
        )
    # Check every entry before the first assignment: all or nothing.
    for path, values in states.items():
        variables = layers[path].states
        if len(values) != len(variables):
            raise ValueError(
                f"states[{path!r}] has {len(values)} arrays, the layer has {len(variables)}"
            )
        for var, value in zip(variables, values):
            if tuple(var.shape) != tuple(np.shape(value)):
                raise ValueError(
                    f"states[{path!r}] has shape {np.shape(value)}, the layer's state "
                    f"has {tuple(var.shape)}"
                )
    for path, values in states.items():
        for var, value in zip(layers[path].states, values):
            var.assign(np.asarray(value, dtype=var.dtype))


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


def time_hazard(layer: Any, *, streaming: bool) -> str | None:
    """Why ``layer`` makes an output depend on other steps than the past, or ``None``.

    With ``streaming=True`` also layers that read only the past but need more
    than the chunk in hand (causal convolution without a buffer, attention
    without a cache) are named.
    """
    keras = keras_module()
    L = keras.layers
    if isinstance(layer, L.Bidirectional):
        return "Bidirectional reads the sequence backwards too: every step depends on the whole sequence"
    if isinstance(layer, L.RNN) and getattr(layer, "go_backwards", False):
        return "go_backwards=True runs from the last step: every output depends on later steps"
    if isinstance(layer, L.TimeDistributed):
        return None
    cfg: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        cfg = layer.get_config()
    if isinstance(layer, L.Conv1D) or (type(layer).__name__.startswith("Conv1D")):
        k = cfg.get("kernel_size", (1,))
        d = cfg.get("dilation_rate", (1,))
        k = k[0] if isinstance(k, (list, tuple)) else k
        d = d[0] if isinstance(d, (list, tuple)) else d
        reach = (int(k) - 1) * int(d)
        padding = cfg.get("padding")
        if reach == 0:
            return None
        if padding == "same":
            return f"Conv1D padding='same' reads {reach // 2 + reach % 2} future step(s)"
        if padding == "valid":
            return f"Conv1D padding='valid' reads {reach} future step(s) and shortens the sequence"
        if padding == "causal" and streaming:
            return (
                f"Conv1D padding='causal' needs the previous {reach} step(s), which a streamed "
                "chunk does not carry (no streaming buffer)"
            )
        return None
    name = type(layer).__name__
    if name in ("MultiHeadAttention", "Attention", "AdditiveAttention", "GroupedQueryAttention"):
        if streaming:
            return f"{name} attends over its whole input; a streamed chunk sees only itself"
        return f"{name} attends over every step unless called with use_causal_mask=True"
    if isinstance(layer, L.LayerNormalization):
        axis = cfg.get("axis", -1)
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        ndim = (
            len(layer.input.shape)
            if hasattr(layer, "_inbound_nodes") and layer._inbound_nodes
            else 3
        )
        if any(a % ndim == 1 for a in axes):
            return f"LayerNormalization(axis={axis}) normalises over the time axis: every step depends on the whole sequence"
        return None
    if name.startswith(("GlobalAveragePooling1D", "GlobalMaxPooling1D", "Flatten")):
        return f"{name} mixes every step of the sequence"
    if name in ("MaxPooling1D", "AveragePooling1D"):
        return f"{name} pools neighbouring steps together"
    return None


# --------------------------------------------------------------------------- guards


@contextlib.contextmanager
def rng_guard() -> Iterator[None]:
    """Restore Python's and numpy's global random state on exit.

    Building a Keras layer draws seeds from Python's ``random``; users who
    seeded their test must not see that.
    """
    py_state = random.getstate()
    np_state = np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


# --------------------------------------------------------------------------- twins


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
    with rng_guard():
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
        d.assign(np.asarray(s.numpy(), dtype=d.dtype))


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


# --------------------------------------------------------------------------- compiled calls

# model -> {key: callable}. Weak keys: a cached caller must not keep a model alive,
# so callers hold the model through a weak reference only.
_CALLERS: weakref.WeakKeyDictionary[Any, dict[Any, Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)
# Counts traces of compiled callers: benchmarks and tests read it.
trace_count = 0


def _count_trace() -> None:
    global trace_count
    trace_count += 1


def compiled(model: Any, x: Any, *, fixed_batch: bool) -> Callable[[Any], Any]:
    """A compiled ``model(x, training=False)`` returning numpy outputs.

    Cached per (model, input structure, batch size when ``fixed_batch``, dtype).
    TensorFlow: one trace serves every sequence length (the time dimension is
    left open). JAX: ``jax.jit``, one trace per input shape; stateful RNN
    states are read before and written back after every call. torch: eager,
    without autograd.
    """
    structure = tuple((p, np.asarray(a).dtype.str, np.shape(a)[2:]) for p, a in flatten(x))
    batch = int(np.shape(flatten(x)[0][1])[0]) if fixed_batch else None
    key = (structure, batch)
    per_model = _CALLERS.setdefault(model, {})
    if key in per_model:
        return per_model[key]
    call = compile_call(weakref.ref(model), x, batch, _count_trace)
    per_model[key] = call
    return call




# --------------------------------------------------------------------------- callback


def _make_reset_callback() -> type:
    keras = keras_module()

    class ResetStatesCallback(keras.callbacks.Callback):  # type: ignore[name-defined]
        """Reset every stateful RNN layer at the start of each epoch.

        Keras 3 removed ``Model.reset_states``; pass this to ``fit`` to get the
        classic "reset between epochs" loop in one ``fit(epochs=N)`` call.

        Example:
            >>> model.fit(x, y, epochs=10, shuffle=False,
            ...           callbacks=[pytest_rnn.ResetStatesCallback()])
        """

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            reset_states(self.model)

    return ResetStatesCallback


_reset_callback_class: type | None = None


def __getattr__(name: str) -> Any:
    # ResetStatesCallback subclasses keras.callbacks.Callback, so it is built
    # on first access: importing this module must not import Keras.
    global _reset_callback_class
    if name == "ResetStatesCallback":
        if _reset_callback_class is None:
            _reset_callback_class = _make_reset_callback()
        return _reset_callback_class
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
