"""The walk that finds the layers a renderer of :mod:`.timing` names in a model."""

from __future__ import annotations

from typing import Any, NamedTuple

from pytest_rnn._keras.layers import iter_layers, keras_module
from pytest_rnn._keras.timing import Reason

__all__ = ["Suspect", "suspects"]


class Suspect(NamedTuple):
    """A layer a renderer names: where it sits, the layer, and why."""

    path: str
    layer: Any
    reason: str


def suspects(model: Any, reason: Reason, *, wrapped: bool = False) -> list[Suspect]:
    """Every layer of ``model`` that ``reason`` names, depth first; a named layer is not looked into.

    The two families walk differently today, so each keeps its walk:

    Args:
        model: a Keras model.
        reason: a renderer, :func:`stream_reason` or :func:`causal_reason`;
            it gets each layer with the nodes of its calls.
        wrapped: ``False`` (the causality walk): the top-level layers and,
            recursively, those of nested models (models themselves are not
            asked, nor the layers inside wrappers: a TimeDistributed's inner
            layer works within one step). ``True`` (the streaming walk): every
            layer, nested models, wrappers, their inner layers and custom
            layers' sublayers included.
    """
    keras = keras_module()
    found: list[Suspect] = []
    models = {""}  # paths whose children the causality walk visits
    for path, layer in iter_layers(model):
        if any(path.startswith(f"{s.path}/") for s in found):
            continue
        if not wrapped:
            if path.rpartition("/")[0] not in models:
                continue
            if isinstance(layer, keras.Model):
                models.add(path)
                continue
        why = reason(layer, getattr(layer, "_inbound_nodes", ()))
        if why:
            found.append(Suspect(path, layer, why))
    return found
