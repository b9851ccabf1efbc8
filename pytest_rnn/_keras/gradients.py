"""Input gradients of a model's outputs, per backend (the causal maps' measure).

``input_gradients`` is re-exported by :mod:`pytest_rnn._keras`:

==========  ===========================================================
backend     how
==========  ===========================================================
TensorFlow  ``tf.GradientTape``, eager
JAX         ``jax.jit(jax.grad(...))`` over a stateless call, one trace
            per input shape, kept per model
torch       autograd, eager
==========  ===========================================================
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn._core.tree import flatten, map_structure
from pytest_rnn._keras.backend import (
    TRACES,
    name,
    state_mapping,
    stateless_values,
    torch_numpy,
)

__all__ = ["input_gradients"]


def input_gradients(
    model: Any,
    leaves: list[np.ndarray],
    rebuild: Callable[[list[Any]], Any],
    weigh: Callable[[int, tuple[int, ...]], np.ndarray | None],
    kept: dict[Any, Any] | None = None,
) -> list[np.ndarray | None] | None:
    """Gradients of ``sum_i sum(out_i * weigh(i, out_i.shape))`` with respect to ``leaves``.

    ``rebuild`` turns a list of leaves into the model's input structure;
    ``weigh`` returns the weights of flat output ``i`` (``None``: left out),
    and is called in output order. One array per leaf (``None`` where the
    output does not depend on it), or ``None`` if the backend gives none.

    JAX compiles the gradient (``jax.jit`` of ``jax.grad`` over a stateless
    call, the weights its arguments), one trace per input shape, kept in
    ``kept`` (the caller's per-model dict, see ``ModelCache``) for the next
    call: an eager ``jax.grad`` of a Keras RNN compiles its scan again at every
    call (0.3 s for an LSTM). TensorFlow (``GradientTape``) and torch
    (autograd) run eagerly: a compiled gradient's trace costs TensorFlow more
    than the eager pass it saves on a first call.
    """
    backend = name()
    if backend == "jax":
        kept = {} if kept is None else kept
        structure = map_structure(lambda _: None, rebuild(list(leaves)))
        key = ("gradients", repr(structure), tuple((a.shape, a.dtype.str) for a in leaves))
        if key not in kept:
            kept[key] = _jax_gradients(weakref.ref(model), leaves, rebuild)
        shapes, gradients = kept[key]
        weights = [weigh(i, shape) for i, shape in enumerate(shapes)]
        return gradients(leaves, rebuild, weights)
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(leaf) for leaf in leaves]
        with tf.GradientTape() as tape:
            for t in tensors:
                tape.watch(t)
            out = flatten(model(rebuild(tensors), training=False))
            total = tf.constant(0.0, dtype=tf.float64)
            for i, (_, o) in enumerate(out):
                w = weigh(i, tuple(o.shape))
                if w is not None:
                    total += tf.cast(tf.reduce_sum(o * tf.constant(w, dtype=o.dtype)), tf.float64)
        grads = tape.gradient(total, tensors)
        return [None if g is None else np.asarray(g.numpy()) for g in grads]
    if backend == "torch":
        import torch

        tensors = [torch.tensor(leaf, requires_grad=True) for leaf in leaves]
        out = flatten(model(rebuild(tensors), training=False))
        total = torch.zeros((), dtype=torch.float64)
        for i, (_, o) in enumerate(out):
            w = weigh(i, tuple(o.shape))
            if w is not None:
                total = total + (o * torch.as_tensor(w, dtype=o.dtype)).sum().double()
        if not total.requires_grad:
            return [None] * len(leaves)
        grads = torch.autograd.grad(total, tensors, allow_unused=True)
        return [None if g is None else torch_numpy(g) for g in grads]
    return None


#: ``(leaves, rebuild, weights) -> gradients``: a compiled gradient, its ``rebuild`` read at trace time.
_Gradients = Callable[[list[np.ndarray], Callable[[list[Any]], Any], list[Any]], list[Any]]


def _jax_gradients(
    ref: weakref.ref[Any], leaves: list[np.ndarray], rebuild: Callable[[list[Any]], Any]
) -> tuple[list[tuple[int, ...]], _Gradients]:
    """JAX: the output shapes on ``leaves``, and ``jax.jit(jax.grad(...))`` over a stateless call."""
    import jax
    import jax.numpy as jnp
    import keras

    holder: dict[str, Any] = {"rebuild": rebuild}

    def outputs(inputs: list[Any], values: list[Any], written: list[Any]) -> list[Any]:
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        with keras.StatelessScope(state_mapping=state_mapping(m, values, written)):
            return [o for _, o in flatten(m(holder["rebuild"](inputs), training=False))]

    def total(inputs: list[Any], weights: list[Any], values: list[Any], written: list[Any]) -> Any:
        TRACES.add()
        out = outputs(inputs, values, written)
        result = jnp.zeros((), jnp.float32)
        for o, w in zip(out, weights):
            if w is not None:
                result = result + jnp.sum(o * w.astype(o.dtype)).astype(jnp.float32)
        return result

    m = ref()
    assert m is not None, "model was garbage-collected while in use"
    values, written, _ = stateless_values(m)
    arrays = [jnp.asarray(a) for a in leaves]
    shapes = [tuple(o.shape) for o in jax.eval_shape(outputs, arrays, values, written)]
    holder.clear()
    fn = jax.jit(jax.grad(total))

    def gradients(leaves: list[np.ndarray], rebuild: Any, weights: list[Any]) -> list[Any]:
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        values, written, _ = stateless_values(m)
        holder["rebuild"] = rebuild
        try:
            grads = fn([jnp.asarray(a) for a in leaves], weights, values, written)
        finally:
            holder.clear()
        return [np.asarray(g) for g in grads]

    return shapes, gradients
