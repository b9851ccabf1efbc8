"""teacher_forcing_gap and its result TeacherForcingGap: exposure bias, measured per step.

:func:`teacher_forcing_gap` runs the inference and ``train_model`` on
ground-truth decoder inputs in one call (:mod:`.prepare`), scores both
against the targets with the losses here (:func:`_loss`, :func:`_losses`),
and runs the free-running wiring check on the way, so that
:class:`TeacherForcingGap`'s verdict tells a wiring bug from exposure bias.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn import _report
from pytest_rnn._core.compare import compare, format_value
from pytest_rnn._core.text import fmt_shape
from pytest_rnn._errors import GapPicture
from pytest_rnn._seq2seq.case import _array, _Case, _shape
from pytest_rnn._seq2seq.prepare import _first_step, _prepare, _run

if TYPE_CHECKING:
    import os

    from matplotlib.figure import Figure

#: Per-step rows shown by ``TeacherForcingGap`` before the curve is sampled.
GAP_ROWS = 12


# --------------------------------------------------------------------------- teacher-forcing gap


@dataclass(frozen=True, eq=False)
class TeacherForcingGap:
    """Teacher-forced vs free-running loss of a seq2seq model, overall and per step.

    ``teacher_forced_loss`` is the training graph's loss (ground-truth previous
    steps as decoder inputs, what ``fit`` reports); ``free_running_loss`` is the
    inference's (its own outputs fed back). ``wiring_consistent`` says whether
    the inference passed the free-running wiring check in the same call
    (``None``: not checked), ``first_differing_step`` where it failed.
    ``str()`` renders a per-step table and a one-line verdict.
    """

    teacher_forced_loss: float
    free_running_loss: float
    teacher_forced_per_step: np.ndarray = field(repr=False)
    free_running_per_step: np.ndarray = field(repr=False)
    steps: int
    loss: str = "mse"
    wiring_consistent: bool | None = None
    first_differing_step: int | None = None

    @property
    def ratio(self) -> float:
        """free-running / teacher-forced loss (1.0 when both are 0)."""
        if self.teacher_forced_loss == 0:
            return 1.0 if self.free_running_loss == 0 else math.inf
        return self.free_running_loss / self.teacher_forced_loss

    @property
    def verdict(self) -> str:
        """One line: a wiring bug, exposure bias, or no gap."""
        tf, fr = format_value(self.teacher_forced_loss), format_value(self.free_running_loss)
        if self.wiring_consistent is False:
            return (
                f"Wiring bug, not exposure bias: the inference is not the training model run on "
                f"its own outputs (it first differs at step {self.first_differing_step}); fix it "
                "(assert_inference_matches_training says where) before reading this gap."
            )
        checked = (
            "the wiring check passes"
            if self.wiring_consistent
            else "if assert_inference_matches_training passes"
        )
        if self.free_running_loss <= self.teacher_forced_loss * 1.1 + 1e-12:
            return (
                f"No exposure-bias gap: free-running loss {fr} is within 10% of the "
                f"teacher-forced loss {tf} ({checked})."
            )
        first, last = self.free_running_per_step[0], self.free_running_per_step[-1]
        return (
            f"Exposure bias, not a bug: free-running loss {fr} is {self.ratio:.2g}x the "
            f"teacher-forced {tf} and {checked}; teacher forcing feeds the true previous value, "
            f"free running the model's own, so errors compound over the steps (free-running "
            f"error {format_value(float(first))} at step 0 -> {format_value(float(last))} at step "
            f"{self.steps - 1}); close it by training on the model's own outputs (scheduled "
            "sampling, free-running fine-tuning), not by rewiring the inference."
        )

    def table(self, max_rows: int = GAP_ROWS) -> str:
        """The per-step curve as text; long curves are sampled down to ``max_rows`` steps."""
        shown = list(range(self.steps))
        if self.steps > max_rows:
            shown = sorted({round(float(i)) for i in np.linspace(0, self.steps - 1, max_rows)})
        lines = [
            f"teacher forcing gap: loss {self.loss!r}, {self.steps} decoder steps",
            f"  {'step':>6}  {'teacher-forced':>14}  {'free-running':>12}  {'ratio':>7}",
        ]

        def row(label: str, tf: float, fr: float) -> str:
            ratio = fr / tf if tf else (1.0 if fr == 0 else math.inf)
            return f"  {label:>6}  {format_value(tf):>14}  {format_value(fr):>12}  {ratio:>7.3g}"

        for t in shown:
            lines.append(
                row(
                    str(t),
                    float(self.teacher_forced_per_step[t]),
                    float(self.free_running_per_step[t]),
                )
            )
        if len(shown) < self.steps:
            lines.append(f"  ({len(shown)} of {self.steps} steps shown)")
        lines.append(row("all", self.teacher_forced_loss, self.free_running_loss))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table() + "\n" + self.verdict

    def plot(self, path: str | os.PathLike[str] | None = None) -> Figure:
        """Draw the per-step loss, teacher-forced vs free-running, with the verdict as title.

        Needs matplotlib (``pip install "pytest-rnn[plot]"``); draws on a
        ``matplotlib.figure.Figure`` of its own (no pyplot, no global state).

        Args:
            path: if given, the figure is also written there as a PNG.

        Returns:
            The figure: x is the decoder step, y the loss at that step; a
            red line marks where the wiring check failed, if it did.

        Raises:
            ImportError: matplotlib is not installed.

        Example:
            >>> gap = teacher_forcing_gap(train_model, inference_model, x, y, start=-1.0)
            >>> gap.plot("gap.png")
        """
        picture = GapPicture(
            teacher_forced=[float(v) for v in self.teacher_forced_per_step],
            free_running=[float(v) for v in self.free_running_per_step],
            teacher_forced_loss=self.teacher_forced_loss,
            free_running_loss=self.free_running_loss,
            loss=self.loss,
            verdict=self.verdict.split(":")[0],
            ratio=self.ratio,
            wiring_fails_at=(
                self.first_differing_step if self.wiring_consistent is False else None
            ),
        )
        figure = _report.gap_figure(picture)
        if path is not None:
            _report.write_figure(figure, str(path))
        return figure


def _loss(loss: Any) -> tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray] | None, Any]:
    """(name, per-element builtin or None, user callable or None)."""
    if isinstance(loss, str):
        if loss in ("mse", "mean_squared_error"):
            return "mse", lambda t, p: (p - t) ** 2, None
        if loss in ("mae", "mean_absolute_error"):
            return "mae", lambda t, p: np.abs(p - t), None
        if loss in ("crossentropy", "sparse_categorical_crossentropy", "categorical_crossentropy"):
            return "crossentropy", None, None
        raise ValueError(
            f"loss must be 'mse', 'mae', 'crossentropy' or a callable (y_true, y_pred) -> "
            f"loss, got {loss!r}"
        )
    if callable(loss):
        return getattr(loss, "__name__", type(loss).__name__), None, loss
    raise TypeError(f"loss must be a string or a callable, got {type(loss).__name__}")


def _crossentropy(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Per (sample, step) crossentropy; ``t`` ids ``(B, T)`` or one-hot like ``p``."""
    logp = np.log(np.clip(p.astype(np.float64), 1e-12, 1.0))
    if t.shape == p.shape:
        return np.asarray(-(t * logp).sum(axis=-1))
    ids = t.astype(np.int64)[..., None]
    return np.asarray(-np.take_along_axis(logp, ids, axis=-1)[..., 0])


def _losses(
    name: str,
    elementwise: Any,
    user: Any,
    targets: np.ndarray,
    pred: np.ndarray,
    valid: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """The loss of ``pred`` against ``targets``, overall and per decoder step.

    ``valid`` (``(batch, steps)``, every step reached by some sample): only
    those positions count, as a per-sample loop that stopped early produced.
    """
    steps = pred.shape[1]
    if user is not None:
        if valid is None:
            total = float(np.mean(K.to_numpy(user(targets, pred))))
            per = [
                float(np.mean(K.to_numpy(user(targets[:, t : t + 1], pred[:, t : t + 1]))))
                for t in range(steps)
            ]
            return total, np.array(per)
        per = [
            float(np.mean(K.to_numpy(user(targets[rows, t : t + 1], pred[rows, t : t + 1]))))
            for t, rows in enumerate(valid.T)
        ]
        return float(np.average(per, weights=valid.sum(axis=0))), np.array(per)
    t64, p64 = targets.astype(np.float64), pred.astype(np.float64)
    err = _crossentropy(t64, p64) if name == "crossentropy" else elementwise(t64, p64)
    err = err.reshape(err.shape[0], steps, -1)
    if valid is None:
        return float(err.mean()), err.mean(axis=(0, 2))
    weight = np.broadcast_to(valid[:, :, None], err.shape)
    per_step = (err * weight).sum(axis=(0, 2)) / weight.sum(axis=(0, 2))
    return float((err * weight).sum() / weight.sum()), per_step


def _check_targets(
    name: str, user: Any, targets: np.ndarray, case: _Case, out_shape: tuple[int | None, ...]
) -> None:
    """``targets`` fits the batch and (builtin losses) train_model's outputs; ValueError if not."""
    if targets.ndim < 2 or targets.shape[0] != case.batch:
        raise ValueError(
            f"targets has shape {targets.shape}; expected (batch, steps, ...) with the batch of "
            f"encoder_inputs ({case.batch})"
        )
    if user is not None:
        return
    out_step = out_shape[2:]
    ok = len(targets.shape) - 2 == len(out_step) and all(
        o is None or o == t for o, t in zip(out_step, targets.shape[2:])
    )
    if name == "crossentropy" and len(targets.shape) - 2 == len(out_step) - 1:
        ok = all(o is None or o == t for o, t in zip(out_step[:-1], targets.shape[2:]))
    if not ok:
        raise ValueError(
            f"targets has shape {targets.shape} but train_model's outputs are "
            f"{fmt_shape(out_shape)} (loss {name!r}"
            + (", or ids without the last axis)" if name == "crossentropy" else ")")
        )


def _teacher_inputs(case: _Case, targets: np.ndarray) -> np.ndarray:
    """Targets turned into decoder inputs and shifted right behind start."""
    want = (case.batch, *case.in_step)
    steps = []
    for t in range(case.steps - 1):
        y = targets[:, t]
        if case.feedback.kind == "identity" or (
            case.feedback.kind == "argmax"
            and np.issubdtype(y.dtype, np.integer)
            and y.size == math.prod(want)
        ):
            if y.size != math.prod(want):
                raise ValueError(
                    f"targets: a target step of shape {fmt_shape(y.shape)} cannot be fed to the "
                    f"decoder, which takes {fmt_shape(want)} per step; pass decoder_inputs"
                )
            steps.append(y.reshape(want).astype(case.in_dtype))
        elif (
            case.feedback.kind == "onehot"
            and np.issubdtype(y.dtype, np.integer)
            and y.size == case.batch
        ):  # target ids, the decoder takes one-hot vectors
            steps.append(np.eye(case.in_step[-1], dtype=case.in_dtype)[y.reshape(-1)])
        else:
            steps.append(case.feedback.apply(y, case.in_step, case.in_dtype))
    if not steps:
        return case.start[:, None]
    return case.shifted(np.stack(steps, axis=1))


def teacher_forcing_gap(
    train_model: Any,
    inference: Any,
    encoder_inputs: Any,
    targets: Any,
    *,
    loss: str | Callable[[Any, Any], Any] = "mse",
    decoder_inputs: Any = None,
    start: Any = None,
    feedback: str | Callable[[np.ndarray], Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> TeacherForcingGap:
    """Teacher-forced vs free-running loss on the same data, per step (does not assert).

    The teacher-forced loss is ``train_model`` on ground-truth decoder inputs
    (``decoder_inputs``, or ``targets`` turned into inputs by ``feedback`` and
    shifted right behind ``start``): the number ``fit`` reports. The
    free-running loss is the ``inference``'s outputs against the same targets.
    The free-running wiring check of :func:`assert_inference_matches_training`
    runs in the same call, so the verdict can tell a wiring bug from exposure
    bias (a model trained on true previous steps seeing its own errors, which
    compound from step to step). With a :func:`per_sample` loop whose samples
    stop early, both losses count only the steps each sample produced (and
    the curve ends at the longest).

    Args:
        train_model, inference, encoder_inputs, decoder_inputs, start, feedback,
            rtol, atol: as for :func:`assert_inference_matches_training`.
        targets: what the decoder should output, ``(batch, steps, ...)`` like
            train_model's outputs (for ``"crossentropy"`` also token ids
            ``(batch, steps)``).
        loss: ``"mse"``, ``"mae"``, ``"crossentropy"``, or a callable
            ``(y_true, y_pred) -> loss`` on numpy arrays (a scalar or an array
            that is averaged; called on the whole arrays and on each step).

    Returns:
        A :class:`TeacherForcingGap` with both losses, both per-step curves,
        the number of steps and the wiring check's result; ``print()`` it for
        a table and a verdict.

    Raises:
        TypeError, ValueError: a bad argument, named (``targets`` of the
            wrong shape, an unknown ``loss``, and the assertion's own checks).

    Example:
        >>> gap = teacher_forcing_gap(train_model, inference_model, x_valid,
        ...                           y_valid, start=-1.0)
        >>> print(gap)   # 0.045 teacher-forced vs 0.16 free-running: exposure bias
    """
    name, elementwise, user = _loss(loss)
    tgt = _array(targets, "targets")
    steps_from_targets = ("targets", int(tgt.shape[1])) if tgt.ndim >= 2 else None
    case, form = _prepare(
        train_model, inference, encoder_inputs, decoder_inputs=decoder_inputs,
        start=start, feedback=feedback, other_steps=steps_from_targets,
    )  # fmt: skip
    out_shape = _shape(train_model.outputs[0])
    _check_targets(name, user, tgt, case, out_shape)
    if case.steps == 0:
        case.steps = tgt.shape[1]
    tol = K.output_tolerance(rtol, atol, train_model.outputs[0].dtype)
    teacher = case.decoder_inputs if case.decoder_inputs is not None else _teacher_inputs(case, tgt)
    with K.untouched(train_model, *form.models()):
        run = _run(case, form, teacher, replay=False)
    assert run.train_teacher is not None
    wiring = compare(run.free, run.train_free, tol, valid=run.valid)
    train_teacher, free, valid, steps = run.train_teacher, run.free, run.valid, case.steps
    if valid is not None:  # a per-sample loop stopped early: the steps some sample reached
        steps = int(valid.sum(axis=1).max())
        train_teacher, free, valid = train_teacher[:, :steps], free[:, :steps], valid[:, :steps]
        tgt = tgt[:, :steps]
    tf_total, tf_steps = _losses(name, elementwise, user, tgt, train_teacher, valid)
    fr_total, fr_steps = _losses(name, elementwise, user, tgt, free, valid)
    for arr in (tf_steps, fr_steps):
        arr.setflags(write=False)
    return TeacherForcingGap(
        teacher_forced_loss=tf_total,
        free_running_loss=fr_total,
        teacher_forced_per_step=tf_steps,
        free_running_per_step=fr_steps,
        steps=steps,
        loss=name,
        wiring_consistent=wiring is None,
        first_differing_step=None if wiring is None else _first_step(wiring),
    )
