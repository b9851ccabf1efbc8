"""tf.data datasets: recognising one, reading one into arrays, seeing which ones ``fit`` trains on.

The fit assertions take a ``tf.data.Dataset`` (or a function building one)
where ``fit`` does; :func:`datasets_fitted` lets ``assert_training_reproducible``
see that every run of ``train()`` iterated one and the same dataset object.
``assert_windows_causal`` takes a ``make_windows`` that returns a dataset of
``(inputs, targets)`` batches (``keras.utils.timeseries_dataset_from_array``);
:func:`dataset_arrays` reads it into whole arrays.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any

import numpy as np

from pytest_rnn._keras.backend import to_numpy
from pytest_rnn._keras.layers import keras_module

__all__ = ["dataset_arrays", "datasets_fitted", "is_dataset"]


def is_dataset(obj: Any) -> bool:
    """Whether ``obj`` is a ``tf.data.Dataset`` (without importing TensorFlow if it is not loaded)."""
    tf = sys.modules.get("tensorflow")
    data = getattr(tf, "data", None)
    return data is not None and isinstance(obj, data.Dataset)


def dataset_arrays(dataset: Any, what: str) -> tuple[Any, ...]:
    """The elements of ``dataset`` (tuples of batches) read whole: each part's batches concatenated.

    Every element must be a tuple (or list) of the same length; the parts may
    be arrays or lists/dicts of arrays (as ``fit`` takes them). ``what`` names
    the dataset in the messages.
    """
    import tensorflow as tf

    parts: list[list[Any]] | None = None
    for element in dataset:
        if not isinstance(element, (tuple, list)):
            raise ValueError(
                f"{what} yields {type(element).__name__} elements, not (inputs, targets) "
                "pairs of batches: build it with its targets (timeseries_dataset_from_array("
                "data, targets, ...))"
            )
        if parts is None:
            parts = [[] for _ in element]
        if len(element) != len(parts):
            raise ValueError(f"{what} yields elements of {len(parts)} and of {len(element)} parts")
        for part, value in zip(parts, element):
            part.append(tf.nest.map_structure(to_numpy, value))
    if parts is None:
        raise ValueError(f"{what} yields no elements: make the series longer")
    return tuple(
        tf.nest.map_structure(lambda *batches: np.concatenate(batches), *part) for part in parts
    )


@contextlib.contextmanager
def datasets_fitted() -> Iterator[list[Any]]:
    """The ``tf.data.Dataset`` objects given to ``keras.Model.fit`` inside the block, in order.

    ``Model.fit`` is wrapped on the class for the extent of the block and put
    back on exit. The datasets are held until the block ends, so two runs'
    datasets are told apart by identity, never by a reused ``id``.
    """
    model_class = keras_module().Model
    own = "fit" in vars(model_class)
    original = model_class.fit
    seen: list[Any] = []

    @functools.wraps(original)
    def fit(self: Any, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        if is_dataset(x) and not any(x is d for d in seen):
            seen.append(x)
        return original(self, x, *args, **kwargs)

    model_class.fit = fit
    try:
        yield seen
    finally:
        if own:
            model_class.fit = original
        else:
            del model_class.fit
