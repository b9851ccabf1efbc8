"""Pictures of training runs: per-epoch losses of two runs (fit), and the teacher-forcing gap."""

from __future__ import annotations

import math
import re
import textwrap
from typing import TYPE_CHECKING

from pytest_rnn._errors import GapPicture, LossPicture
from pytest_rnn._report.canvas import (
    BLUE,
    GREEN,
    MAX_VARIABLES,
    ORANGE,
    RED,
    figure,
    heading,
    integer_ticks,
    log_floor,
    note,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _losses(p: LossPicture) -> Figure:
    import numpy as np

    runs = {name: np.asarray(v, dtype=np.float64) for name, v in p.losses.items() if len(v)}
    curves = 2 if len(runs) >= 2 else len(runs)
    bars = min(len(p.variables), MAX_VARIABLES)
    heights = [h for h in (2.6 * curves, 0.9 + 0.28 * bars if bars else 0.0) if h]
    fig = figure(9.0, 1.0 + sum(heights))
    heading(fig, p.title, p.context)
    subs = list(fig.subfigures(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0])
    styles = [(BLUE, "-", "o", 2.2), (ORANGE, "--", "s", 1.6), (GREEN, ":", "^", 1.6)]
    if runs:
        panels = list(subs.pop(0).subplots(curves, 1, sharex=True, squeeze=False)[:, 0])
        ax = panels[0]
        for n, (name, values) in enumerate(runs.items()):
            color, ls, marker, lw = styles[n % len(styles)]
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, color=color, ls=ls, marker=marker, lw=lw, ms=5, label=name)
        ax.set_ylabel(p.key)
        ax.set_title(f"per-epoch {p.key} of each run", fontsize=9.5)
        for epoch, label in p.marks:  # between epoch and epoch + 1: the checkpoint
            ax.axvline(epoch + 0.5, color="0.45", ls=":", lw=1.4, label=label)
        if p.first_epoch is not None:
            note(ax, p.first_epoch + 1, f"runs part at epoch {p.first_epoch + 1}")
        ax.legend(loc="best", fontsize=8)
        if len(panels) > 1:
            ax2 = panels[1]
            ref_name, ref = next(iter(runs.items()))
            for n, (name, values) in enumerate(list(runs.items())[1:], 1):
                k = min(len(ref), len(values))
                diff = np.abs(values[:k] - ref[:k])
                floor = log_floor(diff, p.atol)
                color, _, marker, _ = styles[n % len(styles)]
                ax2.plot(np.arange(1, k + 1), np.maximum(diff, floor), color=color, marker=marker,
                         ms=4, label=f"|{name} - {ref_name}|")  # fmt: skip
            allowed = p.atol + p.rtol * np.abs(ref)
            ax2.plot(np.arange(1, len(ref) + 1), allowed, color=GREEN, ls="--",
                     label=f"allowed: {p.atol:.3g} + {p.rtol:.3g}*|{ref_name}|")  # fmt: skip
            ax2.set_yscale("log")
            ax2.set_ylabel("|difference| (log)\n0 is drawn at the bottom", fontsize=9)
            if p.first_epoch is not None:
                ax2.axvline(p.first_epoch + 1, color=RED, lw=1.2, alpha=0.7)
            ax2.legend(loc="best", fontsize=8)
        panels[-1].set_xlabel("epoch")
        integer_ticks(panels[-1].xaxis)
    if bars:
        ax3 = subs.pop(0).subplots()
        shown = sorted(p.variables, key=lambda v: -v[1] if math.isfinite(v[1]) else -math.inf)
        shown = shown[:MAX_VARIABLES]
        labels = [_short(v[0]) for v in shown][::-1]
        widths = [v[1] if math.isfinite(v[1]) else float("nan") for v in shown][::-1]
        ax3.barh(np.arange(len(shown)), widths, color=RED, alpha=0.8)
        ax3.set_yticks(np.arange(len(shown)), labels, fontsize=8)
        ax3.set_xscale("log")
        ax3.set_xlabel("greatest |difference| after training (log)")
        more = (
            f" (greatest {len(shown)} of {len(p.variables)})"
            if len(p.variables) > len(shown)
            else ""
        )
        ax3.set_title(f"variables that differ{more}", fontsize=9.5)
    if not runs:
        fig.suptitle(
            textwrap.fill(p.title, 95) + "\n(no per-epoch history: the models carry no History "
            "from fit())", fontsize=11, fontweight="bold",
        )  # fmt: skip
    return fig


def _short(label: str, width: int = 48) -> str:
    """A variable label cut to fit beside a bar: the path in brackets, else the tail."""
    found = re.search(r"\[([^\]]+)\]$", label)
    text = found.group(1) if found else label
    return text if len(text) <= width else "..." + text[-(width - 3) :]


def gap_figure(gap: GapPicture) -> Figure:
    """Per-step loss of the teacher-forced and the free-running run (see ``TeacherForcingGap.plot``)."""
    import numpy as np

    fig = figure(8.0, 4.2)
    ax = fig.subplots()
    steps = np.arange(len(gap.teacher_forced))
    marker = "o" if len(steps) <= 60 else None
    ax.plot(steps, gap.teacher_forced, color=BLUE, lw=2, marker=marker, ms=4,
            label=f"teacher-forced (ground truth fed back): {gap.teacher_forced_loss:.4g}")  # fmt: skip
    ax.plot(steps, gap.free_running, color=ORANGE, lw=2, ls="--", marker=marker, ms=4,
            label=f"free-running (own outputs fed back): {gap.free_running_loss:.4g}")  # fmt: skip
    if gap.wiring_fails_at is not None:
        ax.axvline(gap.wiring_fails_at, color=RED, lw=1.2, alpha=0.7,
                   label=f"wiring check fails from step {gap.wiring_fails_at}")  # fmt: skip
    ax.set_title(f"Teacher forcing gap: {gap.verdict} (free-running / teacher-forced = {gap.ratio:.3g}x)",
                 fontsize=10.5, fontweight="bold", loc="left")  # fmt: skip
    ax.set_xlabel("decoder step")
    ax.set_ylabel(f"{gap.loss} per step")
    ax.legend(loc="best", fontsize=8.5)
    integer_ticks(ax.xaxis)
    return fig
