"""Layer state that is not a weight: an adapted ``Normalization``'s statistics, a vocabulary.

Keras's adapt protocol keeps such state outside ``layer.weights``
(``finalize_state``, assets). :func:`carry_states` gives a copy of a model its
source's, the way Keras's own saving carries it; :func:`state_print` says what
those layers hold now, so that a copy or a compiled caller traced with older
statistics is made again.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pytest_rnn._keras.backend import to_numpy
from pytest_rnn._keras.layers import describe_layer, iter_layers, keras_module

__all__ = ["NotCopied", "carry_states", "named", "state_print"]


class NotCopied(Exception):
    """A layer Keras could not rebuild, or whose state could not be carried: what failed, and why."""

    def __init__(self, what: str, error: Exception) -> None:
        super().__init__(what)
        self.what, self.error = what, error


def named(path: str, layer: Any) -> str:
    """How messages name a layer: its path and what it is."""
    return f"{path!r} ({describe_layer(layer)})"


def _keeps_state(layer: Any) -> bool:
    """Whether ``layer`` keeps state beyond its weights and config (Keras's adapt protocol):
    ``Normalization``, the lookup layers, ``TextVectorization``, ``Discretization``."""
    return callable(getattr(layer, "finalize_state", None)) or callable(
        getattr(layer, "load_assets", None)
    )


def _state_layers(model: Any) -> list[tuple[str, Any]]:
    return [(path, layer) for path, layer in iter_layers(model) if _keeps_state(layer)]


def carry_states(source: Any, target: Any) -> None:
    """Give every layer of ``target`` that keeps state its ``source`` layer's, as Keras's saving does.

    Per layer: its own variables (``save_own_variables`` into
    ``load_own_variables``, which re-derives an adapted ``Normalization``'s
    statistics), then its assets (a vocabulary) through a temporary folder, then,
    for a layer with weights whose loading does not finalize it,
    ``finalize_state()`` (what Keras does after loading weights into one).
    Raises :class:`NotCopied` for a layer whose state Keras cannot carry.
    """
    keras = keras_module()
    ours, theirs = _state_layers(source), _state_layers(target)
    if [type(a) for _, a in ours] != [type(b) for _, b in theirs]:
        raise ValueError(
            f"cannot copy layer states: {target.name!r} has other layers that keep state"
        )
    for (path, src), (_, dst) in zip(ours, theirs):
        try:
            store: dict[str, Any] = {}
            src.save_own_variables(store)
            dst.load_own_variables({key: to_numpy(value) for key, value in store.items()})
            if callable(getattr(src, "save_assets", None)) and callable(
                getattr(dst, "load_assets", None)
            ):
                with tempfile.TemporaryDirectory() as folder:
                    src.save_assets(folder)
                    dst.load_assets(folder)
            finalized = type(dst).load_own_variables is not keras.layers.Layer.load_own_variables
            if callable(getattr(dst, "finalize_state", None)) and dst.weights and not finalized:
                dst.finalize_state()
        except Exception as error:
            what = f"the state of its layer {named(path, src)} (not a weight) cannot be copied"
            raise NotCopied(what, error) from error


def state_print(model: Any) -> list[bytes]:
    """What ``model``'s layers that keep state hold now (config, own variables, assets), as bytes.

    A copy is made again when this changes (the user adapted a layer anew): its
    compiled callers hold the statistics they were traced with.
    """
    prints = []
    for path, layer in _state_layers(model):
        store: dict[str, Any] = {}
        layer.save_own_variables(store)
        prints.append(f"{path} {layer.get_config()!r}".encode())
        prints.extend(np.asarray(to_numpy(store[key])).tobytes() for key in sorted(store))
        if callable(getattr(layer, "save_assets", None)):
            with tempfile.TemporaryDirectory() as folder:
                layer.save_assets(folder)
                files = sorted(f for f in Path(folder).rglob("*") if f.is_file())
                prints.extend(f.read_bytes() for f in files)
    return prints
