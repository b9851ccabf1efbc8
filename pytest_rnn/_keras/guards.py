"""The promise every assertion makes: the user's objects and globals are left as they were.

:func:`untouched` is the one guard the families use; :func:`keras_globals_kept`
adds Keras's own global seed and name counters for the fit family, which
reseeds and rebuilds models.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from pytest_rnn._keras.states import get_states, reset_states, set_states
from pytest_rnn._keras.switches import determinism_guard, precision_guard, seed_guard
from pytest_rnn._random import kept

__all__ = ["keras_globals_kept", "keras_seeds_kept", "seed_keras", "set_name_counters", "untouched"]

# Keras's global state a seeded, rebuilding run moves (keras.src: no public API reads it).
_KERAS_GLOBALS = ("global_random_seed", "global_seed_generator", "object_name_uids")


@contextlib.contextmanager
def untouched(*models: Any, seeds: bool = False, determinism: bool = False) -> Iterator[None]:
    """Leave ``models`` and the global state as they were, on success and on failure.

    Inside: full float32 matmul precision (TF32 off and the like); with
    ``determinism``, deterministic ops where the backend has a switch. On exit:
    Python's and numpy's global random state, the precision (and determinism)
    settings, with ``seeds`` the backends' global seeds, and each model's RNN
    states (reset, then set back to what they were on entry). ``None`` among
    ``models`` is skipped.
    """
    with contextlib.ExitStack() as undo:  # unwinds in reverse order, on failure too
        undo.enter_context(kept())
        if seeds:
            undo.enter_context(seed_guard())
        if determinism:
            undo.enter_context(determinism_guard())
        undo.enter_context(precision_guard())
        for model in models:
            if model is not None:
                undo.callback(_put_back, model, get_states(model))
        yield


def _put_back(model: Any, states: dict[str, Any]) -> None:
    reset_states(model)
    set_states(model, states)


@contextlib.contextmanager
def keras_globals_kept() -> Iterator[Mapping[str, int]]:
    """Keras's global seed, seed generator and name counters put back on exit.

    Yields the name counters as they were on entry, for :func:`set_name_counters`.
    """
    from keras.src.backend.common import global_state

    saved = {name: global_state.get_global_attribute(name) for name in _KERAS_GLOBALS}
    try:
        with _generator_state_kept(saved["global_seed_generator"]):
            yield dict(saved["object_name_uids"] or {})
    finally:
        for name, value in saved.items():
            global_state.set_global_attribute(name, value)


@contextlib.contextmanager
def keras_seeds_kept() -> Iterator[None]:
    """What ``keras.utils.set_random_seed`` moves besides Python and numpy, put back on exit.

    Keras's global seed and seed generator, and the backends' global seeds
    (:func:`~pytest_rnn._keras.switches.seed_guard`); the name counters are left
    alone. The ``rnn_seed`` fixture's undo.
    """
    from keras.src.backend.common import global_state

    saved = {name: global_state.get_global_attribute(name) for name in _KERAS_GLOBALS[:2]}
    try:
        with seed_guard(), _generator_state_kept(saved["global_seed_generator"]):
            yield
    finally:
        for name, value in saved.items():
            global_state.set_global_attribute(name, value)


@contextlib.contextmanager
def _generator_state_kept(generator: Any) -> Iterator[None]:
    """The state of Keras's global ``SeedGenerator`` (if one exists) put back on exit.

    Keras < 3.9's ``set_random_seed`` keeps the global generator and draws go on
    advancing it; restoring the object alone would not undo those draws.
    """
    state: Any = getattr(generator, "state", None)
    value = None if state is None else state.numpy()
    try:
        yield
    finally:
        if value is not None:
            state.assign(value)


def set_name_counters(names: Mapping[str, int]) -> None:
    """Keras's automatic layer-name counters set to ``names``: models built next get the same names."""
    from keras.src.backend.common import global_state

    global_state.set_global_attribute("object_name_uids", collections.defaultdict(int, names))


def seed_keras(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``: Python, numpy and the backend's seeds (undo: :func:`untouched`)."""
    from pytest_rnn._keras.layers import keras_module

    keras_module().utils.set_random_seed(seed)
