"""Measuring dependence: which input steps each output step of a function or model reads.

:class:`DependenceMap` is the public result and :func:`dependence_map` the
public measurement. :class:`_LabelCaller` runs the user's labelling function on
stacked copies (:func:`_leaves_of` checks what it returns); :class:`_ModelRun`
is a Keras model made ready to measure by :func:`_prepare_model` (a stateless
twin where needed, its per-step outputs picked, a caller from :func:`_forward`);
:func:`_model_map` is a model's per-sample receptive field, perturbation plus
the exact input gradients of :func:`_gradient_map`. The perturbation itself is
:mod:`pytest_rnn._core.perturb`; the labels, model and windows checks build on this file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._causal.args import _check_sequences, _Probe, _probe
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import perturb as _perturb
from pytest_rnn._core import text as _text
from pytest_rnn._core import tree as _tree
from pytest_rnn._core.validate import Batch

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
            f"{_text.plural(self.trials, 'trial')} per input step ({self.method})"
        )
        symbols = np.where(self.counts >= self.samples, "#", np.where(self.counts > 0, "+", "."))
        lines = [head, *_text.grid(symbols, self.of, _text.STR_STEPS), f"  {_LEGEND_MAP}"]
        return "\n".join(lines)


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
        if arr.ndim < 2:
            raise ValueError(
                f"{what} for x of {steps} steps (no time axis): per-step labels "
                "(batch, steps, ...) are needed; a single label per sequence has no steps "
                "to check"
            )
        if arr.shape[1] != steps:
            short = steps - arr.shape[1]
            why = (
                f"{_text.plural(short, 'step')} short, as next-step labels (x[:, {short}:]) "
                f"are: make x and its labels the same length (x[:, :-{short}] with labels "
                f"x[:, {short}:]), so that label t belongs to input step t"
                if 0 < short < steps
                else "longer than x: per-step labels have one label per input step"
            )
            raise ValueError(
                f"{what} for x of {steps} steps ({arr.shape[1]} steps): one label per input "
                f"step (batch, steps, ...) is needed, and these are {why}"
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

    def __init__(self, fn: Callable[[Any], Any], batch: Batch, probe: _Probe, arg: str) -> None:
        self.fn, self.batch, self.arg = fn, batch, arg
        self.base = _leaves_of(fn(batch.tree), arg, batch.batch, batch.steps)
        self.tolerances = [probe.tolerance(b.dtype) for b in self.base]
        self.stacked = True

    def _same_as_base(self, leaves: list[np.ndarray]) -> bool:
        for leaf, base, tol in zip(leaves, self.base, self.tolerances):
            h, _ = _perturb.changed(leaf[None], base, tol)
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

    run: Any  # the model that is called (the user's, or a stateless copy)
    call: _perturb.Caller
    picks: list[int]  # indices of per-step output leaves
    tolerances: list[_compare.Tolerance]
    out_steps: int  # fewest steps of a picked output (< x's steps: a shortened output)
    probe: _Probe  # trials, seed and tolerance it is measured with
    paths: tuple[str, ...] = ()  # item paths of the picked outputs ("" for a single output)
    stride: int = 1  # input steps per output step of the model's time-strided layers (product)
    first: list[np.ndarray] | None = None  # the picked outputs on ``stacked``, if one was given


def _forward(model: Any, tree: Any) -> tuple[Callable[[Any], Any], Any]:
    """A caller ``tree -> numpy outputs`` for ``model`` and its result on ``tree``.

    The shared compiled caller first; if it cannot trace the model (a layer that
    needs the static time length it was built with, e.g. LayerNormalization
    over the time axis), plain eager calls: one per stacked chunk, so still few.
    """
    compiled = K.compiled(model, tree, fixed_batch=False)
    try:
        return compiled, compiled(tree)
    except Exception:

        def eager(inputs: Any) -> Any:
            return K.eager_call(model, inputs)

        return eager, eager(tree)


def _prepare_model(
    model: Any,
    batch: Batch,
    probe: _Probe,
    arg: str = "model",
    *,
    shorter: bool = False,
    stacked: Any = None,
) -> _ModelRun:
    """Check ``model`` and pick its per-step outputs: ``(batch, steps, ...)`` leaves.

    ``shorter``: also outputs of rank >= 3 with fewer steps than ``x`` (a Conv1D
    with padding='valid'), compared index by index as Keras aligns them.
    ``stacked``: the first perturbation call's input
    (:func:`~pytest_rnn._core.perturb.first_call_input`), whose first rows are
    ``batch``; the model is first called on it rather than on ``batch``, so a
    backend compiling per shape compiles once, and its picked outputs are kept
    in :attr:`_ModelRun.first` for :func:`~pytest_rnn._core.perturb.measure_each`.
    """
    K.check_model(model, arg)
    K.check_input_shapes(model, list(zip(batch.paths, batch.leaves)), "x")
    run = model
    if K.stateful_layers(model) or K.fixed_batch(model):
        if not K.is_graph_model(model):
            raise ValueError(
                f"{arg} {model.name!r} is a stateful or fixed-batch subclassed model: "
                "pytest-rnn measures a stateless copy and can copy only Sequential and "
                "Functional models. Pass a stateless twin of it instead."
            )
        # A stateless twin answers the same question and leaves the user's states alone.
        run = K.clone(model, batch_size=None, stateful=False)
    compiled, first = _forward(run, batch.tree if stacked is None else stacked)
    whole = _tree.flatten(first)
    outs = whole if stacked is None else _reference_rows(whole, batch.batch, stacked)

    def per_step(i: int, leaf: Any) -> bool:
        shape = np.shape(leaf)
        if len(shape) < 2 or shape[0] != batch.batch or K.static_time_output(model, i):
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
    tolerances = [probe.output_tolerance(np.asarray(outs[i][1]).dtype) for i in picks]

    def call(tree: Any, copies: int) -> list[np.ndarray]:
        leaves = _tree.flatten(compiled(tree))
        return [np.asarray(leaves[i][1]) for i in picks]

    steps = min(int(np.shape(outs[i][1])[1]) for i in picks)
    paths = tuple(outs[i][0] for i in picks)
    kept = None if stacked is None else [np.asarray(whole[i][1]) for i in picks]
    return _ModelRun(run, call, picks, tolerances, steps, probe, paths, K.time_stride(model), kept)


def _reference_rows(outs: list[tuple[str, Any]], batch: int, stacked: Any) -> list[tuple[str, Any]]:
    """The stacked call's outputs cut to the rows of the unperturbed copy (its first ``batch``).

    A leaf without the stacked rows on its first axis is left whole.
    """
    rows = int(np.shape(_tree.flatten(stacked)[0][1])[0])
    return [
        (path, leaf[:batch] if np.ndim(leaf) >= 1 and np.shape(leaf)[0] == rows else leaf)
        for path, leaf in outs
    ]


def _gradient_map(mr: _ModelRun, batch: Batch) -> np.ndarray | None:
    """Boolean ``(out steps, samples, in steps)``: nonzero gradient of the output.

    Exact where perturbation is not (a recurrent layer's memory of a step fades
    below any tolerance long before its gradient reaches zero). Float inputs
    only, on every backend (:func:`_keras.input_gradients`); ``None`` where it
    cannot be computed.
    """
    if not all(leaf.dtype.kind == "f" for leaf in batch.leaves):
        return None
    b, t = batch.batch, batch.steps
    rng = mr.probe.rng()
    result = np.zeros((t, b, t), dtype=bool)
    per_call = max(1, min(t, _perturb.CHUNK_ELEMENTS // batch.per_copy()))
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

            grads = K.input_gradients(
                mr.run,
                [np.concatenate([leaf] * n) for leaf in batch.leaves],
                lambda leaves: _tree.rebuild(batch.tree, leaves),
                weigh,
                kept=_GRADIENTS.of(mr.run),
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


# model -> its compiled input gradients, one per input shape (weak keys).
_GRADIENTS = K.ModelCache()


def _model_map(mr: _ModelRun, batch: Batch) -> tuple[np.ndarray, str]:
    """Per-sample receptive field of the model: perturbation, plus gradients where possible."""
    # Token ids' extremes from the vocabulary: no gradient flows through ids, and a
    # swap of x's own ids may move the output by less than the tolerance.
    ids = K.token_ids(mr.run)
    per = _perturb.per_sample_map(mr.call, batch, mr.probe.trials, mr.probe.seed, mr.tolerances, ids)
    grad = _gradient_map(mr, batch)
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
    every value ``x`` takes (integers: its maximum and minimum; token ids a
    Keras model feeds straight into an ``Embedding``: the first and last id
    of its vocabulary, 1 with ``mask_zero``), which flips any threshold the
    data straddles. The output at step ``t`` depends on
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
    probe = _probe(trials, seed, rtol, atol)
    batch = _check_sequences(x)
    with K.untouched():
        if K.is_model(fn):
            mr = _prepare_model(fn, batch, probe, "fn")
            per, method = _model_map(mr, batch)
            return DependenceMap(per.sum(axis=1), batch.batch, probe.trials, "output", method)
        K.check_function(fn, "fn", "per-step outputs", "x -> (batch, steps, ...)")
        caller = _LabelCaller(fn, batch, probe, "fn")
        per = _perturb.per_sample_map(caller, batch, probe.trials, probe.seed, caller.tolerances)
    return DependenceMap(per.sum(axis=1), batch.batch, probe.trials, "label")
