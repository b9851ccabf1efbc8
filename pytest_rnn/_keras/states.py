"""RNN states: reset, read and write them on every stateful layer; the reset callback.

Keras 3 removed ``Model.reset_states``; these are its replacements, reaching
nested models and wrappers too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_rnn._keras.backend import to_numpy
from pytest_rnn._keras.layers import (
    check_model,
    keras_module,
    reset_layer_states,
    state_variables,
    stateful_layers,
)

# and ResetStatesCallback, built on first access (module __getattr__)
__all__ = ["callback_kind", "get_states", "reset_states", "set_states"]


def reset_states(model: Any) -> None:
    """Reset every stateful RNN layer of ``model`` to zeros, nested ones included.

    Keras 3 removed ``Model.reset_states``; this is its replacement.

    Example:
        >>> pytest_rnn.reset_states(streaming_model)
    """
    check_model(model, "model")
    for _, layer in stateful_layers(model):
        reset_layer_states(layer)


def get_states(model: Any) -> dict[str, list[np.ndarray]]:
    """The states of every stateful RNN layer, as numpy arrays keyed by layer path.

    Layers whose states were not created yet (the model never ran) are left
    out. The result can be given back to :func:`set_states`.
    """
    check_model(model, "model")
    out = {}
    for path, layer in stateful_layers(model):
        variables = state_variables(layer)
        if variables is not None:
            out[path] = [np.array(to_numpy(v)) for v in variables]
    return out


def set_states(model: Any, states: dict[str, list[np.ndarray]]) -> None:
    """Assign states saved by :func:`get_states` back to ``model``'s stateful layers.

    Raises:
        ValueError: a path names no stateful layer with created states, or a
            state has another shape than the layer's.
    """
    check_model(model, "model")
    if not isinstance(states, dict):
        raise TypeError(f"states must be a dict from get_states(), got {type(states).__name__}")
    layers = {
        p: variables
        for p, lyr in stateful_layers(model)
        if (variables := state_variables(lyr)) is not None
    }
    unknown = sorted(set(states) - set(layers))
    if unknown:
        raise ValueError(
            f"states names layers that are not stateful RNN layers with states in model: "
            f"{unknown}; known: {sorted(layers)}"
        )
    # Check every entry before the first assignment: all or nothing.
    for path, values in states.items():
        variables = layers[path]
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
        for var, value in zip(layers[path], values):
            var.assign(np.asarray(value, dtype=var.dtype))


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


# Hooks a callback may override that run at the start or end of training or of an epoch.
_RUN_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end")


def callback_kind(callback: Any) -> tuple[str, list[str]]:
    """What a ``fit`` callback does with the epoch index or the start of training.

    Returns ``(kind, hooks)``: kind ``"epoch_schedule"`` (LearningRateScheduler:
    called with the epoch index), ``"patience"`` (ReduceLROnPlateau,
    EarlyStopping: count epochs from ``on_train_begin``), ``"reset_states"``
    (:class:`ResetStatesCallback`) or ``"other"``; ``hooks`` names the run
    hooks an ``"other"`` callback overrides.
    """
    keras = keras_module()
    cb = keras.callbacks
    if isinstance(callback, cb.LearningRateScheduler):
        return "epoch_schedule", []
    if isinstance(callback, (cb.ReduceLROnPlateau, cb.EarlyStopping)):
        return "patience", []
    if isinstance(callback, __getattr__("ResetStatesCallback")):
        return "reset_states", []
    base = cb.Callback
    hooks = [h for h in _RUN_HOOKS if getattr(type(callback), h, None) is not getattr(base, h)]
    return "other", hooks
