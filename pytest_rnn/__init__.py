"""pytest-rnn: prove that the sequence model you train is the function you run.

Assertions for Keras 3 sequence models, to call inside your own tests:

- :func:`assert_stateful_equals_batch`: a stateful streaming copy agrees with
  the batch model, chunk by chunk.

Helpers for stateful models (Keras 3 removed ``Model.reset_states``):
:func:`reset_states`, :func:`get_states`, :func:`set_states`,
:func:`stateful_twin` and :class:`ResetStatesCallback`.

Hypothesis strategies live in :mod:`pytest_rnn.strategies`. Importing this
package does not import Keras or any backend.
"""

from __future__ import annotations

from typing import Any

from pytest_rnn._errors import RNNAssertionError as RNNAssertionError
from pytest_rnn._keras import get_states as get_states
from pytest_rnn._keras import reset_states as reset_states
from pytest_rnn._keras import set_states as set_states
from pytest_rnn._keras import stateful_twin as stateful_twin
from pytest_rnn._stateful import assert_stateful_equals_batch as assert_stateful_equals_batch

__version__ = "0.1.0"

__all__ = [
    "RNNAssertionError",
    "ResetStatesCallback",
    "assert_stateful_equals_batch",
    "get_states",
    "reset_states",
    "set_states",
    "stateful_twin",
]


def __getattr__(name: str) -> Any:
    # ResetStatesCallback subclasses keras.callbacks.Callback: built on first use.
    if name == "ResetStatesCallback":
        from pytest_rnn import _keras

        return _keras.ResetStatesCallback
    raise AttributeError(f"module 'pytest_rnn' has no attribute {name!r}")
