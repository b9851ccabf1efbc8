"""Shared test set-up: the TensorFlow backend, quiet logs, small seeded inputs.

``KERAS_BACKEND=jax pytest -m backends`` runs the backend-marked subset on
JAX (or torch); tests marked ``tensorflow_only`` skip there with their reason,
and tests marked ``torch_only`` skip on the other two.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# JAX compiles every jitted function, and every eager op, per model and shape; models
# of one architecture compile to the same programs. One compilation cache for the
# session, its xdist workers and its pytester subprocesses (set before JAX is imported,
# inherited by the workers) cut the JAX leg from 263 s to 172 s on 2 cores.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR",
    os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".pytest_cache", "jax"
    ),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import numpy as np
import pytest

BACKEND = os.environ["KERAS_BACKEND"]


_TORCH_CANNOT_FIT_STATEFUL = (
    # Keras 3.15 on torch assigns RNN states in place during the forward pass, and
    # autograd then refuses the backward pass.
    "Keras on torch cannot fit a stateful RNN (in-place state assignment breaks autograd)"
)
#: Markers for what Keras itself cannot do on a backend: marker -> {backend: why}.
KERAS_LIMITS = {
    "fits_stateful": {"torch": _TORCH_CANNOT_FIT_STATEFUL},
    "fit_carries_states": {
        "torch": _TORCH_CANNOT_FIT_STATEFUL,
        # Keras 3.15 on JAX does not track RNN states as variables, so its jitted
        # train and predict steps drop their updates: states never carry in fit().
        "jax": "Keras on JAX drops stateful RNN state updates inside fit() (untracked variables)",
    },
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip ``tensorflow_only`` and ``torch_only`` tests and Keras's known limits elsewhere, saying why."""
    for item in items:
        mark = item.get_closest_marker("torch_only")
        if mark is not None and BACKEND != "torch":
            why = mark.args[0] if mark.args else "torch-only behaviour"
            item.add_marker(pytest.mark.skip(reason=f"{why} (KERAS_BACKEND={BACKEND})"))
    if BACKEND == "tensorflow":
        return
    for item in items:
        mark = item.get_closest_marker("tensorflow_only")
        if mark is not None:
            why = mark.args[0] if mark.args else "TensorFlow-only behaviour"
            item.add_marker(pytest.mark.skip(reason=f"{why} (KERAS_BACKEND={BACKEND})"))
        for marker, limits in KERAS_LIMITS.items():
            if BACKEND in limits and item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=limits[BACKEND]))


@pytest.fixture
def session_seed() -> Iterator[int]:
    """``--rnn-seed 3`` for one test: the session setting, put back after."""
    from pytest_rnn import _config

    saved = _config.settings.seed
    _config.settings.seed = 3
    try:
        yield 3
    finally:
        _config.settings.seed = saved


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy Generator (never the global RNG)."""
    return np.random.default_rng(1234)
