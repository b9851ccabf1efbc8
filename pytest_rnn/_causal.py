"""Causality: does step t of labels, windows or a model use only what it may see?

Dependence is *measured*, never read from code: a step of the input is
replaced with the values of another (sample, step) of the same data, and the
outputs that change are the ones that depend on it. Replacing a whole step with
real data (rather than adding noise) is strong enough to flip thresholded
labels such as seed 001's ``sum > 50`` over 0/1 features, and keeps integer
inputs (token ids) valid. Every perturbed copy is stacked into a few large
calls; an unperturbed copy rides in every call, so a change is always judged
against the same call.

Keras and TensorFlow are imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pytest_rnn import _config, _keras
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import tree as _tree
from pytest_rnn._errors import DependencePicture, RNNAssertionError
from pytest_rnn._report import recorded

__all__ = [
    "DependenceMap",
    "assert_labels_causal",
    "assert_model_causal",
    "assert_windows_causal",
    "dependence_map",
]

#: Input elements stacked into one call; more copies are split into chunks.
CHUNK_ELEMENTS = 1 << 22
#: Sequences with at most this many steps get a text grid in failure messages.
GRID_STEPS = 12
#: Rows and columns :meth:`DependenceMap.__str__` shows before it is cut.
STR_STEPS = 24
#: Findings listed in a message before the list is cut.
MAX_LINES = 10

_LEGEND_MAP = "#: every sample changed, +: some samples changed, .: none"


# =========================================================================== results


@dataclass(frozen=True, eq=False)
class DependenceMap:
    """Measured dependence of per-step outputs on input steps.

    Attributes:
        counts: int array ``(output steps, input steps)``: how many samples'
            output (label) at step ``t`` changed when input step ``t'`` was
            replaced, in at least one trial.
        samples: samples in the batch the map was measured on.
        trials: replacements tried per input step.
        of: what the rows are: ``"label"`` or ``"output"``.
        method: ``"perturbation"``, or ``"perturbation + gradient"`` for a
            Keras model with float inputs (a nonzero gradient also counts).

    ``str(m)`` draws the map as a text grid (cut after 24 steps).
    """

    counts: np.ndarray
    samples: int
    trials: int
    of: str = "label"
    method: str = "perturbation"

    @property
    def steps(self) -> int:
        """Number of input steps (columns)."""
        return int(self.counts.shape[1])

    @property
    def depends(self) -> np.ndarray:
        """Boolean ``(output steps, input steps)``: dependence seen in any sample."""
        return self.counts > 0

    def inputs_of(self, step: int) -> list[int]:
        """The input steps the output at ``step`` was seen to depend on."""
        return [int(s) for s in np.flatnonzero(self.counts[step])]

    def __str__(self) -> str:
        head = (
            f"{self.of} step x input step: samples (of {self.samples}) that changed, "
            f"{self.trials} trial{'s' if self.trials != 1 else ''} per input step "
            f"({self.method})"
        )
        symbols = np.where(self.counts >= self.samples, "#", np.where(self.counts > 0, "+", "."))
        lines = [head, *_grid(symbols, self.of, STR_STEPS), f"  {_LEGEND_MAP}"]
        return "\n".join(lines)


# =========================================================================== small text helpers


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _ranges(steps: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
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


def _steps_word(steps: Sequence[int], word: str = "step") -> str:
    """``"step 3"`` or ``"steps 0-2, 5"``."""
    return f"{word}{'s' if len(steps) != 1 else ''} {_ranges(steps)}"


def _count_range(counts: Sequence[int], total: int) -> str:
    lo, hi = min(counts), max(counts)
    return f"{hi}/{total}" if lo == hi else f"{lo}-{hi}/{total}"


def _grid(symbols: np.ndarray, row_name: str, cap: int) -> list[str]:
    """A text grid: rows are output steps, columns input steps; cut after ``cap``."""
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


def _name_of(fn: Any) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


# =========================================================================== argument checks


def _check_int(value: Any, arg: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{arg} must be >= {minimum}, got {value}")
    return int(value)


def _check_seed(seed: Any) -> int:
    if seed is None:
        return int(_config.settings.seed)
    return _check_int(seed, "seed", 0)


def _check_function(fn: Any, arg: str, what: str, signature: str) -> None:
    if callable(fn) and not _keras.is_model(fn):
        return
    if _keras.is_model(fn):
        raise TypeError(f"{arg} must be your {what} function {signature}, got a Keras model")
    kind = type(fn).__name__
    raise TypeError(
        f"{arg} must be the function that computes the {what} ({signature}), got {kind}. "
        f"Dependence is measured by changing the inputs and calling {arg} again, "
        f"so the values alone cannot show which steps they came from."
    )


def _numeric(arr: np.ndarray, arg: str) -> None:
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{arg} must hold numbers or booleans, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(
            f"{arg} contains NaN or infinity (first at index {bad}); dependence is measured "
            f"by comparing outputs, which NaN makes meaningless: pass finite values"
        )


@dataclass(frozen=True, eq=False)
class _Batch:
    """Validated inputs: the user's tree and its leaves, all ``(batch, steps, ...)``."""

    tree: Any
    leaves: list[np.ndarray]
    batch: int
    steps: int

    def per_copy(self) -> int:
        return max(1, sum(int(leaf.size) for leaf in self.leaves))

    def stack(self, mask: np.ndarray, donor: np.ndarray) -> Any:
        """Copies ``c`` of the batch (rows ``c*batch + i``) with ``mask`` steps replaced.

        ``mask``/``donor`` are ``(copies, batch, steps)``; ``donor`` indexes the
        pool of all (sample, step) pairs, ``sample * steps + step``, followed
        by the high and low rows of :func:`_pool`.
        """
        copies = mask.shape[0]
        leaves = []
        for leaf in self.leaves:
            pool = _pool(leaf.reshape(self.batch * self.steps, *leaf.shape[2:]))
            out = np.repeat(leaf[None], copies, axis=0)
            out[mask] = pool[donor[mask]]
            leaves.append(out.reshape(copies * self.batch, *leaf.shape[1:]))
        return _tree.rebuild(self.tree, leaves)


def _paths(batch: _Batch) -> list[str]:
    """Item paths of ``batch``'s leaves (``""``, ``[1]``, ``['a']``), as in messages."""
    return [path for path, _ in _tree.flatten(batch.tree)]


def _pool(rows: np.ndarray) -> np.ndarray:
    """``rows`` (one per sample and step) plus two extreme rows: above and below all of them.

    Every feature of the high row lies above every value the data takes there
    (by half the range, at least 1; the maximum itself for integers, so token
    ids stay valid), the low row below: replacing a step with them flips any
    threshold the data straddles, e.g. seed 001's ``sum > 50``.
    """
    hi, lo = rows.max(axis=0), rows.min(axis=0)
    if rows.dtype.kind == "f":
        margin = np.maximum((hi - lo) / 2, 1.0)
        hi, lo = hi + margin, lo - margin
    return np.concatenate([rows, hi[None].astype(rows.dtype), lo[None].astype(rows.dtype)])


def _extremes(trials: int, pool: int) -> np.ndarray:
    """Donor kinds per trial: with 3 or more trials the first two are the high and low rows."""
    kinds = np.full(trials, -1)
    if trials >= 3:
        kinds[:2] = [pool, pool + 1]
    return kinds


def _check_sequences(x: Any, arg: str = "x") -> _Batch:
    """Validate ``x``: an array ``(batch, steps, ...)`` or a list/dict of them."""
    if callable(x) and not isinstance(x, np.ndarray):
        raise TypeError(f"{arg} must be an array (batch, steps, features...), got a function")
    flat = _tree.flatten(x)
    if not flat:
        raise ValueError(f"{arg} is empty: pass an array (batch, steps, features...)")
    leaves: list[np.ndarray] = []
    for path, leaf in flat:
        name = f"{arg}{path}"
        try:
            arr = np.asarray(leaf)
        except Exception as exc:  # pragma: no cover - exotic array types
            raise TypeError(f"{name} cannot be read as an array: {exc}") from exc
        if arr.ndim < 2:
            raise ValueError(
                f"{name} must be an array (batch, steps, features...) with a time axis, "
                f"got shape {arr.shape}"
            )
        _numeric(arr, name)
        leaves.append(arr)
    batch, steps = leaves[0].shape[:2]
    for (path, _), arr in zip(flat, leaves):
        if arr.shape[:2] != (batch, steps):
            raise ValueError(
                f"all inputs in {arg} must share batch and steps: {arg}{path} has "
                f"{arr.shape[:2]}, {arg}{flat[0][0]} has {(batch, steps)}"
            )
    if steps == 0:
        raise ValueError(f"{arg} has zero steps (shape {leaves[0].shape}): nothing to measure")
    if batch == 0:
        raise ValueError(f"{arg} has zero samples (shape {leaves[0].shape}): nothing to measure")
    pools = [leaf.reshape(batch * steps, -1) for leaf in leaves]
    if all((pool == pool[:1]).all() for pool in pools):
        raise ValueError(
            f"{arg} has the same values at every step of every sample, so replacing a step "
            "with another changes nothing and dependence cannot be measured: pass varied "
            "data (real or random inputs)"
        )
    return _Batch(x, leaves, int(batch), int(steps))


# =========================================================================== perturbation engine


def _donors(rng: np.random.Generator, copies: int, batch: int, steps: int) -> np.ndarray:
    """Random (sample, step) pool indices, never the replaced element itself."""
    pool = batch * steps
    own = (np.arange(batch)[:, None] * steps + np.arange(steps)[None, :])[None]
    donor = rng.integers(0, pool - 1, size=(copies, batch, steps))
    return donor + (donor >= own)


def _changed(out: np.ndarray, base: np.ndarray, tol: _compare.Tolerance) -> tuple[Any, Any]:
    """Per (copy, sample, step): whether any element changed, and the largest change."""
    o = out.astype(np.float64)
    b = base.astype(np.float64)[None]
    over = tol.exceeded(o, b)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.nan_to_num(np.abs(o - b), nan=np.inf)
    axes = tuple(range(3, o.ndim))
    if axes:
        return over.any(axis=axes), diff.max(axis=axes)
    return over, diff


# A caller maps a stacked input tree (copies * batch rows) to the list of its
# per-step output leaves, each (copies * batch, steps, ...).
_Caller = Callable[[Any, int], list[np.ndarray]]


def _measure_each(
    call: _Caller,
    batch: _Batch,
    mask: np.ndarray,
    donor: np.ndarray,
    tolerances: list[_compare.Tolerance],
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Run every perturbed copy; per output leaf ``(changed, change)``, ``(copies, batch, steps)``.

    Copies are stacked into calls of at most :data:`CHUNK_ELEMENTS` input
    elements; each call also carries one unperturbed copy, the reference.
    Calls of a run all have the same number of rows (the last one is padded),
    so a model traced for static shapes is traced once.
    """
    copies = mask.shape[0]
    per_call = min(max(1, CHUNK_ELEMENTS // batch.per_copy() - 1), copies)
    parts: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for start in range(0, copies, per_call):
        stop = min(start + per_call, copies)
        n = stop - start
        m = np.zeros((1 + per_call, batch.batch, batch.steps), dtype=bool)
        d = np.zeros((1 + per_call, batch.batch, batch.steps), dtype=np.int64)
        m[1 : 1 + n], d[1 : 1 + n] = mask[start:stop], donor[start:stop]
        outs = call(batch.stack(m, d), 1 + per_call)
        got = []
        for out, tol in zip(outs, tolerances):
            o = out.reshape(1 + per_call, batch.batch, *out.shape[1:])
            hit, size = _changed(o[1 : 1 + n], o[0], tol)
            got.append((hit, np.where(hit, size, 0.0)))
        parts.append(got)
    return [
        (np.concatenate([p[k][0] for p in parts]), np.concatenate([p[k][1] for p in parts]))
        for k in range(len(tolerances))
    ]


def _measure(
    call: _Caller,
    batch: _Batch,
    mask: np.ndarray,
    donor: np.ndarray,
    tolerances: list[_compare.Tolerance],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_measure_each` with the output leaves merged by :func:`_merge`."""
    return _merge(_measure_each(call, batch, mask, donor, tolerances))


def _merge(each: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Output leaves merged: changed in any, largest change (shorter ones padded)."""
    steps = max(c.shape[2] for c, _ in each)

    def pad(a: np.ndarray) -> np.ndarray:
        return np.pad(a, ((0, 0), (0, 0), (0, steps - a.shape[2])))

    changed = np.logical_or.reduce([pad(c) for c, _ in each])
    change = np.maximum.reduce([pad(s) for _, s in each])
    return changed, change


def _step_plan(batch: _Batch, trials: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """One copy per (input step, trial): that step replaced in every sample."""
    copies = batch.steps * trials
    mask = np.zeros((copies, batch.batch, batch.steps), dtype=bool)
    for t in range(batch.steps):
        mask[t * trials : (t + 1) * trials, :, t] = True
    donor = _donors(rng, copies, batch.batch, batch.steps)
    kinds = np.tile(_extremes(trials, batch.batch * batch.steps), batch.steps)
    donor[kinds >= 0] = kinds[kinds >= 0][:, None, None]
    return mask, donor


def _suffix_plan(batch: _Batch, trials: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """One copy per (start s >= 1, trial): steps s.. replaced in every sample."""
    starts = batch.steps - 1
    copies = starts * trials
    mask = np.zeros((copies, batch.batch, batch.steps), dtype=bool)
    for s in range(1, batch.steps):
        mask[(s - 1) * trials : s * trials, :, s:] = True
    return mask, _donors(rng, copies, batch.batch, batch.steps)


def _per_sample_map(
    call: _Caller,
    batch: _Batch,
    trials: int,
    seed: int,
    tolerances: list[_compare.Tolerance],
) -> np.ndarray:
    """Boolean ``(out steps, samples, in steps)`` dependence, by replacing single steps."""
    rng = np.random.default_rng(seed)
    mask, donor = _step_plan(batch, trials, rng)
    changed, _ = _measure(call, batch, mask, donor, tolerances)
    per = changed.reshape(batch.steps, trials, batch.batch, -1).any(axis=1)
    return np.transpose(per, (2, 1, 0))


# =========================================================================== user functions


def _leaves_of(out: Any, fn_arg: str, rows: int, steps: int) -> list[np.ndarray]:
    """The leaves of a function's result, each checked to be ``(rows, steps, ...)``."""
    leaves = []
    for path, leaf in _tree.flatten(out):
        arr = np.asarray(leaf)
        what = f"{fn_arg} returned{f' {path}' if path else ''} of shape {arr.shape}"
        if arr.ndim < 1 or arr.shape[0] != rows:
            got = arr.shape[0] if arr.ndim else "no batch axis"
            raise ValueError(
                f"{what} for x of {rows} samples (batch {got}): it must return one label "
                "sequence per sample, (batch, steps, ...)"
            )
        if arr.ndim < 2 or arr.shape[1] != steps:
            got = arr.shape[1] if arr.ndim >= 2 else "no time axis"
            raise ValueError(
                f"{what} for x of {steps} steps ({got} steps): per-step labels "
                "(batch, steps, ...) are needed; a single label per sequence has no steps "
                "to check"
            )
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{what}: labels must be numbers or booleans, got dtype {arr.dtype}")
        leaves.append(arr)
    if not leaves:
        raise ValueError(f"{fn_arg} returned nothing (got {type(out).__name__})")
    return leaves


class _LabelCaller:
    """Calls ``make_labels`` on stacked copies; falls back to one call per copy.

    The fallback is taken when ``make_labels`` fails on, or mixes samples of, a
    larger batch (its labels of the unperturbed copy differ from ``make_labels(x)``).
    """

    def __init__(
        self, fn: Callable[[Any], Any], batch: _Batch, rtol: Any, atol: Any, arg: str
    ) -> None:
        self.fn, self.batch, self.arg = fn, batch, arg
        self.base = _leaves_of(fn(batch.tree), arg, batch.batch, batch.steps)
        self.tolerances = [_compare.resolve_tolerance(rtol, atol, b.dtype) for b in self.base]
        self.stacked = True

    def _same_as_base(self, leaves: list[np.ndarray]) -> bool:
        for leaf, base, tol in zip(leaves, self.base, self.tolerances):
            h, _ = _changed(leaf[None], base, tol)
            if h.any():
                return False
        return True

    def __call__(self, tree: Any, copies: int) -> list[np.ndarray]:
        rows = copies * self.batch.batch
        if self.stacked:
            try:
                leaves = _leaves_of(self.fn(tree), self.arg, rows, self.batch.steps)
            except Exception:
                self.stacked = False
            else:
                first = [leaf[: self.batch.batch] for leaf in leaves]
                if self._same_as_base(first):
                    return leaves
                self.stacked = False
        parts: list[list[np.ndarray]] = []
        b = self.batch.batch
        for c in range(copies):
            one = _tree.rebuild(
                tree, [leaf[c * b : (c + 1) * b] for _, leaf in _tree.flatten(tree)]
            )
            parts.append(_leaves_of(self.fn(one), self.arg, b, self.batch.steps))
        if not self._same_as_base(parts[0]):
            raise ValueError(
                f"{self.arg} returned different labels for the same x: it must be a "
                "deterministic function of x (seed any randomness inside it)"
            )
        return [np.concatenate(ls) for ls in zip(*parts)]


# =========================================================================== models


@dataclass(eq=False)
class _ModelRun:
    """A model ready to be measured: a stateless, batch-free twin when needed."""

    model: Any  # the user's model (for names and messages)
    run: Any  # the model that is called (the user's, or a stateless copy)
    call: _Caller
    picks: list[int]  # indices of per-step output leaves
    tolerances: list[_compare.Tolerance]
    out_steps: int  # fewest steps of a picked output (< x's steps: a shortened output)
    rtol: float | None = None
    atol: float | None = None
    paths: tuple[str, ...] = ()  # item paths of the picked outputs ("" for a single output)


def _forward(model: Any, tree: Any) -> tuple[Callable[[Any], Any], Any]:
    """A caller ``tree -> numpy outputs`` for ``model`` and its result on ``tree``.

    The shared compiled caller first; if it cannot trace the model (a layer that
    needs the static time length it was built with, e.g. LayerNormalization
    over the time axis), plain eager calls: one per stacked chunk, so still few.
    """
    compiled = _keras.compiled(model, tree, fixed_batch=False)
    try:
        return compiled, compiled(tree)
    except Exception:

        def eager(inputs: Any) -> Any:
            return _keras.eager_call(model, inputs)

        return eager, eager(tree)


def _fixed_batch(model: Any) -> bool:
    try:
        return any(spec.shape[0] is not None for spec in model.inputs)
    except Exception:
        return False


def _prepare_model(
    model: Any,
    batch: _Batch,
    rtol: Any,
    atol: Any,
    arg: str = "model",
    *,
    shorter: bool = False,
) -> _ModelRun:
    """Check ``model`` and pick its per-step outputs: ``(batch, steps, ...)`` leaves.

    ``shorter``: also outputs of rank >= 3 with fewer steps than ``x`` (a Conv1D
    with padding='valid'), compared index by index as Keras aligns them.
    """
    _keras.check_model(model, arg)
    _keras.check_input_shapes(model, list(zip(_paths(batch), batch.leaves)), "x")
    run = model
    if _keras.stateful_layers(model) or _fixed_batch(model):
        if not _keras.is_graph_model(model):
            raise ValueError(
                f"{arg} {model.name!r} is a stateful or fixed-batch subclassed model: "
                "pytest-rnn measures a stateless copy and can copy only Sequential and "
                "Functional models. Pass a stateless twin of it instead."
            )
        # A stateless twin answers the same question and leaves the user's states alone.
        run = _keras.clone(model, batch_size=None, stateful=False)
    compiled, first = _forward(run, batch.tree)
    outs = _tree.flatten(first)

    def per_step(i: int, leaf: Any) -> bool:
        shape = np.shape(leaf)
        if len(shape) < 2 or shape[0] != batch.batch or _static_no_time(model, i):
            return False
        if shape[1] == batch.steps:
            return True
        return shorter and len(shape) >= 3 and 1 <= shape[1] < batch.steps

    picks = [i for i, (_, leaf) in enumerate(outs) if per_step(i, leaf)]
    if not picks:
        shapes = ", ".join(str(np.shape(leaf)) for _, leaf in outs)
        raise ValueError(
            f"{arg} {model.name!r} returns {shapes} for x of {batch.steps} steps: only "
            f"per-step outputs (batch, {batch.steps} steps, ...) can be checked for causality "
            "(return_sequences=True on the last RNN layer; padding='causal' on Conv1D)"
        )
    tolerances = [
        _compare.resolve_tolerance(rtol, atol, np.asarray(outs[i][1]).dtype) for i in picks
    ]

    def call(tree: Any, copies: int) -> list[np.ndarray]:
        leaves = _tree.flatten(compiled(tree))
        return [np.asarray(leaves[i][1]) for i in picks]

    steps = min(int(np.shape(outs[i][1])[1]) for i in picks)
    paths = tuple(outs[i][0] for i in picks)
    return _ModelRun(model, run, call, picks, tolerances, steps, rtol, atol, paths)


def _static_no_time(model: Any, index: int) -> bool:
    """Output ``index`` has a fixed axis 1 while the model's time axis is open."""
    try:
        outputs = _tree.flatten(model.output)
        time_open = all(spec.shape[1] is None for spec in model.inputs)
        return bool(time_open and outputs[index][1].shape[1] is not None)
    except Exception:
        return False


def _gradient_map(mr: _ModelRun, batch: _Batch, seed: int) -> np.ndarray | None:
    """Boolean ``(out steps, samples, in steps)``: nonzero gradient of the output.

    Exact where perturbation is not (a recurrent layer's memory of a step fades
    below any tolerance long before its gradient reaches zero). Float inputs
    only, on every backend (:func:`_keras.input_gradients`); ``None`` where it
    cannot be computed.
    """
    if not all(leaf.dtype.kind == "f" for leaf in batch.leaves):
        return None
    b, t = batch.batch, batch.steps
    rng = np.random.default_rng(seed)
    result = np.zeros((t, b, t), dtype=bool)
    per_call = max(1, min(t, CHUNK_ELEMENTS // batch.per_copy()))
    picks = set(mr.picks)
    try:
        for start in range(0, t, per_call):
            outs_at = np.arange(start, min(t, start + per_call))
            n = len(outs_at)
            one_hot = np.zeros((n, b, t), dtype=bool)
            one_hot[np.arange(n), :, outs_at] = True
            select = one_hot.reshape(n * b, t)

            def weigh(
                i: int, shape: tuple[int, ...], select: np.ndarray = select, n: int = n
            ) -> Any:
                if i not in picks:
                    return None
                return rng.normal(size=shape) * select.reshape(n * b, t, *([1] * (len(shape) - 2)))

            grads = _keras.input_gradients(
                mr.run,
                [np.concatenate([leaf] * n) for leaf in batch.leaves],
                lambda leaves: _tree.rebuild(batch.tree, leaves),
                weigh,
            )
            if grads is None or all(g is None for g in grads):
                return None
            seen = np.zeros((n * b, t), dtype=bool)
            for g in grads:
                if g is not None:
                    seen |= (np.asarray(g) != 0).reshape(n * b, t, -1).any(axis=2)
            result[outs_at] = seen.reshape(n, b, t)
    except Exception:
        return None
    return result


def _model_map(mr: _ModelRun, batch: _Batch, trials: int, seed: int) -> tuple[np.ndarray, str]:
    """Per-sample receptive field of the model: perturbation, plus gradients where possible."""
    per = _per_sample_map(mr.call, batch, trials, seed, mr.tolerances)
    grad = _gradient_map(mr, batch, seed)
    if grad is None:
        return per, "perturbation"
    return per | grad, "perturbation + gradient"


# =========================================================================== public: the map


def dependence_map(
    fn: Any,
    x: Any,
    *,
    trials: int = 8,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> DependenceMap:
    """Measure which input steps each step of ``fn(x)`` depends on.

    For every input step ``t'`` and trial, step ``t'`` of every sample is
    replaced with the values of another (sample, step) of ``x``, drawn at
    random; with 3 or more trials, the first two use values above and below
    every value ``x`` takes (integers: its maximum and minimum), which flips
    any threshold the data straddles. The output at step ``t`` depends on
    ``t'`` when it changes by more than the tolerance. For a Keras model
    with float inputs (any backend), a nonzero gradient of the output at ``t``
    with respect to step ``t'`` also counts (exact for long recurrent memories
    that perturbation cannot see).

    Args:
        fn: a labelling function ``x -> (batch, steps, ...)`` or a Keras model
            with per-step outputs.
        x: inputs ``(batch, steps, features...)`` (or a list/dict of them).
        trials: replacements per input step.
        seed: seed of the replacements (default: the session's ``--rnn-seed``, 0).
        rtol: relative tolerance for "changed" (with ``atol``; default by dtype).
        atol: absolute tolerance for "changed" (with ``rtol``).

    Returns:
        A :class:`DependenceMap`; ``str()`` of it is a text grid.

    Example:
        >>> m = pytest_rnn.dependence_map(lambda x: np.cumsum(x, axis=1), x)
        >>> m.inputs_of(3)
        [0, 1, 2, 3]
    """
    trials = _check_int(trials, "trials", 1)
    seed = _check_seed(seed)
    batch = _check_sequences(x)
    with _keras.untouched():
        if _keras.is_model(fn):
            mr = _prepare_model(fn, batch, rtol, atol, "fn")
            per, method = _model_map(mr, batch, trials, seed)
            return DependenceMap(per.sum(axis=1), batch.batch, trials, "output", method)
        _check_function(fn, "fn", "per-step outputs", "x -> (batch, steps, ...)")
        caller = _LabelCaller(fn, batch, rtol, atol, "fn")
        per = _per_sample_map(caller, batch, trials, seed, caller.tolerances)
    return DependenceMap(per.sum(axis=1), batch.batch, trials, "label")


# =========================================================================== public: labels


def _visible_text(steps: list[int]) -> str:
    if not steps:
        return "depends on no input step"
    if len(steps) == 1:
        return f"depends only on step {steps[0]}"
    return f"depends on steps {_ranges(steps)}"


def _label_hint(bad: np.ndarray, labels: np.ndarray, horizon: int, with_model: bool) -> str:
    """What the pattern of bad dependences usually means."""
    t = labels.shape[0]
    cols = np.flatnonzero(labels.any(axis=0))
    rows_with = [r for r in range(t) if labels[r].any()]
    if len(cols) == 1 and len(rows_with) > 1 and bad.any():
        c = int(cols[0])
        how = (
            " (e.g. y[i, :] = ... inside a loop over steps: the last step overwrites the others)"
            if c == t - 1
            else ""
        )
        return (
            f"every label step depends on input step {c} alone: the labels of the whole "
            f"sequence were set from one step{how}. Set each step's label from its own "
            "step (y[i, t] = ...)."
        )
    future = [(r, c) for r, c in zip(*np.nonzero(bad)) if c > r]
    past = [(r, c) for r, c in zip(*np.nonzero(bad)) if c <= r]
    hints = []
    if future:
        ahead = sorted({int(c - r) for r, c in future})
        if not with_model:
            hints.append(
                f"the labels look {_ranges(ahead)} step(s) ahead; if that is a forecast "
                f"target, declare it with horizon={max(ahead)}, otherwise compute each "
                "label from steps <= t"
            )
        else:
            hints.append(
                "labels use later steps the model cannot see: use a model that reads them "
                f"(e.g. Bidirectional) or, for a forecast, declare horizon={max(ahead)}"
            )
    if past:
        hints.append(
            "labels use earlier steps the model cannot see: a per-step model "
            "(Dense/TimeDistributed) sees only its own step; use a recurrent or causal "
            "Conv1D model, or labels of each step alone"
        )
    return "; ".join(hints) + "."


def _label_grid(labels: np.ndarray, bad: np.ndarray, sees: np.ndarray | None) -> list[str]:
    symbols = np.full(labels.shape, ".", dtype="<U1")
    if sees is not None:
        symbols[sees] = "o"
    symbols[labels] = "#"
    symbols[bad] = "X"
    legend = "X: label depends on it and may not; #: label depends on it, allowed"
    if sees is not None:
        legend = (
            "X: label depends on it, model cannot see it; #: label depends, model sees it; "
            "o: model sees it only"
        )
    return ["  dependence map:", *_grid(symbols, "label", GRID_STEPS), f"  {legend}; .: neither"]


@recorded
def assert_labels_causal(
    make_labels: Callable[[Any], Any],
    x: Any,
    *,
    model: Any = None,
    horizon: int = 0,
    trials: int = 8,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that per-step labels use only input steps the model may see.

    Dependence is measured by replacing one input step at a time with the
    values of another (sample, step) of ``x`` (``trials`` times per step) and
    watching which label steps change (see :func:`dependence_map`).

    - Without ``model``: the label at step ``t`` may depend only on input
      steps ``<= t + horizon``. ``horizon > 0`` declares a forecast target
      (``label[t] = x[t + 1]`` passes with ``horizon=1``).
    - With ``model``: every input step a label depends on must be visible to
      the model's output at the same step (its receptive field, measured the
      same way, plus input gradients). Steps ``t+1 .. t+horizon`` are
      the declared forecast and exempt. A TimeDistributed model sees only its
      own step; an LSTM sees every earlier step; a Bidirectional one all steps.

    Args:
        make_labels: your function ``x -> labels (batch, steps, ...)`` (or a
            list/dict of such). An array is refused: dependence needs the function.
        x: inputs ``(batch, steps, features...)``, or a list/dict of them.
        model: optional Keras model with per-step outputs.
        horizon: how many steps ahead the labels may look (>= 0).
        trials: replacements per input step (more finds rarer dependence).
        seed: seed of the replacements (default: the session seed, 0).
        rtol: tolerance for "a label changed" (with ``atol``; default by dtype).
        atol: see ``rtol``.

    Raises:
        RNNAssertionError: a label depends on a step it may not. The message
            lists, per label step, the offending input steps with how many
            samples showed it in how many trials, what the model's output at
            that step depends on, a text grid for short sequences, and what the
            pattern usually means.
        TypeError: ``make_labels`` is not a function, ``model`` not a Keras model.
        ValueError: a bad ``x``, a negative ``horizon``, or ``make_labels``
            returning another batch size or step count.

    Example:
        >>> def labels(x):  # seed 001's bug: every step labelled from the last one
        ...     last = x[:, -1].sum(axis=-1) > 50
        ...     return np.repeat(last[:, None], x.shape[1], axis=1)
        >>> pytest_rnn.assert_labels_causal(labels, x, model=model)
        RNNAssertionError: Labels depend on input steps the model cannot see ...
          label at step 0 depends on input step 1 (64/64 samples, 8 trials); the
          model's output at step 0 depends only on step 0
    """
    __tracebackhide__ = True
    _check_function(make_labels, "make_labels", "labels", "x -> labels (batch, steps, ...)")
    horizon = _check_int(horizon, "horizon", 0)
    trials = _check_int(trials, "trials", 1)
    seed = _check_seed(seed)
    batch = _check_sequences(x)
    if model is not None:
        _keras.check_model(model, "model")
        _keras.check_input_shapes(model, list(zip(_paths(batch), batch.leaves)), "x")
    with _keras.untouched():
        caller = _LabelCaller(make_labels, batch, rtol, atol, "make_labels")
        per = _per_sample_map(caller, batch, trials, seed, caller.tolerances)
        seen_by: np.ndarray | None = None
        if model is not None:
            mr = _prepare_model(model, batch, None, None)
            model_per, _ = _model_map(mr, batch, trials, seed)
            seen_by = np.asarray(model_per.any(axis=1))
    counts = per.sum(axis=1)
    labels = counts > 0
    t = batch.steps
    rows, cols = np.indices((t, t))
    forecast = (cols > rows) & (cols <= rows + horizon)
    allowed = cols <= rows + horizon if seen_by is None else seen_by | forecast
    bad = labels & ~allowed
    if not bad.any():
        return None
    message = _labels_message(make_labels, model, batch, trials, horizon, counts, bad, seen_by)
    region = "steps <= t" + (f" + {horizon}" if horizon else "")
    picture = DependencePicture(
        message.splitlines()[0], counts, batch.batch, allowed, bad, "label step", "input step",
        f"allowed: {region}" if seen_by is None else "the model's receptive field"
        + (f" (+ horizon {horizon})" if horizon else ""),
    )  # fmt: skip
    raise RNNAssertionError(message, picture=picture)


def _labels_message(
    make_labels: Any,
    model: Any,
    batch: _Batch,
    trials: int,
    horizon: int,
    counts: np.ndarray,
    bad: np.ndarray,
    seen_by: np.ndarray | None,
) -> str:
    labels = counts > 0
    t = batch.steps
    if seen_by is None:
        head = (
            f"Labels depend on later input steps (horizon={horizon}): the label at step t "
            f"may use only steps <= t{f' + {horizon}' if horizon else ''}."
        )
    else:
        head = (
            "Labels depend on input steps the model cannot see at the same step: "
            "a model trained on them can only guess."
        )
    where = f"make_labels {_name_of(make_labels)!r} on x of {batch.batch} samples, {t} steps"
    if model is not None:
        where += f"; model {_keras.describe_model(model)}"
    lines = [head, f"  {where}; {_plural(trials, 'trial')} per input step"]
    bad_rows = [r for r in range(t) if bad[r].any()]
    for r in bad_rows[:MAX_LINES]:
        steps = [int(c) for c in np.flatnonzero(bad[r])]
        found = (
            f"label at step {r} depends on input {_steps_word(steps)} "
            f"({_count_range([int(counts[r, c]) for c in steps], batch.batch)} samples, "
            f"{_plural(trials, 'trial')})"
        )
        if seen_by is not None:
            found += f"; the model's output at step {r} {_visible_text(list(np.flatnonzero(seen_by[r])))}"
        lines.append(f"  {found}")
    if len(bad_rows) > MAX_LINES:
        lines.append(
            f"  ... and {len(bad_rows) - MAX_LINES} more label steps ({len(bad_rows)} in all)"
        )
    if t <= GRID_STEPS:
        lines.extend(_label_grid(labels, bad, seen_by))
    lines.append(
        f"  What it usually means: {_label_hint(bad, labels, horizon, seen_by is not None)}"
    )
    return "\n".join(lines)


# =========================================================================== public: model


def _conv_span(cfg: dict[str, Any]) -> int:
    """Steps a 1-D convolution's window spans beyond its first: ``dilation * (kernel - 1)``."""

    def first(v: Any) -> int:
        return int(v[0] if isinstance(v, (list, tuple)) else v)

    return first(cfg.get("dilation_rate", 1)) * (first(cfg.get("kernel_size", 1)) - 1)


def _layer_reason(layer: Any, nodes: Sequence[Any] = ()) -> str | None:
    """Why a layer reads later steps, from its configuration; ``None`` if it does not."""
    keras = _keras.keras_module()
    L = keras.layers
    name = type(layer).__name__
    if isinstance(layer, L.Bidirectional):
        return "Bidirectional: its backward RNN reads the sequence from the last step"
    if isinstance(layer, L.RNN) and getattr(layer, "go_backwards", False):
        return "go_backwards=True: it reads the sequence from the last step"
    if isinstance(layer, L.TimeDistributed):
        return None
    cfg: dict[str, Any] = {}
    try:
        cfg = layer.get_config()
    except Exception:
        cfg = {}
    if name in ("Conv1D", "SeparableConv1D", "DepthwiseConv1D"):
        padding = cfg.get("padding")
        if padding == "same":
            n = _conv_span(cfg) - _conv_span(cfg) // 2  # TensorFlow pads more on the right
            if n:
                return (
                    f"{name} padding='same' reads {_plural(n, 'future step')}; use padding='causal'"
                )
        if padding == "valid":
            span = _conv_span(cfg)
            if span:
                return (
                    f"{name} padding='valid' puts output step t over input steps t..t+{span} "
                    "(reads later steps); use padding='causal'"
                )
    if name in ("MultiHeadAttention", "Attention", "AdditiveAttention", "GroupedQueryAttention"):
        calls = [n.arguments.kwargs for n in nodes]
        if any(c.get("use_causal_mask") or c.get("attention_mask") is not None for c in calls):
            return None  # causal, or a mask of the caller's: measured, not guessed
        return f"{name} called without use_causal_mask=True: every step attends to later steps"
    if "Normalization" in name and name != "BatchNormalization":
        axis = cfg.get("axis")
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        if 1 in axes or -2 in axes:
            return (
                f"{name}(axis={axis}) normalises over the time axis: every step sees statistics "
                "of the whole sequence"
            )
    if name in ("MaxPooling1D", "AveragePooling1D") and cfg.get("padding") == "same":
        return f"{name} padding='same' pools over later steps"
    if isinstance(layer, keras.Model):
        inner = _suspects(layer)
        if inner:
            return f"nested model containing {inner[0][0]!r} ({inner[0][1]})"
    return None


def _suspects(model: Any) -> list[tuple[str, str]]:
    """``(path, reason)`` of every layer that reads later steps by its configuration.

    Top-level layers and nested models; not the layers inside wrappers (a
    TimeDistributed's inner layer works within one step).
    """
    keras = _keras.keras_module()
    found: list[tuple[str, str]] = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            found.extend((f"{layer.name}/{p}", r) for p, r in _suspects(layer))
            continue
        reason = _layer_reason(layer, getattr(layer, "_inbound_nodes", ()))
        if reason:
            found.append((layer.name, reason))
    return found


@dataclass(frozen=True, eq=False)
class _Leak:
    """What the suffix test found for one per-step tensor."""

    leak: np.ndarray  # (starts, samples, steps): output t < s changed when steps s.. changed
    change: np.ndarray  # same shape: largest change


def _suffix_leaks(changed: np.ndarray, change: np.ndarray, batch: _Batch, trials: int) -> _Leak:
    """Fold the suffix plan's copies: output t < s changed when steps s.. changed."""
    starts = batch.steps - 1
    steps = changed.shape[2]
    changed = changed.reshape(starts, trials, batch.batch, steps)
    change = change.reshape(starts, trials, batch.batch, steps)
    before = np.arange(steps)[None, :] < np.arange(1, batch.steps)[:, None]  # (starts, steps)
    leak = changed.any(axis=1) & before[:, None, :]
    return _Leak(leak, np.where(leak, change.max(axis=1), 0.0))


def _graph(model: Any) -> Any:
    keras = _keras.keras_module()
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    return model if _keras.is_graph_model(model) else None


def _localise(mr: _ModelRun, batch: _Batch, mask: Any, donor: Any, trials: int) -> list[str]:
    """Lines naming the first layers whose output leaks, measured per layer."""
    keras = _keras.keras_module()
    graph = _graph(mr.run)
    if graph is None or not hasattr(graph, "_nodes_by_depth"):
        return ["  (a subclassed model: its layers cannot be probed one by one)"]
    nodes = [
        node
        for depth in sorted(graph._nodes_by_depth, reverse=True)
        for node in graph._nodes_by_depth[depth]
        if not node.is_input
    ]
    tensors = [(node, i, kt) for node in nodes for i, kt in enumerate(node.outputs)]
    if not tensors:
        return []
    with _keras.rng_guard():
        probe = keras.Model(graph._inputs_struct, [kt for _, _, kt in tensors])
    compiled, first = _forward(probe, batch.tree)
    outs = [np.asarray(o) for _, o in _tree.flatten(first)]
    aligned = [
        j
        for j, o in enumerate(outs)
        if (o.ndim >= 2 and o.shape[:2] == (batch.batch, batch.steps))
        or (o.ndim >= 3 and o.shape[0] == batch.batch and 1 <= o.shape[1] < batch.steps)
    ]
    tols = [_compare.resolve_tolerance(mr.rtol, mr.atol, outs[j].dtype) for j in aligned]

    def call(tree: Any, copies: int) -> list[np.ndarray]:
        got = _tree.flatten(compiled(tree))
        return [np.asarray(got[j][1]) for j in aligned]

    each = _measure_each(call, batch, mask, donor, tols)
    leaks = {
        j: bool(_suffix_leaks(c, size, batch, trials).leak.any())
        for j, (c, size) in zip(aligned, each)
    }
    index = {id(kt): j for j, (_, _, kt) in enumerate(tensors)}
    lines: list[str] = []
    sources: list[str] = []
    for j, (node, _, _) in enumerate(tensors):
        if not leaks.get(j):
            continue
        parents = [index.get(id(kt)) for kt in node.arguments.keras_tensors]
        if any(p is not None and leaks.get(p) for p in parents):
            continue
        layer = node.operation
        label = f"{layer.name!r} ({_keras.describe_layer(layer)})"
        if label in sources:
            continue
        reason = _layer_reason(layer, [node])
        if reason is None:
            upstream = _unaligned_reasons(node, index, aligned, tensors)
            reason = upstream or "its output at step t changes when later steps change"
        sources.append(label)
        lines.append(
            f"  {'first layer' if not lines else 'also'} whose output leaks: {label}: {reason}"
        )
    return lines


def _unaligned_reasons(
    node: Any, index: dict[int, int], aligned: list[int], tensors: list[Any]
) -> str:
    """Reasons found upstream of ``node`` through tensors without a step-aligned time axis."""
    seen: set[int] = set()
    todo = [node]
    reasons: list[str] = []
    while todo:
        n = todo.pop()
        for kt in n.arguments.keras_tensors:
            j = index.get(id(kt))
            if j is None or j in seen or j in aligned:
                continue
            seen.add(j)
            parent = tensors[j][0]
            r = _layer_reason(parent.operation, [parent])
            if r:
                reasons.append(f"its input comes from {parent.operation.name!r}: {r}")
            todo.append(parent)
    return "; ".join(reasons)


@recorded
def assert_model_causal(
    model: Any,
    x: Any,
    *,
    trials: int = 1,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that the model's output at step t does not change when later inputs change.

    For every step ``s``, steps ``s..`` of every sample are replaced with other
    (sample, step) values of ``x`` (``trials`` times), all copies stacked in
    a few compiled calls; an output at a step before ``s`` that changes by more
    than the tolerance (by output dtype, see ``resolve_tolerance``) reads the
    future. On failure every top-level layer's output is probed the same way
    to name the first layer that leaks, with why (Bidirectional,
    ``go_backwards``, Conv1D padding ``'same'``/``'valid'``, attention without
    ``use_causal_mask``, normalisation over the time axis). Causal Conv1D,
    LSTM/GRU and TimeDistributed layers pass. Stateful or fixed-batch models
    are measured on a stateless copy; the model itself is not changed.

    Args:
        model: a Keras model with per-step outputs ``(batch, steps, ...)``.
        x: inputs ``(batch, steps, features...)``, or a list/dict of them.
        trials: replacements per step (one finds any leak of a generic model).
        seed: seed of the replacements (default: the session seed, 0).
        rtol: relative tolerance (with ``atol``; default by output dtype).
        atol: absolute tolerance (with ``rtol``).

    Raises:
        RNNAssertionError: the output leaks. The message gives the leaking
            output steps with sample counts, how far ahead they read, the
            greatest change, the first leaking layer and why, the layers that
            read the future by their configuration, and a text grid for short
            sequences.
        TypeError: ``model`` is not a Keras model.
        ValueError: a bad ``x``, or a model without per-step outputs.

    Example:
        >>> model = keras.Sequential([keras.Input((None, 3)),
        ...                           keras.layers.Conv1D(4, 3, padding="same")])
        >>> pytest_rnn.assert_model_causal(model, x)
        RNNAssertionError: The model's output at a step changes when later input steps change ...
          first layer whose output leaks: 'conv1d' (Conv1D(4, k=3, padding='same')):
          Conv1D padding='same' reads 1 future step; use padding='causal'
    """
    __tracebackhide__ = True
    _keras.check_model(model, "model")
    trials = _check_int(trials, "trials", 1)
    seed = _check_seed(seed)
    batch = _check_sequences(x)
    with _keras.untouched():
        mr = _prepare_model(model, batch, rtol, atol, shorter=True)
        if batch.steps < 2:
            return None
        mask, donor = _suffix_plan(batch, trials, np.random.default_rng(seed))
        each = _measure_each(mr.call, batch, mask, donor, mr.tolerances)
        leaking = [
            p for p, (c, s) in zip(mr.paths, each) if _suffix_leaks(c, s, batch, trials).leak.any()
        ]
        if not leaking:
            return None
        changed, change = _merge(each)
        found = _suffix_leaks(changed, change, batch, trials)
        try:
            located = _localise(mr, batch, mask, donor, trials)
        except Exception as exc:  # the probe reads Keras graph internals; never hide the leak
            located = [f"  (could not probe layers one by one: {type(exc).__name__}: {exc})"]
        grid: list[str] = []
        picture = _suffix_picture(found, mr.out_steps, batch.steps, batch.batch)
        if batch.steps <= GRID_STEPS:
            per = _per_sample_map(mr.call, batch, trials, seed, mr.tolerances)
            grid = _model_grid(per.sum(axis=1), batch.batch)
            picture = _step_picture(per.sum(axis=1), batch.batch)
    message = _model_message(
        model, mr.out_steps, batch, trials, found, mr.tolerances[0], located, grid, leaking
    )
    picture = replace(picture, title=message.splitlines()[0])
    raise RNNAssertionError(message, picture=picture)


def _step_picture(counts: np.ndarray, samples: int) -> DependencePicture:
    """Output step x input step, one step replaced at a time; causal: input step <= t."""
    rows, cols = np.indices(counts.shape)
    allowed = np.asarray(cols <= rows)
    bad = (counts > 0) & ~allowed
    return DependencePicture(
        "", counts, samples, allowed, bad, "output step", "input step replaced",
        "causal: input steps <= t",
    )  # fmt: skip


def _suffix_picture(found: _Leak, out_steps: int, steps: int, samples: int) -> DependencePicture:
    """Output step x first replaced step s (steps s.. replaced): leaks are cells with s > t."""
    counts = np.zeros((out_steps, steps), dtype=np.int64)
    leak = found.leak[:, :, :out_steps]  # (starts 1.., samples, output steps)
    counts[:, 1:] = leak.sum(axis=1).T[:, : steps - 1]
    rows, cols = np.indices(counts.shape)
    allowed = np.asarray(cols <= rows)
    return DependencePicture(
        "", counts, samples, allowed, (counts > 0) & ~allowed, "output step",
        "first replaced input step s (steps s.. replaced)", "causal: input steps <= t",
    )  # fmt: skip


def _model_grid(counts: np.ndarray, samples: int) -> list[str]:
    rows, cols = np.indices(counts.shape)
    symbols = np.where(counts > 0, "#", ".").astype("<U1")
    symbols[(counts > 0) & (cols > rows)] = "X"
    return [
        "  dependence map (one step replaced at a time):",
        *_grid(symbols, "output", GRID_STEPS),
        "  X: output depends on a later input step; #: on this or an earlier step; .: neither",
    ]


def _model_message(
    model: Any,
    mr_steps: int,
    batch: _Batch,
    trials: int,
    found: _Leak,
    tol: _compare.Tolerance,
    located: list[str],
    grid: list[str],
    leaking: Sequence[str] = ("",),
) -> str:
    leak, change = found.leak, found.change
    t = batch.steps
    out_steps = mr_steps
    outs = [int(s) for s in np.flatnonzero(leak.any(axis=(0, 1)))]
    starts = np.arange(1, t)
    # reach[i, step]: the latest start s whose replacement still changed the output.
    reach = np.where(leak, starts[:, None, None], -1).max(axis=0)
    samples = [int((reach[:, s] >= 0).sum()) for s in outs]
    far = [int(reach[:, s].max()) for s in outs]
    ahead = sorted({f - s for f, s in zip(far, outs)})
    if all(f == t - 1 for f in far) and len(ahead) > 1:
        how = "reads to the last step of the sequence"
    else:
        how = f"reads up to {_ranges(ahead)} step{'s' if ahead != [1] else ''} ahead"
    lines = [
        "The model's output at a step changes when later input steps change: it reads the future.",
        f"  model {_keras.describe_model(model)}; x of {batch.batch} samples, {t} steps; "
        f"{_plural(trials, 'trial')} per step",
        *(
            [
                f"  the output has {out_steps} steps for {t} input steps: output step t is "
                "compared with input step t, as Keras aligns them"
            ]
            if out_steps < t
            else []
        ),
        *([f"  outputs that leak: {', '.join(leaking)}"] if any(leaking) else []),
        f"  output at {_steps_word(outs)} of {out_steps} changes when later steps change "
        f"({_count_range(samples, batch.batch)} samples each); it {how}",
    ]
    s_i, i, step = np.unravel_index(int(np.argmax(change)), change.shape)
    lines.append(
        f"  greatest change: {_compare.format_value(float(change[s_i, i, step]))} at output "
        f"step {step}, sample {i}, when steps {s_i + 1}.. changed "
        f"(allowed {tol.describe('output')})"
    )
    lines.extend(located)
    named = " ".join(located)
    suspects = [(p, r) for p, r in _suspects(model) if f"{p.split('/')[-1]!r}" not in named]
    if suspects:
        shown = "; ".join(f"{p!r}: {r}" for p, r in suspects[:MAX_LINES])
        other = "other layers" if "first layer" in named else "layers"
        lines.append(f"  {other} that read later steps by their configuration: {shown}")
    lines.extend(grid)
    lines.append(
        "  What it usually means: a model whose step t reads later steps cannot run step by "
        "step (streaming, generation), and per-step training on it learns from the future."
    )
    return "\n".join(lines)


# =========================================================================== public: windows


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
    list/dict of such arrays. Each series position is replaced in turn with
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

    ``make_windows`` is called ``len(series) * trials + 2`` times, each on one
    whole series: a short series (a few windows long) is enough, since the
    check is about indexing, not data.

    Args:
        make_windows: your function ``series -> (inputs, targets)``.
        series: one series, ``(length,)`` or ``(length, features...)``.
        anchor_steps: last input positions a target may share (>= 0).
        trials: replacements per position.
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
    _check_function(make_windows, "make_windows", "windows", "series -> (inputs, targets)")
    anchor_steps = _check_int(anchor_steps, "anchor_steps", 0)
    trials = _check_int(trials, "trials", 1)
    seed = _check_seed(seed)
    if callable(series) or isinstance(series, (Mapping, str)):
        raise TypeError(
            f"series must be an array (length, features...), got {type(series).__name__}"
        )
    s = np.asarray(series)
    if s.ndim < 1:
        raise ValueError(f"series must be an array (length, features...), got shape {s.shape}")
    _numeric(s, "series")
    length = s.shape[0]
    if length < 2:
        raise ValueError(f"series must have at least 2 positions, got {length}")
    rows = s.reshape(length, -1)
    if (rows == rows[:1]).all():
        raise ValueError(
            "series has the same value at every position, so replacing one changes nothing "
            "and dependence cannot be measured: pass a varied series"
        )
    with _keras.untouched():
        inputs0, targets0, n = _windows(make_windows, s)
        again = _windows(make_windows, s)
        tols_in = [_compare.resolve_tolerance(rtol, atol, a.dtype) for a in inputs0]
        tols_tg = [_compare.resolve_tolerance(rtol, atol, a.dtype) for a in targets0]
        if (
            _window_changes(again[0], inputs0, tols_in).any()
            or _window_changes(again[1], targets0, tols_tg).any()
        ):
            raise ValueError(
                "make_windows returned different windows for the same series: it must be a "
                "deterministic function of the series"
            )
        rng = np.random.default_rng(seed)
        in_dep = np.zeros((n, length), dtype=bool)
        tg_dep = np.zeros((n, length), dtype=bool)
        pool = _pool(s.reshape(length, *s.shape[1:]))
        for p in range(length):
            donors = rng.integers(0, length - 1, size=trials)
            donors += donors >= p
            kinds = _extremes(trials, length)
            for q in np.where(kinds >= 0, kinds, donors):
                changed = s.copy()
                changed[p] = pool[q]
                ins, tgs, m = _windows(make_windows, changed)
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
    if not tg_dep.any():
        raise ValueError(
            "the targets of make_windows did not change when any single position of series "
            "changed, so there is nothing to check: make the targets from the series"
        )
    findings = _window_findings(in_dep, tg_dep, anchor_steps)
    if not findings:
        return None
    message = _windows_message(
        make_windows, length, inputs0, targets0, n, trials, anchor_steps, findings, tg_dep
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


def _windows(fn: Callable[[Any], Any], series: np.ndarray) -> tuple[list[Any], list[Any], int]:
    out = fn(series)
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


@dataclass(frozen=True)
class _WindowFinding:
    window: int
    inputs: list[int]
    target: list[int]
    kind: str  # "last", "inside", "anchored", "past"
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
        if not own:
            kind = "last" if target == [last] else "inside"
            found.append(_WindowFinding(w, inputs, target, kind, last - target[0] + 1))
        elif last >= own[0]:
            inside = set(own) <= set(inputs)
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
    trials: int,
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
        f"inputs {shapes_in}, targets {shapes_tg}; {_plural(trials, 'trial')} per position"
        + (f"; anchor_steps={anchor}" if anchor else ""),
    ]
    for f in findings[: MAX_LINES // 2]:
        note = {
            "last": ", the last input position",
            "inside": ", all inside the inputs",
            "past": f"; the inputs reach {_plural(f.reach, 'position')} into it",
            "anchored": f", starting at the last {_plural(f.reach, 'input position')}",
        }[f.kind]
        lines.append(
            f"  window {f.window}: inputs read {_steps_word(f.inputs, 'position')}; "
            f"target reads {_steps_word(f.target, 'position')}{note}"
        )
    if len(findings) > MAX_LINES // 2:
        lines.append(f"  ... (first {MAX_LINES // 2} of {len(findings)} leaking windows)")
    unchecked = int((~tg_dep.any(axis=1)).sum())
    if unchecked:
        lines.append(
            f"  {_plural(unchecked, 'window')} had targets that no single position changed; "
            "not checked"
        )
    kinds = {f.kind for f in findings}
    if kinds == {"last"}:
        hint = (
            "off-by-one: the target is the last input position. The target of a window "
            "over s[i : i + window] is s[i + window] (or later), not s[i + window - 1]."
        )
    elif kinds == {"anchored"}:
        reach = max(f.reach for f in findings)
        hint = (
            f"the target also reads the last {_plural(reach, 'input position')} (a change or "
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
