"""Compiled cached decoding for :class:`~pytest_rnn._keras.hub.CachedLM`.

:func:`decode_loop` runs a whole chunk schedule through ``call_with_cache``
in one call: a ``tf.while_loop`` over the chunks with the cache a loop
variable (TensorFlow, one trace per model and cache shape; a run of one
repeated chunk length compiled with XLA from the loop's second run, for
float32 models: :data:`XLA_FROM_RUN`, :func:`xla_rounds_alike`), or a
``lax.scan`` over consecutive chunks of one length (JAX, jitted with the
weights as arguments, :func:`stateless`), or on torch replays of a trace of
one call per chunk length (:mod:`.traced`; models of Keras's and KerasHub's
classes only, the others' calls eager). :func:`eager` is the context the
loops fall back to. The generation loop is :mod:`.hub_generation`'s. Every
trace counts in :data:`~pytest_rnn._keras.backend.TRACES`, every XLA run in
:data:`XLA_RUNS`.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import sys
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pytest_rnn._core.tree import flatten, map_structure
from pytest_rnn._keras.backend import TRACES, Traces, name, own_tf_function, to_numpy
from pytest_rnn._keras.traced import REPEATS, Replays, keras_layers_only, with_values

__all__ = [
    "TRACEABLE",
    "XLA_FROM_RUN",
    "XLA_RUNS",
    "DecodeLoop",
    "decode_loop",
    "eager",
    "stateless",
    "xla_rounds_alike",
]

#: A loop is compiled with XLA (TensorFlow, float32 models) from its second run on the same
#: input shapes on: XLA's compile costs some graph runs of the loop (0.3-0.8 s for a tiny
#: GPT2 or Llama), which a loop run once never pays back.
XLA_FROM_RUN = 2

#: How many loop runs XLA compiled and ran (tests read it).
XLA_RUNS = Traces()

#: ``(token_ids, padding_mask, cache, starts, ends) -> (logits, last cache)``.
DecodeLoop = Callable[[np.ndarray, np.ndarray, Any, np.ndarray, np.ndarray], tuple[np.ndarray, Any]]


def decode_loop(lm: Any, *, indexed: bool, takes_mask: bool, cache: Any) -> DecodeLoop | None:
    """Every chunk ``[starts[i], ends[i])`` through ``call_with_cache`` in order, compiled.

    Each call gets its chunk's tokens (and mask, if ``takes_mask``), the cache
    the previous call returned and, if ``indexed``, ``cache_update_index=starts[i]``.
    ``cache`` is a template of the cache's structure, shapes and dtypes.
    ``None`` on torch for a model of other classes than Keras's and KerasHub's.
    """
    ref = weakref.ref(lm)

    def call(tokens: Any, mask: Any, cache: Any, start: Any) -> tuple[Any, Any]:
        """One chunk (its tokens and mask, already cut) at position ``start``."""
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        kwargs: dict[str, Any] = {"padding_mask": mask} if takes_mask else {}
        if indexed:
            kwargs["cache_update_index"] = start
        logits, _, cache = m.call_with_cache(tokens, cache, **kwargs)
        return logits, cache

    if name() == "tensorflow":
        return _tf_decode(call, cache, xla=xla_rounds_alike(lm))
    if name() == "jax":
        return _jax_decode(ref, call)
    return _torch_decode(ref, call)


def xla_rounds_alike(lm: Any) -> bool:
    """Whether XLA may compile the model's loops on TensorFlow: it computes in float32 or float64.

    XLA fuses and rounds half-precision arithmetic its own way: a tiny float16
    GPT2's cached logits moved by up to 1.2e-4 (on logits of about 0.01)
    against the full pass, which runs without XLA; a float32 one's by about 3e-7.
    """
    return str(getattr(lm, "compute_dtype", "float32")) in ("float32", "float64")


def _tf_decode(call: Callable[..., tuple[Any, Any]], template: Any, *, xla: bool) -> DecodeLoop:
    """A ``tf.while_loop`` over any chunks, and runs of one repeated chunk length in XLA.

    The general loop (one trace per model and cache shape) takes every chunk's
    bounds as values, so its chunks have dynamic shapes, which XLA cannot
    compile. A run of :data:`~.traced.REPEATS` or more consecutive chunks of one
    length (a one-token decode) goes through a loop of its own, traced per
    length with the length fixed and compiled with XLA, from the loop's
    :data:`XLA_FROM_RUN`-th run on: 3.6x faster for a 4-layer GPT2 at 128
    tokens on a CPU (76 ms against 271 ms). A model whose calls XLA cannot
    compile keeps the general loop for every chunk, and so does one that does
    not compute in float32 (``xla`` False, :func:`xla_rounds_alike`).
    """
    import tensorflow as tf

    def time_first(t: Any) -> Any:
        return tf.transpose(t, [1, 0, 2])

    def chunk_loop(
        cut: Callable[[Any, Any], tuple[Any, Any]], cache: Any, count: Any, size: Any, length: Any
    ) -> tuple[Any, Any]:
        """Chunks ``0 .. count - 1`` through ``cut`` in a ``tf.while_loop``: logits joined, last cache.

        ``size`` slots of ``length`` steps each (``None``: chunks of any length)
        hold the logits; slots past ``count`` are left out of the result.
        """
        first, cache = cut(0, cache)
        logits = tf.TensorArray(
            first.dtype,
            size=size,
            infer_shape=False,
            element_shape=tf.TensorShape([length, first.shape[0], first.shape[2]]),
        ).write(0, time_first(first))

        def step(i: Any, logits: Any, cache: Any) -> tuple[Any, Any, Any]:
            out, cache = cut(i, cache)
            return i + 1, logits.write(i, time_first(out)), cache

        _, logits, cache = tf.while_loop(
            lambda i, *_: i < count, step, (tf.constant(1), logits, cache)
        )
        return time_first(logits.concat()), cache

    def body(tokens: Any, mask: Any, cache: Any, starts: Any, ends: Any) -> tuple[Any, Any]:
        TRACES.add()

        def cut(i: Any, cache: Any) -> tuple[Any, Any]:
            a, b = starts[i], ends[i]
            return call(tokens[:, a:b], mask[:, a:b], cache, a)

        n = tf.shape(starts)[0]
        return chunk_loop(cut, cache, n, n, None)

    def run_of(length: int) -> Callable[..., tuple[Any, Any]]:
        """``count`` chunks of ``length`` tokens from position ``start``: their logits, the cache."""

        def chunks(tokens: Any, mask: Any, cache: Any, start: Any, count: Any) -> tuple[Any, Any]:
            TRACES.add()

            def cut(i: Any, cache: Any) -> tuple[Any, Any]:
                a = start + i * length
                return call(
                    tf.slice(tokens, [0, a], [batch, length]),
                    tf.slice(mask, [0, a], [batch, length]),
                    cache,
                    a,
                )

            # XLA wants a fixed number of slots: as many as the tokens could fill.
            slots = tf.shape(tokens)[1] // length
            logits, cache = chunk_loop(cut, cache, count, slots, length)
            return logits[:, : count * length], cache

        scalar = tf.TensorSpec((), tf.int32)
        return own_tf_function(
            chunks, jit_compile=True, input_signature=[*signature, scalar, scalar]
        )

    batch = int(np.shape(flatten(template)[0][1])[0])
    spec = map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), template)
    signature = [
        tf.TensorSpec((batch, None), tf.int32),
        tf.TensorSpec((batch, None), tf.bool),
        spec,
    ]
    bounds = tf.TensorSpec((None,), tf.int32)
    general = own_tf_function(body, input_signature=[*signature, bounds, bounds])
    runs: dict[int, Callable[..., tuple[Any, Any]]] = {}
    calls = 0

    def run(
        tokens: np.ndarray, mask: np.ndarray, cache: Any, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        nonlocal calls, xla
        calls += 1
        ids, real = tf.constant(np.asarray(tokens, np.int32)), tf.constant(np.asarray(mask, bool))
        out: list[Any] = []
        pending: list[tuple[int, int]] = []  # chunks for the general loop, run before the next run

        def flush(cache: Any) -> Any:
            if pending:
                a, b = (tf.constant(side, tf.int32) for side in zip(*pending))
                logits, cache = general(ids, real, cache, a, b)
                out.append(logits)
                pending.clear()
            return cache

        for length, group in itertools.groupby(
            zip(starts.tolist(), ends.tolist()), key=lambda ab: ab[1] - ab[0]
        ):
            chunks = list(group)
            if xla and calls >= XLA_FROM_RUN and len(chunks) >= REPEATS:
                cache = flush(cache)
                if length not in runs:
                    runs[length] = run_of(length)
                try:
                    logits, cache = runs[length](
                        ids, real, cache, np.int32(chunks[0][0]), np.int32(len(chunks))
                    )
                except Exception:  # XLA cannot compile it: the general loop says what is wrong
                    xla = False
                    pending.extend(chunks)
                    continue
                XLA_RUNS.add()
                out.append(logits)
            else:
                pending.extend(chunks)
        cache = flush(cache)
        return np.concatenate([np.asarray(t.numpy()) for t in out], axis=1), cache

    return run


def _jax_decode(ref: weakref.ref[Any], call: Callable[..., tuple[Any, Any]]) -> DecodeLoop:
    """Consecutive chunks of one length in one ``lax.scan`` (the cache its carry), others one by one.

    Every function is jitted with the weights as arguments; a trace per chunk
    length (and per run length of a scan): the chunks are cut outside, their
    starts are values.
    """
    import jax
    import jax.numpy as jnp

    def chunk(tokens: Any, mask: Any, cache: Any, start: Any) -> tuple[Any, Any]:
        TRACES.add()
        return call(tokens, mask, cache, start)

    def scanned(tokens: Any, mask: Any, cache: Any, starts: Any) -> tuple[Any, Any]:
        TRACES.add()

        def one(cache: Any, piece: tuple[Any, Any, Any]) -> tuple[Any, Any]:
            logits, cache = call(*piece[:2], cache, piece[2])
            return cache, logits

        cache, logits = jax.lax.scan(one, cache, (tokens, mask, starts))
        n, batch, length = logits.shape[:3]  # (chunks, batch, length, vocabulary)
        return jnp.swapaxes(logits, 0, 1).reshape(batch, n * length, -1), cache

    single, many = stateless(ref, chunk), stateless(ref, scanned)

    def run(
        tokens: np.ndarray, mask: np.ndarray, cache: Any, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        tokens, mask = np.asarray(tokens, np.int32), np.asarray(mask, bool)
        out = []
        for _, group in itertools.groupby(zip(starts, ends), key=lambda ab: ab[1] - ab[0]):
            bounds = list(group)
            if len(bounds) == 1:
                a, b = bounds[0]
                logits, cache = single(tokens[:, a:b], mask[:, a:b], cache, np.int32(a))
            else:
                first, last = bounds[0][0], bounds[-1][1]
                pieces = [
                    np.stack(np.split(side[:, first:last], len(bounds), axis=1))
                    for side in (tokens, mask)
                ]
                at = np.asarray([a for a, _ in bounds], np.int32)
                logits, cache = many(*pieces, cache, at)
            out.append(np.asarray(logits))
        return np.concatenate(out, axis=1), cache

    return run


#: The packages whose classes a torch trace of a causal LM may run (a user's subclass
#: may branch on values, which a trace would freeze: see :mod:`.traced`).
TRACEABLE = ("keras", "keras_hub")


def _torch_decode(ref: weakref.ref[Any], call: Callable[..., tuple[Any, Any]]) -> DecodeLoop | None:
    """torch: each chunk one replay of a trace of ``call_with_cache`` (per chunk length the
    schedule repeats), the cache and the position its inputs; ``None`` for a model of other
    classes than Keras's and KerasHub's (then every call is eager)."""
    import torch

    lm = ref()
    if lm is None or not keras_layers_only(lm, TRACEABLE) or not hasattr(torch.jit, "trace"):
        return None
    variables = list(lm.variables)
    step = Replays(with_values(call, variables), TRACES.add)

    def run(
        tokens: np.ndarray, mask: np.ndarray, cache: Any, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        lengths = collections.Counter((np.asarray(ends) - np.asarray(starts)).tolist())
        ids, real = torch.as_tensor(np.asarray(tokens, np.int32)), torch.as_tensor(mask)
        values = tuple(v.value for v in variables)
        out = []
        with torch.no_grad():
            for a, b in zip(np.asarray(starts).tolist(), np.asarray(ends).tolist()):
                at = torch.tensor(a, dtype=torch.int32)
                args = (values, ids[:, a:b], real[:, a:b], cache, at)
                logits, cache = step(b - a, lengths[b - a] >= REPEATS, args)
                out.append(logits)
        return np.asarray(to_numpy(torch.cat(out, dim=1))), cache

    return run


def stateless(ref: weakref.ref[Any], fn: Callable[..., Any]) -> Callable[..., Any]:
    """JAX: ``fn`` jitted with the model's variables as arguments, not as the trace's constants."""
    import jax
    import keras

    def pure(values: list[Any], *args: Any) -> Any:
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        with keras.StatelessScope(state_mapping=list(zip(m.variables, values))):
            return fn(*args)

    jitted = jax.jit(pure)

    def call(*args: Any) -> Any:
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        return jitted([v.value for v in m.variables], *args)

    return call


@contextlib.contextmanager
def eager() -> Iterator[None]:
    """Loops run in Python (JAX: jit off, so the model's own Python sees values), without autograd (torch)."""
    backend = name()
    with contextlib.ExitStack() as stack:
        if backend == "jax" and "jax" in sys.modules:
            stack.enter_context(sys.modules["jax"].disable_jit())
        elif backend == "torch" and "torch" in sys.modules:
            stack.enter_context(sys.modules["torch"].no_grad())
        yield
