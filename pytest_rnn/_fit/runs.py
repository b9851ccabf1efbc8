"""Training runs under one seed: the seeding session, the unseeded-generator watch, the fit runs.

:class:`_Session` starts every run from the same seed and Keras name
counters and puts the caller's global state back afterwards;
:func:`_watch_unseeded` records where user code makes a numpy Generator
without a seed; :func:`_train` builds a model from ``make_model`` and trains
it by one ``fit(epochs=N)`` or by N calls of ``fit(epochs=1)``, returning its
snapshot (:mod:`.diff`) and per-epoch history. The checks of what the runs
are given (``x``/``y`` lengths, ``fit_kwargs``, the built model) sit here too.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import sys
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.text import shapes
from pytest_rnn._core.tree import flatten
from pytest_rnn._fit.diff import _snapshot, _Var

#: fit arguments the assertion sets itself.
_RESERVED = ("x", "y", "epochs", "initial_epoch")


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
        """The session's extent: the caller's globals kept, deterministic ops on."""
        with K.keras_globals_kept() as names, K.untouched(seeds=True, determinism=True):
            self._names = dict(names)
            yield self

    def begin_run(self) -> None:
        """Seed and name counters as at the start of the call."""
        K.set_name_counters(self._names)
        K.seed_keras(self.seed)


# --------------------------------------------------------------------------- unseeded numpy


def _caller_site() -> str | None:
    """``file.py:42 in train`` for the user frame calling the patched function, or None."""
    frame = sys._getframe(2)
    path = frame.f_code.co_filename
    if K.is_library_file(path):
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


# --------------------------------------------------------------------------- arguments


def _length(tree: Any, arg: str) -> int:
    """How many samples ``tree`` (``x`` or ``y``) holds: arrays only, one length for all."""
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
                "both runs must see the same samples in the same order, so generators are not "
                "taken (a tf.data.Dataset is)"
            )
        if not leaf.shape:
            raise ValueError(f"{arg}{path} must have a sample axis, got a scalar")
        lengths.add(leaf.shape[0])
    if len(lengths) > 1:
        raise ValueError(f"{arg} holds arrays of different lengths {sorted(lengths)}")
    return int(lengths.pop())


@dataclass(frozen=True)
class _Data:
    """What every run of a fit assertion trains on.

    ``kind``: "arrays" (``x``, ``y``), "dataset" (one ``tf.data.Dataset``
    object, which every run iterates: a shuffling one continues its own order
    stream from run to run) or "factory" (a function called at the start of
    every run, after the seed is set, so each run gets its own pipeline, as a
    new process would).
    """

    x: Any
    y: Any
    kind: str

    @property
    def pipeline(self) -> bool:
        """Whether the data is a tf.data pipeline, which orders itself (fit's shuffle is ignored)."""
        return self.kind != "arrays"

    def for_run(self) -> tuple[Any, Any]:
        """``(x, y)`` for one ``fit`` run: the factory is called here, once per run."""
        if self.kind != "factory":
            return self.x, self.y
        dataset = self.x()
        if not K.is_dataset(dataset):
            raise TypeError(
                "x() must return a tf.data.Dataset yielding (inputs, targets) batches, got "
                f"{type(dataset).__name__}"
            )
        return dataset, None

    def describe(self) -> str:
        """``x ..., y ...`` for the message's second line."""
        if self.kind == "arrays":
            return f"x {shapes(self.x)}, y {shapes(self.y)}"
        if self.kind == "factory":
            name = getattr(self.x, "__name__", type(self.x).__name__)
            return f"x {name}() (a new tf.data.Dataset per run), y None"
        return f"x tf.data.Dataset {getattr(self.x, 'element_spec', '')}, y None"


def _training_data(x: Any, y: Any) -> _Data:
    """``x``/``y`` checked: arrays of one length, a ``tf.data.Dataset``, or a function building one."""
    if K.is_dataset(x) or (callable(x) and not hasattr(x, "shape")):
        what = "a tf.data.Dataset" if K.is_dataset(x) else "a function building a tf.data.Dataset"
        if y is not None:
            raise ValueError(f"y must be None when x is {what} (it yields (x, y) pairs)")
        return _Data(x, None, "dataset" if K.is_dataset(x) else "factory")
    n_x, n_y = _length(x, "x"), _length(y, "y")
    if n_x != n_y:
        raise ValueError(f"x and y must hold as many samples: x has {n_x}, y has {n_y}")
    return _Data(x, y, "arrays")


#: Why each assertion sets the reserved ``fit`` arguments itself.
_RESERVED_WHY = {
    "assert_fit_equivalent": "assert_fit_equivalent passes x, y and epochs itself, and the loop "
    "it checks is plain fit(epochs=1) repeated (no initial_epoch)",
    "assert_resume_equivalent": "assert_resume_equivalent passes x, y, epochs and "
    "initial_epoch (the resume point) itself",
}


def _check_fit_kwargs(fit_kwargs: Any, assertion: str = "assert_fit_equivalent") -> dict[str, Any]:
    """``fit_kwargs`` as a new dict, checked: a mapping, none of the keys set here, callbacks a list."""
    if fit_kwargs is None:
        return {}
    if not isinstance(fit_kwargs, Mapping):
        raise TypeError(
            f"fit_kwargs must be a dict of fit() arguments, got {type(fit_kwargs).__name__}"
        )
    reserved = [k for k in _RESERVED if k in fit_kwargs]
    if reserved:
        raise ValueError(f"fit_kwargs must not set {reserved}: {_RESERVED_WHY[assertion]}")
    callbacks = fit_kwargs.get("callbacks")
    if callbacks is not None and not isinstance(callbacks, (list, tuple)):
        raise TypeError(
            f"fit_kwargs['callbacks'] must be a list of callbacks, got {type(callbacks).__name__}"
        )
    return dict(fit_kwargs)


# --------------------------------------------------------------------------- building


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
    """``make_model()``, checked: a new compiled Keras model, none of ``earlier``."""
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


def _trained(model: Any, history: dict[str, list[float]], *, rng_apart: bool = False) -> _Trained:
    """What a run leaves to compare: the snapshot, the history, the model's description."""
    return _Trained(
        _snapshot(model, rng_apart=rng_apart),
        history,
        K.describe_model(model),
        model.compute_dtype,
        [path for path, _ in K.stateful_layers(model)],
    )


def _train(
    session: _Session,
    make_model: Any,
    data: _Data,
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
    x, y = data.for_run()
    callbacks = _fresh_callbacks(kwargs.get("callbacks") or [])
    if reset and not split:
        callbacks.insert(0, K.ResetStatesCallback())
    history: dict[str, list[float]] = {}
    for n in [1] * epochs if split else [epochs]:
        if reset and split:
            K.reset_states(model)
        one = _fit(model, x, y, **{**kwargs, "epochs": n, "callbacks": callbacks})
        for key, values in _history(one).items():
            history.setdefault(key, []).extend(values)
    return _trained(model, history)


#: Limits of Keras already warned about in this process, by (backend, limit): each is said once.
_WARNED: set[tuple[str, str]] = set()


def _fit(model: Any, x: Any, y: Any, **kwargs: Any) -> dict[str, Any]:
    """``model.fit(x, y, **kwargs).history``, with what Keras cannot do on this backend said.

    On torch, Keras 3 assigns stateful RNN states in place during the forward
    pass and autograd refuses the backward pass: the bare RuntimeError gets
    the reason. On JAX, its jitted train step drops the state updates: the
    states are all zero after fit, and a warning (once per process) says the
    check could not see states carry.
    """
    try:
        history = model.fit(x, y, **kwargs).history
    except RuntimeError as error:
        if K.stateful_layers(model) and "inplace operation" in str(error):
            raise RuntimeError(
                f"Keras cannot fit the stateful RNN layers {_stateful_paths(model)} on the "
                f"{K.backend_name()} backend: it assigns their states in place during the "
                "forward pass, and autograd then refuses the backward pass. Run this check on "
                "TensorFlow (KERAS_BACKEND=tensorflow), where stateful fit works"
            ) from error
        raise
    dropped = _states_dropped(model)
    if dropped and (K.backend_name(), "fit-states") not in _WARNED:
        _WARNED.add((K.backend_name(), "fit-states"))
        warnings.warn(
            f"pytest-rnn: the stateful RNN layers {dropped} hold all-zero states after fit() "
            f"on the {K.backend_name()} backend: Keras did not carry their states through "
            "training (on JAX its jitted train step drops the state updates). The check "
            "compared runs whose states never carried between batches, so it cannot tell "
            "how states carry across epochs or fit calls; run it on TensorFlow for that",
            UserWarning,
            stacklevel=2,
        )
    return dict(history)


def _stateful_paths(model: Any) -> list[str]:
    return [path for path, _ in K.stateful_layers(model)]


def _states_dropped(model: Any) -> list[str]:
    """The stateful RNN layers whose every state is exactly zero (after a fit: dropped)."""
    states = K.get_states(model)
    return [
        path
        for path in _stateful_paths(model)
        if path in states and not any(np.any(v) for v in states[path])
    ]


def _history(history: Mapping[str, Any]) -> dict[str, list[float]]:
    """A Keras ``History.history`` as plain floats."""
    return {k: [float(np.asarray(v)) for v in values] for k, values in history.items()}


def _last_history(model: Any) -> dict[str, list[float]]:
    """The per-epoch history of the model's last ``fit`` (Keras keeps it as ``model.history``)."""
    history = getattr(getattr(model, "history", None), "history", None)
    if not isinstance(history, Mapping):
        return {}
    try:
        return _history(history)
    except (TypeError, ValueError):
        return {}
