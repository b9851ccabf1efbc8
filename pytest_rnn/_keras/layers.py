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
from dataclasses import dataclass
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
    """``arg``'s arrays fit ``model``'s inputs: as many, same rank, same fixed steps and features.

    A model declared with a fixed time length (``keras.Input((20, 3))``) is
    refused other lengths: Keras runs a recurrent model on them without a
    word, but a verdict on a length the model was not built for is not about
    the model the user runs.

    ``leaves`` are ``(path, array)`` pairs in flatten order (``Batch.paths`` and
    ``Batch.leaves``); a dict key that names a model input is matched to that
    input, any other leaf to the input at its position. Raises a ValueError
    naming ``arg`` (``x has 5 features on axis 2 but the model input ...``)
    before Keras raises its own deep inside a layer.
    """
    inputs = list(getattr(model, "inputs", None) or [])
    if not inputs:
        return
    if len(leaves) != len(inputs):
        raise ValueError(f"{arg} holds {len(leaves)} arrays but model has {len(inputs)} inputs")
    by_name = {getattr(i, "name", None): i for i in inputs}
    for pos, (path, arr) in enumerate(leaves):
        key = path[2:-2] if path.startswith("['") else None
        spec = by_name.get(key, inputs[pos])
        want, shape, where = tuple(spec.shape), np.shape(arr), f"{arg}{path}"
        name = getattr(spec, "name", pos)
        if len(want) != len(shape):
            raise ValueError(
                f"{where} has shape {shape} ({len(shape)} dims) but the model input "
                f"{name!r} takes {len(want)} dims {want}"
            )
        if len(shape) >= 2 and want[1] is not None and want[1] != shape[1]:
            raise ValueError(
                f"{where} has {shape[1]} steps but the model input {name!r} is declared with "
                f"{want[1]} (shape {want}): pass {want[1]} steps (with Hypothesis, "
                f"sequence_shapes(min_steps={want[1]}, max_steps={want[1]})), or declare the "
                "time axis None (keras.Input((None, ...))) to check other lengths"
            )
        for axis in range(2, len(shape)):
            if want[axis] is not None and want[axis] != shape[axis]:
                raise ValueError(
                    f"{where} has {shape[axis]} features on axis {axis} but the model "
                    f"input {name!r} takes {want[axis]} (shape {want})"
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


def state_variables(layer: Any) -> list[Any] | None:
    """A stateful RNN layer's state variables, flat: stacked cells' nested lists unrolled.

    ``None`` while the layer has not created them (it never ran).
    """
    states = layer.states
    if states is None:
        return None
    flat: list[Any] = []
    pending = [states]
    while pending:
        item = pending.pop(0)
        if isinstance(item, (list, tuple)) or type(item).__name__ == "ListWrapper":
            pending[:0] = list(item)
        elif item is not None:
            flat.append(item)
    return flat


def reset_layer_states(layer: Any) -> None:
    """Zeros into a stateful RNN layer's states, eagerly or inside a traced function.

    Assigned one by one: Keras 3.15's ``RNN.reset_state`` fails on stacked cells
    (``RNN([LSTMCell(5), LSTMCell(3)])``: its states are a list of lists).
    """
    variables = state_variables(layer)
    if variables is None:
        layer.reset_state()  # not created yet: Keras creates them at zero
        return
    ops = keras_module().ops
    for var in variables:
        var.assign(ops.zeros(tuple(var.shape), dtype=var.dtype))


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


# --------------------------------------------------------------------------- inputs


def model_inputs(model: Any) -> Any:
    """The input structure ``model`` was built with: one tensor alone, several as a list."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def input_batch(model: Any) -> int | None:
    """The batch size every input of ``model`` fixes, or ``None`` (open, or not one size)."""
    sizes = {next(iter(i.shape)) for i in getattr(model, "inputs", None) or []}
    if len(sizes) == 1:
        return next(iter(sizes))
    return None


def fixed_batch(model: Any) -> bool:
    """Whether any input of ``model`` fixes its batch size (then one call per batch size)."""
    try:
        return any(spec.shape[0] is not None for spec in model.inputs or [])
    except Exception:  # a model without defined inputs
        return False


def fixed_steps(model: Any) -> int | None:
    """The number of steps the first input with a fixed time axis takes, or ``None``."""
    for i in getattr(model, "inputs", None) or []:
        shape = tuple(i.shape)
        if len(shape) >= 2 and shape[1] is not None:
            return int(shape[1])
    return None


def static_time_output(model: Any, index: int) -> bool:
    """Output ``index`` has a fixed axis 1 while every input's time axis is open."""
    from pytest_rnn._core.tree import flatten

    try:
        outputs = flatten(model.output)
        time_open = all(spec.shape[1] is None for spec in model.inputs)
        return bool(time_open and outputs[index][1].shape[1] is not None)
    except Exception:  # subclassed models have no symbolic output
        return False


def _fed_by_inputs(model: Any) -> Iterator[tuple[Any, int]]:
    """``(layer, input position)`` for each layer of a graph model that takes one of its inputs directly."""
    inputs = list(model.inputs)
    for layer in model.layers:
        try:
            source = layer.input
        except (AttributeError, ValueError):
            continue
        pos = next((n for n, t in enumerate(inputs) if t is source), None)
        if pos is not None:
            yield layer, pos


def valid_steps(model: Any, leaves: list[np.ndarray]) -> np.ndarray | None:
    """``(batch, steps)`` bool: the steps a Masking or mask_zero Embedding input layer keeps.

    ``leaves`` are ``model``'s input arrays in input order; ``None`` when no
    input is masked (or the model's graph cannot be read).
    """
    keras = keras_module()
    if not is_graph_model(model):
        return None
    valid = None
    for layer, pos in _fed_by_inputs(model):
        if isinstance(layer, keras.layers.Masking):
            value = layer.mask_value
        elif isinstance(layer, keras.layers.Embedding) and layer.mask_zero:
            value = None
        else:
            continue
        leaf = leaves[pos]
        mask = leaf != 0 if value is None else np.any(leaf != value, axis=-1)
        valid = mask if valid is None else valid & mask
    return valid


def token_ids(model: Any) -> list[tuple[int, int] | None] | None:
    """Per input leaf, the ``(lowest, highest)`` token id a single-input model's ``Embedding`` takes.

    For an input fed straight into ``Embedding(input_dim, ...)``: ``[(0,
    input_dim - 1)]`` (``1`` with ``mask_zero``, where 0 is padding), the
    ``ids`` of :func:`pytest_rnn._core.perturb.stack`; ``None`` for other
    models, several inputs, or a graph that cannot be read.
    """
    keras = keras_module()
    if not is_graph_model(model) or len(model.inputs) != 1:
        return None
    found = None
    for layer, _ in _fed_by_inputs(model):
        if isinstance(layer, keras.layers.Embedding):
            ids = (1 if layer.mask_zero else 0, int(layer.input_dim) - 1)
            found = ids if found is None else (max(found[0], ids[0]), min(found[1], ids[1]))
    return [found] if found is not None and found[0] <= found[1] else None


# --------------------------------------------------------------------------- probes


def is_rnn(layer: Any) -> bool:
    """Whether ``layer`` is a ``keras.layers.RNN`` (LSTM, GRU, SimpleRNN, custom cells)."""
    return isinstance(layer, keras_module().layers.RNN)


def top_layers(model: Any) -> list[Any]:
    """``model.layers`` without its InputLayers."""
    keras = keras_module()
    return [lyr for lyr in model.layers if not isinstance(lyr, keras.layers.InputLayer)]


def layer_outputs_model(model: Any, layers: list[Any]) -> Any:
    """A model from ``model``'s inputs to the (first) output of each of ``layers``."""
    from pytest_rnn._random import kept

    def first(output: Any) -> Any:
        return output[0] if isinstance(output, (list, tuple)) else output

    with kept():
        return keras_module().Model(model_inputs(model), [first(lyr.output) for lyr in layers])


@dataclass(frozen=True)
class GraphNode:
    """One call of a layer in a Functional graph (Keras's node, read once here)."""

    layer: Any
    inputs: list[Any]  # the KerasTensors it reads
    outputs: list[Any]  # the KerasTensors it makes
    node: Any  # Keras's own node (its call arguments: see timing)


def graph_nodes(model: Any) -> tuple[Any, list[GraphNode]] | None:
    """``(input structure, nodes)`` of a Sequential/Functional graph, inputs first; else ``None``.

    The only reader of Keras Functional internals (``_functional``,
    ``_nodes_by_depth``, ``_inputs_struct``); a subclassed model gives ``None``.
    """
    keras = keras_module()
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    if graph is None or not is_graph_model(graph) or not hasattr(graph, "_nodes_by_depth"):
        return None
    nodes = [
        GraphNode(
            layer=node.operation,
            inputs=list(node.arguments.keras_tensors),
            outputs=list(node.outputs),
            node=node,
        )
        for depth in sorted(graph._nodes_by_depth, reverse=True)
        for node in graph._nodes_by_depth[depth]
        if not node.is_input
    ]
    return graph._inputs_struct, nodes


def tensors_model(inputs: Any, outputs: list[Any]) -> Any:
    """``keras.Model(inputs, outputs)`` built without moving the global random state."""
    from pytest_rnn._random import kept

    with kept():
        return keras_module().Model(inputs, outputs)
