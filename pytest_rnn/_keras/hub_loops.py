"""Compiled cached decoding and generation for :class:`~pytest_rnn._keras.hub.CachedLM`.

:func:`decode_loop` runs a whole chunk schedule through ``call_with_cache``
in one call: a ``tf.while_loop`` over the chunks with the cache a loop
variable (TensorFlow, one trace per model and cache shape), or a
``lax.scan`` over consecutive chunks of one length (JAX, jitted with the
weights as arguments), or on torch replays of a trace of one call per chunk
length (:mod:`.traced`; models of Keras's and KerasHub's classes only, the
others' calls eager). :func:`forced_generation`
runs the model's own ``generate_step`` with a sampler forced to given
tokens, compiled alike (eager under ``torch.no_grad()`` on torch); the
sampler keeps each iteration's logits in a loop variable of its own, so
nothing leaves the compiled loop but its results. Every trace counts in
:data:`~pytest_rnn._keras.backend.TRACES`.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import sys
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn._core.tree import flatten, map_structure
from pytest_rnn._keras.backend import TRACES, name, own_tf_function, to_numpy
from pytest_rnn._keras.traced import REPEATS, Replays, keras_layers_only

__all__ = ["DecodeLoop", "Forced", "decode_loop", "eager", "forced_generation"]

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
        return _tf_decode(call, cache)
    if name() == "jax":
        return _jax_decode(ref, call)
    return _torch_decode(ref, call)


def _tf_decode(call: Callable[..., tuple[Any, Any]], template: Any) -> DecodeLoop:
    import tensorflow as tf

    def time_first(t: Any) -> Any:
        return tf.transpose(t, [1, 0, 2])

    def body(tokens: Any, mask: Any, cache: Any, starts: Any, ends: Any) -> tuple[Any, Any]:
        TRACES.add()

        def cut(i: Any, cache: Any) -> tuple[Any, Any]:
            a, b = starts[i], ends[i]
            return call(tokens[:, a:b], mask[:, a:b], cache, a)

        first, cache = cut(0, cache)
        logits = tf.TensorArray(
            first.dtype,
            size=tf.shape(starts)[0],
            infer_shape=False,
            element_shape=tf.TensorShape([None, first.shape[0], first.shape[2]]),
        ).write(0, time_first(first))

        def step(i: Any, logits: Any, cache: Any) -> tuple[Any, Any, Any]:
            out, cache = cut(i, cache)
            return i + 1, logits.write(i, time_first(out)), cache

        _, logits, cache = tf.while_loop(
            lambda i, *_: i < tf.shape(starts)[0], step, (tf.constant(1), logits, cache)
        )
        return time_first(logits.concat()), cache

    batch = int(np.shape(flatten(template)[0][1])[0])
    spec = map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), template)
    bounds = tf.TensorSpec((None,), tf.int32)
    fn = own_tf_function(
        body,
        input_signature=[
            tf.TensorSpec((batch, None), tf.int32),
            tf.TensorSpec((batch, None), tf.bool),
            spec,
            bounds,
            bounds,
        ],
    )

    def run(
        tokens: np.ndarray, mask: np.ndarray, cache: Any, starts: np.ndarray, ends: np.ndarray
    ) -> tuple[np.ndarray, Any]:
        logits, cache = fn(
            np.asarray(tokens, np.int32),
            np.asarray(mask, bool),
            cache,
            np.asarray(starts, np.int32),
            np.asarray(ends, np.int32),
        )
        return np.asarray(logits.numpy()), cache

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

    single, many = _stateless(ref, chunk), _stateless(ref, scanned)

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
_TRACEABLE = ("keras", "keras_hub")


def _torch_decode(ref: weakref.ref[Any], call: Callable[..., tuple[Any, Any]]) -> DecodeLoop | None:
    """torch: each chunk one replay of a trace of ``call_with_cache`` (per chunk length the
    schedule repeats), the cache and the position its inputs; ``None`` for a model of other
    classes than Keras's and KerasHub's (then every call is eager)."""
    import keras
    import torch

    lm = ref()
    if lm is None or not keras_layers_only(lm, _TRACEABLE) or not hasattr(torch.jit, "trace"):
        return None
    variables = list(lm.variables)

    def pure(values: tuple[Any, ...], tokens: Any, mask: Any, cache: Any, start: Any) -> Any:
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return call(tokens, mask, cache, start)

    step = Replays(pure, TRACES.add)

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


def forced_generation(lm: Any, vocabulary: int) -> Callable[[dict[str, Any], np.ndarray], Forced]:
    """The model's ``generate_step`` with its sampler forced to given tokens: ``(inputs, tokens) -> Forced``.

    The sampler (a ``keras_hub.samplers.Sampler``) runs the base class's loop,
    gives ``tokens[:, index]`` at every iteration and keeps the logits each
    iteration computed (``vocabulary`` wide) in a loop variable of its own. The
    loop is compiled once per model and input shape (``tf.function``;
    ``jax.jit`` with the weights its arguments), eager under
    ``torch.no_grad()`` on torch (its iterations replays of a trace where
    :func:`_replayed` allows), and eagerly (JAX: jit off) where it does not
    compile. The model's ``sampler`` is set for the call and put back after it.
    """
    sampler = _forced_sampler_class()(vocabulary)
    ref = weakref.ref(lm)

    def body(inputs: Any, tokens: Any) -> tuple[Any, Any, Any]:
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        sampler.forced = tokens
        sampler.kept = None
        sampler.replayed = False
        out = m.generate_step(inputs, stop_token_ids=None)
        return out, *(sampler.kept or (None, None))

    def traced(inputs: Any, tokens: Any) -> tuple[Any, Any, Any]:
        TRACES.add()
        return body(inputs, tokens)

    loop: Callable[..., Any] = body
    if name() == "tensorflow":
        loop = own_tf_function(traced)
    elif name() == "jax":
        loop = _stateless(ref, traced)

    def run(inputs: dict[str, Any], tokens: np.ndarray) -> Forced:
        nonlocal loop
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        had = "sampler" in vars(m)
        saved = getattr(m, "sampler", None)
        m.sampler = sampler
        try:
            with eager() if loop is body else contextlib.nullcontext():
                try:
                    out, logits, computed = loop(inputs, np.asarray(tokens, np.int32))
                except Exception:
                    if loop is body:
                        raise
                    loop = body  # not compilable: eager from now on, where errors read as they are
                    with eager():
                        out, logits, computed = loop(inputs, np.asarray(tokens, np.int32))
        finally:
            if had:
                m.sampler = saved
            else:
                with contextlib.suppress(AttributeError):
                    del m.sampler
        returned = np.asarray(to_numpy(out["token_ids"] if isinstance(out, dict) else out))
        compiled = loop is not body or sampler.replayed
        if logits is None:  # the sampler was never called
            return Forced(returned, [], compiled)
        logits, computed = np.asarray(to_numpy(logits)), np.asarray(to_numpy(computed))
        return Forced(returned, [(int(i), logits[i]) for i in np.flatnonzero(computed)], compiled)

    return run


def _replays() -> Any:
    return Replays(None, TRACES.add, limit=1)  # type: ignore[arg-type]  # set per loop


def _replayed(
    body: Callable[..., Any], model: Any, iterations: Any, kept: Any
) -> Callable[..., Any]:
    """torch: the generation loop's ``body``, its iterations replays of a trace.

    ``kept`` (a :class:`~.traced.Replays`, one per model) holds the trace across
    loops, and it is checked again in every loop, on the loop's first
    iteration: besides the model's weights (its inputs) a trace holds what
    ``generate_step``'s closure reads as constants, so a loop over other inputs
    must show that they did not matter. Elsewhere, for models of other classes
    than Keras's and KerasHub's, and for loops of fewer than
    :data:`~.traced.REPEATS` iterations: ``body`` itself.
    """
    import keras

    if (
        keras.backend.backend() != "torch"
        or model is None
        or iterations is None
        or int(iterations) < REPEATS
        or not keras_layers_only(model, _TRACEABLE)
    ):
        return body
    variables = list(model.variables)

    def pure(values: tuple[Any, ...], *state: Any) -> tuple[Any, ...]:
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return tuple(body(*state))

    kept.call = pure  # this loop's body (a trace from an earlier one is the same program)
    kept.again()
    values = tuple(v.value for v in variables)

    def replayed(*state: Any) -> tuple[Any, ...]:
        shape = tuple(tuple(t.shape) for _, t in flatten(state))
        return tuple(kept(shape, True, (values, *state)))

    return replayed


@dataclass(frozen=True)
class Forced:
    """What a forced ``generate_step`` returned.

    Attributes:
        tokens: the token ids it returned.
        records: ``(index, logits)`` of every iteration, in index order.
        compiled: whether the loop ran compiled (torch: its iterations replays of a
            trace; ``False``: eagerly).
    """

    tokens: np.ndarray
    records: list[tuple[int, np.ndarray]]
    compiled: bool


def _stateless(ref: weakref.ref[Any], fn: Callable[..., Any]) -> Callable[..., Any]:
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


@functools.cache
def _forced_sampler_class() -> type:
    """A ``keras_hub.samplers.Sampler`` that gives set tokens and keeps the loop's logits.

    Built on first use, so importing pytest_rnn does not import KerasHub.
    """
    from keras import ops
    from keras_hub.samplers import Sampler

    class ForcedSampler(Sampler):
        """Gives ``forced[:, index]`` at every iteration of the base class's loop.

        The loop's own variables are left as they are; :meth:`run_loop` adds
        three: the forced tokens, the logits computed at each index ``(steps,
        batch, vocabulary)`` and whether an index was computed, the last two left
        in :attr:`kept` after the loop.
        """

        def __init__(self, vocabulary: int) -> None:
            super().__init__()
            self.vocabulary = vocabulary
            self.forced: Any = None
            self.kept: tuple[Any, Any] | None = None
            self._index: Any = 0
            self._logits: Any = None
            self._forced_now: Any = None
            self.replays: Any = None  # torch: the loop body's traces, kept across calls
            self.replayed = False  # torch: whether the last loop replayed them

        def __call__(self, next: Any, prompt: Any, *args: Any, **kwargs: Any) -> Any:
            def seen(prompt: Any, cache: Any, index: Any) -> Any:
                out = next(prompt, cache, index)
                self._index, self._logits = index, out[0]
                return out

            return super().__call__(seen, prompt, *args, **kwargs)

        def run_loop(
            self, cond: Any, body: Any, model: Any = None, loop_vars: Any = None, **kwargs: Any
        ) -> Any:
            prompt = loop_vars[0]
            steps, batch = ops.shape(prompt)[1], ops.shape(prompt)[0]
            logits = ops.zeros((steps, batch, self.vocabulary), "float32")
            computed = ops.zeros((steps,), "bool")
            # The forced tokens ride in the loop too: an input of a torch trace, not its constant.
            forced = ops.convert_to_tensor(self.forced, "int32")

            def kept_cond(*state: Any) -> Any:
                return cond(*state[:-3])

            def kept_body(*state: Any) -> Any:
                self._forced_now = state[-3]
                out = body(*state[:-3])
                logits, computed = state[-2:]
                at = ops.cast(self._index, "int32")
                row = ops.cast(self._logits, "float32")[None]
                logits = ops.slice_update(logits, [at, 0, 0], row)
                computed = ops.slice_update(computed, [at], ops.ones((1,), "bool"))
                return (*out, state[-3], logits, computed)

            looped = self._replayed(kept_body, model, kwargs.get("maximum_iterations"))
            *state, _, logits, computed = super().run_loop(
                kept_cond,
                looped,
                model=model,
                loop_vars=(*loop_vars, forced, logits, computed),
                **kwargs,
            )
            self.kept = (logits, computed)
            self.replayed = looped is not kept_body and self.replays.replaying
            return tuple(state)

        def _replayed(self, body: Any, model: Any, iterations: Any) -> Any:
            """torch: ``body``, its iterations replays of a trace (see :func:`_replayed`)."""
            if self.replays is None:
                self.replays = _replays()
            return _replayed(body, model, iterations, self.replays)

        def get_next_token(self, probabilities: Any) -> Any:
            return ops.take(self._forced_now, ops.cast(self._index, "int32"), axis=1)

    return ForcedSampler
