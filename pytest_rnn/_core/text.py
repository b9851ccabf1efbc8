"""Message text: plurals, step ranges, text grids, shapes and short value descriptions.

Pure functions of their arguments, so every message fragment can be tested
alone. The standard library only at import time: :mod:`pytest_rnn._report`,
which the plugin imports at start-up, uses this module; the two functions that
need numpy import it when called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pytest_rnn._core.tree import flatten

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "GRID_STEPS",
    "MAX_LINES",
    "STR_STEPS",
    "count_range",
    "describe_kwargs",
    "describe_values",
    "error_line",
    "fmt_shape",
    "grid",
    "plural",
    "ranges",
    "shapes",
    "steps_word",
]

#: Sequences with at most this many steps get a text grid in failure messages.
GRID_STEPS = 12
#: Rows and columns ``str(DependenceMap)`` shows before its grid is cut.
STR_STEPS = 24
#: Findings listed in a message before the list is cut.
MAX_LINES = 10


def _s(n: int) -> str:
    """The plural ending for a count of ``n``: ``""`` for exactly 1, else ``"s"``."""
    return "" if n == 1 else "s"


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, plural unless ``n`` is 1: ``"1 trial"``, ``"0 trials"``, ``"3 trials"``.

    A regular plural (``word + "s"``); pass the whole phrase for a compound
    (``plural(2, "future step")`` -> ``"2 future steps"``).
    """
    return f"{n} {word}{_s(n)}"


def ranges(steps: Sequence[int]) -> str:
    """Sorted steps as runs: ``[0, 1, 2, 5]`` -> ``"0-2, 5"``; ``[]`` -> ``""``."""
    out: list[str] = []
    items = sorted(int(s) for s in steps)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ", ".join(out)


def steps_word(steps: Sequence[int], word: str = "step") -> str:
    """``"step 3"`` or ``"steps 0-2, 5"`` (``word="position"``: ``"positions 0-4"``)."""
    return f"{word}{_s(len(steps))} {ranges(steps)}"


def count_range(counts: Sequence[int], total: int) -> str:
    """``"3/8"`` when every count is 3, ``"1-3/8"`` when they run from 1 to 3."""
    lo, hi = min(counts), max(counts)
    return f"{hi}/{total}" if lo == hi else f"{lo}-{hi}/{total}"


def grid(symbols: np.ndarray, row_name: str, cap: int) -> list[str]:
    """A text grid: rows are output steps, columns input steps; cut after ``cap``.

    Args:
        symbols: ``(rows, columns)`` of one-character strings.
        row_name: what a row is (``"label"``, ``"output"``); the corner reads
            ``"label \\ input"``.
        cap: rows and columns shown at most; a cut grid ends with
            ``"(first 12 of 30 steps shown)"``.

    Returns:
        The lines, each indented by two spaces.
    """
    rows, cols = symbols.shape
    nr, nc = min(rows, cap), min(cols, cap)
    width = max(len(str(max(nr, nc) - 1)), 1)
    name = f"{row_name} \\ input"
    pad = max(len(name), width)
    lines = [f"  {name:>{pad}}  " + " ".join(f"{c:>{width}}" for c in range(nc))]
    for r in range(nr):
        cells = " ".join(f"{symbols[r, c]:>{width}}" for c in range(nc))
        lines.append(f"  {r:>{pad}}  {cells}")
    if rows > nr or cols > nc:
        lines.append(f"  (first {nc} of {cols} steps shown)")
    return lines


def fmt_shape(shape: Sequence[int | None]) -> str:
    """A shape as Python writes a tuple, open dims as ``None``: ``(None, 3)``, ``(4,)``."""
    return (
        "("
        + ", ".join("None" if d is None else str(d) for d in shape)
        + ("," if len(shape) == 1 else "")
        + ")"
    )


def describe_values(arr: Any) -> str:
    """``-1`` when every element is the same value, else ``array of shape (4, 1)``.

    Integers are written as integers, floats as :func:`~pytest_rnn._core.compare.format_value`.
    """
    import numpy as np

    from pytest_rnn._core.compare import format_value

    flat = np.asarray(arr).reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        v = flat[0]
        return str(int(v)) if np.issubdtype(flat.dtype, np.integer) else format_value(float(v))
    return f"array of shape {fmt_shape(np.shape(arr))}"


def shapes(tree: Any) -> str:
    """The shape of every leaf of ``tree``: ``(8, 4, 2)`` for one, ``[(8, 4), (8,)]`` for more.

    Written as Python writes the shape objects (``str``), so a framework's own
    shape type keeps its spelling.
    """
    import numpy as np

    found = [np.shape(leaf) for _, leaf in flatten(tree)]
    return str(found[0]) if len(found) == 1 else str(found)


def describe_kwargs(kwargs: Mapping[str, Any]) -> str:
    """Keyword arguments, short: plain values by ``repr``, callbacks by class, others by type.

    ``{'batch_size': 8, 'callbacks': [EarlyStopping], 'x_val': <ndarray>}``.
    """
    parts = []
    for key, value in kwargs.items():
        if key == "callbacks":
            text = "[" + ", ".join(type(cb).__name__ for cb in value) + "]"
        elif isinstance(value, (bool, int, float, str, type(None))):
            text = repr(value)
        else:
            text = f"<{type(value).__name__}>"
        parts.append(f"{key!r}: {text}")
    return "{" + ", ".join(parts) + "}"


#: Lines of a framework's error text that are frames or locations, not the reason.
_NOT_A_REASON = ("Detected at node", "File ", "Traceback", "[[", "Stack trace", "node ")
#: The longest reason a message quotes from an error.
_REASON_CHARS = 300


def error_line(error: BaseException) -> str:
    """``Type: reason``, one line, for quoting an error a framework raised inside a report.

    The first line of the error's text, unless it only announces what follows
    (TensorFlow's ``Graph execution error:``): then the first later line that
    is not a frame, a node or a location is added. TensorFlow's ``[Op:...]``
    suffix is dropped and the result is cut at 300 characters.
    """
    kind = type(error).__name__
    lines = [line.rstrip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return kind
    reason = lines[0]
    if reason.endswith(":"):
        for line in lines[1:]:
            if not line[:1].isspace() and not line.startswith(_NOT_A_REASON):
                reason = f"{reason} {line}"
                break
    reason = reason.split(" [Op:")[0].strip()
    if len(reason) > _REASON_CHARS:
        reason = reason[: _REASON_CHARS - 3].rstrip() + "..."
    return f"{kind}: {reason}"
