"""Shared test set-up: the TensorFlow backend, quiet logs, small seeded inputs."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded numpy Generator (never the global RNG)."""
    return np.random.default_rng(1234)
