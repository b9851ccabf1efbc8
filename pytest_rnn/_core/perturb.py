"""The perturbation engine: replace input steps with other data, see which outputs change.

A step of the input is replaced with the values of another (sample, step) of
the same data, or with values above or below all of them (:func:`pool`); the
outputs that change by more than their tolerance depend on it. Plans say which
steps of which copies are replaced (:func:`step_plan`, :func:`suffix_plan`),
:func:`stack` builds the copies and :func:`measure_each` runs them in a few
large calls, each carrying one unperturbed copy as its reference.

Arrays only: a *batch* is any object with ``tree``, ``leaves`` (each
``(batch, steps, ...)``), ``batch``, ``steps`` and ``per_copy()``, such as
:class:`pytest_rnn._core.validate.Batch`; a *caller* maps a stacked input tree
to its per-step output leaves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from pytest_rnn._core import tree as _tree
from pytest_rnn._core.compare import Tolerance

__all__ = [
    "CHUNK_ELEMENTS",
    "Caller",
    "Ids",
    "Sequences",
    "changed",
    "donors",
    "extremes",
    "first_call_input",
    "measure",
    "measure_each",
    "merge",
    "per_sample_map",
    "pool",
    "stack",
    "step_donors",
    "step_plan",
    "suffix_plan",
]

#: Input elements stacked into one call; more copies are split into chunks.
CHUNK_ELEMENTS = 1 << 22

#: Maps a stacked input tree (``copies * batch`` rows) and the number of
#: copies in it to the list of its per-step output leaves, each
#: ``(copies * batch, steps, ...)``.
Caller = Callable[[Any, int], list[np.ndarray]]


class Sequences(Protocol):
    """What the engine reads of validated inputs (``validate.Batch`` has it all)."""

    @property
    def tree(self) -> Any:
        """The user's structure of arrays."""

    @property
    def leaves(self) -> list[np.ndarray]:
        """Its arrays, in :func:`pytest_rnn._core.tree.flatten` order, ``(batch, steps, ...)``."""

    @property
    def batch(self) -> int:
        """Samples per copy."""

    @property
    def steps(self) -> int:
        """Steps of every leaf."""

    def per_copy(self) -> int:
        """Input elements in one copy of the batch (at least 1)."""


def pool(rows: np.ndarray, ids: tuple[int, int] | None = None) -> np.ndarray:
    """``rows`` (one per sample and step) plus two extreme rows: above and below all of them.

    Every feature of the high row lies above every value the data takes there
    (by half the range, at least 1; the maximum itself for integers, so token
    ids stay valid), the low row below: replacing a step with them flips any
    threshold the data straddles, e.g. seed 001's ``sum > 50``.

    Args:
        rows: ``(n, features...)``, one row per (sample, step).
        ids: integer rows only: the ``(lowest, highest)`` valid ids (a model's
            vocabulary), the extremes instead of the data's own.

    Returns:
        ``(n + 2, features...)``: ``rows``, then the high row, then the low row.
    """
    hi, lo = rows.max(axis=0), rows.min(axis=0)
    if ids is not None and rows.dtype.kind in "iu":
        lo, hi = np.full_like(lo, ids[0]), np.full_like(hi, ids[1])
    if rows.dtype.kind == "f":
        margin = np.maximum((hi - lo) / 2, 1.0)
        hi, lo = hi + margin, lo - margin
    return np.concatenate([rows, hi[None].astype(rows.dtype), lo[None].astype(rows.dtype)])


def extremes(trials: int, rows: int) -> np.ndarray:
    """Donor kinds per trial: with 3 or more trials the first two are the high and low rows.

    Args:
        trials: replacements per replaced step.
        rows: rows of data in the :func:`pool` (its high row is ``rows``, the low ``rows + 1``).

    Returns:
        int ``(trials,)``: the pool row of a trial, or ``-1`` for a random donor.
    """
    kinds = np.full(trials, -1)
    if trials >= 3:
        kinds[:2] = [rows, rows + 1]
    return kinds


def donors(rng: np.random.Generator, copies: int, batch: int, steps: int) -> np.ndarray:
    """Random (sample, step) pool indices, never the replaced element itself.

    Args:
        rng: the generator drawn from.
        copies: perturbed copies of the batch.
        batch: samples per copy.
        steps: steps per sample (``batch * steps >= 2``).

    Returns:
        int ``(copies, batch, steps)``: for element ``(c, i, t)`` an index
        ``sample * steps + step`` other than ``i * steps + t``.
    """
    size = batch * steps
    own = (np.arange(batch)[:, None] * steps + np.arange(steps)[None, :])[None]
    donor = rng.integers(0, size - 1, size=(copies, batch, steps))
    return donor + (donor >= own)


def step_donors(rng: np.random.Generator, trials: int, batch: int, steps: int) -> np.ndarray:
    """Donors of a plan with ``trials`` copies per step: :func:`donors`, extremes first.

    Copies ``t * trials .. (t + 1) * trials`` are the trials of step ``t``;
    with 3 or more trials, the first two of each step take the high and low
    rows of :func:`pool` (:func:`extremes`), the rest random donors.

    Returns:
        int ``(steps * trials, batch, steps)`` pool indices.
    """
    donor = donors(rng, steps * trials, batch, steps)
    kinds = np.tile(extremes(trials, batch * steps), steps)
    donor[kinds >= 0] = kinds[kinds >= 0][:, None, None]
    return donor


#: Per input leaf: the ``(lowest, highest)`` valid ids of an integer leaf, or ``None``.
Ids = list[tuple[int, int] | None]


def stack(batch: Sequences, mask: np.ndarray, donor: np.ndarray, ids: Ids | None = None) -> Any:
    """Copies ``c`` of the batch (rows ``c*batch + i``) with ``mask`` steps replaced.

    Args:
        batch: the inputs (``tree``, ``leaves``, ``batch``, ``steps``).
        mask: bool ``(copies, batch, steps)``: the elements replaced.
        donor: int, same shape: indices into the pool of all (sample, step)
            pairs, ``sample * steps + step``, followed by the high and low rows
            of :func:`pool`.
        ids: per leaf, the valid ids :func:`pool` takes its extremes from.

    Returns:
        ``batch.tree`` with every leaf ``(copies * batch, steps, ...)``.
    """
    copies = mask.shape[0]
    leaves = []
    for n, leaf in enumerate(batch.leaves):
        rows = pool(
            leaf.reshape(batch.batch * batch.steps, *leaf.shape[2:]), None if ids is None else ids[n]
        )
        out = np.repeat(leaf[None], copies, axis=0)
        out[mask] = rows[donor[mask]]
        leaves.append(out.reshape(copies * batch.batch, *leaf.shape[1:]))
    return _tree.rebuild(batch.tree, leaves)


def changed(out: np.ndarray, base: np.ndarray, tol: Tolerance) -> tuple[Any, Any]:
    """Per (copy, sample, step): whether any element changed, and the largest change.

    Args:
        out: ``(copies, batch, steps, ...)`` outputs of the perturbed copies.
        base: ``(batch, steps, ...)`` output of the unperturbed copy.
        tol: "changed" is :meth:`Tolerance.exceeded`.

    Returns:
        bool and float ``(copies, batch, steps)``; a NaN difference counts as ``inf``,
        an infinite one as the largest float (``np.nan_to_num``).
    """
    o = out.astype(np.float64)
    b = base.astype(np.float64)[None]
    over = tol.exceeded(o, b)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.nan_to_num(np.abs(o - b), nan=np.inf)
    axes = tuple(range(3, o.ndim))
    if axes:
        return over.any(axis=axes), diff.max(axis=axes)
    return over, diff


def _per_call(batch: Sequences, copies: int) -> int:
    """Perturbed copies per call of :func:`measure_each` (each call adds the reference)."""
    return min(max(1, CHUNK_ELEMENTS // batch.per_copy() - 1), copies)


def _call_input(
    batch: Sequences,
    mask: np.ndarray,
    donor: np.ndarray,
    start: int,
    per_call: int,
    ids: Ids | None = None,
) -> Any:
    """The stacked input of the call that runs copies ``start..``: the reference copy first."""
    n = min(start + per_call, mask.shape[0]) - start
    m = np.zeros((1 + per_call, batch.batch, batch.steps), dtype=bool)
    d = np.zeros((1 + per_call, batch.batch, batch.steps), dtype=np.int64)
    m[1 : 1 + n], d[1 : 1 + n] = mask[start : start + n], donor[start : start + n]
    return stack(batch, m, d, ids)


def first_call_input(batch: Sequences, mask: np.ndarray, donor: np.ndarray) -> Any:
    """The stacked input of :func:`measure_each`'s first call; its first ``batch`` rows are ``batch``.

    A caller that must run the model once before measuring (to see its outputs)
    runs it on this and hands the outputs to :func:`measure_each` as ``first``:
    one input shape for the backend to compile instead of two.
    """
    if mask.shape[0] == 0:
        return batch.tree
    return _call_input(batch, mask, donor, 0, _per_call(batch, mask.shape[0]))


def measure_each(
    call: Caller,
    batch: Sequences,
    mask: np.ndarray,
    donor: np.ndarray,
    tolerances: list[Tolerance],
    *,
    first: list[np.ndarray] | None = None,
    ids: Ids | None = None,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run every perturbed copy; per output leaf ``(changed, change)``, ``(copies, batch, steps)``.

    Copies are stacked into calls of at most :data:`CHUNK_ELEMENTS` input
    elements; each call also carries one unperturbed copy, the reference.
    Calls of a run all have the same number of rows (the last one is padded),
    so a model traced for static shapes is traced once.

    Args:
        call: the :data:`Caller` of the function or model measured.
        batch: the inputs.
        mask: bool ``(copies, batch, steps)``, from a plan.
        donor: int, same shape, from a plan.
        tolerances: one per output leaf of ``call``.
        first: ``call``'s outputs on :func:`first_call_input`, already made (that
            call is then not repeated). That input has the data's own extremes:
            give ``first`` or ``ids``, not both.
        ids: per leaf, the valid ids the extreme replacements take (:func:`pool`).
    """
    copies = mask.shape[0]
    per_call = _per_call(batch, copies)
    parts: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for start in range(0, copies, per_call):
        n = min(start + per_call, copies) - start
        if start == 0 and first is not None:
            outs = first
        else:
            outs = call(_call_input(batch, mask, donor, start, per_call, ids), 1 + per_call)
        got = []
        for out, tol in zip(outs, tolerances):
            o = out.reshape(1 + per_call, batch.batch, *out.shape[1:])
            hit, size = changed(o[1 : 1 + n], o[0], tol)
            got.append((hit, np.where(hit, size, 0.0)))
        parts.append(got)
    return [
        (np.concatenate([p[k][0] for p in parts]), np.concatenate([p[k][1] for p in parts]))
        for k in range(len(tolerances))
    ]


def measure(
    call: Caller,
    batch: Sequences,
    mask: np.ndarray,
    donor: np.ndarray,
    tolerances: list[Tolerance],
    ids: Ids | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`measure_each` with the output leaves merged by :func:`merge`."""
    return merge(measure_each(call, batch, mask, donor, tolerances, ids=ids))


def merge(each: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Output leaves merged: changed in any, largest change (shorter ones padded)."""
    steps = max(c.shape[2] for c, _ in each)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, 0), (0, steps - a.shape[2])))

    hit = np.logical_or.reduce([pad(c) for c, _ in each])
    change = np.maximum.reduce([pad(s) for _, s in each])
    return hit, change


def step_plan(batch: Sequences, trials: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """One copy per (input step, trial): that step replaced in every sample.

    Returns:
        ``(mask, donor)``, ``(steps * trials, batch, steps)``; donors by
        :func:`step_donors`.
    """
    copies = batch.steps * trials
    mask = np.zeros((copies, batch.batch, batch.steps), dtype=bool)
    for t in range(batch.steps):
        mask[t * trials : (t + 1) * trials, :, t] = True
    return mask, step_donors(rng, trials, batch.batch, batch.steps)


def suffix_plan(batch: Sequences, trials: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """One copy per (start s >= 1, trial): steps s.. replaced in every sample.

    Returns:
        ``(mask, donor)``, ``((steps - 1) * trials, batch, steps)``; random donors.
    """
    starts = batch.steps - 1
    copies = starts * trials
    mask = np.zeros((copies, batch.batch, batch.steps), dtype=bool)
    for s in range(1, batch.steps):
        mask[(s - 1) * trials : s * trials, :, s:] = True
    return mask, donors(rng, copies, batch.batch, batch.steps)


def per_sample_map(
    call: Caller,
    batch: Sequences,
    trials: int,
    seed: int,
    tolerances: list[Tolerance],
    ids: Ids | None = None,
) -> np.ndarray:
    """Boolean ``(out steps, samples, in steps)`` dependence, by replacing single steps.

    Args:
        call: the :data:`Caller` measured.
        batch: the inputs.
        trials: replacements per input step (:func:`step_plan`).
        seed: seed of the plan's generator.
        tolerances: one per output leaf of ``call``.
        ids: per leaf, the valid ids the extreme replacements take (:func:`pool`).
    """
    rng = np.random.default_rng(seed)
    mask, donor = step_plan(batch, trials, rng)
    hit, _ = measure(call, batch, mask, donor, tolerances, ids)
    per = hit.reshape(batch.steps, trials, batch.batch, -1).any(axis=1)
    return np.transpose(per, (2, 1, 0))
