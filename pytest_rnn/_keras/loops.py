"""Compiled loops: a whole streamed run, or a whole step-wise decode, in one call.

:func:`graph_stream` is a ``tf.while_loop`` over the chunks on TensorFlow and
one ``jax.jit`` around a ``lax.scan`` over equal chunks on JAX (the states
carried as values), replays of a trace per chunk shape on torch (pytest-rnn's
own twins); :func:`graph_decoder` is TensorFlow only. Each returns
``None`` where the backend has no such loop (its callers loop over compiled
per-chunk or per-step calls). Every trace is reported to the ``count``
callback, the adapter's :data:`~pytest_rnn._keras.backend.TRACES` by default.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pytest_rnn._core.tree import as_list, flatten, map_structure
from pytest_rnn._keras.backend import (
    TRACES,
    name,
    own_tf_function,
    stateless_values,
    stateless_variables,
)
from pytest_rnn._keras.layers import reset_layer_states, state_variables, stateful_layers
from pytest_rnn._keras.traced import traced_stream

__all__ = ["graph_decoder", "graph_stream"]


#: A whole streamed run: ``(x, starts, ends) -> flat outputs``, or ``None`` where
#: it cannot run that schedule (then the caller feeds chunk by chunk).
StreamLoop = Callable[[Any, np.ndarray, np.ndarray], "list[np.ndarray] | None"]


def graph_stream(
    twin: Any,
    x: Any,
    sequence: list[bool],
    *,
    count: Callable[[], None] = TRACES.add,
    unroll: bool = False,
    trace: bool = False,
) -> StreamLoop | None:
    """A whole streamed run in one compiled call: ``(x, starts, ends) -> flat outputs``.

    The run starts from zero states and feeds ``twin`` the chunks
    ``x[:, starts[i]:ends[i]]``. Sequence outputs come back joined along time,
    last-step outputs as ``(batch, chunks, ...)``; the twin holds the last
    states after it. TensorFlow: one ``tf.function`` around a ``tf.while_loop``,
    one trace per twin (the chunk bounds are tensors); the caller rules out
    models that cannot take an open time axis. With ``unroll`` (for twins
    pytest-rnn built, never a user's model: their RNN layers are set
    ``unroll=True`` while the loop is traced), one-step chunks run through a
    second loop, traced once, whose chunks have a static length of one step:
    an RNN layer's own loop over a one-step chunk costs more than the step
    (100 one-step chunks of an LSTM(32): 9-12 ms rolled, 7-8 ms unrolled, the
    same outputs bit for bit). Not on a GPU, where the rolled layers run the
    cuDNN kernels the reference runs. JAX: see :func:`_jax_stream`. torch,
    with ``trace`` (for twins pytest-rnn built, as ``unroll``): each chunk one
    replay of a TorchScript trace (:func:`~pytest_rnn._keras.traced.traced_stream`);
    otherwise ``None``.
    """
    if name() == "jax":
        return _jax_stream(twin, sequence, count)
    if name() == "torch":
        return traced_stream(twin, sequence, count) if trace else None
    if name() != "tensorflow":
        return None
    import tensorflow as tf

    ref = weakref.ref(twin)
    batch = int(np.shape(flatten(x)[0][1])[0])
    flags = list(sequence)
    unroll = unroll and not tf.config.list_logical_devices("GPU")

    def spec(a: Any) -> Any:
        arr = np.asarray(a)
        return tf.TensorSpec((batch, None, *arr.shape[2:]), dtype=tf.as_dtype(arr.dtype))

    def time_first(t: Any) -> Any:
        return tf.transpose(t, [1, 0, *range(2, t.shape.rank)])

    def model() -> Any:
        count()
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        return m

    def streamed(m: Any, feed: Callable[[Any], list[Any]], chunks: Any) -> list[Any]:
        """Reset ``m`` and feed it chunks ``0 .. chunks - 1`` (``feed(i)``) in a while loop."""
        for _, layer in stateful_layers(m):  # reset_states, in the graph
            reset_layer_states(layer)
        # The first chunk outside the loop gives the outputs' dtypes and shapes.
        first = feed(0)
        arrays = [
            tf.TensorArray(
                o.dtype,
                size=chunks,
                infer_shape=not seq,
                element_shape=(
                    tf.TensorShape([None, *o.shape[:1], *o.shape[2:]]) if seq else o.shape
                ),
            )
            for o, seq in zip(first, flags)
        ]
        arrays = [
            ta.write(0, time_first(o) if seq else o) for ta, o, seq in zip(arrays, first, flags)
        ]

        def step(i: Any, tas: list[Any]) -> tuple[Any, list[Any]]:
            out = feed(i)
            return i + 1, [
                ta.write(i, time_first(o) if seq else o) for ta, o, seq in zip(tas, out, flags)
            ]

        _, arrays = tf.while_loop(lambda i, _: i < chunks, step, (tf.constant(1), arrays))
        return [
            time_first(ta.concat()) if seq else time_first(ta.stack())
            for ta, seq in zip(arrays, flags)
        ]

    def body(xs: Any, starts: Any, ends: Any) -> list[Any]:
        m = model()

        def feed(i: Any) -> list[Any]:
            chunk = map_structure(lambda a: a[:, starts[i] : ends[i]], xs)
            return [leaf for _, leaf in flatten(m(chunk, training=False))]

        return streamed(m, feed, tf.shape(starts)[0])

    bounds = tf.TensorSpec((None,), tf.int32)
    rolled = own_tf_function(body, input_signature=[map_structure(spec, x), bounds, bounds])

    def one_step_body(xs: Any) -> list[Any]:
        m = model()

        def feed(i: Any) -> list[Any]:
            def cut(a: Any) -> Any:
                return tf.ensure_shape(a[:, i : i + 1], (batch, 1, *a.shape[2:]))

            return [leaf for _, leaf in flatten(m(map_structure(cut, xs), training=False))]

        with _unrolled(m):
            return streamed(m, feed, tf.shape(flatten(xs)[0][1])[1])

    one_step = own_tf_function(one_step_body, input_signature=[map_structure(spec, x)])

    def run(xs: Any, starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
        nonlocal unroll
        tensors = map_structure(tf.convert_to_tensor, xs)
        starts, ends = np.asarray(starts, np.int32), np.asarray(ends, np.int32)
        steps = int(np.shape(flatten(xs)[0][1])[1])
        one = np.arange(steps, dtype=np.int32)
        out = None
        if unroll and np.array_equal(starts, one) and np.array_equal(ends, one + 1):
            try:
                out = one_step(tensors)
            except Exception:  # a layer that cannot be unrolled: the rolled loop from now on
                unroll = False
        if out is None:
            out = rolled(tensors, starts, ends)
        return [np.asarray(t.numpy()) for t in out]

    return run


def _equal_chunks(starts: Any, ends: Any) -> tuple[int, int, int] | None:
    """A schedule as ``(n, length, tail)``: ``n`` chunks of ``length`` steps, then a shorter
    ``tail`` (0: none); ``None`` for uneven lengths."""
    lengths = [int(b - a) for a, b in zip(starts, ends)]
    length = lengths[0]
    if any(n != length for n in lengths[:-1]) or lengths[-1] > length:
        return None
    short = lengths[-1] < length
    return len(lengths) - short, length, lengths[-1] if short else 0


@contextlib.contextmanager
def _unrolled(model: Any) -> Iterator[None]:
    """``model``'s stateful RNN layers with ``unroll=True`` (their calls traced meanwhile), then as they were."""
    rolled = [layer for _, layer in stateful_layers(model) if not layer.unroll]
    for layer in rolled:
        layer.unroll = True
    try:
        yield
    finally:
        for layer in rolled:
            layer.unroll = False


def _jax_stream(twin: Any, sequence: list[bool], count: Callable[[], None]) -> StreamLoop:
    """JAX: one ``jax.jit`` per chunk length and count, a ``lax.scan`` over the equal chunks.

    The run is ``(n, length, tail)``: ``n`` chunks of ``length`` steps, then a
    shorter ``tail`` (0: none); the states are the scan's carry, starting at
    zero, and the other variables a call writes are carried alike and written
    back after the run. A schedule of other shapes (uneven lengths) returns
    ``None``: one trace per schedule would cost more than it saves.
    """
    import jax
    import jax.numpy as jnp
    import keras

    ref = weakref.ref(twin)
    flags = list(sequence)

    def pure(values: list[Any], written: list[Any], xs: Any, n: int, length: int, tail: int) -> Any:
        count()
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        every, mutable = stateless_variables(m)
        trainable = [v for v in every if v.trainable]
        states = {id(s) for _, lyr in stateful_layers(m) for s in state_variables(lyr) or []}
        carry0 = [jnp.zeros_like(w) if id(v) in states else w for v, w in zip(mutable, written)]

        def chunk_call(carry: list[Any], chunk: Any) -> tuple[list[Any], list[Any]]:
            mapping = list(zip(trainable, values)) + list(zip(mutable, carry))
            with keras.StatelessScope(state_mapping=mapping) as scope:
                out = [leaf for _, leaf in flatten(m(chunk, training=False))]
                new = [
                    jnp.asarray(scope.get_current_value(v), c.dtype) for v, c in zip(mutable, carry)
                ]
            return new, out

        def chunked(a: Any) -> Any:  # (batch, n * length, ...) -> (n, batch, length, ...)
            a = a[:, : n * length].reshape(a.shape[0], n, length, *a.shape[2:])
            return jnp.swapaxes(a, 0, 1)

        carry, outs = jax.lax.scan(chunk_call, carry0, map_structure(chunked, xs))
        joined = []
        for o, seq in zip(outs, flags):
            o = jnp.swapaxes(o, 0, 1)  # (batch, n, ...)
            joined.append(o.reshape(o.shape[0], n * o.shape[2], *o.shape[3:]) if seq else o)
        if tail:
            carry, last = chunk_call(carry, map_structure(lambda a: a[:, n * length :], xs))
            joined = [
                jnp.concatenate([j, o if seq else o[:, None]], axis=1)
                for j, o, seq in zip(joined, last, flags)
            ]
        return joined, carry

    fn = jax.jit(pure, static_argnums=(3, 4, 5))

    def run(xs: Any, starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray] | None:
        equal = _equal_chunks(starts, ends)
        if equal is None:
            return None
        n, length, tail = equal
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        values, written, mutable = stateless_values(m)
        out, new = fn(values, written, map_structure(np.asarray, xs), n, length, tail)
        for var, value in zip(mutable, new):
            var.assign(value)
        return [np.asarray(o) for o in out]

    return run


def graph_decoder(
    encoder: Any,
    step: Any,
    *,
    enc_shape: tuple[int | None, ...],
    enc_dtype: np.dtype[Any],
    in_step: tuple[int, ...],
    in_dtype: np.dtype[Any],
    argmax: bool,
    prev_time: bool,
    prev_dtype: np.dtype[Any],
    out_time: bool,
    count: Callable[[], None] = TRACES.add,
    onehot: bool = False,
) -> Callable[[Any, Any, Any, int], np.ndarray] | None:
    """A whole step-wise decode in one compiled call: ``(enc, start, teacher, steps) -> outputs``.

    TensorFlow only (``None`` elsewhere): a ``tf.while_loop`` over steps
    around ``step([y_prev, *states]) -> [y, *states]`` after
    ``encoder(enc) -> states``. Rows ``[0, batch)`` run free (the output,
    argmax'd if ``argmax``, one-hot of the argmax if ``onehot``, is fed back), rows ``[batch, 2 batch)`` are fed
    ``teacher[:, t]`` (an empty ``teacher`` batch: free-running only). The
    step model is traced once, whatever the number of steps.
    """
    if name() != "tensorflow":
        return None
    import tensorflow as tf

    enc_ref, step_ref = weakref.ref(encoder), weakref.ref(step)
    prev_tf, in_tf = tf.as_dtype(prev_dtype), tf.as_dtype(in_dtype)

    def prev(v: Any) -> Any:
        v = tf.cast(v, prev_tf)
        return tf.expand_dims(v, 1) if prev_time else v

    def body(enc: Any, start: Any, teacher: Any, steps: Any) -> Any:
        count()
        encoder, step = enc_ref(), step_ref()
        assert encoder is not None and step is not None, "model was garbage-collected while in use"
        batch = tf.shape(start)[0]
        replay = tf.shape(teacher)[0] > 0
        states = as_list(encoder(enc, training=False))
        n_teacher = tf.shape(teacher)[0]
        states = [tf.concat([s, s[:n_teacher]], 0) for s in states]
        first = tf.concat([start, teacher[:, 0]], 0)
        outs = tf.TensorArray(step.outputs[0].dtype, size=steps, element_shape=None)

        def loop(t: Any, cur: Any, s: Any, outs: Any) -> Any:
            res = as_list(step([prev(cur), *s], training=False))
            y = res[0][:, 0] if out_time else res[0]
            outs = outs.write(t, y)
            fed = tf.argmax(y[:batch], axis=-1) if argmax or onehot else y[:batch]
            if onehot:
                fed = tf.one_hot(fed, depth=in_step[-1], dtype=in_tf)
            fed = tf.cast(tf.reshape(fed, (-1, *in_step)), in_tf)
            nxt = tf.minimum(t + 1, steps - 1)
            forced = tf.cond(replay, lambda: teacher[:, nxt], lambda: teacher[:, 0])
            # States come back in the dtype the step model computes them in; the next
            # call casts them to its inputs' dtype, so the loop carries that one.
            carried = [tf.cast(x, old.dtype) for x, old in zip(res[1:], s)] + res[1 + len(s) :]
            return t + 1, tf.concat([fed, forced], 0), carried, outs

        _, _, _, outs = tf.while_loop(
            lambda t, *_: t < steps,
            loop,
            [tf.constant(0), first, states, outs],
            shape_invariants=[
                tf.TensorShape([]),
                tf.TensorShape([None, *in_step]),
                [tf.TensorShape([None, *s.shape[1:]]) for s in states],
                None,
            ],
        )
        stacked = outs.stack()
        return tf.transpose(stacked, [1, 0, *range(2, len(stacked.shape))])

    graph = own_tf_function(
        body,
        input_signature=[
            tf.TensorSpec(enc_shape, tf.as_dtype(enc_dtype)),
            tf.TensorSpec((None, *in_step), in_tf),
            tf.TensorSpec((None, None, *in_step), in_tf),
            tf.TensorSpec((), tf.int32),
        ],
    )

    def call(enc: Any, start: Any, teacher: Any, steps: int) -> np.ndarray:
        return np.asarray(graph(enc, start, teacher, np.int32(steps)).numpy())

    return call
