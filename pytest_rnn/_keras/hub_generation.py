"""The model's own generation loop, forced to given tokens: :func:`forced_generation`.

``generate_step`` runs with a ``keras_hub.samplers.Sampler`` of pytest-rnn's
(:func:`_forced_sampler_class`) that gives the next of the given tokens at
every iteration and keeps the logits each iteration computed in a loop
variable of its own, so nothing leaves the compiled loop but its results:
``tf.function`` on TensorFlow (with XLA from the second run on one input
shape, for float32 models), ``jax.jit`` with the weights as arguments on
JAX, eager under ``torch.no_grad()`` on torch, where the loop's iterations
replay a trace of its body (:func:`_replayed`). Every trace counts in
:data:`~pytest_rnn._keras.backend.TRACES`. What a run returned is a
:class:`Forced`; :meth:`Forced.generation` lays its logits out by position
(a :class:`Generation`), or says why the loop could not be forced.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn._core.tree import flatten
from pytest_rnn._keras.backend import TRACES, name, own_tf_function, to_numpy
from pytest_rnn._keras.hub_loops import (
    TRACEABLE,
    XLA_FROM_RUN,
    XLA_RUNS,
    eager,
    stateless,
    xla_rounds_alike,
)
from pytest_rnn._keras.traced import REPEATS, Replays, keras_layers_only, with_values

__all__ = ["Forced", "Generation", "forced_generation"]


def forced_generation(lm: Any, vocabulary: int) -> Callable[[dict[str, Any], np.ndarray], Forced]:
    """The model's ``generate_step`` with its sampler forced to given tokens: ``(inputs, tokens) -> Forced``.

    The sampler (a ``keras_hub.samplers.Sampler``) runs the base class's loop,
    gives ``tokens[:, index]`` at every iteration and keeps the logits each
    iteration computed (``vocabulary`` wide) in a loop variable of its own. The
    loop is compiled once per model and input shape (``tf.function``, and
    again with XLA at the second run on a shape where
    :func:`~.hub_loops.xla_rounds_alike`; ``jax.jit`` with the weights its
    arguments), eager under
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

    # The loops to try in order: compiled (TensorFlow: a graph; JAX: jitted), the eager body
    # last. TensorFlow adds XLA in front (as KerasHub's own generate() compiles it where XLA
    # runs) for float32 models, from the second run on one input shape.
    loops: list[Callable[..., Any]] = []
    xla: Callable[..., Any] | None = None
    if name() == "tensorflow":
        loops = [own_tf_function(traced)]
        if xla_rounds_alike(lm):
            xla = own_tf_function(traced, jit_compile=True)
    elif name() == "jax":
        loops = [stateless(ref, traced)]
    loops.append(body)
    runs: collections.Counter[tuple[int, ...]] = collections.Counter()

    def run(inputs: dict[str, Any], tokens: np.ndarray) -> Forced:
        nonlocal xla
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        runs[np.shape(tokens)] += 1
        tried = [*loops]
        if xla is not None and runs[np.shape(tokens)] >= XLA_FROM_RUN:
            tried.insert(0, xla)
        had = "sampler" in vars(m)
        saved = getattr(m, "sampler", None)
        m.sampler = sampler
        try:
            for loop in tried:
                try:
                    with eager() if loop is body else contextlib.nullcontext():
                        out, logits, computed = loop(inputs, np.asarray(tokens, np.int32))
                    if loop is xla:
                        XLA_RUNS.add()
                    break
                except Exception:
                    if loop is body:
                        raise
                    # does not compile so: the next one, and this one never again
                    if loop is xla:
                        xla = None
                    else:
                        loops.remove(loop)
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


def _replayed(
    body: Callable[..., Any], model: Any, iterations: Any, kept: Replays | None
) -> tuple[Callable[..., Any], Replays | None]:
    """torch: the generation loop's ``body``, its iterations replays of a trace; and the traces.

    ``kept`` (a :class:`~.traced.Replays`, one per model; ``None`` the first
    time: it is made and returned) holds the trace across
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
        or not keras_layers_only(model, TRACEABLE)
    ):
        return body, kept
    variables = list(model.variables)
    pure = with_values(lambda *state: tuple(body(*state)), variables)
    if kept is None:
        kept = Replays(pure, TRACES.add, limit=1)
    kept.call = pure  # this loop's body (a trace from an earlier one is the same program)
    kept.again()
    values = tuple(v.value for v in variables)
    step = kept

    def replayed(*state: Any) -> tuple[Any, ...]:
        shape = tuple(tuple(t.shape) for _, t in flatten(state))
        return tuple(step(shape, True, (values, *state)))

    return replayed, kept


@dataclass(frozen=True)
class Generation:
    """What the model's own generation loop computed, its sampler forced to the given tokens.

    Attributes:
        logits: ``(batch, steps, vocabulary)``; position ``p`` holds the logits the
            loop computed from the tokens up to ``p`` (NaN where it computed none).
        computed: ``(batch, steps)`` boolean: where the loop computed logits.
        tokens: the token ids ``generate_step`` returned.
        indices: the loop's ``index`` at each of its iterations.
        compiled: whether the loop ran compiled (``False``: eagerly).
    """

    logits: np.ndarray
    computed: np.ndarray
    tokens: np.ndarray
    indices: tuple[int, ...]
    compiled: bool = False


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

    def generation(self, tokens: np.ndarray, prompt: np.ndarray, cls: str) -> Generation:
        """The loop's logits by position, for a loop forced to ``tokens`` from ``prompt``.

        Raises:
            ValueError: the ``cls`` model's loop never called the sampler, or did not
                return the forced tokens: it cannot be forced.
        """
        batch, steps = tokens.shape
        if not self.records and int(prompt.sum(axis=1).min()) < steps:
            raise ValueError(
                f"generate=True: {cls}.generate_step never called causal_lm.sampler, so its "
                "loop cannot be forced to the given tokens; pass generate=False"
            )
        if self.tokens.shape != tokens.shape or not np.array_equal(self.tokens, tokens):
            raise ValueError(
                f"generate=True: {cls}.generate_step returned other tokens than the sampler "
                "was forced to give, so its loop cannot be forced; pass generate=False"
            )
        logits = np.full((batch, steps, 0), np.nan)
        computed = np.zeros((batch, steps), dtype=bool)
        for index, values in self.records:
            if logits.shape[2] == 0:
                logits = np.full((batch, steps, values.shape[-1]), np.nan, dtype=values.dtype)
            if 1 <= index <= steps:
                logits[:, index - 1] = values
                computed[:, index - 1] = True
        indices = tuple(i for i, _ in self.records)
        return Generation(logits, computed, self.tokens, indices, self.compiled)


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
            self.replays: Replays | None = None  # torch: the loop body's traces, kept across calls
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
            self.replayed = looped is not kept_body and bool(
                self.replays and self.replays.replaying
            )
            return tuple(state)

        def _replayed(self, body: Any, model: Any, iterations: Any) -> Any:
            """torch: ``body``, its iterations replays of a trace (see :func:`_replayed`)."""
            looped, self.replays = _replayed(body, model, iterations, self.replays)
            return looped

        def get_next_token(self, probabilities: Any) -> Any:
            return ops.take(self._forced_now, ops.cast(self._index, "int32"), axis=1)

    return ForcedSampler
