"""assert_windows_causal: windowing a series never shows a sample's inputs its own target.

The series is one sample. Which positions each window's inputs and target
read is measured in :mod:`.window_reads`: from tag series for a windowing that
only copies values, else by replacing every position in turn.
:func:`_window_findings` sorts the windows whose inputs read at or after their
target (off-by-one, target inside, anchored, inputs past the target);
:func:`_windows_message` and :func:`_windows_picture` report them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._causal.args import _FINITE, _name_of, _probe
from pytest_rnn._causal.window_reads import _TAGS, _copied, _perturbed, _window_changes, _windows
from pytest_rnn._core import text as _text
from pytest_rnn._core import validate as _validate
from pytest_rnn._errors import DependencePicture, RNNAssertionError
from pytest_rnn._report import recorded


@recorded
def assert_windows_causal(
    make_windows: Callable[[Any], Any],
    series: Any,
    *,
    anchor_steps: int = 0,
    trials: int = 8,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that windowing a series never shows a sample's inputs its own target.

    ``make_windows(series)`` cuts one series into ``(inputs, targets)`` with
    ``inputs`` ``(n, window, features...)`` and ``targets`` ``(n, ...)`` (e.g.
    ``(n,)``, ``(n, features)`` or ``(n, horizon, ...)``); either may be a
    list/dict of such arrays. It may also return a ``tf.data.Dataset`` of
    ``(inputs, targets)`` batches, as ``keras.utils.timeseries_dataset_from_array``
    builds it with ``targets=``: its batches are read whole, in order (build
    it with ``shuffle=False``). Each series position is replaced in turn with
    another position's value (``trials`` times); the positions that change a
    window's inputs and its target are the ones they depend on. For every
    window, every input must depend only on positions *strictly before* the
    earliest position its target depends on. This catches an off-by-one window
    (the target is the last input step), targets inside the input window, and
    inputs that run past the target (centred features).

    ``anchor_steps=k`` lets a target also read the last ``k`` input positions,
    for targets relative to the last observed value (a change
    ``s[t+1] - s[t]``, a return, an up/down label); the target must still
    read at least one position after the inputs.

    A ``make_windows`` that only copies series values into its windows
    (slicing, ``timeseries_dataset_from_array``) is read in 5 calls: the
    series twice, then 3 series of the same shape whose elements are all
    distinct, where each window element names the position it was copied
    from (every one must agree). Anything that computes (differences,
    normalisation, thresholds) is measured by replacement instead: it is
    called ``len(series) * trials + 2`` times, each on one whole series, so a
    short series (a few windows long) is enough, since the check is about
    indexing, not data.

    Args:
        make_windows: your function ``series -> (inputs, targets)``.
        series: one series, ``(length,)`` or ``(length, features...)``.
        anchor_steps: last input positions a target may share (>= 0).
        trials: replacements per position (when measured by replacement).
        seed: seed of the replacements (default: the session seed, 0).
        rtol: tolerance for "changed" (with ``atol``; default by dtype).
        atol: see ``rtol``.

    Raises:
        RNNAssertionError: some windows' inputs read positions at or after their
            target's. The message counts them, shows the first few (positions
            the inputs and the target read) and names the pattern (off-by-one,
            target inside the window, inputs past the target).
        TypeError: ``make_windows`` is not a function.
        ValueError: a bad ``series`` or ``make_windows`` result, or targets
            that do not depend on the series at all.

    Example:
        >>> def make_windows(s, window=10):
        ...     x = np.stack([s[i : i + window] for i in range(len(s) - window)])
        ...     y = np.array([s[i + window - 1] for i in range(len(s) - window)])  # bug
        ...     return x, y
        >>> pytest_rnn.assert_windows_causal(make_windows, np.sin(np.arange(50.0)))
        RNNAssertionError: Windows show their targets to their inputs: 40/40 windows ...
          window 0: inputs read positions 0-9; target reads position 9
          What it usually means: off-by-one: the target is the last input position. ...
    """
    __tracebackhide__ = True
    K.check_function(make_windows, "make_windows", "windows", "series -> (inputs, targets)")
    anchor_steps = _validate.check_int(anchor_steps, "anchor_steps", 0)
    probe = _probe(trials, seed, rtol, atol)
    trials = probe.trials
    if callable(series) or isinstance(series, (Mapping, str)):
        raise TypeError(
            f"series must be an array (length, features...), got {type(series).__name__}"
        )
    s = np.asarray(series)
    if s.ndim < 1:
        raise ValueError(f"series must be an array (length, features...), got shape {s.shape}")
    _validate.numeric(s, "series", _FINITE)
    length = s.shape[0]
    if length < 2:
        raise ValueError(f"series must have at least 2 positions, got {length}")
    rows = s.reshape(length, -1)
    if (rows == rows[:1]).all():
        raise ValueError(
            "series has the same value at every position, so replacing one changes nothing "
            "and dependence cannot be measured: pass a varied series"
        )
    with K.untouched():
        inputs0, targets0, n = _windows(make_windows, s)
        again = _windows(make_windows, s)
        tols_in = [probe.tolerance(a.dtype) for a in inputs0]
        tols_tg = [probe.tolerance(a.dtype) for a in targets0]
        if (
            _window_changes(again[0], inputs0, tols_in).any()
            or _window_changes(again[1], targets0, tols_tg).any()
        ):
            raise ValueError(
                "make_windows returned different windows for the same series: it must be a "
                "deterministic function of the series"
            )
        copies = _copied(make_windows, s, inputs0, targets0, probe.rng())
        if copies is not None:
            in_dep, tg_dep = copies
            how = f"read from {_TAGS} tag series (its windows copy series values)"
        else:
            in_dep, tg_dep = _perturbed(make_windows, s, inputs0, targets0, probe, tols_in, tols_tg)
            how = f"{_text.plural(trials, 'trial')} per position"
    if not tg_dep.any():
        raise ValueError(
            "the targets of make_windows did not change when any single position of series "
            "changed, so there is nothing to check: make the targets from the series"
        )
    findings = _window_findings(in_dep, tg_dep, anchor_steps)
    if not findings:
        return None
    message = _windows_message(
        make_windows, length, inputs0, targets0, n, how, anchor_steps, findings, tg_dep
    )
    raise RNNAssertionError(
        message, picture=_windows_picture(message, in_dep, tg_dep, findings, anchor_steps)
    )


def _windows_picture(
    message: str,
    in_dep: np.ndarray,
    tg_dep: np.ndarray,
    findings: list[_WindowFinding],
    anchor: int,
) -> DependencePicture:
    """Window x series position: inputs may read only positions before the target's own."""
    allowed = np.ones(in_dep.shape, dtype=bool)
    for w in range(in_dep.shape[0]):
        inputs, target = np.flatnonzero(in_dep[w]), np.flatnonzero(tg_dep[w])
        if not target.size:
            continue
        last = inputs[-1] if inputs.size else -1
        own = [p for p in target if not (anchor and last - anchor < p <= last)]
        allowed[w, (own or list(target))[0] :] = False
        if anchor and inputs.size:  # the last anchor_steps input positions may be shared
            allowed[w, max(0, last - anchor + 1) : last + 1] = True
    bad = np.zeros(in_dep.shape, dtype=bool)
    for f in findings:
        bad[f.window] = in_dep[f.window] & ~allowed[f.window]
    return DependencePicture(
        message.splitlines()[0].split(":")[0], in_dep.astype(np.int64), 1, allowed, bad,
        "window", "series position", "allowed for inputs: before the target",
        marks=tg_dep, marks_name="target reads it",
    )  # fmt: skip


@dataclass(frozen=True)
class _WindowFinding:
    window: int
    inputs: list[int]
    target: list[int]
    kind: str  # "last", "inside", "anchored", "past", "whole" (every series position)
    reach: int  # how far inputs reach at or past the target's first position


def _window_findings(in_dep: np.ndarray, tg_dep: np.ndarray, anchor: int) -> list[_WindowFinding]:
    found = []
    for w in range(in_dep.shape[0]):
        inputs = [int(p) for p in np.flatnonzero(in_dep[w])]
        target = [int(p) for p in np.flatnonzero(tg_dep[w])]
        if not inputs or not target:
            continue
        last = inputs[-1]
        own = [p for p in target if not (anchor and last - anchor < p <= last)]
        if len(target) == tg_dep.shape[1] > 2 and last >= target[0]:
            # A statistic of the whole series (normalisation) reaches this target.
            found.append(_WindowFinding(w, inputs, target, "whole", last - target[0] + 1))
        elif not own:
            kind = "last" if target == [last] else "inside"
            found.append(_WindowFinding(w, inputs, target, kind, last - target[0] + 1))
        elif last >= own[0]:
            # Inside: read by the inputs, or between two positions they read (a sampling_rate).
            inside = set(own) <= set(inputs) or inputs[0] <= own[0] <= own[-1] <= last
            kind = ("last" if own == [last] else "inside") if inside else "past"
            shared = [p for p in own if p <= last]
            k = len(shared)
            if not inside and k == 1 and shared == [last]:
                kind = "anchored"  # the target reads the last input, then the future
            found.append(_WindowFinding(w, inputs, target, kind, last - own[0] + 1))
    return found


def _windows_message(
    make_windows: Any,
    length: int,
    inputs: list[np.ndarray],
    targets: list[np.ndarray],
    n: int,
    how: str,
    anchor: int,
    findings: list[_WindowFinding],
    tg_dep: np.ndarray,
) -> str:
    shapes_in = ", ".join(str(a.shape) for a in inputs)
    shapes_tg = ", ".join(str(a.shape) for a in targets)
    lines = [
        f"Windows show their targets to their inputs: {len(findings)}/{n} windows have inputs "
        "that read series positions at or after the first position their target reads.",
        f"  make_windows {_name_of(make_windows)!r} on a series of {length} positions -> "
        f"inputs {shapes_in}, targets {shapes_tg}; {how}"
        + (f"; anchor_steps={anchor}" if anchor else ""),
    ]
    for f in findings[: _text.MAX_LINES // 2]:
        note = {
            "last": ", the last input position",
            "inside": ", all inside the inputs"
            if set(f.target) <= set(f.inputs)
            else f", inside the span of the inputs ({f.inputs[0]}-{f.inputs[-1]})",
            "past": f"; the inputs reach {_text.plural(f.reach, 'position')} into it",
            "anchored": f", starting at the last {_text.plural(f.reach, 'input position')}",
            "whole": ", every position of the series",
        }[f.kind]
        lines.append(
            f"  window {f.window}: inputs read {_text.steps_word(f.inputs, 'position')}; "
            f"target reads {_text.steps_word(f.target, 'position')}{note}"
        )
    if len(findings) > _text.MAX_LINES // 2:
        lines.append(f"  ... (first {_text.MAX_LINES // 2} of {len(findings)} leaking windows)")
    unchecked = int((~tg_dep.any(axis=1)).sum())
    if unchecked:
        lines.append(
            f"  {_text.plural(unchecked, 'window')} had targets that no single position changed; "
            "not checked"
        )
    kinds = {f.kind for f in findings}
    if "whole" in kinds:
        hint = (
            f"every target reads every position of the series ({length} of {length}), its "
            "own future included: a statistic of the whole series (a mean and standard "
            "deviation or a min and max used to normalise, computed inside make_windows) "
            "reaches every window, so no window start can fix it. Compute such statistics "
            "from the positions before each window, or from the training part outside "
            "make_windows and pass the normalised series in."
        )
    elif kinds == {"last"}:
        hint = (
            "off-by-one: the target is the last input position. The target of a window "
            "over s[i : i + window] is s[i + window] (or later), not s[i + window - 1]."
        )
    elif kinds == {"anchored"}:
        reach = max(f.reach for f in findings)
        hint = (
            f"the target also reads the last {_text.plural(reach, 'input position')} (a change or "
            "return relative to the last observed value?). If that is intended, pass "
            f"anchor_steps={reach}; otherwise start the target after the last input position."
        )
    elif kinds <= {"last", "inside"}:
        hint = (
            "the target lies inside the input window, so the model is shown its answer. "
            "Start the target after the last input position."
        )
    else:
        hint = (
            "the inputs run past the start of the target (an overlapping or centred "
            "window, or a feature computed with future values). Inputs must end before "
            "the target begins; use anchor_steps=k if the target is relative to the last "
            "k input positions."
        )
    lines.append(f"  What it usually means: {hint}")
    return "\n".join(lines)
