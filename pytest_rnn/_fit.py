"""assert_fit_equivalent and assert_training_reproducible: training that resumes and repeats.

Seed 002: the same stateful LSTM trained by ``fit(epochs=1)`` in a loop, with
or without ``reset_states``, or by one ``fit(epochs=10)``, gave different
results, and showing when they agree took restarting Python. Here both runs
happen in one process under the same seed with deterministic ops, and the
report says where they part and why.

What Keras 3 carries from one ``fit`` call to the next (measured with Keras
3.15 on TensorFlow): the optimizer's variables (``iterations``, moments), the
stateful RNN states, every layer's ``SeedGenerator`` state (dropout draws
continue), and TensorFlow's shuffle stream (a new ``fit`` continues the
permutations where the previous call left them). So one ``fit(epochs=N)`` and
N calls of ``fit(epochs=1)`` agree exactly, shuffled or not, with dropout or
not. What restarts at every call: the epoch index callbacks see (a
``LearningRateScheduler`` uses its epoch-0 rate every time), ``on_train_begin``
(``EarlyStopping``/``ReduceLROnPlateau`` forget their patience) and
``validation_freq``.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import inspect
import math
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.compare import Tolerance, compare, format_value, resolve_tolerance
from pytest_rnn._core.tree import flatten
from pytest_rnn._errors import LossPicture, RNNAssertionError
from pytest_rnn._report import recorded

__all__ = ["assert_fit_equivalent", "assert_training_reproducible"]

#: fit arguments the assertion sets itself.
_RESERVED = ("x", "y", "epochs", "initial_epoch")
#: Rows shown in the table of differing variables and of losses.
_ROWS = 10
_LOSS_ROWS = 20
_PLURAL = {"weight": "weights", "optimizer": "optimizer variables", "RNN state": "RNN states"}


# --------------------------------------------------------------------------- seeding


class _Session:
    """Seeds every run alike, and puts the caller's global state back when done.

    Each run starts from the same Keras name counters (both models get the
    same layer and variable paths, so they can be matched by path) and from
    ``keras.utils.set_random_seed(seed)``. On exit: Python's and numpy's
    global random state, the backend's global seeds (TensorFlow, torch),
    Keras's global seed and seed generator, Keras's name counters and the
    determinism flags are what they were.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._names: dict[str, int] = {}

    @contextlib.contextmanager
    def active(self) -> Iterator[_Session]:
        with K.keras_globals_kept() as names, K.untouched(seeds=True, determinism=True):
            self._names = dict(names)
            yield self

    def begin_run(self) -> None:
        """Seed and name counters as at the start of the call."""
        K.set_name_counters(self._names)
        K.keras_module().utils.set_random_seed(self.seed)


# --------------------------------------------------------------------------- unseeded numpy


_LIBRARIES = (os.path.dirname(np.__file__) + os.sep, os.path.dirname(__file__) + os.sep)


def _caller_site() -> str | None:
    """``file.py:42 in train`` for the user frame calling the patched function, or None."""
    frame = sys._getframe(2)
    path = frame.f_code.co_filename
    if path.startswith(_LIBRARIES) or any(
        f"{os.sep}{lib}{os.sep}" in path for lib in ("keras", "tensorflow", "jax", "torch")
    ):
        return None
    return f"{os.path.basename(path)}:{frame.f_lineno} in {frame.f_code.co_name}"


@contextlib.contextmanager
def _watch_unseeded() -> Iterator[list[str]]:
    """Record where user code calls ``np.random.default_rng()`` without a seed.

    ``keras.utils.set_random_seed`` seeds numpy's *global* RNG; a Generator
    made without a seed draws from the operating system instead, and is the
    usual reason two seeded runs differ.
    """
    sites: list[str] = []
    original = np.random.default_rng

    def default_rng(seed: Any = None) -> np.random.Generator:
        if seed is None and (site := _caller_site()) is not None and site not in sites:
            sites.append(site)
        return original(seed)

    np.random.default_rng = default_rng
    try:
        yield sites
    finally:
        np.random.default_rng = original


# --------------------------------------------------------------------------- variables


@dataclass(frozen=True)
class _Var:
    """One variable of a trained model, with the key that matches it in another run."""

    key: str
    kind: str  # "weight", "optimizer" or "RNN state"
    label: str
    value: np.ndarray


def _snapshot(model: Any) -> list[_Var]:
    """Every model variable, optimizer variable and RNN state, in model order."""
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
        out.append(_Var(f"w:{v.path}", "weight", label, _numpy(v)))
    optimizer = getattr(model, "optimizer", None)
    for v in getattr(optimizer, "variables", None) or []:
        out.append(_Var(f"o:{v.path}", "optimizer", f"optimizer {v.path}", _numpy(v)))
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


def _numpy(v: Any) -> np.ndarray:
    return np.array(v.numpy() if hasattr(v, "numpy") else v)


@dataclass(frozen=True)
class _VarDiff:
    """How one variable differs between two runs."""

    label: str
    kind: str
    shape: tuple[int, ...]
    mismatched: int
    size: int
    max_abs: float
    at: tuple[int, ...]
    value_a: float
    value_b: float
    tolerance: Tolerance


@dataclass(frozen=True)
class _VarReport:
    """All variable differences between run A (the reference) and run B."""

    diffs: list[_VarDiff]
    totals: dict[str, int]
    structure: list[str]

    @property
    def ok(self) -> bool:
        return not self.diffs and not self.structure

    def differs(self, kind: str) -> bool:
        return any(d.kind == kind for d in self.diffs)


def _pair(a: list[_Var], b: list[_Var]) -> tuple[list[tuple[_Var, _Var]], list[str]]:
    """Match variables by key; by position within a kind when the keys differ."""
    by_key = {v.key: v for v in b}
    if {v.key for v in a} == set(by_key) and len(by_key) == len(a):
        return [(v, by_key[v.key]) for v in a], []
    pairs: list[tuple[_Var, _Var]] = []
    problems = []
    for kind in ("weight", "optimizer", "RNN state"):
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
        tol = resolve_tolerance(rtol, atol, va.value.dtype)
        xa, xb = np.atleast_1d(va.value), np.atleast_1d(vb.value)
        if xa.shape != xb.shape:
            structure.append(
                f"{va.label}: shape {va.value.shape} in one run, {vb.value.shape} in the other"
            )
            continue
        m = compare(xb, xa, tol)
        if m is None:
            continue
        at = m.max_abs_at if va.value.ndim else ()
        diffs.append(
            _VarDiff(
                label=va.label,
                kind=va.kind,
                shape=tuple(va.value.shape),
                mismatched=m.mismatched,
                size=int(xa.size),
                max_abs=m.max_abs,
                at=at,
                value_a=float(xa[m.max_abs_at]),
                value_b=float(xb[m.max_abs_at]),
                tolerance=tol,
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
    lines += [
        f"  variables that differ: {len(report.diffs)} of {n_all} ({kinds})",
        f"  first variable that differs: {first.label}, shape {first.shape}",
        f"    greatest abs diff {format_value(first.max_abs)} at {first.at}: "
        f"{name_a} {first.value_a:.8g}, {name_b} {first.value_b:.8g}; "
        f"{first.mismatched} of {first.size} values differ; "
        f"allowed {first.tolerance.describe(name_a)}",
    ]
    if len(report.diffs) > 1:
        ranked = sorted(
            report.diffs, key=lambda d: -d.max_abs if not math.isnan(d.max_abs) else -math.inf
        )
        lines.append("  greatest differences:")
        lines.append(f"    {'max abs diff':>12}  {'differ':>11}  variable")
        for d in ranked[:_ROWS]:
            lines.append(
                f"    {format_value(d.max_abs):>12}  {f'{d.mismatched}/{d.size}':>11}  {d.label}"
            )
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


# --------------------------------------------------------------------------- arguments


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    return int(seed)


def _check_count(value: Any, arg: str, least: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < least:
        raise ValueError(f"{arg} must be >= {least}, got {value}")
    return int(value)


def _check_factory(fn: Any, arg: str, what: str) -> None:
    if K.is_model(fn):
        raise TypeError(
            f"{arg} must be a function that {what}, got the model {fn.name!r} itself: a model "
            f"trained once cannot be trained again from the same start. Pass the function "
            f"that builds it, e.g. {arg}=lambda: build_model()"
        )
    if not callable(fn):
        raise TypeError(f"{arg} must be a function that {what}, got {type(fn).__name__}")


def _length(tree: Any, arg: str) -> int:
    leaves = flatten(tree)
    if tree is None or not leaves:
        raise TypeError(
            f"{arg} must be an array or a list/dict of arrays, got {type(tree).__name__}"
        )
    lengths = set()
    for path, leaf in leaves:
        if not hasattr(leaf, "shape"):
            raise TypeError(
                f"{arg}{path} must be an array (numpy or a tensor), got {type(leaf).__name__}: "
                "both runs must see the same samples in the same order, so datasets and "
                "generators are not taken"
            )
        if not leaf.shape:
            raise ValueError(f"{arg}{path} must have a sample axis, got a scalar")
        lengths.add(leaf.shape[0])
    if len(lengths) > 1:
        raise ValueError(f"{arg} holds arrays of different lengths {sorted(lengths)}")
    return int(lengths.pop())


def _check_fit_kwargs(fit_kwargs: Any) -> dict[str, Any]:
    if fit_kwargs is None:
        return {}
    if not isinstance(fit_kwargs, Mapping):
        raise TypeError(
            f"fit_kwargs must be a dict of fit() arguments, got {type(fit_kwargs).__name__}"
        )
    reserved = [k for k in _RESERVED if k in fit_kwargs]
    if reserved:
        raise ValueError(
            f"fit_kwargs must not set {reserved}: assert_fit_equivalent passes x, y and epochs "
            "itself, and the loop it checks is plain fit(epochs=1) repeated (no initial_epoch)"
        )
    callbacks = fit_kwargs.get("callbacks")
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            f"fit_kwargs['callbacks'] must be a list of callbacks, got {type(callbacks).__name__}"
        )
    return dict(fit_kwargs)


def _check_fit_signature(model: Any, kwargs: Mapping[str, Any]) -> None:
    """Every ``fit_kwargs`` key is an argument of ``model.fit`` (checked before it trains)."""
    try:
        params = inspect.signature(model.fit).parameters
    except (TypeError, ValueError):  # pragma: no cover - a fit without a signature
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise TypeError(
            f"fit_kwargs has keys that {type(model).__name__}.fit() does not take: {unknown}"
        )


def _build(make_model: Any, arg: str, earlier: list[Any]) -> Any:
    model = make_model()
    if not K.is_model(model):
        raise TypeError(f"{arg}() must return a Keras model, got {type(model).__name__}")
    if not getattr(model, "compiled", False) or getattr(model, "optimizer", None) is None:
        raise ValueError(
            f"{arg}() returned the uncompiled model {model.name!r}: compile it inside {arg} "
            "(model.compile(optimizer=..., loss=...)) so every run starts with a fresh optimizer"
        )
    if any(model is m for m in earlier):
        raise ValueError(
            f"{arg}() returned the same model object twice: it must build a new model at "
            "every call, so each run starts from fresh weights and a fresh optimizer"
        )
    return model


def _fresh_callbacks(callbacks: Sequence[Any]) -> list[Any]:
    """Copies of the user's callbacks (without copying a model they hold), or the originals."""
    memo: dict[int, Any] = {}
    for cb in callbacks:
        model = getattr(cb, "_model", None)
        if model is not None:
            memo[id(model)] = model
    try:
        return copy.deepcopy(list(callbacks), memo)
    except Exception:
        return list(callbacks)


# --------------------------------------------------------------------------- fit runs


@dataclass
class _Trained:
    """One training run: its model's variables and its per-epoch history."""

    variables: list[_Var]
    history: dict[str, list[float]]
    description: str
    compute_dtype: str
    stateful: list[str]


def _trained(model: Any, history: dict[str, list[float]]) -> _Trained:
    return _Trained(
        _snapshot(model),
        history,
        K.describe_model(model),
        model.compute_dtype,
        [path for path, _ in K.stateful_layers(model)],
    )


def _train(
    session: _Session,
    make_model: Any,
    x: Any,
    y: Any,
    kwargs: dict[str, Any],
    *,
    epochs: int,
    split: bool,
    reset: bool,
    earlier: list[Any],
) -> _Trained:
    """One run from the seed: ``fit(epochs=epochs)`` once, or (``split``) ``epochs`` x ``fit(epochs=1)``.

    ``reset``: a ``ResetStatesCallback`` in the single fit, ``reset_states``
    before each call of the loop (first, before any user callback runs, in both).
    """
    session.begin_run()
    model = _build(make_model, "make_model", earlier)
    earlier.append(model)
    _check_fit_signature(model, kwargs)
    callbacks = _fresh_callbacks(kwargs.get("callbacks") or [])
    if reset and not split:
        callbacks.insert(0, K.ResetStatesCallback())
    history: dict[str, list[float]] = {}
    for n in [1] * epochs if split else [epochs]:
        if reset and split:
            K.reset_states(model)
        one = model.fit(x, y, **{**kwargs, "epochs": n, "callbacks": callbacks}).history
        for key, values in _history(one).items():
            history.setdefault(key, []).extend(values)
    return _trained(model, history)


def _history(history: Mapping[str, Any]) -> dict[str, list[float]]:
    return {k: [float(np.asarray(v)) for v in values] for k, values in history.items()}


# --------------------------------------------------------------------------- causes


def _callback_causes(callbacks: Sequence[Any], epochs: int) -> list[str]:
    """Callbacks whose behaviour depends on the epoch index or on the start of training."""
    keras = K.keras_module()
    base = keras.callbacks.Callback
    causes = []
    for n, cb in enumerate(callbacks):
        name = type(cb).__name__
        where = f"fit_kwargs['callbacks'][{n}] ({name})"
        if isinstance(cb, keras.callbacks.LearningRateScheduler):
            causes.append(
                f"{where} is called with the epoch index, and the index restarts at 0 in every "
                "fit(epochs=1) call: the loop trains every epoch with the epoch-0 learning rate. "
                f"Fix the loop: `for i in range({epochs}): model.fit(x, y, epochs=i + 1, "
                "initial_epoch=i)`, or schedule by step instead: give the optimizer a "
                "keras.optimizers.schedules.LearningRateSchedule (it reads optimizer.iterations, "
                "which carries over between fit calls)"
            )
        elif isinstance(cb, (keras.callbacks.ReduceLROnPlateau, keras.callbacks.EarlyStopping)):
            causes.append(
                f"{where} counts epochs without improvement and starts counting afresh in "
                "on_train_begin, i.e. at every fit call of the loop: there it never reaches its "
                "patience. Call fit once, or keep your own counter across the loop"
            )
        elif isinstance(cb, K.ResetStatesCallback):
            continue
        else:
            hooks = [
                h
                for h in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end")
                if getattr(type(cb), h, None) is not getattr(base, h)
            ]
            if hooks:
                causes.append(
                    f"{where} defines {', '.join(hooks)}: in the loop every fit call is a new "
                    "training run (on_train_begin/on_train_end run each time) and its only epoch "
                    "is epoch 0. If it uses the epoch index or keeps state across epochs, "
                    "pass initial_epoch=i in your loop or keep that state outside fit"
                )
    return causes


def _fit_causes(
    *,
    fit_kwargs: Mapping[str, Any],
    callbacks: list[str],
    stateful: list[str],
    reset: bool,
    weights_differ: bool,
    states_differ: bool,
    repeat: _VarReport | None,
    unseeded: list[str],
    seed: int,
) -> list[str]:
    """Likely causes of a fit(epochs=N) / N x fit(epochs=1) difference, most specific first."""
    causes = list(callbacks)
    freq = fit_kwargs.get("validation_freq", 1)
    if freq != 1:
        causes.append(
            f"validation_freq={freq!r} counts epochs from the start of each fit call: the loop "
            "validates on other epochs than the single fit (or never), and validation runs the "
            "model (and moves stateful RNN states)"
        )
    if stateful and states_differ and not weights_differ:
        causes.append(
            "the weights agree but the RNN states differ: the states were reset or carried "
            "differently in the two runs (a callback or code that resets states in one of them)"
        )
    if repeat is not None and not repeat.ok:
        causes.append(
            f"the single fit does not even repeat itself under seed {seed} with op determinism "
            "on: make_model or the data use randomness that keras.utils.set_random_seed does not "
            "control, or an op has no deterministic kernel (GPU). Check with "
            "assert_training_reproducible"
        )
    elif repeat is not None:
        causes.append(
            f"the single fit repeats itself under seed {seed}: the difference comes from "
            "splitting training into several fit calls, not from unseeded randomness"
        )
    causes.extend(_unseeded_lines(unseeded))
    shuffle = fit_kwargs.get("shuffle", True)
    if shuffle:
        given = (
            f"shuffle={shuffle!r}"
            if "shuffle" in fit_kwargs
            else ("shuffle was not given, and fit shuffles by default (shuffle=True)")
        )
        advice = (
            "; a stateful model should not shuffle at all (its states carry from one batch to "
            "the next in sample order): pass fit_kwargs={'shuffle': False}"
            if stateful
            else ""
        )
        causes.append(
            f"{given}: each epoch's sample order is drawn from TensorFlow's random stream, so "
            "the runs agree only if they draw the same permutations in the same order (anything "
            f"else drawing from the stream between fit calls shifts it){advice}"
        )
    if stateful and not reset and not callbacks and not (states_differ and not weights_differ):
        causes.append(
            f"stateful layers {stateful} carry their states from each epoch into the next "
            "(reset_states=False): anything that resets or moves them in one run only (a "
            "callback, validation, predict between fit calls) changes every later epoch. "
            "Compare with reset_states=True to see whether the states are the difference"
        )
    return causes


def _unseeded_lines(sites: list[str]) -> list[str]:
    return [
        f"np.random.default_rng() without a seed was called at {site}: it draws from the "
        "operating system, not from keras.utils.set_random_seed. Give it a seed "
        "(np.random.default_rng(seed))"
        for site in sites
    ]


# --------------------------------------------------------------------------- assertions


@recorded
def assert_fit_equivalent(
    make_model: Callable[[], Any],
    x: Any,
    y: Any,
    *,
    epochs: int = 2,
    fit_kwargs: Mapping[str, Any] | None = None,
    reset_states: bool = False,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that one ``fit(epochs=N)`` trains like N calls of ``fit(epochs=1)``.

    Both runs start from ``keras.utils.set_random_seed(seed)`` and a fresh
    model from ``make_model()``, with deterministic ops on (TensorFlow op
    determinism; torch deterministic algorithms; JAX is deterministic on CPU,
    see the README for GPUs). Compared
    after training: every model variable (weights, non-trainable variables,
    dropout seed-generator states), the optimizer's variables (``iterations``,
    moments, ...), every stateful RNN state, and the per-epoch values of every
    ``History`` key (loss, metrics, validation).

    The loop is the one people write (seed 002): plain ``fit(x, y, epochs=1,
    **fit_kwargs)`` repeated, without ``initial_epoch``. ``fit_kwargs`` go to
    both runs unchanged; ``shuffle`` keeps Keras's default ``True`` unless you
    pass it (Keras 3 on TensorFlow continues the shuffle stream from one fit
    call to the next, so shuffled runs agree too), and ``verbose`` defaults to
    0. Each run gets its own copy of your callbacks; yours are not touched.

    Args:
        make_model: function returning a fresh *compiled* model at every call.
        x: training inputs: an array, or a list/dict of arrays.
        y: training targets, as many samples as ``x``.
        epochs: N, the number of epochs (>= 1).
        fit_kwargs: more ``fit`` arguments (``batch_size``, ``shuffle``,
            ``callbacks``, ``validation_data``...); not ``x``, ``y``,
            ``epochs`` or ``initial_epoch``.
        reset_states: reset every stateful RNN layer before every epoch in both
            runs: ``ResetStatesCallback`` in the single fit, ``reset_states``
            before each call in the loop.
        seed: the seed both runs start from.
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            dtype (float32: 1.3e-6 and 1e-5; integer variables exactly).
            ``rtol=0, atol=0`` asks for bitwise equality, which deterministic
            ops on CPU give.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: the runs differ. The message gives the first epoch
            whose loss differs (both losses, a per-epoch table), how many
            weights, optimizer variables and RNN states differ, the first
            variable that differs (layer, weight name and path, greatest
            difference) and the likely causes it detects: an epoch-indexed
            callback (``LearningRateScheduler``: use ``initial_epoch``),
            ``EarlyStopping``/``ReduceLROnPlateau``, ``validation_freq``,
            shuffling, states carried or reset differently, and whether the
            single fit repeats itself at all (non-deterministic ops, unseeded
            randomness, with the line that called ``np.random.default_rng()``).
        TypeError, ValueError: an argument is wrong; the message names it.

    Example:
        >>> def make_model():
        ...     model = keras.Sequential([keras.Input(batch_shape=(100, 1, 1)),
        ...                               layers.LSTM(10, stateful=True), layers.Dense(1)])
        ...     model.compile(loss="mse", optimizer="adadelta")
        ...     return model
        >>> pytest_rnn.assert_fit_equivalent(make_model, x, y, epochs=3, reset_states=True,
        ...                                  fit_kwargs={"batch_size": 100, "shuffle": False})
    """
    __tracebackhide__ = True
    _check_factory(make_model, "make_model", "builds and compiles a new model")
    n_x, n_y = _length(x, "x"), _length(y, "y")
    if n_x != n_y:
        raise ValueError(f"x and y must hold as many samples: x has {n_x}, y has {n_y}")
    epochs = _check_count(epochs, "epochs", 1)
    kwargs = _check_fit_kwargs(fit_kwargs)
    kwargs.setdefault("verbose", 0)
    if not isinstance(reset_states, bool):
        raise TypeError(f"reset_states must be True or False, got {type(reset_states).__name__}")
    seed = _check_seed(seed)
    resolve_tolerance(rtol, atol, "float32")  # both-or-neither, early

    built: list[Any] = []
    with _Session(seed).active() as session, _watch_unseeded() as unseeded:

        def run(split: bool) -> _Trained:
            return _train(
                session, make_model, x, y, kwargs,
                epochs=epochs, split=split, reset=reset_states, earlier=built,
            )  # fmt: skip

        single, loop = run(split=False), run(split=True)
        loss_tol = resolve_tolerance(rtol, atol, single.compute_dtype)
        losses, other = _compare_history(single.history, loop.history, loss_tol)
        variables = _compare_vars(single.variables, loop.variables, rtol, atol)
        if not losses and not other and variables.ok:
            return
        callback_causes = _callback_causes(kwargs.get("callbacks") or [], epochs)
        repeat = None
        if not callback_causes:
            # Only an unexplained failure pays for a third run.
            again = run(split=False)
            repeat = _compare_vars(single.variables, again.variables, rtol, atol)
    name_a, name_b = f"fit(epochs={epochs})", f"{epochs} x fit(epochs=1)"
    causes = _fit_causes(
        fit_kwargs=kwargs,
        callbacks=callback_causes,
        stateful=single.stateful,
        reset=reset_states,
        weights_differ=variables.differs("weight"),
        states_differ=variables.differs("RNN state"),
        repeat=repeat,
        unseeded=list(unseeded),
        seed=seed,
    )
    lines = [
        f"One {name_a} and {name_b} train differently.",
        f"  model {single.description}; x {_shapes(x)}, y {_shapes(y)}; "
        f"fit_kwargs {_describe_kwargs(kwargs)}; reset_states={reset_states}; seed {seed}",
        *_format_losses(losses, other, name_a, name_b, loss_tol),
        *_format_vars(variables, name_a, name_b),
        "  likely causes:",
        *(f"    - {c}" for c in causes),
    ]
    picture = _loss_picture(
        lines[0], {name_a: single.history, name_b: loop.history}, variables, loss_tol
    )
    raise RNNAssertionError("\n".join(lines), picture=picture)


@recorded
def assert_training_reproducible(
    train: Callable[[], Any],
    *,
    runs: int = 2,
    seed: int = 0,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that ``train()`` gives the same model every time under the same seed.

    Before each run: ``keras.utils.set_random_seed(seed)`` and deterministic
    ops on (as in :func:`assert_fit_equivalent`). Every run's model must agree with the first run's: every
    model variable, the optimizer's variables and the stateful RNN states.
    Randomness that the seed does not reach (an unseeded
    ``np.random.default_rng()`` shuffling or splitting the data, seeds from
    the clock or ``os.urandom``, file-listing order) makes the runs differ.

    Args:
        train: function that builds, trains and returns a Keras model, a new one
            at every call.
        runs: how many times to run it (>= 2).
        seed: the seed every run starts from.
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            dtype (float32: 1.3e-6 and 1e-5; integer variables exactly);
            ``rtol=0, atol=0`` asks for bitwise equality.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: a run differs from the first. The message names the
            run, how many weights, optimizer variables and RNN states differ,
            the first variable that differs (layer, weight name and path,
            greatest difference), and where the randomness may come from,
            with the file and line of any ``np.random.default_rng()`` called
            without a seed.
        TypeError, ValueError: an argument is wrong, or ``train`` does not
            return a new Keras model; the message names it.

    Example:
        >>> def train():
        ...     model = make_model()
        ...     model.fit(x, y, epochs=2, verbose=0)
        ...     return model
        >>> pytest_rnn.assert_training_reproducible(train)
    """
    __tracebackhide__ = True
    _check_factory(train, "train", "builds, trains and returns a new model")
    runs = _check_count(runs, "runs", 2)
    seed = _check_seed(seed)
    resolve_tolerance(rtol, atol, "float32")  # both-or-neither, early

    snapshots: list[list[_Var]] = []
    histories: dict[str, dict[str, list[float]]] = {}
    models: list[Any] = []
    with _Session(seed).active() as session, _watch_unseeded() as unseeded:
        for _ in range(runs):
            session.begin_run()
            model = train()
            if not K.is_model(model):
                raise TypeError(
                    f"train() must return the trained Keras model, got {type(model).__name__}"
                )
            if any(model is m for m in models):
                raise ValueError(
                    "train() returned the same model object twice: it must build and train a "
                    "new model at every call"
                )
            models.append(model)
            snapshots.append(_snapshot(model))
            histories[f"run {len(models)}"] = _last_history(model)
        description = K.describe_model(models[0])
        del models
    reports = [
        (n, _compare_vars(snapshots[0], s, rtol, atol)) for n, s in enumerate(snapshots[1:], 2)
    ]
    failed = [(n, r) for n, r in reports if not r.ok]
    if not failed:
        return
    lines = [
        f"train() does not reproduce under seed {seed}: "
        f"{', '.join(f'run {n}' for n, _ in failed)} of {runs} differ{'s' if len(failed) == 1 else ''} "
        "from run 1.",
        f"  model {description}",
    ]
    for n, report in failed:
        if len(failed) > 1:
            lines.append(f"  run {n}:")
        lines.extend(_format_vars(report, "run 1", f"run {n}"))
    lines.append("  where the randomness may come from:")
    lines.extend(f"    - {c}" for c in _reproducible_causes(failed, list(unseeded)))
    picture = _loss_picture(
        lines[0], histories, failed[0][1], resolve_tolerance(rtol, atol, "float32")
    )
    raise RNNAssertionError("\n".join(lines), picture=picture)


def _last_history(model: Any) -> dict[str, list[float]]:
    """The per-epoch history of the model's last ``fit`` (Keras keeps it as ``model.history``)."""
    history = getattr(getattr(model, "history", None), "history", None)
    if not isinstance(history, Mapping):
        return {}
    try:
        return _history(history)
    except (TypeError, ValueError):
        return {}


def _loss_picture(
    title: str,
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    variables: _VarReport,
    tol: Tolerance,
) -> LossPicture:
    """Per-epoch loss of every run (``loss``, else the first key they share) and the differing variables."""
    keys = [
        k for k in next(iter(histories.values()), {}) if all(k in h for h in histories.values())
    ]
    key = "loss" if "loss" in keys else (keys[0] if keys else "loss")
    losses = {name: list(h.get(key, [])) for name, h in histories.items()}
    runs = list(histories.values())
    parted = [
        d.epoch
        for other in runs[1:]
        for d in _compare_history({key: runs[0].get(key, [])}, {key: other.get(key, [])}, tol)[0]
    ]
    return LossPicture(
        title, losses, key, min(parted) if parted else None,
        tuple((d.label, d.max_abs) for d in variables.diffs), tol.rtol, tol.atol,
    )  # fmt: skip


def _reproducible_causes(failed: list[tuple[int, _VarReport]], unseeded: list[str]) -> list[str]:
    causes = _unseeded_lines(unseeded)
    steps = [
        d
        for _, r in failed
        for d in r.diffs
        if d.kind == "optimizer" and d.label.endswith("/iteration")
    ]
    if steps:
        d = steps[0]
        causes.append(
            f"the optimizer took a different number of steps ({d.value_a:.0f} in run 1, "
            f"{d.value_b:.0f} in another): the data size, batch size or epochs change between runs"
        )
    causes += [
        "a numpy Generator or RandomState made without a seed (np.random.default_rng(), "
        "np.random.RandomState()), or random.Random(), used to shuffle, split, augment or "
        "initialise: give it a seed",
        "seeds taken from the clock, os.urandom, uuid or hash() of strings (PYTHONHASHSEED)",
        "data whose order changes between runs: os.listdir/glob order, iterating a set, "
        "a tf.data pipeline with unseeded shuffle or parallel interleave",
        "ops without a deterministic kernel (some GPU ops), or a model built outside train() "
        f"and reused; {K.backend_name()} backend: {K.DETERMINISM.get(K.backend_name(), '?')}",
    ]
    return causes


def _shapes(tree: Any) -> str:
    shapes = [np.shape(leaf) for _, leaf in flatten(tree)]
    return str(shapes[0]) if len(shapes) == 1 else str(shapes)


def _describe_kwargs(kwargs: Mapping[str, Any]) -> str:
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
