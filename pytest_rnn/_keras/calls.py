"""Compiled callers, cached per model without keeping the model alive."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn._core.tree import flatten
from pytest_rnn._keras.backend import TRACES, compile_call

__all__ = ["compiled"]

# model -> {key: callable}. Weak keys: a cached caller must not keep a model alive,
# so callers hold the model through a weak reference only.
_CALLERS: weakref.WeakKeyDictionary[Any, dict[Any, Callable[..., Any]]] = (
    weakref.WeakKeyDictionary()
)


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
    call = compile_call(weakref.ref(model), x, batch, TRACES.add)
    per_model[key] = call
    return call
