"""Which series positions each window of ``make_windows`` reads, measured two ways.

:func:`_copied` reads a windowing that only copies values from a few tag
series (:mod:`pytest_rnn._core.copies`); :func:`_perturbed` replaces every
position in turn with the engine's step donors and sees which windows change
(:func:`_window_changes`). :func:`_windows` calls ``make_windows`` and checks
what it returns (arrays, or a ``tf.data.Dataset`` read whole).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._causal.args import _Probe
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import copies as _copies
from pytest_rnn._core import perturb as _perturb
from pytest_rnn._core import tree as _tree

#: Tag series a plain windowing is read with (each a full call of make_windows).
_TAGS = 3


def _copied(
    fn: Callable[[Any], Any],
    s: np.ndarray,
    inputs: list[np.ndarray],
    targets: list[np.ndarray],
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The positions each window reads, from a few tag series, if ``fn`` only copies values.

    None when it computes anything (then :func:`_perturbed` measures), when
    the series cannot be tagged (integers), or when a tag series changes the
    windows' number or shapes or makes ``fn`` raise.
    """
    tags = _copies.tag_series(rng, s, _TAGS)
    if tags is None:
        return None
    base = [*inputs, *targets]
    outs = []
    for tag in tags:
        try:
            ins, tgs, _ = _windows(fn, tag)
        except Exception:  # the perturbation below measures it and reports what fails
            return None
        if [a.shape for a in [*ins, *tgs]] != [a.shape for a in base]:
            return None
        outs.append([*ins, *tgs])
    index = _copies.copied_from(tags, outs, s, base)
    if index is None:
        return None
    n = inputs[0].shape[0]
    return (
        _copies.dependence(index[: len(inputs)], n, s.shape),
        _copies.dependence(index[len(inputs) :], n, s.shape),
    )


def _perturbed(
    fn: Callable[[Any], Any],
    s: np.ndarray,
    inputs0: list[np.ndarray],
    targets0: list[np.ndarray],
    probe: _Probe,
    tols_in: list[_compare.Tolerance],
    tols_tg: list[_compare.Tolerance],
) -> tuple[np.ndarray, np.ndarray]:
    """The positions each window reads: every position replaced in turn, ``trials`` times."""
    length, n = s.shape[0], inputs0[0].shape[0]
    in_dep = np.zeros((n, length), dtype=bool)
    tg_dep = np.zeros((n, length), dtype=bool)
    # The series is one sample of `length` steps: the engine's step plan replaces
    # position p in trials copies (p * trials ..), extremes first, then other positions.
    trials = probe.trials
    donor = _perturb.step_donors(probe.rng(), trials, 1, length)
    pool = _perturb.pool(s)
    for p in range(length):
        for q in donor[p * trials : (p + 1) * trials, 0, p]:
            changed = s.copy()
            changed[p] = pool[q]
            ins, tgs, m = _windows(fn, changed)
            if (
                m != n
                or [a.shape for a in ins] != [a.shape for a in inputs0]
                or [a.shape for a in tgs] != [a.shape for a in targets0]
            ):
                raise ValueError(
                    f"make_windows returned windows of other shapes after position {p} of "
                    "series changed: the number and shape of windows must not depend on "
                    "the values"
                )
            in_dep[:, p] |= _window_changes(ins, inputs0, tols_in)
            tg_dep[:, p] |= _window_changes(tgs, targets0, tols_tg)
    return in_dep, tg_dep


def _windows(fn: Callable[[Any], Any], series: np.ndarray) -> tuple[list[Any], list[Any], int]:
    out = fn(series)
    if K.is_dataset(out):
        out = K.dataset_arrays(out, "the dataset make_windows returned")
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ValueError(
            f"make_windows must return (inputs, targets), got {type(out).__name__}"
            + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else "")
        )
    parts = []
    n = None
    for what, tree in zip(("inputs", "targets"), out):
        leaves = []
        for path, leaf in _tree.flatten(tree):
            arr = np.asarray(leaf)
            if arr.ndim < 1 or arr.dtype.kind not in "biuf":
                raise ValueError(
                    f"make_windows returned {what}{path} of shape {arr.shape}, dtype {arr.dtype}: "
                    "numeric arrays (windows, ...) are needed"
                )
            if n is None:
                n = arr.shape[0]
            if arr.shape[0] != n:
                raise ValueError(
                    f"make_windows returned {what}{path} with {arr.shape[0]} windows where the "
                    f"inputs have {n}: inputs and targets must have one row per window"
                )
            leaves.append(arr)
        if not leaves:
            raise ValueError(f"make_windows returned no {what}")
        parts.append(leaves)
    if not n:
        raise ValueError("make_windows returned no windows for series: make the series longer")
    return parts[0], parts[1], int(n)


def _window_changes(
    new: list[np.ndarray], base: list[np.ndarray], tols: list[_compare.Tolerance]
) -> np.ndarray:
    """Per window: whether any element of any leaf changed."""
    hit = np.zeros(base[0].shape[0], dtype=bool)
    for a, b, tol in zip(new, base, tols):
        o = a.astype(np.float64).reshape(a.shape[0], -1)
        e = b.astype(np.float64).reshape(b.shape[0], -1)
        over = tol.exceeded(o, e)
        hit |= over.any(axis=1) if o.shape[1] else False
    return hit
