"""The Keras adapter: private, may change at any time.

The only code of pytest-rnn that imports Keras or a backend library. The
assertion families import this face alone (never its modules, never Keras)
and never branch on the backend: what differs between TensorFlow, JAX and
torch lives in :mod:`.backend` and :mod:`.loops`. Keras is imported inside
functions only, so importing pytest_rnn does not pay for TensorFlow.

Floors, each importing only those below it: :mod:`.layers` (walks,
descriptions, model checks) at the bottom; :mod:`.backend` (compiled calls,
gradients, guards, the trace counter); :mod:`.loops`, :mod:`.timing`,
:mod:`.states`, :mod:`.calls`, :mod:`.twins`; :mod:`.guards` on top.
"""

from __future__ import annotations

from typing import Any

from pytest_rnn._keras import states as _states
from pytest_rnn._keras.backend import DETERMINISM as DETERMINISM
from pytest_rnn._keras.backend import TRACES as TRACES
from pytest_rnn._keras.backend import determinism_guard as determinism_guard
from pytest_rnn._keras.backend import eager_call as eager_call
from pytest_rnn._keras.backend import float64_missing as float64_missing
from pytest_rnn._keras.backend import float64_scope as float64_scope
from pytest_rnn._keras.backend import input_gradients as input_gradients
from pytest_rnn._keras.backend import name as backend_name
from pytest_rnn._keras.backend import precision_guard as precision_guard
from pytest_rnn._keras.backend import seed_guard as seed_guard
from pytest_rnn._keras.backend import to_numpy as to_numpy
from pytest_rnn._keras.calls import compiled as compiled
from pytest_rnn._keras.guards import keras_globals_kept as keras_globals_kept
from pytest_rnn._keras.guards import set_name_counters as set_name_counters
from pytest_rnn._keras.guards import untouched as untouched
from pytest_rnn._keras.layers import check_input_shapes as check_input_shapes
from pytest_rnn._keras.layers import check_model as check_model
from pytest_rnn._keras.layers import describe_layer as describe_layer
from pytest_rnn._keras.layers import describe_model as describe_model
from pytest_rnn._keras.layers import is_graph_model as is_graph_model
from pytest_rnn._keras.layers import is_model as is_model
from pytest_rnn._keras.layers import iter_layers as iter_layers
from pytest_rnn._keras.layers import keras_module as keras_module
from pytest_rnn._keras.layers import needs_static_time as needs_static_time
from pytest_rnn._keras.layers import rnn_layers as rnn_layers
from pytest_rnn._keras.layers import stateful_layers as stateful_layers
from pytest_rnn._keras.loops import graph_decoder as graph_decoder
from pytest_rnn._keras.loops import graph_stream as graph_stream
from pytest_rnn._keras.states import get_states as get_states
from pytest_rnn._keras.states import reset_states as reset_states
from pytest_rnn._keras.states import set_states as set_states
from pytest_rnn._keras.timing import time_hazard as time_hazard
from pytest_rnn._keras.twins import clone as clone
from pytest_rnn._keras.twins import copy_weights as copy_weights
from pytest_rnn._keras.twins import stateful_twin as stateful_twin
from pytest_rnn._random import kept as rng_guard

__all__ = [
    "DETERMINISM",
    "TRACES",
    "ResetStatesCallback",
    "backend_name",
    "check_input_shapes",
    "check_model",
    "clone",
    "compiled",
    "copy_weights",
    "describe_layer",
    "describe_model",
    "determinism_guard",
    "eager_call",
    "float64_missing",
    "float64_scope",
    "get_states",
    "graph_decoder",
    "graph_stream",
    "input_gradients",
    "is_graph_model",
    "is_model",
    "iter_layers",
    "keras_globals_kept",
    "keras_module",
    "needs_static_time",
    "precision_guard",
    "reset_states",
    "rng_guard",
    "rnn_layers",
    "seed_guard",
    "set_name_counters",
    "set_states",
    "stateful_layers",
    "stateful_twin",
    "time_hazard",
    "to_numpy",
    "untouched",
]


def __getattr__(name: str) -> Any:
    # ResetStatesCallback subclasses keras.callbacks.Callback: built on first
    # access by .states, so importing the adapter does not import Keras.
    if name == "ResetStatesCallback":
        return _states.ResetStatesCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
