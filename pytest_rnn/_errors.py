"""The exception every pytest-rnn assertion raises, and the data its failure picture is drawn from.

Kept free of heavy imports (the plugin imports this module at start-up):
numpy appears in annotations only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DependencePicture",
    "LossPicture",
    "Picture",
    "RNNAssertionError",
    "StepComparison",
    "StepPicture",
]


@dataclass(frozen=True)
class StepComparison:
    """One compared pair of per-step outputs, as a picture draws it.

    Attributes:
        title: what was compared, in a few words.
        actual_name: the run under test (``"streamed"``, ``"inference"``).
        expected_name: the reference (``"full"``, ``"training"``).
        actual: ``(batch, positions, features...)``.
        expected: the same shape.
        rtol: relative tolerance of the comparison.
        atol: absolute tolerance.
        steps: the step each position of axis 1 stands for (outputs gathered
            at chunk ends); ``None`` when position ``t`` is step ``t``.
        valid: optional boolean ``(batch, positions)``: ``False`` where a step
            was left out (masked).
    """

    title: str
    actual_name: str
    expected_name: str
    actual: np.ndarray
    expected: np.ndarray
    rtol: float
    atol: float
    steps: Sequence[int] | None = None
    valid: np.ndarray | None = None


@dataclass(frozen=True)
class StepPicture:
    """Outputs per step of two runs and their per-step difference (streaming, seq2seq).

    Attributes:
        kind: ``"stateful"`` or ``"seq2seq"`` (names the picture's file).
        title: the failure, in one line.
        comparisons: the compared pairs that failed, one panel pair each.
        chunk_ends: steps after which a streamed chunk ends (marked), if any.
        step_name: what the x axis counts (``"step"``, ``"decoder step"``).
        context: what was run on what (the message's second line, by default).
    """

    kind: str
    title: str
    comparisons: tuple[StepComparison, ...]
    chunk_ends: tuple[int, ...] = ()
    step_name: str = "step"
    context: str = ""


@dataclass(frozen=True)
class DependencePicture:
    """A dependence map (rows x columns) with the allowed region outlined (causality).

    Attributes:
        title: the failure, in one line.
        counts: int ``(rows, columns)``: how many samples showed the dependence.
        samples: the most a cell can count.
        allowed: boolean ``(rows, columns)``: where dependence is allowed
            (the model's receptive field, steps ``<= t + horizon``, ...).
        bad: boolean ``(rows, columns)``: the offending cells.
        row_name: what a row is (``"label step"``, ``"output step"``, ``"window"``).
        column_name: what a column is (``"input step"``, ``"series position"``).
        allowed_name: the allowed region in the legend.
        marks: optional boolean ``(rows, columns)`` drawn as dots (a window's target).
        marks_name: the dots in the legend.
        context: what was run on what (the message's second line, by default).
    """

    title: str
    counts: np.ndarray
    samples: int
    allowed: np.ndarray
    bad: np.ndarray
    row_name: str
    column_name: str
    allowed_name: str
    marks: np.ndarray | None = None
    marks_name: str = ""
    kind: str = "causal"
    context: str = ""


@dataclass(frozen=True)
class LossPicture:
    """Per-epoch losses of two or more training runs, and where they part (fit).

    Attributes:
        title: the failure, in one line.
        losses: run name -> per-epoch loss (runs without a history are left out).
        key: the history key drawn (``"loss"``).
        first_epoch: 0-based epoch where the runs first differ beyond the
            tolerance, ``None`` if the losses agree.
        variables: ``(variable, greatest abs diff)`` of the variables that differ.
        rtol: relative tolerance of the loss comparison.
        atol: absolute tolerance.
        context: what was run on what (the message's second line, by default).
        marks: ``(epoch, label)``: a line drawn after each of those epochs
            (where a resumed run was saved and loaded).
    """

    title: str
    losses: Mapping[str, Sequence[float]]
    key: str = "loss"
    first_epoch: int | None = None
    variables: Sequence[tuple[str, float]] = field(default_factory=tuple)
    rtol: float = 0.0
    atol: float = 0.0
    kind: str = "fit"
    context: str = ""
    marks: Sequence[tuple[int, str]] = field(default_factory=tuple)


@dataclass(frozen=True)
class GapPicture:
    """Per-step loss of a teacher-forced and a free-running decode (``TeacherForcingGap.plot``).

    Attributes:
        teacher_forced: loss at each decoder step, ground truth fed back.
        free_running: loss at each decoder step, the model's own outputs fed back.
        teacher_forced_loss: mean of ``teacher_forced``.
        free_running_loss: mean of ``free_running``.
        loss: the loss's name (``"mse"``).
        verdict: the gap's verdict in a few words (the title).
        ratio: free-running / teacher-forced loss.
        wiring_fails_at: the decoder step where the wiring check fails, ``None`` if it holds.
    """

    teacher_forced: Sequence[float]
    free_running: Sequence[float]
    teacher_forced_loss: float
    free_running_loss: float
    loss: str
    verdict: str
    ratio: float
    wiring_fails_at: int | None = None


Picture = StepPicture | DependencePicture | LossPicture


class RNNAssertionError(AssertionError):
    """A sequence-model property asserted by pytest-rnn does not hold.

    A subclass of :class:`AssertionError`, so pytest reports it as a test
    failure (not an error) and ``pytest.raises(AssertionError)`` catches it.
    The message is the whole report: what was compared, where it first
    differs, how much differs, and what that usually means.

    Attributes:
        picture: the data a failure picture is drawn from (``--rnn-report-dir``),
            or ``None``.
        picture_path: the PNG written for this failure, or ``None``.
    """

    def __init__(self, *args: object, picture: Picture | None = None) -> None:
        super().__init__(*args)
        self.picture = picture
        self.picture_path: str | None = None


# Tracebacks, reprs and pickles name the public home, ``pytest_rnn.RNNAssertionError``
# (the package imports it eagerly, so unpickling finds it there).
RNNAssertionError.__module__ = "pytest_rnn"
