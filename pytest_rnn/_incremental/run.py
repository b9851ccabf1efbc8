"""The user's functions as the streaming engine calls them, and what their outputs must look like.

:func:`full_outputs` runs ``full`` once, reads its outputs as flat numpy
``(batch, steps, ...)`` arrays and keeps their layout in an :class:`Outputs`
that every chunk is held to. :func:`step_function` turns the user's ``step``
into the engine's :data:`~pytest_rnn._core.stream.Step`: it converts what a
call returns and refuses one that is not a ``(y, state)`` pair, has another
structure or another shape. :class:`Case` is one check as the diagnosis needs
it; :func:`run` feeds a schedule through the engine's :class:`Handover`.
:func:`snapshot` copies a state's values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import tree as _tree
from pytest_rnn._core.stream import ChunkSchedule, Handover, Step, stream
from pytest_rnn._core.validate import Batch

__all__ = [
    "Case",
    "Outputs",
    "chunk_text",
    "full_outputs",
    "on_chunk",
    "run",
    "same_values",
    "snapshot",
    "step_function",
]


def chunk_text(schedule: ChunkSchedule, k: int) -> str:
    """``chunk 1 (steps 3-5, start=3)``: chunk ``k`` of ``schedule`` as messages name it."""
    a, b = schedule.bounds()[k]
    steps = f"step {a}" if b - a == 1 else f"steps {a}-{b - 1}"
    return f"chunk {k} ({steps}, start={a})"


def on_chunk(schedule: ChunkSchedule) -> Callable[[int], str]:
    """Names a call of ``schedule`` by its start: `` on chunk 1 (steps 3-5, start=3)``."""

    def where(start: int) -> str:
        return f" on {chunk_text(schedule, schedule.chunk_of(start))}"

    return where


def _structure(paths: list[str]) -> str:
    if paths == [""]:
        return "one array"
    return "outputs " + ", ".join(paths) if paths else "no arrays"


def _array(value: Any, name: str) -> np.ndarray:
    """One output as numpy (framework tensors converted, torch ones detached)."""
    if value is None:
        raise TypeError(f"{name} is None: outputs must be arrays (batch, steps, ...)")
    try:
        arr = np.asarray(K.to_numpy(value))
    except Exception as exc:  # objects no library reads as an array
        raise TypeError(f"{name} cannot be read as an array: {type(exc).__name__}: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers or booleans, got dtype {arr.dtype}")
    return arr


@dataclass(frozen=True)
class Outputs:
    """The layout of ``full``'s outputs, which every call of ``step`` must repeat.

    Attributes:
        paths: each output's item path (``""`` for one array, ``[0]``, ``['h']``).
        features: each output's shape after ``(batch, steps)``.
        batch: x's batch size.
    """

    paths: list[str]
    features: list[tuple[int, ...]]
    batch: int

    def read(self, y: Any, name: str, steps: int, where: str = "") -> list[np.ndarray]:
        """``y`` as flat numpy outputs of ``steps`` steps, in :attr:`paths` order.

        ``name`` is how messages call ``y`` (``step's y_chunk``); ``where`` is
        appended to it (`` on chunk 1 (steps 3-5, start=3)``).

        Raises:
            TypeError: an output is not an array of numbers.
            ValueError: ``y`` has another structure than ``full``'s outputs, or an
                output has another batch, number of steps or per-step shape.
        """
        flat = _tree.flatten(y)
        paths = [path for path, _ in flat]
        if paths != self.paths:
            raise ValueError(
                f"{name}{where} holds {_structure(paths)} where full(x) returns "
                f"{_structure(self.paths)}: step and full must return the same structure"
            )
        leaves = []
        for (path, value), features in zip(flat, self.features):
            arr = _array(value, f"{name}{path}{where}")
            want = (self.batch, steps, *features)
            if arr.shape != want:
                if arr.ndim < 2:
                    why = "an output needs a batch and a time axis"
                elif arr.shape[1] != steps:
                    why = f"one entry per step of the call ({steps}), not {arr.shape[1]}"
                elif arr.shape[0] != self.batch:
                    why = f"x's batch of {self.batch}, not {arr.shape[0]}"
                else:
                    why = f"full(x){path}'s per-step shape {features}, not {arr.shape[2:]}"
                raise ValueError(
                    f"{name}{path}{where} has shape {arr.shape}, but it must be {want}: {why}"
                )
            leaves.append(arr)
        return leaves


def full_outputs(full: Callable[[Any], Any], inputs: Batch) -> tuple[Outputs, list[np.ndarray]]:
    """``full`` on the whole of ``x``: the layout of its outputs and the outputs, flat.

    Raises:
        TypeError: an output is not an array of numbers.
        ValueError: ``full`` returned no arrays, or an output is not ``(batch, steps, ...)``.
    """
    flat = _tree.flatten(full(inputs.tree))
    if not flat:
        raise ValueError("full(x) returned no arrays: full must return outputs (batch, steps, ...)")
    leaves = []
    for path, value in flat:
        arr = _array(value, f"full(x){path}")
        if arr.ndim < 2 or arr.shape[:2] != (inputs.batch, inputs.steps):
            raise ValueError(
                f"full(x){path} has shape {arr.shape}, but full must return outputs "
                f"(batch, steps, ...), here ({inputs.batch}, {inputs.steps}, ...): one "
                "output per step of x"
            )
        leaves.append(arr)
    layout = Outputs([p for p, _ in flat], [a.shape[2:] for a in leaves], inputs.batch)
    return layout, leaves


def step_function(
    step: Callable[[Any, Any, int], Any], outputs: Outputs, where: Callable[[int], str]
) -> Step:
    """The user's ``step`` as the engine calls it: numpy chunk in, checked flat outputs out.

    ``where(start)`` names the call in messages (`` on chunk 1 (...)``).

    Raises (from the returned function):
        TypeError: ``step`` did not return a ``(y_chunk, state)`` pair, or an
            output is not an array of numbers.
        ValueError: as :meth:`Outputs.read`.
    """

    def call(chunk: Batch, state: Any, start: int) -> tuple[list[np.ndarray], Any]:
        returned = step(chunk.tree, state, start)
        if not (isinstance(returned, (tuple, list)) and len(returned) == 2):
            got = (
                f"a {type(returned).__name__} of {len(returned)} items"
                if isinstance(returned, (tuple, list))
                else type(returned).__name__
            )
            raise TypeError(
                f"step must return a pair (y_chunk, state){where(start)}, it returned {got}"
            )
        y, new_state = returned
        return outputs.read(y, "step's y_chunk", chunk.steps, where(start)), new_state

    return call


def snapshot(state: Any) -> list[np.ndarray] | None:
    """A copy of a state's values (``[]`` for ``None``), or ``None`` where they cannot be read."""
    leaves = [leaf for _, leaf in _tree.flatten(state) if leaf is not None]
    try:
        values = [np.array(K.to_numpy(leaf), copy=True) for leaf in leaves]
    except Exception:  # a state object no library reads as an array
        return None
    if any(v.dtype.kind not in "biufc" for v in values):
        return None
    return values


def same_values(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Whether two snapshots hold the same arrays, bit for bit."""
    return len(a) == len(b) and all(
        x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"))
        for x, y in zip(a, b)
    )


@dataclass(frozen=True)
class Case:
    """One check, as the diagnosis needs it: what ran, on what, and how it compared.

    Attributes:
        step: the user's step function.
        outputs: the layout of ``full``'s outputs.
        initial: a fresh initial state (``init(x)``, or ``None``).
        inputs: the validated ``x``.
        schedule: where the chunks are cut.
        reference: ``full``'s outputs, flat.
        streamed: the outputs of the chunk-by-chunk run, joined.
        tolerances: one per output, by ``full``'s dtype (or the user's).
        valid: the ``(batch, steps)`` mask of compared positions, or ``None``.
        has_init: whether the user passed ``init``.
    """

    step: Callable[[Any, Any, int], Any]
    outputs: Outputs
    initial: Callable[[], Any]
    inputs: Batch
    schedule: ChunkSchedule
    reference: list[np.ndarray]
    streamed: list[np.ndarray]
    tolerances: list[_compare.Tolerance]
    valid: np.ndarray | None
    has_init: bool

    @property
    def sequence(self) -> list[bool]:
        """Per output, whether it has a time axis: every output of ``full`` has one."""
        return [True] * len(self.reference)

    def call(self, where: Callable[[int], str] | None = None) -> Step:
        """``step`` as the engine calls it; ``where(start)`` names a call (default: its chunk)."""
        return step_function(self.step, self.outputs, where or on_chunk(self.schedule))


def run(
    call: Step, initial: Callable[[], Any], inputs: Batch, schedule: ChunkSchedule, n_outputs: int
) -> list[np.ndarray]:
    """``inputs`` fed chunk by chunk through the engine, the state handed from call to call."""
    handover = Handover(call, initial)
    return stream(handover.feed, handover.reset, inputs, schedule, [True] * n_outputs)
