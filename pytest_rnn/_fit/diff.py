"""What differs between two trained models: variable snapshots, loss histories, and their text.

A snapshot lists every model variable, optimizer variable and RNN state of a
trained model under a key that finds its match in another run;
:func:`_compare_vars` compares two snapshots at each variable's dtype
tolerance and :func:`_format_vars` words the result. :func:`_compare_history`
and :func:`_format_losses` do the same for the per-epoch ``History`` values.
Pure functions of numpy arrays, apart from the snapshot itself.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.compare import Mismatch, Tolerance, compare, format_value

#: Rows shown in the table of differing variables and of losses.
_ROWS = 10
_LOSS_ROWS = 20
#: Vocabulary, not grammar: each variable kind's heading in "weights 2 of 4" (always plural).
_PLURAL = {
    "weight": "weights",
    "optimizer": "optimizer variables",
    "RNN state": "RNN states",
    "RNG state": "random-generator states",
}
#: Every kind, in snapshot order.
_KINDS = tuple(_PLURAL)


# --------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class _Var:
    """One variable of a trained model, with the key that matches it in another run."""

    key: str
    kind: str  # "weight", "optimizer", "RNN state" or "RNG state" (a SeedGenerator's)
    label: str
    value: np.ndarray


def _snapshot(model: Any, *, rng_apart: bool = False) -> list[_Var]:
    """Every model variable, optimizer variable and RNN state, in model order.

    ``rng_apart``: the states of the model's ``SeedGenerator``s get the kind
    ``"RNG state"`` instead of ``"weight"`` (a comparison can then leave out
    the generators training never draws from).
    """
    layers = list(K.iter_layers(model))
    owners: dict[int, tuple[str, Any]] = {}
    for path, layer in layers:
        for v in layer.variables:
            owners[id(v)] = (path, layer)  # depth first: the innermost layer wins
    out = []
    for v in model.variables:
        where = owners.get(id(v))
        label = f"{v.path}"
        if where is not None:
            label = f"layer '{where[0]}' ({K.describe_layer(where[1])}) {v.name!r} [{v.path}]"
        kind = "RNG state" if rng_apart and K.is_rng_state(v) else "weight"
        out.append(_Var(f"w:{v.path}", kind, label, np.array(K.to_numpy(v))))
    optimizer = getattr(model, "optimizer", None)
    for v in getattr(optimizer, "variables", None) or []:
        out.append(_Var(f"o:{v.path}", "optimizer", f"optimizer {v.path}", np.array(K.to_numpy(v))))
    by_path = dict(layers)
    for path, states in K.get_states(model).items():
        layer = by_path[path]
        for i, value in enumerate(states):
            out.append(
                _Var(
                    f"s:{path}[{i}]",
                    "RNN state",
                    f"RNN state {i} of layer '{path}' ({K.describe_layer(layer)})",
                    np.asarray(value),
                )
            )
    return out


@dataclass(frozen=True)
class _VarDiff:
    """How one variable differs between two runs.

    ``mismatch`` is the comparison of run B's values with run A's, made on the
    values as at least 1-d arrays; ``shape`` is the variable's own shape, and
    ``value_a``/``value_b`` are the two runs' values where the difference is
    greatest.
    """

    label: str
    kind: str
    shape: tuple[int, ...]
    mismatch: Mismatch
    value_a: float
    value_b: float

    @property
    def at(self) -> tuple[int, ...]:
        """Where the difference is greatest: the variable's index, ``()`` for a scalar."""
        return self.mismatch.max_abs_at if self.shape else ()


@dataclass(frozen=True)
class _VarReport:
    """All variable differences between run A (the reference) and run B."""

    diffs: list[_VarDiff]
    totals: dict[str, int]
    structure: list[str]

    @property
    def ok(self) -> bool:
        """Nothing differs: no variable outside its tolerance, no structure problem."""
        return not self.diffs and not self.structure

    def differs(self, kind: str) -> bool:
        """Whether a variable of ``kind`` (``"weight"``, ``"optimizer"``, ``"RNN state"``) differs."""
        return any(d.kind == kind for d in self.diffs)

    def without(self, kind: str) -> _VarReport:
        """The report with the variables of ``kind`` left out (their diffs, count and problems)."""
        return _VarReport(
            [d for d in self.diffs if d.kind != kind],
            {k: n for k, n in self.totals.items() if k != kind},
            [p for p in self.structure if f" {kind} variables " not in p],
        )


def _pair(a: list[_Var], b: list[_Var]) -> tuple[list[tuple[_Var, _Var]], list[str]]:
    """Match variables by key; by position within a kind when the keys differ."""
    by_key = {v.key: v for v in b}
    if {v.key for v in a} == set(by_key) and len(by_key) == len(a):
        return [(v, by_key[v.key]) for v in a], []
    pairs: list[tuple[_Var, _Var]] = []
    problems = []
    for kind in _KINDS:
        xs = [v for v in a if v.kind == kind]
        ys = [v for v in b if v.kind == kind]
        if len(xs) != len(ys):
            problems.append(f"{len(xs)} {kind} variables in one run, {len(ys)} in the other")
        pairs.extend(zip(xs, ys))
    return pairs, problems


def _compare_vars(
    a: list[_Var], b: list[_Var], rtol: float | None, atol: float | None
) -> _VarReport:
    """Compare run B's variables with run A's (the reference), each at its dtype's tolerance."""
    pairs, structure = _pair(a, b)
    totals: dict[str, int] = collections.Counter(v.kind for v in a)
    diffs = []
    for va, vb in pairs:
        tol = K.output_tolerance(rtol, atol, va.value.dtype)
        xa, xb = np.atleast_1d(va.value), np.atleast_1d(vb.value)
        if xa.shape != xb.shape:
            structure.append(
                f"{va.label}: shape {va.value.shape} in one run, {vb.value.shape} in the other"
            )
            continue
        m = compare(xb, xa, tol)
        if m is None:
            continue
        diffs.append(
            _VarDiff(
                label=va.label,
                kind=va.kind,
                shape=tuple(va.value.shape),
                mismatch=m,
                value_a=float(xa[m.max_abs_at]),
                value_b=float(xb[m.max_abs_at]),
            )
        )
    return _VarReport(diffs, dict(totals), structure)


def _format_vars(report: _VarReport, name_a: str, name_b: str) -> list[str]:
    """Lines about differing variables: counts by kind, the first one, the greatest ones."""
    lines = [f"  {p}" for p in report.structure]
    if not report.diffs:
        return lines
    n_all = sum(report.totals.values())
    by_kind = collections.Counter(d.kind for d in report.diffs)
    kinds = ", ".join(
        f"{_PLURAL[kind]} {by_kind.get(kind, 0)} of {total}"
        for kind, total in report.totals.items()
        if total
    )
    first = report.diffs[0]
    m = first.mismatch
    lines += [
        f"  variables that differ: {len(report.diffs)} of {n_all} ({kinds})",
        f"  first variable that differs: {first.label}, shape {first.shape}",
        f"    greatest abs diff {format_value(m.max_abs)} at {first.at}: "
        f"{name_a} {first.value_a:.8g}, {name_b} {first.value_b:.8g}; "
        f"{m.mismatched} of {m.compared} values differ; "
        f"allowed {m.tolerance.describe(name_a)}",
    ]
    if len(report.diffs) > 1:
        ranked = sorted(
            report.diffs,
            key=lambda d: -d.mismatch.max_abs if not math.isnan(d.mismatch.max_abs) else -math.inf,
        )
        lines.append("  greatest differences:")
        lines.append(f"    {'max abs diff':>12}  {'differ':>11}  variable")
        for d in ranked[:_ROWS]:
            differ = f"{d.mismatch.mismatched}/{d.mismatch.compared}"
            lines.append(f"    {format_value(d.mismatch.max_abs):>12}  {differ:>11}  {d.label}")
        if len(ranked) > _ROWS:
            lines.append(
                f"    (first {_ROWS} of {len(ranked)} differing variables, greatest first)"
            )
    return lines


# --------------------------------------------------------------------------- losses


@dataclass(frozen=True)
class _LossDiff:
    """One history key whose per-epoch values differ."""

    key: str
    epoch: int  # 0-based, first epoch that differs
    value_a: float
    value_b: float
    values_a: tuple[float, ...]
    values_b: tuple[float, ...]


def _compare_history(
    a: Mapping[str, Sequence[float]], b: Mapping[str, Sequence[float]], tol: Tolerance
) -> tuple[list[_LossDiff], list[str]]:
    """Per-epoch values of every history key; keys found in one run only are listed apart."""
    diffs = []
    other = [
        f"{k!r} only in {side}"
        for side, x, y in (("A", a, b), ("B", b, a))
        for k in x
        if k not in y
    ]
    for key in [k for k in a if k in b]:
        xa = np.asarray(a[key], dtype=np.float64)
        xb = np.asarray(b[key], dtype=np.float64)
        if xa.shape != xb.shape:
            other.append(f"{key!r} has {len(xa)} values in A, {len(xb)} in B")
            continue
        m = compare(xb, xa, tol)
        if m is not None:
            e = m.first[0]
            diffs.append(_LossDiff(key, e, float(xa[e]), float(xb[e]), tuple(xa), tuple(xb)))
    return diffs, other


def _format_losses(
    diffs: list[_LossDiff], other: list[str], name_a: str, name_b: str, tol: Tolerance
) -> list[str]:
    """The first epoch whose loss differs, a per-epoch table, other history keys that differ."""
    lines: list[str] = []
    main = next((d for d in diffs if d.key == "loss"), diffs[0] if diffs else None)
    if main is not None:
        n = len(main.values_a)
        lines.append(
            f"  first epoch whose {main.key} differs: epoch {main.epoch + 1}/{n}: "
            f"{name_a} {main.value_a:.8g}, {name_b} {main.value_b:.8g}"
        )
        width = max(len(name_a), len(name_b), 12)
        lines.append(f"    {'epoch':>7}  {name_a:>{width}}  {name_b:>{width}}  {'abs diff':>10}")
        for e, (va, vb) in enumerate(zip(main.values_a, main.values_b)):
            if e >= _LOSS_ROWS:
                lines.append(f"    (first {_LOSS_ROWS} of {n} epochs)")
                break
            mark = "*" if tol.exceeded(vb, va) else " "
            lines.append(
                f"    {mark}{e + 1:>6}  {va:>{width}.8g}  {vb:>{width}.8g}  {format_value(abs(va - vb)):>10}"
            )
        for d in diffs:
            if d is not main:
                lines.append(
                    f"  {d.key!r} differs too, first at epoch {d.epoch + 1}: "
                    f"{name_a} {d.value_a:.8g}, {name_b} {d.value_b:.8g}"
                )
    else:
        lines.append("  the per-epoch losses agree")
    if other:
        lines.append(f"  history keys that differ: {', '.join(other)} (A = {name_a}, B = {name_b})")
    return lines
