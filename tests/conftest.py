"""Shared test set-up: the TensorFlow backend, quiet logs, small seeded inputs.

``KERAS_BACKEND=jax pytest -m backends`` runs the backend-marked subset on
JAX (or torch); tests marked ``tensorflow_only`` skip there with their reason.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest

BACKEND = os.environ["KERAS_BACKEND"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip ``tensorflow_only`` tests on the other backends, saying why."""
    if BACKEND == "tensorflow":
        return
    for item in items:
        mark = item.get_closest_marker("tensorflow_only")
        if mark is not None:
            why = mark.args[0] if mark.args else "TensorFlow-only behaviour"
            item.add_marker(pytest.mark.skip(reason=f"{why} (KERAS_BACKEND={BACKEND})"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy Generator (never the global RNG)."""
    return np.random.default_rng(1234)
