"""Tolerances and time-aware mismatch reports: the one closeness rule.

Pure numpy. Arrays are read as ``(batch, steps, features...)``; every index
in a message is spoken as (sample, step, feature...). Message builders are
pure functions of their inputs so they can be tested on numpy arrays alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _config

__all__ = [
    "Mismatch",
    "Tolerance",
    "compare",
    "format_mismatch",
    "format_value",
    "resolve_tolerance",
]

#: Default (rtol, atol) by dtype name: the torch.testing.assert_close table.
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (1e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
    "float32": (1.3e-6, 1e-5),
    "float64": (1e-7, 1e-7),
}

#: Rows shown in a mismatch table before it is cut ("first 10 of 312").
TABLE_ROWS = 10


@dataclass(frozen=True)
class Tolerance:
    """``|actual - expected| <= atol + rtol * |expected|``, elementwise."""

    rtol: float
    atol: float

    def allowed(self, expected: np.ndarray) -> np.ndarray:
        """The allowed absolute difference at every element of ``expected``."""
        return self.atol + self.rtol * np.abs(expected)

    def exceeded(self, actual: Any, expected: Any) -> np.ndarray:
        """Where ``actual`` is outside the tolerance of ``expected``: the one closeness rule.

        Elementwise (broadcasting), in float64. NaN agrees only with NaN and an
        infinity only with the same infinity; every comparison of pytest-rnn,
        and every picture of one, asks this method.
        """
        a = np.asarray(actual, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            close = np.isfinite(a) & np.isfinite(e) & (np.abs(a - e) <= self.allowed(e))
        close |= (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & (a == e))
        return ~close

    def describe(self, expected_name: str = "expected") -> str:
        """E.g. ``1e-05 + 1.3e-06*|full|``."""
        return f"{self.atol:.3g} + {self.rtol:.3g}*|{expected_name}|"


def _dtype_name(dtype: Any) -> str:
    try:  # numpy dtypes, scalar types (np.float64) and names ("float32", "bfloat16")
        return np.dtype(dtype).name
    except TypeError:  # TensorFlow and torch dtype objects
        pass
    name = getattr(dtype, "name", None) or str(dtype)
    return str(name).replace("tf.", "").replace("torch.", "")


def resolve_tolerance(rtol: float | None, atol: float | None, dtype: Any) -> Tolerance:
    """The tolerance an assertion uses for outputs of ``dtype``.

    ``rtol`` and ``atol`` are given both or neither (the ``torch.testing``
    rule). Neither: the session's ``--rnn-rtol``/``--rnn-atol`` if set, else the
    default for ``dtype`` (integers and booleans compare exactly).

    Raises:
        ValueError: only one of them is given, or one is negative or not finite.
        TypeError: one is not a real number.
    """
    if (rtol is None) != (atol is None):
        given, missing = ("rtol", "atol") if atol is None else ("atol", "rtol")
        raise ValueError(
            f"{given} was given without {missing}: pass both rtol and atol, or neither "
            "to use the default for the output dtype"
        )
    if rtol is None or atol is None:
        if _config.settings.rtol is not None and _config.settings.atol is not None:
            return Tolerance(_config.settings.rtol, _config.settings.atol)
        name = _dtype_name(dtype)
        if name in DEFAULT_TOLERANCES:
            return Tolerance(*DEFAULT_TOLERANCES[name])
        if name.startswith(("int", "uint", "bool")):
            return Tolerance(0.0, 0.0)
        return Tolerance(*DEFAULT_TOLERANCES["float32"])
    for arg, value in (("rtol", rtol), ("atol", atol)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise TypeError(f"{arg} must be a real number, got {type(value).__name__}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{arg} must be a finite number >= 0, got {value!r}")
    return Tolerance(float(rtol), float(atol))


@dataclass(frozen=True)
class Mismatch:
    """Everything wrong between one actual and one expected array.

    Indices are full array indices ``(sample, step, feature...)``; when the
    compared array's axis 1 is not the time axis itself (outputs gathered at
    chunk ends), ``steps`` maps axis-1 positions to the step they stand for.
    """

    shape: tuple[int, ...]
    compared: int
    mismatched: int
    first: tuple[int, ...]
    first_actual: float
    first_expected: float
    max_abs: float
    max_abs_at: tuple[int, ...]
    max_rel: float
    max_rel_at: tuple[int, ...]
    rows: tuple[tuple[tuple[int, ...], float, float], ...]
    tolerance: Tolerance
    steps: tuple[int, ...] | None = None
    shape_error: str | None = None

    def step_of(self, index: tuple[int, ...]) -> int | None:
        """The time step an index stands for (``None`` for arrays without time)."""
        if len(index) < 2:
            return None
        return self.steps[index[1]] if self.steps is not None else index[1]

    def spoken(self, index: tuple[int, ...]) -> tuple[int, ...]:
        """The index with its axis-1 position replaced by the step it stands for."""
        if self.steps is None or len(index) < 2:
            return index
        return (index[0], self.steps[index[1]], *index[2:])


def compare(
    actual: Any,
    expected: Any,
    tolerance: Tolerance,
    *,
    valid: np.ndarray | None = None,
    steps: Sequence[int] | None = None,
) -> Mismatch | None:
    """Compare two arrays elementwise; ``None`` when they agree within ``tolerance``.

    Args:
        actual: the array under test (e.g. streamed outputs).
        expected: the reference (e.g. the full-sequence pass).
        tolerance: allowed difference.
        valid: optional boolean mask over the leading axes (e.g. ``(batch, steps)``);
            elements where it is ``False`` are left out (masked steps).
        steps: the step each position of axis 1 stands for, when axis 1 holds
            outputs gathered at chunk ends rather than every step.

    NaN agrees only with NaN; infinities only with the same infinity.
    """
    a = np.asarray(actual)
    e = np.asarray(expected)

    def step_map() -> tuple[int, ...] | None:  # only a report needs it
        return tuple(int(s) for s in steps) if steps is not None else None

    if a.shape != e.shape:
        return Mismatch(
            shape=e.shape, compared=0, mismatched=0, first=(), first_actual=math.nan,
            first_expected=math.nan, max_abs=math.nan, max_abs_at=(), max_rel=math.nan,
            max_rel_at=(), rows=(), tolerance=tolerance, steps=step_map(),
            shape_error=f"shape {a.shape} where {e.shape} was expected",
        )  # fmt: skip
    a64 = a.astype(np.float64)
    e64 = e.astype(np.float64)
    exceeded = tolerance.exceeded(a64, e64)
    considered = np.ones(e.shape, dtype=bool)
    if valid is not None:
        mask = np.asarray(valid, dtype=bool)
        mask = mask.reshape(mask.shape + (1,) * (e.ndim - mask.ndim))
        considered = np.broadcast_to(mask, e.shape)
    bad = exceeded & considered
    n_bad = int(bad.sum())
    if n_bad == 0:
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(a64 - e64)

    # Walk mismatches in time order: step first, then sample, then features.
    order = list(range(e.ndim))
    if e.ndim >= 2:
        order = [1, 0, *range(2, e.ndim)]
    bad_idx = np.argwhere(bad)
    if e.ndim:
        bad_idx = bad_idx[np.lexsort(tuple(bad_idx[:, ax] for ax in reversed(order)))]
    first = tuple(int(i) for i in bad_idx[0])

    diff_bad = np.where(bad, np.nan_to_num(diff, nan=np.inf, posinf=np.inf), -1.0)
    max_abs_at = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff_bad)), e.shape))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(bad, np.nan_to_num(diff / np.abs(e64), nan=np.inf, posinf=np.inf), -1.0)
    max_rel_at = tuple(int(i) for i in np.unravel_index(int(np.argmax(rel)), e.shape))
    rows = tuple(
        (tuple(int(i) for i in idx), float(a64[tuple(idx)]), float(e64[tuple(idx)]))
        for idx in bad_idx[:TABLE_ROWS]
    )
    return Mismatch(
        shape=e.shape,
        compared=int(considered.sum()),
        mismatched=n_bad,
        first=first,
        first_actual=float(a64[first]),
        first_expected=float(e64[first]),
        max_abs=float(diff[max_abs_at]),
        max_abs_at=max_abs_at,
        max_rel=float(rel[max_rel_at]),
        max_rel_at=max_rel_at,
        rows=rows,
        tolerance=tolerance,
        steps=step_map(),
    )


def format_value(value: float) -> str:
    """A number as people read it in a report: 4 significant digits."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:.4g}"


def format_pair(a: float, b: float) -> tuple[str, str]:
    """Two numbers that differ, with as many significant digits (4 to 9) as show it.

    ``0.4995`` and ``0.4995`` say nothing; ``0.499512`` and ``0.499518`` do.
    Numbers that already differ in 4 digits print as :func:`format_value` does.
    """
    if not (math.isfinite(a) and math.isfinite(b)) or a == b:
        return format_value(a), format_value(b)
    for digits in range(4, 10):
        x, y = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if x != y:
            break
    return x, y


def _index(index: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(i) for i in index) + ")"


def format_mismatch(
    mismatch: Mismatch,
    *,
    actual_name: str = "actual",
    expected_name: str = "expected",
    indent: str = "  ",
) -> list[str]:
    """The lines that describe one :class:`Mismatch`, in batch/step/feature terms.

    Example output::

        first mismatch: step 37, sample 2: streamed 0.8123, full 0.5121
        mismatched: 252 / 400 (63.0%); greatest abs diff 0.41 at (1, 99, 0), ...
          step  sample  index        streamed            full        abs diff
            37       2  (2, 37, 0)     0.8123          0.5121             0.3
        (first 10 of 252 mismatches)
    """
    if mismatch.shape_error is not None:
        return [f"{indent}{actual_name} has {mismatch.shape_error}"]
    m = mismatch
    first_step = m.step_of(m.first)
    where = f"sample {m.first[0]}" if m.first else "scalar"
    if first_step is not None:
        where = f"step {first_step}, sample {m.first[0]}"
    if len(m.first) > 2:
        where += f", feature {m.first[2:] if len(m.first) > 3 else m.first[2]}"
    share = 100.0 * m.mismatched / max(m.compared, 1)
    first_actual, first_expected = format_pair(m.first_actual, m.first_expected)
    lines = [
        f"{indent}first mismatch: {where}: {actual_name} {first_actual}, "
        f"{expected_name} {first_expected}",
        f"{indent}mismatched: {m.mismatched} / {m.compared} ({share:.1f}%); "
        f"greatest abs diff {format_value(m.max_abs)} at {_index(m.spoken(m.max_abs_at))}, "
        f"greatest rel diff {format_value(m.max_rel)} at {_index(m.spoken(m.max_rel_at))}; "
        f"allowed {m.tolerance.describe(expected_name)}",
    ]
    if len(m.first) >= 2:
        header = f"{'step':>6}  {'sample':>6}  {'index':<14}{actual_name:>12}  {expected_name:>12}  {'abs diff':>10}"
        lines.append(indent + header)
        for idx, act, exp in m.rows:
            shown_act, shown_exp = format_pair(act, exp)
            lines.append(
                f"{indent}{m.step_of(idx):>6}  {idx[0]:>6}  {_index(m.spoken(idx)):<14}"
                f"{shown_act:>12}  {shown_exp:>12}  {format_value(abs(act - exp)):>10}"
            )
        if m.mismatched > len(m.rows):
            lines.append(
                f"{indent}(first {len(m.rows)} of {m.mismatched} mismatches, in step order)"
            )
    return lines
