"""torch: streamed runs and scans through TorchScript traces of one step.

Keras on torch runs every call eagerly, and most of a one-step chunk's cost is
Keras's Python around the step (about 0.6 ms for an LSTM(32), against 0.03
ms traced). :func:`traced_stream` feeds a schedule through a trace of the
twin's stateless call ``(weights, carried variables, chunk) -> (outputs,
carried variables)``, made once per chunk shape and then replayed; the states
are carried as values between chunks, from zero, and written back after the
run. :func:`scan` does the same for ``keras.ops.scan`` (the lookahead copy's
loop over a thousand steps for the states).

A trace replays the operations of the call it recorded, so it is the model
only where the call has no Python branch on values. Traces are made only of
Keras's own layers and cells (a user's class may branch on anything, or keep
Python state), and a trace is kept only after it agrees bit for bit with the
eager call on a second step, its states no longer the first's, on every one
of :data:`CHECKED_REPLAYS` replays; otherwise the steps run eagerly. Chunk
lengths that a schedule repeats fewer than :data:`REPEATS` times run eagerly
through the same stateless call, so every chunk computes the same operations
either way. Replays run under ``torch.inference_mode()`` (:func:`_replay`);
eager calls as the caller set them.
"""

from __future__ import annotations

import collections
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn._core.tree import flatten, map_structure
from pytest_rnn._keras.backend import TRACES, stateless_values, stateless_variables, torch_numpy
from pytest_rnn._keras.layers import state_variables, stateful_layers

__all__ = [
    "CHECKED_REPLAYS",
    "REPEATS",
    "TRACES_PER_TWIN",
    "Replays",
    "keras_layers_only",
    "scan",
    "traced_stream",
    "with_values",
]

#: A chunk length is traced once a schedule holds it this many times (a trace
#: costs about 30 eager calls).
REPEATS = 8

#: At most this many chunk shapes are traced per twin; others run eagerly.
TRACES_PER_TWIN = 4

#: A trace is checked on this many replays: TorchScript's executor profiles the first
#: and runs an optimized graph from the second on (``torch._C._jit_get_num_profiled_runs``).
CHECKED_REPLAYS = 3

#: Held while a trace is made (see :meth:`Replays._trace`).
_TRACING = threading.Lock()

#: ``(x, starts, ends) -> flat outputs``, as :func:`~pytest_rnn._keras.loops.graph_stream`.
StreamLoop = Callable[[Any, np.ndarray, np.ndarray], list[np.ndarray]]


def keras_layers_only(model: Any, packages: tuple[str, ...] = ("keras",)) -> bool:
    """Whether ``model`` and every layer and cell in it is a class of one of ``packages``."""
    try:
        layers = list(model._flatten_layers(include_self=True, recursive=True))
    except (AttributeError, TypeError):
        return False
    return all(type(layer).__module__.split(".")[0] in packages for layer in layers)


def with_values(fn: Callable[..., Any], variables: list[Any]) -> Callable[..., Any]:
    """``fn`` as a stateless step ``(values, *args) -> fn(*args)``, ``variables`` read as ``values``.

    The weights are then the trace's inputs, not its constants; ``fn`` must
    write no variable.
    """
    import keras

    def pure(values: tuple[Any, ...], *args: Any) -> Any:
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return fn(*args)

    return pure


class Replays:
    """One stateless step ``call(*args)``, replayed from a trace per shape of its arguments.

    :meth:`__call__` gives ``call(*args)``'s result: on the first step of a
    shape asked to be traced, from the eager call (and the trace is made); on
    the second, from the eager call, and the trace is kept only where its
    replays agree with it (:func:`_checked`); from then on from a replay. A
    shape that fails to trace or disagrees runs eagerly from then on. At most
    ``limit`` shapes are traced; ``count`` is called at every trace.
    """

    def __init__(
        self, call: Callable[..., Any], count: Callable[[], None], limit: int = TRACES_PER_TWIN
    ) -> None:
        self.call, self.count, self.limit = call, count, limit
        self.traces: dict[Any, Any] = {}  # shape -> the trace, or None: eager
        self.pending: dict[Any, Any] = {}  # traced, not yet checked

    def __call__(self, shape: Any, trace: bool, args: tuple[Any, ...]) -> Any:
        """``call(*args)``; ``shape`` keys the trace, ``trace``: make one if there is none."""
        if shape in self.traces:
            fn = self.traces[shape]
            if fn is not None:
                try:
                    return _replay(fn, args)
                except Exception:  # a replay that cannot run these arguments: eager from now on
                    self.traces[shape] = None
            return self.call(*args)
        if shape in self.pending:  # the second step of this shape: kept if it agrees
            fn = self.pending.pop(shape)
            result, agrees = _checked(self.call, fn, args)
            self.traces[shape] = fn if agrees else None
            return result
        if trace and len(self.traces) + len(self.pending) < self.limit:
            fn = self._trace(args)
            if fn is None:
                self.traces[shape] = None
            else:
                self.pending[shape] = fn
        return self.call(*args)

    @property
    def replaying(self) -> bool:
        """Whether a trace is kept (checked, or waiting to be checked again)."""
        return any(fn is not None for fn in self.traces.values()) or bool(self.pending)

    def again(self) -> None:
        """Check every kept trace again on the next step of its shape (a shape that failed stays eager)."""
        for shape, fn in list(self.traces.items()):
            if fn is not None:
                del self.traces[shape]
                self.pending[shape] = fn

    def _trace(self, args: tuple[Any, ...]) -> Any:
        import torch

        self.count()
        try:
            # One trace at a time: the filter below is the process's, and two loops may
            # trace side by side (:func:`~pytest_rnn._keras.threads.alongside`).
            with _TRACING, warnings.catch_warnings():  # its deprecation and shape-reading notes
                warnings.simplefilter("ignore")
                return torch.jit.trace(self.call, args, check_trace=False)
        except Exception:  # not traceable: eager
            return None


def traced_stream(twin: Any, sequence: list[bool], count: Callable[[], None]) -> StreamLoop | None:
    """The whole streamed run of ``twin``, each chunk one replay of a trace (or one eager call).

    ``None`` where a trace could not be trusted (a layer or cell not of Keras,
    or no ``torch.jit.trace``). Outputs as
    :func:`~pytest_rnn._keras.loops.graph_stream` returns them: sequence
    outputs joined along time, last-step outputs as ``(batch, chunks, ...)``.
    """
    import torch

    if not keras_layers_only(twin) or not hasattr(torch.jit, "trace"):
        return None
    import keras

    ref = weakref.ref(twin)
    flags = list(sequence)

    def call(values: tuple[Any, ...], written: tuple[Any, ...], chunk: Any) -> Any:
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        every, mutable = stateless_variables(m)
        trainable = [v for v in every if v.trainable]
        mapping = list(zip(trainable, values)) + list(zip(mutable, written))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            out = tuple(leaf for _, leaf in flatten(m(chunk, training=False)))
            new = tuple(scope.get_current_value(v) for v in mutable)
        return out, new

    chunk_call = Replays(call, count)

    def run(xs: Any, starts: np.ndarray, ends: np.ndarray) -> list[np.ndarray]:
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        values, written, mutable = stateless_values(m)
        states = {id(s) for _, lyr in stateful_layers(m) for s in state_variables(lyr) or []}
        carry = tuple(
            torch.zeros_like(w) if id(v) in states else w for v, w in zip(mutable, written)
        )
        starts, ends = np.asarray(starts), np.asarray(ends)
        lengths = collections.Counter((ends - starts).tolist())
        tensors = map_structure(torch.as_tensor, xs)
        outs: list[tuple[Any, ...]] = []
        with torch.no_grad():
            for a, b in zip(starts.tolist(), ends.tolist()):
                chunk = _steps(tensors, a, b)
                shapes = tuple(tuple(leaf.shape) for _, leaf in flatten(chunk))
                repeated = lengths[b - a] >= REPEATS
                out, carry = chunk_call(shapes, repeated, (tuple(values), carry, chunk))
                outs.append(out)
            joined = [
                torch.cat(parts, dim=1) if seq else torch.stack(parts, dim=1)
                for parts, seq in zip(zip(*outs), flags)
            ]
        for var, value in zip(mutable, carry):
            var.assign(value)
        return [torch_numpy(t) for t in joined]

    return run


def _checked(eager: Callable[..., Any], replay: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """``(eager(*args), agrees)``: whether every replay of the trace on ``args`` gives it bit for bit."""
    import torch

    result = eager(*args)
    want = [leaf for _, leaf in flatten(result)]
    for _ in range(CHECKED_REPLAYS):
        try:
            got = [leaf for _, leaf in flatten(_replay(replay, args))]
        except Exception:  # a trace that cannot run what it was traced on
            return result, False
        if len(got) != len(want) or not all(torch.equal(a, b) for a, b in zip(got, want)):
            return result, False
    return result, True


def _replay(trace: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """``trace(*args)`` under ``torch.inference_mode()``.

    A replay runs recorded operations on given tensors and creates no
    variable, so its results may be inference tensors (read anywhere, written
    in place nowhere: Keras's ``slice_update`` copies first), and its ops skip
    autograd's view and version bookkeeping: the cached check on a 4-layer
    GPT2 at 128 tokens took 490 ms against 523 ms, Llama 503 against 551.
    Eager calls run as the caller set them (``no_grad``): they run Keras's
    Python, and a layer built under inference mode would keep weights that
    training cannot use.
    """
    import torch

    with torch.inference_mode():
        return trace(*args)


def _steps(xs: Any, a: int, b: int) -> Any:
    """Steps ``a`` to ``b - 1`` of every input."""
    return map_structure(lambda t: t[:, a:b], xs)


def scan(
    fn: Callable[[Any, Any], tuple[Any, Any]],
    init: Any,
    xs: Any,
    *,
    variables: list[Any] | None,
    kept: dict[str, Replays] | None = None,
) -> Any:
    """``keras.ops.scan(fn, init, xs)``; on torch, given ``variables``, its steps replay a trace.

    ``fn(carry, x) -> (carry, y)`` over the leading axis of the tensor ``xs``,
    the carry a tensor or a tuple of them; ``variables`` are every variable
    ``fn`` reads (they go into the trace as its inputs, and ``fn`` must write
    none), or ``None`` where ``fn`` may call anything but Keras's own layers and
    operations (see the module's notes). On torch Keras's scan is a Python
    loop of eager calls; here ``fn`` is traced on the first step and the trace
    kept only where it gives the eager call's result bit for bit on the second,
    the carry no longer ``init`` (:class:`Replays`); then every later step is a
    replay. Fewer than :data:`REPEATS` steps or other backends: Keras's scan; a
    trace that fails or disagrees: eager calls.

    ``kept`` (the caller's, one per ``fn``'s code) holds the traces across calls,
    one per shape of ``init`` and of a step of ``xs``: a warm scan traces nothing.
    """
    import keras

    if variables is None or keras.backend.backend() != "torch" or xs.shape[0] < REPEATS:
        return keras.ops.scan(fn, init, xs)
    import torch

    pure = with_values(fn, variables)
    shape = (
        tuple((tuple(t.shape), t.dtype) for _, t in flatten(init)),
        tuple(xs.shape[1:]),
        xs.dtype,
    )
    kept = {} if kept is None else kept
    step = kept.setdefault("steps", Replays(pure, TRACES.add))
    step.call = pure  # this call's fn (a trace made from an earlier one is the same program)
    values = tuple(v.value for v in variables)
    carry, ys = init, []
    with torch.no_grad():
        for i in range(int(xs.shape[0])):
            carry, y = step(shape, True, (values, carry, xs[i]))
            ys.append(y)
    return carry, torch.stack(ys)
