"""TensorFlow in-graph loops: a whole streamed run, or a whole step-wise decode, in one call.

Each function returns ``None`` on the other backends (their callers loop
over compiled per-chunk or per-step calls). Every trace is reported to the
``count`` callback, the adapter's :data:`~pytest_rnn._keras.backend.TRACES`
by default.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn._core.tree import as_list, flatten, map_structure
from pytest_rnn._keras.backend import TRACES, name, own_tf_function
from pytest_rnn._keras.layers import reset_layer_states, stateful_layers

__all__ = ["graph_decoder", "graph_stream"]


def graph_stream(
    twin: Any, x: Any, sequence: list[bool], *, count: Callable[[], None] = TRACES.add
) -> Callable[[Any, np.ndarray, np.ndarray], list[np.ndarray]] | None:
    """A whole streamed run in one compiled call: ``(x, starts, ends) -> flat outputs``.

    TensorFlow only (``None`` elsewhere): one ``tf.function`` resets ``twin``'s
    stateful layers and feeds it the chunks ``x[:, starts[i]:ends[i]]`` in a
    ``tf.while_loop``; one trace per twin (the chunk bounds are tensors).
    Sequence outputs come back joined along time, last-step outputs as
    ``(batch, chunks, ...)``. The caller rules out models that cannot take an
    open time axis.
    """
    if name() != "tensorflow":
        return None
    import tensorflow as tf

    ref = weakref.ref(twin)
    batch = int(np.shape(flatten(x)[0][1])[0])
    flags = list(sequence)

    def spec(a: Any) -> Any:
        arr = np.asarray(a)
        return tf.TensorSpec((batch, None, *arr.shape[2:]), dtype=tf.as_dtype(arr.dtype))

    def time_first(t: Any) -> Any:
        return tf.transpose(t, [1, 0, *range(2, t.shape.rank)])

    def body(xs: Any, starts: Any, ends: Any) -> list[Any]:
        count()
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        for _, layer in stateful_layers(m):  # reset_states, in the graph
            reset_layer_states(layer)

        def feed(i: Any) -> list[Any]:
            chunk = map_structure(lambda a: a[:, starts[i] : ends[i]], xs)
            return [leaf for _, leaf in flatten(m(chunk, training=False))]

        # The first chunk outside the loop gives the outputs' dtypes and shapes.
        first = feed(0)
        arrays = [
            tf.TensorArray(
                o.dtype,
                size=tf.shape(starts)[0],
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

        _, arrays = tf.while_loop(
            lambda i, _: i < tf.shape(starts)[0], step, (tf.constant(1), arrays)
        )
        return [
            time_first(ta.concat()) if seq else time_first(ta.stack())
            for ta, seq in zip(arrays, flags)
        ]

    bounds = tf.TensorSpec((None,), tf.int32)
    fn = own_tf_function(body, input_signature=[map_structure(spec, x), bounds, bounds])

    def run(xs: Any, starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
        tensors = map_structure(tf.convert_to_tensor, xs)
        out = fn(tensors, np.asarray(starts, np.int32), np.asarray(ends, np.int32))
        return [np.asarray(t.numpy()) for t in out]

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
