"""The drawing floor of the failure pictures: figures, headings, notes, colours, PNG files.

matplotlib (the ``plot`` extra) and numpy are imported inside the functions:
the plugin imports the report package at start-up.
"""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Chunk boundaries drawn as lines up to this many chunks (more would hide the curves).
MAX_BOUNDARIES = 40

#: Variables listed in a fit picture's bar chart.
MAX_VARIABLES = 10

DPI = 100
RED, GREEN, BLUE, ORANGE, GREY = "#d62728", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f"
ALLOWED = (0.86, 0.95, 0.86)  # the allowed region's tint


def figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def heading(fig: Figure, title: str, context: str, width: int = 95) -> None:
    """The failure as a bold title, what was run in a grey line under it (both wrapped)."""
    text = textwrap.fill(title, width)
    fig.suptitle(text, fontsize=11, fontweight="bold")
    if context:
        short = context if len(context) <= 2 * width else context[: 2 * width - 3] + "..."
        fig.supxlabel(textwrap.fill(short, width + 25), fontsize=8, color=GREY)


def note(ax: Axes, x: float, text: str) -> None:
    """A red vertical line at ``x`` with a boxed label at the top of the axes."""
    ax.axvline(x, color=RED, lw=1.2, alpha=0.7)
    ax.annotate(
        text, xy=(x, 1.0), xycoords=("data", "axes fraction"), xytext=(5, -14),
        textcoords="offset points", color=RED, fontsize=9,
        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
        zorder=6,  # above a legend that "best" placed over it
    )  # fmt: skip


def integer_ticks(*axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    for axis in axes:
        axis.set_major_locator(MaxNLocator(integer=True))


def log_floor(values: np.ndarray, *others: float) -> float:
    """A floor below every positive value on a log axis, for exact zeros."""
    import numpy as np

    positive = [float(v) for v in np.asarray(values).ravel() if np.isfinite(v) and v > 0]
    positive += [v for v in others if v > 0]
    low = min(positive) if positive else 1e-8
    return float(10 ** math.floor(math.log10(low)) / 10)


def write_png(figure: Figure, path: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    figure.savefig(path, format="png", dpi=DPI)


def write_figure(figure: Figure, path: str) -> None:
    """Write a figure made here as a PNG (the Agg canvas, no pyplot)."""
    write_png(figure, path)
