"""Compiled callers, and the one per-model cache, neither keeping a model alive."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn._core.tree import flatten
from pytest_rnn._keras.backend import TRACES, compile_call
from pytest_rnn._keras.layerstate import state_print

__all__ = ["ModelCache", "compiled", "compiled_warm"]


class ModelCache:
    """Values cached per model and key, held through weak references to the model.

    ``cache.of(model)`` is that model's own dict; it goes when the model does.
    What a value holds must not refer back to the model strongly (hold it
    through ``weakref.ref``), or the model never goes.
    """

    def __init__(self) -> None:
        self._by_model: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def of(self, model: Any) -> dict[Any, Any]:
        """The dict of values cached for ``model`` (made empty on first use)."""
        return self._by_model.setdefault(model, {})

# model -> {key: callable}. Weak keys: a cached caller must not keep a model alive,
# so callers hold the model through a weak reference only.
_CALLERS = ModelCache()


def compiled(model: Any, x: Any, *, fixed_batch: bool) -> Callable[[Any], Any]:
    """A compiled ``model(x, training=False)`` returning numpy outputs.

    Cached per (model, input structure, batch size when ``fixed_batch``, dtype,
    what its adapted layers hold: :func:`~.layerstate.state_print`).
    TensorFlow: one trace serves every sequence length (the time dimension is
    left open). JAX: ``jax.jit``, one trace per input shape; stateful RNN
    states are read before and written back after every call. torch: eager,
    without autograd.
    """
    return compiled_warm(model, x, fixed_batch=fixed_batch)[0]


def compiled_warm(model: Any, x: Any, *, fixed_batch: bool) -> tuple[Callable[[Any], Any], bool]:
    """:func:`compiled`'s caller, and whether an earlier call had made it (so it has traced)."""
    structure = tuple((p, np.asarray(a).dtype.str, np.shape(a)[2:]) for p, a in flatten(x))
    batch = int(np.shape(flatten(x)[0][1])[0]) if fixed_batch else None
    # A trace holds the adapted statistics it was made with: adapted anew, traced anew.
    key = (structure, batch, tuple(state_print(model)))
    per_model = _CALLERS.of(model)
    if key in per_model:
        return per_model[key], True
    call = compile_call(weakref.ref(model), x, batch, TRACES.add)
    per_model[key] = call
    return call, False
