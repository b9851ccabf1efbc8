"""The streaming engine on numpy alone: a running sum streamed chunk by chunk against ``np.cumsum``.

The streaming side carries its sum from chunk to chunk; the buggy one starts
from zero at every chunk (the state reset a stateless copy does). The engine
must pass the first and catch the second at the first step of the second chunk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pytest_rnn._core.compare import Tolerance
from pytest_rnn._core.stream import (
    ChunkSchedule,
    Handover,
    chunk_pieces,
    compare_runs,
    join,
    mismatch_block,
    mismatch_lines,
    sample_groups,
    stream,
    valid_at,
)
from pytest_rnn._core.validate import Batch

STEPS = 16
SCHEDULES: list[Any] = [1, 3, [5, 1, 3, 2, 4, 1]]
#: Both outputs: the running sum at every step, and at the chunk's last step.
SEQUENCE = [True, False]
TIGHT = [Tolerance(1e-12, 1e-12)] * 2


class RunningSum:
    """A streaming running sum over time: ``feed`` continues from the last chunk's total."""

    def __init__(self, carries: bool = True) -> None:
        self.carries = carries
        self.total: np.ndarray | None = None
        self.resets = 0

    def reset(self) -> None:
        self.total = None
        self.resets += 1

    def feed(self, chunk: Batch) -> list[np.ndarray]:
        (x,) = chunk.leaves
        start = self.total[:, None] if self.total is not None and self.carries else 0.0
        out = start + np.cumsum(x, axis=1)
        self.total = out[:, -1]
        return [out, out[:, -1]]


def batch_of(x: np.ndarray) -> Batch:
    """``x`` as the engine takes it."""
    return Batch(x, [x], [""], x.shape[0], x.shape[1])


def full(x: np.ndarray, schedule: ChunkSchedule) -> list[np.ndarray]:
    """The reference: the sum at every step, and at every chunk end."""
    total = np.cumsum(x, axis=1)
    return [total, total[:, schedule.last_steps]]


@pytest.fixture
def x() -> np.ndarray:
    # Positive values: every partial sum differs from the sum of its chunk alone.
    return np.random.default_rng(0).uniform(0.5, 1.5, size=(3, STEPS, 2))


def streamed(
    model: RunningSum, x: np.ndarray, chunks: Any, **kw: Any
) -> tuple[list[np.ndarray], ChunkSchedule]:
    schedule = ChunkSchedule.parse(chunks, STEPS)
    return stream(model.feed, model.reset, batch_of(x), schedule, SEQUENCE, **kw), schedule


# --- ChunkSchedule ------------------------------------------------------------------------


def test_schedule_from_a_length_keeps_a_shorter_last_chunk() -> None:
    schedule = ChunkSchedule.parse(3, 10)
    assert schedule.lengths == (3, 3, 3, 1)
    assert schedule.ends == (3, 6, 9, 10)
    assert schedule.last_steps == [2, 5, 8, 9]
    assert schedule.bounds() == [(0, 3), (3, 6), (6, 9), (9, 10)]
    assert schedule.describe() == "chunks of 3 (last 1)"


def test_schedule_from_a_list() -> None:
    schedule = ChunkSchedule.parse([5, 1, 3, 2, 4, 1], STEPS)
    assert schedule.ends == (5, 6, 9, 11, 15, 16)
    assert schedule.describe() == "chunks [5, 1, 3, 2, 4, 1] (6 chunks)"
    assert ChunkSchedule.parse(np.array([8, 8]), STEPS).lengths == (8, 8)


@pytest.mark.parametrize(
    ("chunks", "error", "fragment"),
    [
        (0, ValueError, "positive chunk length"),
        (True, TypeError, "got bool"),
        ("23", TypeError, "got str"),
        ([], ValueError, "empty list"),
        ([2.0, 3.0], TypeError, "must hold ints"),
        ([0, 16], ValueError, "positive lengths"),
        ([3, 3], ValueError, "sum to 6, but x has 16 steps"),
    ],
)
def test_schedule_refuses_bad_chunks(chunks: Any, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        ChunkSchedule.parse(chunks, STEPS)


# --- the run ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunks", SCHEDULES, ids=str)
def test_a_carried_state_streams_like_the_full_pass(x: np.ndarray, chunks: Any) -> None:
    out, schedule = streamed(RunningSum(), x, chunks)
    assert out[0].shape == x.shape
    assert out[1].shape == (3, len(schedule.lengths), 2)
    assert compare_runs(out, full(x, schedule), TIGHT, SEQUENCE, None, schedule) == []


@pytest.mark.parametrize("chunks", SCHEDULES, ids=str)
def test_a_state_reset_at_every_chunk_is_caught_where_the_second_chunk_starts(
    x: np.ndarray, chunks: Any
) -> None:
    out, schedule = streamed(RunningSum(carries=False), x, chunks)
    found = compare_runs(out, full(x, schedule), TIGHT, SEQUENCE, None, schedule)
    assert [n for n, _ in found] == [0, 1]
    (_, every_step), (_, last_step) = found
    second = schedule.lengths[0]  # the first step of the second chunk
    assert every_step.step_of(every_step.first) == second
    assert every_step.first[:2] == (0, second)
    # Last-step outputs: axis 1 is the chunk end; the message speaks of its step.
    assert last_step.first[:2] == (0, 1)
    assert last_step.step_of(last_step.first) == schedule.ends[1] - 1
    block = mismatch_block(found, SEQUENCE)
    assert block[0].startswith("  last-step output: compared at every chunk end t")
    assert block[1] == "  output [0]:"
    assert block[2].startswith(f"  first mismatch: step {second}, sample 0, feature 0: streamed ")
    assert "  output [1]:" in block
    assert (
        f"  first mismatch: step {schedule.ends[1] - 1}, sample 0, feature 0: streamed "
        in "\n".join(block)
    )


def test_the_valid_mask_leaves_masked_steps_out(x: np.ndarray) -> None:
    out, schedule = streamed(RunningSum(carries=False), x, [5, 11])
    valid = np.zeros((3, STEPS), bool)
    valid[:, :5] = True  # only the first chunk counts
    assert valid_at(valid, schedule, True) is valid
    np.testing.assert_array_equal(valid_at(valid, schedule, False), valid[:, [4, 15]])
    assert valid_at(None, schedule, False) is None
    assert compare_runs(out, full(x, schedule), TIGHT, SEQUENCE, valid, schedule) == []


def test_per_sample_streams_each_sample_after_its_own_reset(x: np.ndarray) -> None:
    model = RunningSum()
    out, schedule = streamed(model, x, 3, per_sample=True)
    assert model.resets == 3
    assert compare_runs(out, full(x, schedule), TIGHT, SEQUENCE, None, schedule) == []
    assert [g.batch for g in sample_groups(batch_of(x), per_sample=True)] == [1, 1, 1]
    assert sample_groups(batch := batch_of(x), per_sample=False) == [batch]


def test_whole_runs_a_group_at_once_and_none_falls_back_to_chunks(x: np.ndarray) -> None:
    model = RunningSum()
    calls: list[int] = []

    def whole(part: Batch) -> list[np.ndarray] | None:
        calls.append(part.batch)
        return None if len(calls) == 1 else [np.zeros((1, STEPS, 2)), np.zeros((1, 6, 2))]

    out, _ = streamed(model, x, 3, per_sample=True, whole=whole)
    assert calls == [1, 1, 1]
    assert model.resets == 1  # only the first sample went chunk by chunk
    assert out[0].shape == x.shape
    np.testing.assert_array_equal(out[0][1:], 0.0)
    np.testing.assert_allclose(out[0][0], np.cumsum(x[0], axis=0))


def test_chunk_pieces_keep_every_chunk_and_join_by_kind(x: np.ndarray) -> None:
    model = RunningSum()
    schedule = ChunkSchedule.parse([5, 11], STEPS)
    pieces = chunk_pieces(model.feed, model.reset, batch_of(x), schedule, per_sample=True)
    assert [[p.shape for p in out] for out in pieces] == [
        [(3, 5, 2), (3, 11, 2)],
        [(3, 2), (3, 2)],
    ]
    every_step, last_step = join(pieces, SEQUENCE)
    assert every_step.shape == (3, STEPS, 2)
    assert last_step.shape == (3, 2, 2)


def test_mismatch_lines_label_outputs_only_when_there_are_several(x: np.ndarray) -> None:
    out, schedule = streamed(RunningSum(carries=False), x, 8)
    found = compare_runs(out[:1], full(x, schedule)[:1], TIGHT, [True], None, schedule)
    lines = mismatch_lines(found, [True], "after", "before")
    assert lines[0].startswith("  first mismatch: step 8, sample 0, feature 0: after ")
    assert not any("output [" in line for line in lines)
    # Sequence outputs only: no line about chunk ends.
    assert mismatch_block(found, [True]) == mismatch_lines(found, [True], "streamed", "full")


# --- the hand-over of a step function that returns its state ------------------------------


def test_chunk_of_names_the_chunk_that_holds_a_step() -> None:
    schedule = ChunkSchedule.parse([5, 1, 3, 2, 4, 1], STEPS)
    assert [schedule.chunk_of(s) for s in (0, 4, 5, 6, 8, 9, 15)] == [0, 0, 1, 2, 2, 3, 5]
    with pytest.raises(ValueError, match="step 16 is outside the 16 steps"):
        schedule.chunk_of(16)


def test_a_handover_passes_each_call_the_last_state_and_its_start(x: np.ndarray) -> None:
    calls: list[tuple[Any, int]] = []

    def step(chunk: Batch, total: Any, start: int) -> tuple[list[np.ndarray], Any]:
        calls.append((None if total is None else total.copy(), start))
        (leaf,) = chunk.leaves
        out = (0.0 if total is None else total[:, None]) + np.cumsum(leaf, axis=1)
        return [out], out[:, -1]

    handover = Handover(step, lambda: None)
    schedule = ChunkSchedule.parse([5, 11], STEPS)
    (out,) = stream(handover.feed, handover.reset, batch_of(x), schedule, [True])
    np.testing.assert_allclose(out, np.cumsum(x, axis=1))
    assert [start for _, start in calls] == [0, 5]
    assert calls[0][0] is None
    np.testing.assert_allclose(calls[1][0], np.cumsum(x, axis=1)[:, 4])
    assert handover.start == STEPS
    handover.reset()
    assert (handover.state, handover.start) == (None, 0)


def test_mismatch_block_names_the_two_runs_as_asked(x: np.ndarray) -> None:
    out, schedule = streamed(RunningSum(carries=False), x, 8)
    found = compare_runs(out[:1], full(x, schedule)[:1], TIGHT, [True], None, schedule)
    block = mismatch_block(found, [True], actual="incremental", expected="full")
    assert block[0].startswith("  first mismatch: step 8, sample 0, feature 0: incremental ")
    assert "incremental" in block[2] and "streamed" not in "\n".join(block)
