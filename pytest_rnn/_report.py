"""Failure pictures and assertion records.

- :func:`recorded` wraps every public assertion: it times the call, records
  ``(name, seconds, outcome)`` for the session summary, and, with
  ``--rnn-report-dir``, turns the failure's :attr:`RNNAssertionError.picture`
  into a PNG whose path becomes the message's last line.
- :func:`render` draws a picture payload (:mod:`pytest_rnn._errors`) on a
  ``matplotlib.figure.Figure`` with the Agg canvas: no pyplot, no global
  state, no GUI backend. matplotlib is imported only here, only when a
  picture is drawn; it is the optional extra ``pytest-rnn[plot]``.

numpy and matplotlib are imported inside the functions that draw: assertion
modules import this module, and the plugin imports it at start-up.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import textwrap
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pytest_rnn import _config
from pytest_rnn._errors import (
    DependencePicture,
    LossPicture,
    Picture,
    RNNAssertionError,
    StepComparison,
    StepPicture,
)

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from pytest_rnn._seq2seq import TeacherForcingGap

__all__ = ["Recorder", "Tally", "gap_figure", "recorded", "recorder", "render", "save"]

#: What a message says when matplotlib is missing.
INSTALL_HINT = 'pip install "pytest-rnn[plot]"'

#: Pictures written per test and assertion; later failures of the same pair
#: (a Hypothesis search can raise hundreds of times) only name the cap.
MAX_PICTURES = 10

#: Chunk boundaries drawn as lines up to this many chunks (more would hide the curves).
MAX_BOUNDARIES = 40

#: Variables listed in a fit picture's bar chart.
MAX_VARIABLES = 10

DPI = 100
_RED, _GREEN, _BLUE, _ORANGE, _GREY = "#d62728", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f"
_ALLOWED = (0.86, 0.95, 0.86)  # the allowed region's tint

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- records


@dataclass
class Recorder:
    """What the assertions of the running test did: records and pictures since the last drain.

    The plugin sets :attr:`enabled` and :attr:`test_id` and drains it once per
    test phase; outside pytest nothing is kept.
    """

    enabled: bool = False
    test_id: str | None = None
    records: list[tuple[str, float, str]] = field(default_factory=list)
    pictures: list[str] = field(default_factory=list)
    depth: int = 0
    written: dict[str, int] = field(default_factory=dict)

    def drain(self) -> tuple[list[tuple[str, float, str]], list[str]]:
        """The records and pictures since the last drain; both lists start empty again."""
        out = (self.records, self.pictures)
        self.records, self.pictures = [], []
        return out


recorder = Recorder()


def recorded(fn: F) -> F:
    """Wrap a public assertion: time it, record its outcome, write its failure picture.

    Outcomes are the assertion's own: ``"passed"``, ``"failed"`` (it raised
    :class:`RNNAssertionError`, even inside ``pytest.raises``) or ``"error"``
    (it raised anything else: a bad argument, a crash in the user's code).
    An assertion called by another is recorded once, as the outer one.
    """
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if recorder.depth:
            return fn(*args, **kwargs)
        recorder.depth += 1
        start = time.perf_counter()
        outcome = "error"
        try:
            result = fn(*args, **kwargs)
            outcome = "passed"
            return result
        except RNNAssertionError as error:
            outcome = "failed"
            if _config.settings.report_dir is not None:
                _attach_picture(error, name, _config.settings.report_dir)
            raise
        finally:
            recorder.depth -= 1
            if recorder.enabled:
                recorder.records.append((name, time.perf_counter() - start, outcome))

    return cast(F, wrapper)


def _file_stem(test_id: str | None, name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", test_id or "session").strip("_.") or "session"
    if len(base) > 120:  # keep names short and still unique
        base = f"{base[:100]}_{zlib.crc32(base.encode()):08x}"
    return f"{base}-{name}"


def _attach_picture(error: RNNAssertionError, name: str, folder: str) -> None:
    """Write the picture and name it in the message (or say why it was not written)."""
    if error.picture is None:
        _append(error, "picture: none (this failure has no per-step data to draw)")
        return
    stem = _file_stem(recorder.test_id, name)
    n = recorder.written.get(stem, 0) + 1
    if n > MAX_PICTURES:
        line = f"picture: not written ({MAX_PICTURES} already written for this test and assertion)"
    else:
        path = os.path.join(folder, f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
        picture = error.picture
        lines = str(error.args[0]).splitlines() if error.args else []
        if not picture.context and len(lines) > 1:
            picture = dataclasses.replace(picture, context=lines[1].strip())
        try:
            save(picture, path)
        except ImportError:
            line = f"picture: not written ({INSTALL_HINT})"
        except Exception as exc:  # a picture must never hide the failure itself
            line = f"picture: not written ({type(exc).__name__}: {exc})"
        else:
            recorder.written[stem] = n
            error.picture_path = path
            recorder.pictures.append(path)
            line = f"picture: {path}"
    _append(error, line)


def _append(error: RNNAssertionError, line: str) -> None:
    message = str(error.args[0]) if error.args else ""
    error.args = (f"{message}\n{line}", *error.args[1:])


@dataclass
class Tally:
    """The session's assertion records, summed for the terminal summary line."""

    counts: dict[str, int] = field(default_factory=dict)
    slowest: tuple[float, str, str] | None = None
    pictures: int = 0

    def add(self, records: Sequence[Sequence[Any]], test_id: str, pictures: int = 0) -> None:
        """Count ``(name, seconds, outcome)`` records of one test phase."""
        self.pictures += pictures
        for name, seconds, outcome in records:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            if self.slowest is None or float(seconds) > self.slowest[0]:
                self.slowest = (float(seconds), str(name), test_id)

    def line(self) -> str | None:
        """``pytest-rnn: 7 assertions ran: 5 passed, 2 failed; slowest ...``; ``None`` if none ran."""
        total = sum(self.counts.values())
        if not total or self.slowest is None:
            return None
        parts = [f"{self.counts.get('passed', 0)} passed", f"{self.counts.get('failed', 0)} failed"]
        if self.counts.get("error"):
            parts.append(f"{self.counts['error']} error{'s' if self.counts['error'] > 1 else ''}")
        seconds, name, test_id = self.slowest
        text = (
            f"pytest-rnn: {total} assertion{'s' if total > 1 else ''} ran: {', '.join(parts)}; "
            f"slowest {name} {seconds:.2f} s in {test_id}"
        )
        if self.pictures:
            text += f"; {self.pictures} failure picture{'s' if self.pictures > 1 else ''} written"
        return text


# --------------------------------------------------------------------------- drawing


def save(picture: Picture, path: str) -> None:
    """Render ``picture`` and write it to ``path`` as a PNG.

    Raises:
        ImportError: matplotlib is not installed.
    """
    _write_png(render(picture), path)


def _write_png(figure: Figure, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    figure.savefig(path, format="png", dpi=DPI)


def render(picture: Picture) -> Figure:
    """The figure for one failure picture payload.

    Raises:
        ImportError: matplotlib is not installed.
        TypeError: ``picture`` is not a picture payload.
    """
    if isinstance(picture, StepPicture):
        return _steps(picture)
    if isinstance(picture, DependencePicture):
        return _dependence(picture)
    if isinstance(picture, LossPicture):
        return _losses(picture)
    raise TypeError(f"not a picture payload: {type(picture).__name__}")


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _heading(fig: Figure, title: str, context: str, width: int = 95) -> None:
    """The failure as a bold title, what was run in a grey line under it (both wrapped)."""
    text = textwrap.fill(title, width)
    fig.suptitle(text, fontsize=11, fontweight="bold")
    if context:
        short = context if len(context) <= 2 * width else context[: 2 * width - 3] + "..."
        fig.supxlabel(textwrap.fill(short, width + 25), fontsize=8, color=_GREY)


def _note(ax: Axes, x: float, text: str) -> None:
    """A red vertical line at ``x`` with a boxed label at the top of the axes."""
    ax.axvline(x, color=_RED, lw=1.2, alpha=0.7)
    ax.annotate(
        text, xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(5, -14),
        textcoords="offset points", color=_RED, fontsize=9,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        zorder=6,  # above a legend that "best" placed over it
    )  # fmt: skip


def _integer_ticks(*axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.set_major_locator(MaxNLocator(integer=True))


def _log_floor(values: np.ndarray, *others: float) -> float:
    """A floor below every positive value on a log axis, for exact zeros."""
    import numpy as np

    positive = [float(v) for v in np.asarray(values).ravel() if np.isfinite(v) and v > 0]
    positive += [v for v in others if v > 0]
    low = min(positive) if positive else 1e-8
    return float(10 ** math.floor(math.log10(low)) / 10)


# --- streaming and seq2seq ------------------------------------------------------------


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
            end - 0.5, color=_GREY, lw=0.8, ls=":",
            label="chunk boundary" if label and n == 0 else None,
        )  # fmt: skip


def _steps(p: StepPicture) -> Figure:
    import numpy as np

    n = len(p.comparisons)
    fig = _figure(9.0, 1.0 + 4.6 * n)
    _heading(fig, p.title, p.context)
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
        top.plot(v.x, v.expected, color=_BLUE, lw=2, marker=marker, ms=4, label=c.expected_name)
        top.plot(
            v.x, v.actual, color=_ORANGE, lw=1.6, ls="--", marker=marker, ms=3,
            label=c.actual_name,
        )  # fmt: skip
        top.set_title(textwrap.fill(c.title, 120) + "\n" + "; ".join(notes), fontsize=9)
        top.set_ylabel("output")
        floor = _log_floor(v.diff, float(np.nanmin(v.allowed)) if v.allowed.size else 0.0)
        shown = np.where(np.isnan(v.diff), np.nan, np.maximum(v.diff, floor))
        shown = np.where(np.isinf(shown), np.nan, shown)
        bottom.plot(v.x, shown, color="black", lw=1.2, marker=marker, ms=3,
                    label="greatest |difference| over samples and features")  # fmt: skip
        bottom.plot(v.x, v.allowed, color=_GREEN, lw=1.2, ls="--",
                    label=f"allowed: {c.atol:.3g} + {c.rtol:.3g}*|{c.expected_name.split(' (')[0]}|")  # fmt: skip
        if v.bad.any():
            bottom.scatter(v.x[v.bad], shown[v.bad], color=_RED, s=18, zorder=3, label="mismatch")
            first = int(v.x[np.argmax(v.bad)])
            _note(top, first, f"first mismatch: step {first}")
            bottom.axvline(first, color=_RED, lw=1.2, alpha=0.7)
        bottom.set_yscale("log")
        bottom.set_ylabel("|difference| (log)\n0 is drawn at the bottom", fontsize=9)
        if draw_chunks:
            _boundaries(top, ends, label=True)
            _boundaries(bottom, ends, label=False)
        top.legend(loc="best", fontsize=8)
        bottom.legend(loc="best", fontsize=8)
        _integer_ticks(bottom.xaxis)
    axes[-1].set_xlabel(p.step_name)
    return fig


# --- causality ------------------------------------------------------------------------


def _outline(mask: np.ndarray) -> list[list[tuple[float, float]]]:
    """Cell-edge segments around the True region of a boolean grid (imshow coordinates)."""
    import numpy as np

    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    segments: list[list[tuple[float, float]]] = []
    rows, cols = np.asarray(mask).shape
    for r in range(rows):
        for c in range(cols):
            if not padded[r + 1, c + 1]:
                continue
            x0, x1, y0, y1 = c - 0.5, c + 0.5, r - 0.5, r + 0.5
            if not padded[r, c + 1]:
                segments.append([(x0, y0), (x1, y0)])
            if not padded[r + 2, c + 1]:
                segments.append([(x0, y1), (x1, y1)])
            if not padded[r + 1, c]:
                segments.append([(x0, y0), (x0, y1)])
            if not padded[r + 1, c + 2]:
                segments.append([(x1, y0), (x1, y1)])
    return segments


def _dependence(p: DependencePicture) -> Figure:
    import numpy as np
    from matplotlib.artist import Artist
    from matplotlib.collections import LineCollection
    from matplotlib.colors import ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    counts = np.asarray(p.counts, dtype=np.float64)
    rows, cols = counts.shape
    width = min(10.0, max(7.5, 4.5 + 0.12 * cols))
    height = min(10.0, max(5.5, 3.5 + 0.12 * rows))
    fig = _figure(width, height)
    _heading(fig, p.title, p.context, width=int(width * 10))
    ax = fig.subplots()
    samples = max(int(p.samples), 1)
    share = np.where(counts > 0, counts / samples, np.nan)
    blues = ListedColormap(
        [(0.80, 0.88, 0.97), (0.55, 0.72, 0.90), (0.30, 0.55, 0.82), (0.08, 0.32, 0.64)]
    )
    tint = np.ones((rows, cols, 4))
    tint[np.asarray(p.allowed, dtype=bool)] = (*_ALLOWED, 1.0)
    ax.imshow(tint, aspect="auto", interpolation="nearest")
    image = ax.imshow(share, cmap=blues, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    bad = np.asarray(p.bad, dtype=bool)
    overlay = np.zeros((rows, cols, 4))
    overlay[bad] = (0.84, 0.15, 0.16, 0.9)
    ax.imshow(overlay, aspect="auto", interpolation="nearest")
    ax.add_collection(LineCollection(_outline(p.allowed), colors=_GREEN, linewidths=2.5))
    if p.marks is not None and np.asarray(p.marks).any():
        r, c = np.nonzero(np.asarray(p.marks, dtype=bool))
        ax.scatter(c, r, marker="o", s=max(6.0, min(40.0, 1600.0 / max(rows, cols))),
                   facecolors="none", edgecolors=_ORANGE, linewidths=1.5, zorder=3)  # fmt: skip
    if rows * cols <= 40 * 40:
        ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
        ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
        ax.grid(which="minor", color="white", lw=0.6)
        ax.tick_params(which="minor", length=0)
    if rows * cols <= 16 * 16 and samples > 1:  # small maps: the counts in the cells
        for r, c in zip(*np.nonzero(counts > 0)):
            dark = bad[r, c] or counts[r, c] / samples > 0.5
            ax.text(c, r, f"{int(counts[r, c])}/{samples}", ha="center", va="center",
                    fontsize=8 if rows * cols > 36 else 10, color="white" if dark else "black")  # fmt: skip
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    _integer_ticks(ax.xaxis, ax.yaxis)
    ax.set_xlabel(p.column_name)
    ax.set_ylabel(p.row_name)
    n_bad = int(bad.sum())
    handles: list[Artist] = [
        Patch(facecolor=(0.30, 0.55, 0.82), label=f"depends on it ({p.row_name} x {p.column_name})"),
        Patch(facecolor=(0.84, 0.15, 0.16), label=f"depends on it and may not ({n_bad} cell{'s' if n_bad != 1 else ''})"),
        Patch(facecolor=_ALLOWED, edgecolor=_GREEN, lw=2.0, label=p.allowed_name),
    ]  # fmt: skip
    if p.marks is not None and p.marks_name:
        handles.append(
            Line2D([], [], ls="", marker="o", mfc="none", mec=_ORANGE, mew=1.5, label=p.marks_name)
        )
    if samples > 1:
        bar = fig.colorbar(image, ax=ax, location="right", shrink=0.5, anchor=(0.0, 0.0))
        bar.set_label(f"share of the {samples} samples\nthat changed", fontsize=8.5)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.1), ncols=2,
              fontsize=8.5, frameon=False)  # fmt: skip
    return fig


# --- training runs --------------------------------------------------------------------


def _losses(p: LossPicture) -> Figure:
    import numpy as np

    runs = {name: np.asarray(v, dtype=np.float64) for name, v in p.losses.items() if len(v)}
    curves = 2 if len(runs) >= 2 else len(runs)
    bars = min(len(p.variables), MAX_VARIABLES)
    heights = [h for h in (2.6 * curves, 0.9 + 0.28 * bars if bars else 0.0) if h]
    fig = _figure(9.0, 1.0 + sum(heights))
    _heading(fig, p.title, p.context)
    subs = list(fig.subfigures(len(heights), 1, squeeze=False, height_ratios=heights)[:, 0])
    styles = [(_BLUE, "-", "o", 2.2), (_ORANGE, "--", "s", 1.6), (_GREEN, ":", "^", 1.6)]
    if runs:
        panels = list(subs.pop(0).subplots(curves, 1, sharex=True, squeeze=False)[:, 0])
        ax = panels[0]
        for n, (name, values) in enumerate(runs.items()):
            color, ls, marker, lw = styles[n % len(styles)]
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, color=color, ls=ls, marker=marker, lw=lw, ms=5, label=name)
        ax.set_ylabel(p.key)
        ax.set_title(f"per-epoch {p.key} of each run", fontsize=9.5)
        if p.first_epoch is not None:
            _note(ax, p.first_epoch + 1, f"runs part at epoch {p.first_epoch + 1}")
        ax.legend(loc="best", fontsize=8)
        if len(panels) > 1:
            ax2 = panels[1]
            ref_name, ref = next(iter(runs.items()))
            for n, (name, values) in enumerate(list(runs.items())[1:], 1):
                k = min(len(ref), len(values))
                diff = np.abs(values[:k] - ref[:k])
                floor = _log_floor(diff, p.atol)
                color, _, marker, _ = styles[n % len(styles)]
                ax2.plot(np.arange(1, k + 1), np.maximum(diff, floor), color=color, marker=marker,
                         ms=4, label=f"|{name} - {ref_name}|")  # fmt: skip
            allowed = p.atol + p.rtol * np.abs(ref)
            ax2.plot(np.arange(1, len(ref) + 1), allowed, color=_GREEN, ls="--",
                     label=f"allowed: {p.atol:.3g} + {p.rtol:.3g}*|{ref_name}|")  # fmt: skip
            ax2.set_yscale("log")
            ax2.set_ylabel("|difference| (log)\n0 is drawn at the bottom", fontsize=9)
            if p.first_epoch is not None:
                ax2.axvline(p.first_epoch + 1, color=_RED, lw=1.2, alpha=0.7)
            ax2.legend(loc="best", fontsize=8)
        panels[-1].set_xlabel("epoch")
        _integer_ticks(panels[-1].xaxis)
    if bars:
        ax3 = subs.pop(0).subplots()
        shown = sorted(p.variables, key=lambda v: -v[1] if math.isfinite(v[1]) else -math.inf)
        shown = shown[:MAX_VARIABLES]
        labels = [_short(v[0]) for v in shown][::-1]
        widths = [v[1] if math.isfinite(v[1]) else float("nan") for v in shown][::-1]
        ax3.barh(np.arange(len(shown)), widths, color=_RED, alpha=0.8)
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


def _parted(ax: Axes, epoch: int | None) -> None:
    if epoch is None:
        return
    ax.axvline(epoch + 1, color=_RED, lw=1.2, alpha=0.7)
    ax.annotate(
        f"runs part at epoch {epoch + 1}", xy=(epoch + 1, 1.0), xycoords=("data", "axes fraction"),
        xytext=(4, -12), textcoords="offset points", color=_RED, fontsize=9,
    )  # fmt: skip


def _short(label: str, width: int = 48) -> str:
    """A variable label cut to fit beside a bar: the path in brackets, else the tail."""
    found = re.search(r"\[([^\]]+)\]$", label)
    text = found.group(1) if found else label
    return text if len(text) <= width else "..." + text[-(width - 3) :]


# --- teacher-forcing gap --------------------------------------------------------------


def gap_figure(gap: TeacherForcingGap) -> Figure:
    """Per-step loss of the teacher-forced and the free-running run (see ``TeacherForcingGap.plot``)."""
    import numpy as np

    fig = _figure(8.0, 4.2)
    ax = fig.subplots()
    steps = np.arange(gap.steps)
    marker = "o" if gap.steps <= 60 else None
    ax.plot(steps, gap.teacher_forced_per_step, color=_BLUE, lw=2, marker=marker, ms=4,
            label=f"teacher-forced (ground truth fed back): {gap.teacher_forced_loss:.4g}")  # fmt: skip
    ax.plot(steps, gap.free_running_per_step, color=_ORANGE, lw=2, ls="--", marker=marker, ms=4,
            label=f"free-running (own outputs fed back): {gap.free_running_loss:.4g}")  # fmt: skip
    if gap.wiring_consistent is False and gap.first_differing_step is not None:
        ax.axvline(gap.first_differing_step, color=_RED, lw=1.2, alpha=0.7,
                   label=f"wiring check fails from step {gap.first_differing_step}")  # fmt: skip
    verdict = gap.verdict.split(":")[0]
    ax.set_title(f"Teacher forcing gap: {verdict} (free-running / teacher-forced = {gap.ratio:.3g}x)",
                 fontsize=10.5, fontweight="bold", loc="left")  # fmt: skip
    ax.set_xlabel("decoder step")
    ax.set_ylabel(f"{gap.loss} per step")
    ax.legend(loc="best", fontsize=8.5)
    _integer_ticks(ax.xaxis)
    return fig


def write_figure(figure: Figure, path: str) -> None:
    """Write a figure made here as a PNG (the Agg canvas, no pyplot)."""
    _write_png(figure, path)
