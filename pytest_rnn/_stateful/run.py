"""The runs one streaming check compares: the streamed run and the full-sequence reference.

:class:`_Setup` names the two models a check uses. :func:`_stream` feeds the
stateful one chunk by chunk through the engine of :mod:`pytest_rnn._core.stream`
(the Keras-RNN adapter: a compiled call per chunk and a state reset), or, where
the backend has a compiled loop (TensorFlow, JAX), in one compiled call per run
(:func:`_graph_stream`). :func:`_reference` runs the batch model on the whole
of ``x`` and on every chunk-end prefix; :func:`_sequence_flags` says which
outputs have a time axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import tree as _tree
from pytest_rnn._core.stream import ChunkSchedule, stream
from pytest_rnn._core.validate import Batch, sequences


def _stream_inputs(model: Any, x: Any, compared: str) -> Batch:
    """``x`` checked as the sequences a stream of ``model`` takes (``compared``: the two runs)."""
    inputs = sequences(
        x,
        finite=f"{{name}} holds NaN or inf: {compared} outputs cannot be compared",
        empty="{arg} has 0 {what}: there is nothing to stream",
        not_array="{arg} must be an array (batch, steps, features...) or a list/dict of them, "
        "got {kind}",
    )
    K.check_input_shapes(model, list(zip(inputs.paths, inputs.leaves)), "x")
    return inputs


@dataclass
class _Setup:
    """Everything one check needs, in one dtype."""

    reference: Any
    streamer: Any
    per_sample: bool
    user_stream: bool


def _flat(out: Any) -> list[np.ndarray]:
    """A model's outputs as a flat list, in :func:`~pytest_rnn._core.tree.flatten` order."""
    return [leaf for _, leaf in _tree.flatten(out)]


def _stream(
    twin: Any,
    inputs: Batch,
    schedule: ChunkSchedule,
    sequence: list[bool],
    per_sample: bool,
    *,
    ours: bool,
) -> list[np.ndarray]:
    """Reset ``twin`` and feed it ``inputs`` chunk by chunk (one sample at a time if ``per_sample``).

    Where the backend allows, every chunk of a group is fed in one compiled call
    (an in-graph loop over the chunks); otherwise one compiled call per chunk.
    ``ours``: pytest-rnn built ``twin`` (not the user's model, nor a probe over
    its layers), so its in-graph loop may unroll it (:func:`K.graph_stream`).
    """

    def whole(part: Batch) -> list[np.ndarray] | None:
        run = _graph_stream(twin, part.tree, sequence, ours)
        if run is None:
            return None
        try:
            return run(part.tree, schedule)
        except Exception:  # not expressible in one graph: chunk by chunk says why
            _GRAPH_STREAMS.of(twin)[_stream_key(part.tree, sequence)] = None
            return None

    call: Callable[[Any], Any] | None = None

    def feed(chunk: Batch) -> list[np.ndarray]:
        nonlocal call
        if call is None:  # every chunk has the same structure and batch size
            call = K.compiled(twin, chunk.tree, fixed_batch=True)
        return _flat(call(chunk.tree))

    return stream(
        feed, lambda: K.reset_states(twin), inputs, schedule, sequence,
        per_sample=per_sample, whole=whole,
    )  # fmt: skip


def _stream_key(x: Any, sequence: list[bool]) -> Any:
    structure = tuple((p, np.asarray(a).dtype.str, np.shape(a)[2:]) for p, a in _tree.flatten(x))
    return (structure, tuple(sequence))


# twin -> {(input structure, sequence flags): streamer}; weak keys, as in K.compiled.
_GRAPH_STREAMS = K.ModelCache()


def _graph_stream(
    twin: Any, x: Any, sequence: list[bool], ours: bool
) -> Callable[[Any, ChunkSchedule], list[np.ndarray] | None] | None:
    """A compiled whole streamed run: ``(x, schedule) -> flat outputs``, or ``None``.

    Where the backend has a compiled loop (:func:`K.graph_stream`), one call
    per run instead of one per chunk: TensorFlow one trace per twin, JAX one
    per schedule of equal chunks (the run returns ``None`` for uneven ones),
    torch one trace per chunk shape that the schedule repeats, for ``ours``
    twins made of Keras's own layers. ``None`` (feed chunk by chunk) otherwise
    on torch, for models holding ``TimeDistributed`` (Keras maps it over the
    batch when the time axis is unknown in a graph) and for models whose inputs
    take a fixed number of steps.
    """
    if not K.is_graph_model(twin):
        return None
    key = _stream_key(x, sequence)
    per_twin = _GRAPH_STREAMS.of(twin)
    if key in per_twin:
        return per_twin[key]
    if K.fixed_steps(twin) is not None or K.needs_static_time(twin):
        per_twin[key] = None
        return None
    loop = K.graph_stream(twin, x, sequence, unroll=ours, trace=ours)
    if loop is None:
        per_twin[key] = None
        return None

    def run(xs: Any, schedule: ChunkSchedule) -> list[np.ndarray] | None:
        ends = np.asarray(schedule.ends, np.int32)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int32)
        return loop(xs, starts, ends)

    per_twin[key] = run
    return run


def _reference(
    model: Any, inputs: Batch, schedule: ChunkSchedule, sequence: list[bool]
) -> list[np.ndarray]:
    """The model on the whole of x (sequence outputs) and on every chunk-end prefix (last-step outputs)."""
    return _prepared_reference(model, inputs, schedule, sequence)[0]()


def _prepared_reference(
    model: Any, inputs: Batch, schedule: ChunkSchedule, sequence: list[bool]
) -> tuple[Callable[[], list[np.ndarray]], bool]:
    """:func:`_reference` as a call of compiled models only, and whether they were compiled before.

    Every copy the call needs is made here, so it may run in another thread
    (:func:`~pytest_rnn._keras.threads.alongside`): building a Keras model reads
    Keras's thread-local state, calling a built one does not.
    """
    if sequence == [False] and len(schedule.ends) > 1:
        every_step = K.every_step_copy(model)
        if every_step is not None:
            # Its output at step t-1 is the model's on x[:, :t], for every t in one
            # call (K.every_step_copy says when: the last RNN returning every step,
            # or a lookahead copy where the layers before it read a few steps ahead).
            steps_call, warm = K.compiled_warm(every_step, inputs.tree, fixed_batch=False)

            def every_step_run() -> list[np.ndarray]:
                (steps,) = _flat(steps_call(inputs.tree))
                return [steps[:, schedule.last_steps]]

            return every_step_run, warm
    call, warm = K.compiled_warm(model, inputs.tree, fixed_batch=False)

    def run() -> list[np.ndarray]:
        full = _flat(call(inputs.tree))
        if all(sequence):
            return full
        prefixes: list[list[np.ndarray]] = [[] for _ in sequence]
        for end in schedule.ends:
            out = full if end == inputs.steps else _flat(call(inputs.steps_slice(0, end).tree))
            for n, leaf in enumerate(out):
                prefixes[n].append(leaf)
        return [f if seq else np.stack(p, axis=1) for f, p, seq in zip(full, prefixes, sequence)]

    return run, warm


def _sequence_flags(reference: Any, inputs: Batch) -> list[bool]:
    """Which outputs have a time axis (change length with the input's steps)."""
    if K.is_graph_model(reference) and K.fixed_steps(reference) is None:
        return [
            len(t.shape) >= 2 and t.shape[1] is None for _, t in _tree.flatten(reference.outputs)
        ]
    call = K.compiled(reference, inputs.tree, fixed_batch=False)
    probe = inputs.map(lambda a: np.concatenate([a, a[:, -1:]], axis=1))
    longer = [leaf.shape for _, leaf in _tree.flatten(call(probe.tree))]
    normal = [leaf.shape for _, leaf in _tree.flatten(call(inputs.tree))]
    return [len(a) >= 2 and a[1] != b[1] for a, b in zip(longer, normal)]
