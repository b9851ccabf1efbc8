"""The streaming engine: chunk schedules, the chunk-by-chunk run, its comparison with a full pass.

Pure numpy. A streaming check cuts ``x`` by a :class:`ChunkSchedule`, feeds it
chunk by chunk to something that keeps state between calls (:func:`stream`,
given a ``feed(chunk) -> flat outputs`` and a ``reset()``), and compares the
joined outputs with a full pass (:func:`compare_runs`): sequence outputs at
every valid step, last-step outputs at every chunk end. :func:`mismatch_block`
words the first mismatches. An adapter brings the feed, the reset and the
reference: the Keras RNN one (``pytest_rnn._stateful``) keeps the state in a
stateful model; a step function that hands its state back
(``pytest_rnn._incremental``) becomes a feed and a reset through
:class:`Handover`. Nothing here knows what a model is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from pytest_rnn._core import compare as _compare
from pytest_rnn._core.validate import Batch

__all__ = [
    "ChunkSchedule",
    "Feed",
    "Handover",
    "Reset",
    "Step",
    "Whole",
    "chunk_pieces",
    "compare_runs",
    "first_step",
    "join",
    "mismatch_block",
    "mismatch_lines",
    "sample_groups",
    "stream",
    "valid_at",
]

#: Feeds one chunk (every sample of the group, steps ``start:end``) to the
#: streaming side and returns its outputs, flat.
Feed = Callable[[Batch], list[np.ndarray]]
#: Puts the streaming side back to its initial state.
Reset = Callable[[], None]
#: Runs every chunk of one group at once (a compiled loop) and returns the
#: joined outputs, or ``None`` where it cannot: then the group is fed chunk by chunk.
Whole = Callable[[Batch], list[np.ndarray] | None]
#: One call of a step function that hands its state back: ``(chunk, state,
#: start) -> (flat outputs, state)``, ``start`` being the chunk's first step.
Step = Callable[[Batch, Any, int], tuple[list[np.ndarray], Any]]


@dataclass(frozen=True)
class ChunkSchedule:
    """How a sequence of ``steps`` is cut for streaming: positive lengths summing to it."""

    lengths: tuple[int, ...]

    @classmethod
    def parse(cls, chunks: Any, steps: int) -> ChunkSchedule:
        """From a chunk length (the last chunk may be shorter) or a list of lengths.

        Raises:
            TypeError: ``chunks`` is neither an int nor a sequence of ints.
            ValueError: a length is not positive, or the lengths do not sum to ``steps``.
        """
        if isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool):
            if chunks < 1:
                raise ValueError(f"chunks must be a positive chunk length, got {chunks}")
            size = int(chunks)
            full, rest = divmod(steps, size)
            return cls((size,) * full + ((rest,) if rest else ()))
        if isinstance(chunks, (str, bytes)) or not isinstance(chunks, (Sequence, np.ndarray)):
            raise TypeError(
                f"chunks must be a chunk length (int) or a list of lengths, got {type(chunks).__name__}"
            )
        lengths = list(chunks)
        if not lengths:
            raise ValueError("chunks is an empty list: give at least one chunk length")
        for n in lengths:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                raise TypeError(f"chunks must hold ints, got {n!r} ({type(n).__name__})")
            if n < 1:
                raise ValueError(f"chunks must hold positive lengths, got {n} in {lengths}")
        if sum(lengths) != steps:
            raise ValueError(
                f"chunks {lengths} sum to {sum(lengths)}, but x has {steps} steps: "
                "the chunk lengths must sum to the number of steps"
            )
        return cls(tuple(int(n) for n in lengths))

    @cached_property
    def ends(self) -> tuple[int, ...]:
        """Cumulative chunk ends: the prefix lengths at which last-step outputs are compared.

        Worked out once per schedule: a check reads it a few times per chunk.
        """
        return tuple(int(e) for e in np.cumsum(self.lengths))

    @property
    def last_steps(self) -> list[int]:
        """The step each chunk ends on (``end - 1``): the step a last-step output stands for."""
        return [e - 1 for e in self.ends]

    def bounds(self) -> list[tuple[int, int]]:
        """``(start, end)`` of every chunk."""
        ends = self.ends
        return list(zip((0, *ends[:-1]), ends))

    def chunk_of(self, step: int) -> int:
        """The number (from 0) of the chunk that holds ``step``.

        Raises:
            ValueError: ``step`` is not one of the schedule's steps.
        """
        if not 0 <= step < self.ends[-1]:
            raise ValueError(f"step {step} is outside the {self.ends[-1]} steps of the schedule")
        return int(np.searchsorted(self.ends, step, side="right"))

    def describe(self) -> str:
        """``chunks of 1`` or ``chunks [3, 1, 4, ...] (uneven)``."""
        first = self.lengths[0]
        if all(n == first for n in self.lengths[:-1]) and self.lengths[-1] <= first:
            tail = f" (last {self.lengths[-1]})" if self.lengths[-1] != first else ""
            return f"chunks of {first}{tail}"
        shown = ", ".join(str(n) for n in self.lengths[:8])
        more = ", ..." if len(self.lengths) > 8 else ""
        return f"chunks [{shown}{more}] ({len(self.lengths)} chunks)"


# --------------------------------------------------------------------------- the run


class Handover:
    """A step function that hands its state back, as the engine's feed and reset.

    :meth:`reset` takes a fresh initial state from ``initial()``; every
    :meth:`feed` passes ``step`` the chunk, the state the previous call returned
    and the chunk's first step index, and keeps the state this call returns.
    Between two calls, :attr:`state` is what the next call will be given and
    :attr:`start` where its chunk begins.
    """

    def __init__(self, step: Step, initial: Callable[[], Any]) -> None:
        self.step = step
        self.initial = initial
        self.state: Any = None
        self.start = 0

    def reset(self) -> None:
        """Start over: the initial state, at step 0."""
        self.state = self.initial()
        self.start = 0

    def feed(self, chunk: Batch) -> list[np.ndarray]:
        """One call of ``step`` on ``chunk``; its outputs, flat."""
        out, self.state = self.step(chunk, self.state, self.start)
        self.start += chunk.steps
        return out


def sample_groups(inputs: Batch, per_sample: bool) -> list[Batch]:
    """What is streamed between two resets: every sample alone (``per_sample``) or the batch."""
    if per_sample:
        return [inputs.samples(slice(i, i + 1)) for i in range(inputs.batch)]
    return [inputs]


def chunk_pieces(
    feed: Feed, reset: Reset, inputs: Batch, schedule: ChunkSchedule, *, per_sample: bool = False
) -> list[list[np.ndarray]]:
    """Reset, then feed ``inputs`` chunk by chunk: ``pieces[n][c]`` is output ``n`` on chunk ``c``.

    With ``per_sample``, every sample is streamed alone after its own reset,
    and each chunk's pieces are joined again along the batch axis.
    """
    per_group: list[list[list[np.ndarray]]] = []
    for part in sample_groups(inputs, per_sample):
        reset()
        pieces: list[list[np.ndarray]] = []
        for start, end in schedule.bounds():
            out = feed(part.steps_slice(start, end))
            if not pieces:
                pieces = [[] for _ in out]
            for n, leaf in enumerate(out):
                pieces[n].append(leaf)
        per_group.append(pieces)
    if len(per_group) == 1:
        return per_group[0]
    return [
        [np.concatenate([g[n][c] for g in per_group], axis=0) for c in range(len(pieces))]
        for n, pieces in enumerate(per_group[0])
    ]


def join(pieces: list[list[np.ndarray]], sequence: Sequence[bool]) -> list[np.ndarray]:
    """One array per output: sequence outputs joined along time, last-step ones stacked per chunk end."""
    return [
        np.concatenate(p, axis=1) if seq else np.stack(p, axis=1)
        for p, seq in zip(pieces, sequence)
    ]


def stream(
    feed: Feed,
    reset: Reset,
    inputs: Batch,
    schedule: ChunkSchedule,
    sequence: Sequence[bool],
    *,
    per_sample: bool = False,
    whole: Whole | None = None,
) -> list[np.ndarray]:
    """The streamed run: ``inputs`` fed chunk by chunk after a reset, outputs joined.

    Args:
        feed: one chunk in, the streaming side's flat outputs out.
        reset: puts the streaming side back to its initial state.
        inputs: the sequences to stream.
        schedule: where the chunks are cut.
        sequence: per output, whether it has a time axis (joined along time)
            or is a last-step output (stacked: axis 1 is the chunk end).
        per_sample: stream every sample alone, each after its own reset.
        whole: a faster way to run a group's every chunk (see :data:`Whole`).
    """
    runs = []
    for part in sample_groups(inputs, per_sample):
        out = None if whole is None else whole(part)
        if out is None:
            out = join(chunk_pieces(feed, reset, part, schedule), sequence)
        runs.append(out)
    if len(runs) == 1:
        return runs[0]
    return [np.concatenate([run[n] for run in runs], axis=0) for n in range(len(sequence))]


# --------------------------------------------------------------------------- the comparison


def valid_at(
    valid: np.ndarray | None, schedule: ChunkSchedule, sequence: bool
) -> np.ndarray | None:
    """The ``(batch, steps)`` valid mask as an output is compared: every step, or chunk ends only."""
    if valid is None or sequence:
        return valid
    return valid[:, schedule.last_steps]


def compare_runs(
    actual: list[np.ndarray],
    expected: list[np.ndarray],
    tolerances: list[_compare.Tolerance],
    sequence: list[bool],
    valid: np.ndarray | None,
    schedule: ChunkSchedule,
) -> list[tuple[int, _compare.Mismatch]]:
    """``(output number, mismatch)`` for every output where a streamed run and its reference differ.

    Sequence outputs are compared at every valid step; last-step outputs at
    every chunk end (their axis 1), the message naming the step each stands for.
    """
    found = []
    for n, (a, e, tol, seq) in enumerate(zip(actual, expected, tolerances, sequence)):
        m = _compare.compare(
            a, e, tol, valid=valid_at(valid, schedule, seq),
            steps=None if seq else schedule.last_steps,
        )  # fmt: skip
        if m is not None:
            found.append((n, m))
    return found


def first_step(
    mismatches: list[tuple[int, _compare.Mismatch]],
) -> tuple[int, int, _compare.Mismatch]:
    """``(step, output number, mismatch)`` of the earliest mismatching step over all outputs.

    Raises:
        ValueError: no mismatch has a step (every output is a scalar per sample).
    """
    found = [(m.step_of(m.first), n, m) for n, m in mismatches]
    timed = [(s, n, m) for s, n, m in found if s is not None]
    if not timed:
        raise ValueError("no mismatch has a time step")
    return min(timed, key=lambda t: (t[0], t[1]))


def mismatch_lines(
    mismatches: list[tuple[int, _compare.Mismatch]],
    sequence: list[bool],
    actual: str,
    expected: str,
) -> list[str]:
    """Each mismatch worded, under ``output [n]:`` where there are several outputs."""
    lines: list[str] = []
    for n, m in mismatches:
        if len(sequence) > 1:
            lines.append(f"  output [{n}]:")
        lines.extend(_compare.format_mismatch(m, actual_name=actual, expected_name=expected))
    return lines


def mismatch_block(
    mismatches: list[tuple[int, _compare.Mismatch]],
    sequence: list[bool],
    *,
    actual: str = "streamed",
    expected: str = "full",
) -> list[str]:
    """The streamed-vs-full mismatches worded, saying how last-step outputs were compared.

    ``actual`` and ``expected`` name the two runs in the lines and the table.
    """
    lines: list[str] = []
    if not all(sequence[n] for n, _ in mismatches):
        lines.append(
            "  last-step output: compared at every chunk end t with the model on x[:, :t] "
            "(step s below is the output after step s)"
        )
    return lines + mismatch_lines(mismatches, sequence, actual, expected)
