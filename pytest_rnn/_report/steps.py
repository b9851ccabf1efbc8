"""Pictures of per-step comparisons: streamed vs full, inference vs training."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_rnn._errors import StepComparison, StepPicture
from pytest_rnn._report.canvas import (
    BLUE,
    GREEN,
    GREY,
    MAX_BOUNDARIES,
    ORANGE,
    RED,
    figure,
    heading,
    integer_ticks,
    log_floor,
    note,
)

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class _StepView:
    """One comparison reduced to curves: the worst sample and feature, and the per-step maxima."""

    x: np.ndarray  # the step of every position
    actual: np.ndarray  # worst sample/feature, per position
    expected: np.ndarray
    diff: np.ndarray  # greatest |actual - expected| per position, over samples and features
    allowed: np.ndarray  # allowed difference at that element
    bad: np.ndarray  # positions with a mismatch
    sample: int
    feature: tuple[int, ...]


def _step_view(c: StepComparison) -> _StepView:
    import numpy as np

    from pytest_rnn._core.compare import Tolerance

    a = np.asarray(c.actual, dtype=np.float64)
    e = np.asarray(c.expected, dtype=np.float64)
    if a.ndim == 1:
        a, e = a[:, None], e[:, None]
    feature_shape = a.shape[2:]
    a3 = a.reshape(a.shape[0], a.shape[1], -1)
    e3 = e.reshape(e.shape[0], e.shape[1], -1)
    tolerance = Tolerance(c.rtol, c.atol)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a3 - e3)
    allowed = tolerance.allowed(e3)
    bad = tolerance.exceeded(a3, e3)
    diff = np.where(np.isnan(diff) & bad, np.inf, diff)
    if c.valid is not None:
        keep = np.asarray(c.valid, dtype=bool).reshape(a3.shape[0], a3.shape[1], 1)
        keep = np.broadcast_to(keep, a3.shape)
        diff = np.where(keep, diff, np.nan)
        bad &= keep
    ranked = np.where(np.isnan(diff), -1.0, diff)
    s, _, f = np.unravel_index(int(np.argmax(ranked)), ranked.shape)
    per_step = np.nanmax(np.where(np.isnan(diff), -np.inf, diff), axis=(0, 2))
    per_step = np.where(np.isneginf(per_step), np.nan, per_step)
    positions = a3.shape[1]
    at = np.argmax(ranked.transpose(1, 0, 2).reshape(positions, -1), axis=1)
    allowed_at = allowed.transpose(1, 0, 2).reshape(positions, -1)[np.arange(positions), at]
    steps = np.arange(a3.shape[1]) if c.steps is None else np.asarray(c.steps)
    feature = (
        tuple(int(i) for i in np.unravel_index(int(f), feature_shape)) if feature_shape else ()
    )
    return _StepView(
        x=steps,
        actual=a3[s, :, f],
        expected=e3[s, :, f],
        diff=per_step,
        allowed=allowed_at,
        bad=np.asarray(bad.any(axis=(0, 2))),
        sample=int(s),
        feature=feature,
    )


def _boundaries(ax: Axes, ends: Sequence[int], label: bool) -> None:
    for n, end in enumerate(ends):
        ax.axvline(
            end - 0.5, color=GREY, lw=0.8, ls=":",
            label="chunk boundary" if label and n == 0 else None,
        )  # fmt: skip


def _steps(p: StepPicture) -> Figure:
    import numpy as np

    n = len(p.comparisons)
    fig = figure(9.0, 1.0 + 4.6 * n)
    heading(fig, p.title, p.context)
    axes = fig.subplots(2 * n, 1, sharex=True, height_ratios=[3, 2] * n)
    last = max(
        int(np.asarray(c.actual).shape[1]) if c.steps is None else int(max(c.steps)) + 1
        for c in p.comparisons
    )
    ends = [e for e in p.chunk_ends if 0 < e < last]
    every_step = bool(ends) and ends == list(range(1, len(ends) + 1))
    draw_chunks = 0 < len(ends) <= MAX_BOUNDARIES and not every_step
    for k, c in enumerate(p.comparisons):
        top, bottom = axes[2 * k], axes[2 * k + 1]
        v = _step_view(c)
        marker = "o" if len(v.x) <= 60 else None
        where = f"sample {v.sample}"
        if v.feature:
            where += f", feature {v.feature if len(v.feature) > 1 else v.feature[0]}"
        notes = [f"{where}: the element with the greatest difference"]
        if c.steps is not None:
            notes.append(
                "last-step output: at every chunk end t, compared with the model on x[:, :t]"
            )
        if every_step:
            notes.append("chunks of 1 step")
        elif ends and not draw_chunks:
            notes.append(f"{len(ends) + 1} chunks (boundaries not drawn)")
        top.plot(v.x, v.expected, color=BLUE, lw=2, marker=marker, ms=4, label=c.expected_name)
        top.plot(
            v.x, v.actual, color=ORANGE, lw=1.6, ls="--", marker=marker, ms=3,
            label=c.actual_name,
        )  # fmt: skip
        top.set_title(textwrap.fill(c.title, 120) + "\n" + "; ".join(notes), fontsize=9)
        top.set_ylabel("output")
        floor = log_floor(v.diff, float(np.nanmin(v.allowed)) if v.allowed.size else 0.0)
        shown = np.where(np.isnan(v.diff), np.nan, np.maximum(v.diff, floor))
        shown = np.where(np.isinf(shown), np.nan, shown)
        bottom.plot(v.x, shown, color="black", lw=1.2, marker=marker, ms=3,
                    label="greatest |difference| over samples and features")  # fmt: skip
        bottom.plot(v.x, v.allowed, color=GREEN, lw=1.2, ls="--",
                    label=f"allowed: {c.atol:.3g} + {c.rtol:.3g}*|{c.expected_name.split(' (')[0]}|")  # fmt: skip
        if v.bad.any():
            bottom.scatter(v.x[v.bad], shown[v.bad], color=RED, s=18, zorder=3, label="mismatch")
            first = int(v.x[np.argmax(v.bad)])
            note(top, first, f"first mismatch: step {first}")
            bottom.axvline(first, color=RED, lw=1.2, alpha=0.7)
        bottom.set_yscale("log")
        bottom.set_ylabel("|difference| (log)\n0 is drawn at the bottom", fontsize=9)
        if draw_chunks:
            _boundaries(top, ends, label=True)
            _boundaries(bottom, ends, label=False)
        top.legend(loc="best", fontsize=8)
        bottom.legend(loc="best", fontsize=8)
        integer_ticks(bottom.xaxis)
    axes[-1].set_xlabel(p.step_name)
    return fig
