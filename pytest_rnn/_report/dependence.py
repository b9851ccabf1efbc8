"""Pictures of dependence maps: which input steps each output step reads (causality)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_rnn._core.text import plural
from pytest_rnn._errors import DependencePicture
from pytest_rnn._report.canvas import (
    ALLOWED,
    GREEN,
    ORANGE,
    figure,
    heading,
    integer_ticks,
)

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.figure import Figure


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
    fig = figure(width, height)
    heading(fig, p.title, p.context, width=int(width * 10))
    ax = fig.subplots()
    samples = max(int(p.samples), 1)
    share = np.where(counts > 0, counts / samples, np.nan)
    blues = ListedColormap(
        [(0.80, 0.88, 0.97), (0.55, 0.72, 0.90), (0.30, 0.55, 0.82), (0.08, 0.32, 0.64)]
    )
    tint = np.ones((rows, cols, 4))
    tint[np.asarray(p.allowed, dtype=bool)] = (*ALLOWED, 1.0)
    ax.imshow(tint, aspect="auto", interpolation="nearest")
    image = ax.imshow(share, cmap=blues, vmin=0, vmax=1, aspect="auto", interpolation="nearest")
    bad = np.asarray(p.bad, dtype=bool)
    overlay = np.zeros((rows, cols, 4))
    overlay[bad] = (0.84, 0.15, 0.16, 0.9)
    ax.imshow(overlay, aspect="auto", interpolation="nearest")
    ax.add_collection(LineCollection(_outline(p.allowed), colors=GREEN, linewidths=2.5))
    if p.marks is not None and np.asarray(p.marks).any():
        r, c = np.nonzero(np.asarray(p.marks, dtype=bool))
        ax.scatter(c, r, marker="o", s=max(6.0, min(40.0, 1600.0 / max(rows, cols))),
                   facecolors="none", edgecolors=ORANGE, linewidths=1.5, zorder=3)  # fmt: skip
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
    integer_ticks(ax.xaxis, ax.yaxis)
    ax.set_xlabel(p.column_name)
    ax.set_ylabel(p.row_name)
    n_bad = int(bad.sum())
    handles: list[Artist] = [
        Patch(facecolor=(0.30, 0.55, 0.82), label=f"depends on it ({p.row_name} x {p.column_name})"),
        Patch(facecolor=(0.84, 0.15, 0.16), label=f"depends on it and may not ({plural(n_bad, 'cell')})"),
        Patch(facecolor=ALLOWED, edgecolor=GREEN, lw=2.0, label=p.allowed_name),
    ]  # fmt: skip
    if p.marks is not None and p.marks_name:
        handles.append(
            Line2D([], [], ls="", marker="o", mfc="none", mec=ORANGE, mew=1.5, label=p.marks_name)
        )
    if samples > 1:
        bar = fig.colorbar(image, ax=ax, location="right", shrink=0.5, anchor=(0.0, 0.0))
        bar.set_label(f"share of the {samples} samples\nthat changed", fontsize=8.5)
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.1), ncols=2,
              fontsize=8.5, frameon=False)  # fmt: skip
    return fig
