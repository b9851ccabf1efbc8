"""The Keras adapter: private, may change at any time.

The only code of pytest-rnn that imports Keras or a backend library. The
assertion families import this face alone (never its modules, never Keras)
and never branch on the backend: what differs between TensorFlow, JAX and
torch lives in :mod:`.backend` and :mod:`.loops`. Keras is imported inside
functions only, so importing pytest_rnn does not pay for TensorFlow.

Floors, each importing only those below it: :mod:`.layers` (walks,
descriptions, model checks) at the bottom; :mod:`.backend` (compiled calls,
numpy conversion, the trace counter); :mod:`.float64`; :mod:`.gradients` (input
gradients), :mod:`.loops`, :mod:`.timing`,
:mod:`.states`, :mod:`.saving`, :mod:`.calls`, :mod:`.switches`, :mod:`.twins`; :mod:`.guards` on top.
"""

from __future__ import annotations

from typing import Any

from pytest_rnn._keras import states as _states
from pytest_rnn._keras.arguments import check_factory as check_factory
from pytest_rnn._keras.arguments import check_function as check_function
from pytest_rnn._keras.arguments import check_hook as check_hook
from pytest_rnn._keras.backend import TRACES as TRACES
from pytest_rnn._keras.backend import eager_call as eager_call
from pytest_rnn._keras.backend import is_library_file as is_library_file
from pytest_rnn._keras.backend import name as backend_name
from pytest_rnn._keras.backend import to_numpy as to_numpy
from pytest_rnn._keras.calls import ModelCache as ModelCache
from pytest_rnn._keras.calls import compiled as compiled
from pytest_rnn._keras.calls import compiled_warm as compiled_warm
from pytest_rnn._keras.datasets import dataset_arrays as dataset_arrays
from pytest_rnn._keras.datasets import datasets_fitted as datasets_fitted
from pytest_rnn._keras.datasets import is_dataset as is_dataset
from pytest_rnn._keras.everystep import acts_per_step as acts_per_step
from pytest_rnn._keras.everystep import reads_past_only as reads_past_only
from pytest_rnn._keras.float64 import computed_dtype as computed_dtype
from pytest_rnn._keras.float64 import float64_missing as float64_missing
from pytest_rnn._keras.float64 import float64_scope as float64_scope
from pytest_rnn._keras.float64 import output_tolerance as output_tolerance
from pytest_rnn._keras.gradients import input_gradients as input_gradients
from pytest_rnn._keras.guards import keras_globals_kept as keras_globals_kept
from pytest_rnn._keras.guards import seed_keras as seed_keras
from pytest_rnn._keras.guards import set_name_counters as set_name_counters
from pytest_rnn._keras.guards import untouched as untouched
from pytest_rnn._keras.hub import CachedLM as CachedLM
from pytest_rnn._keras.hub import check_causal_lm as check_causal_lm
from pytest_rnn._keras.hub_generation import Generation as Generation
from pytest_rnn._keras.layers import GraphNode as GraphNode
from pytest_rnn._keras.layers import check_input_shapes as check_input_shapes
from pytest_rnn._keras.layers import check_model as check_model
from pytest_rnn._keras.layers import describe_layer as describe_layer
from pytest_rnn._keras.layers import describe_model as describe_model
from pytest_rnn._keras.layers import fixed_batch as fixed_batch
from pytest_rnn._keras.layers import fixed_steps as fixed_steps
from pytest_rnn._keras.layers import graph_nodes as graph_nodes
from pytest_rnn._keras.layers import input_batch as input_batch
from pytest_rnn._keras.layers import is_graph_model as is_graph_model
from pytest_rnn._keras.layers import is_model as is_model
from pytest_rnn._keras.layers import is_rnn as is_rnn
from pytest_rnn._keras.layers import iter_layers as iter_layers
from pytest_rnn._keras.layers import keras_module as keras_module
from pytest_rnn._keras.layers import layer_outputs_model as layer_outputs_model
from pytest_rnn._keras.layers import model_inputs as model_inputs
from pytest_rnn._keras.layers import needs_static_time as needs_static_time
from pytest_rnn._keras.layers import rnn_layers as rnn_layers
from pytest_rnn._keras.layers import stateful_layers as stateful_layers
from pytest_rnn._keras.layers import static_time_output as static_time_output
from pytest_rnn._keras.layers import tensors_model as tensors_model
from pytest_rnn._keras.layers import token_ids as token_ids
from pytest_rnn._keras.layers import top_layers as top_layers
from pytest_rnn._keras.layers import valid_steps as valid_steps
from pytest_rnn._keras.loops import graph_decoder as graph_decoder
from pytest_rnn._keras.loops import graph_stream as graph_stream
from pytest_rnn._keras.saving import MODEL_FILE as MODEL_FILE
from pytest_rnn._keras.saving import epoch_end_hook as epoch_end_hook
from pytest_rnn._keras.saving import is_rng_state as is_rng_state
from pytest_rnn._keras.saving import load_model as load_model
from pytest_rnn._keras.saving import load_stream as load_stream
from pytest_rnn._keras.saving import rounded_to as rounded_to
from pytest_rnn._keras.saving import save_model as save_model
from pytest_rnn._keras.saving import save_stream as save_stream
from pytest_rnn._keras.saving import weight_values as weight_values
from pytest_rnn._keras.states import callback_kind as callback_kind
from pytest_rnn._keras.states import get_states as get_states
from pytest_rnn._keras.states import reset_states as reset_states
from pytest_rnn._keras.states import set_states as set_states
from pytest_rnn._keras.switches import DETERMINISM as DETERMINISM
from pytest_rnn._keras.switches import determinism_guard as determinism_guard
from pytest_rnn._keras.switches import precision_guard as precision_guard
from pytest_rnn._keras.switches import seed_guard as seed_guard
from pytest_rnn._keras.threads import alongside as alongside
from pytest_rnn._keras.threads import thread_for_compiled_calls as thread_for_compiled_calls
from pytest_rnn._keras.timing import Timing as Timing
from pytest_rnn._keras.timing import causal_reason as causal_reason
from pytest_rnn._keras.timing import stream_reason as stream_reason
from pytest_rnn._keras.timing import suspects as suspects
from pytest_rnn._keras.timing import time_stride as time_stride
from pytest_rnn._keras.timing import timing as timing
from pytest_rnn._keras.twins import cached_clone as cached_clone
from pytest_rnn._keras.twins import clone as clone
from pytest_rnn._keras.twins import copy_weights as copy_weights
from pytest_rnn._keras.twins import every_step_copy as every_step_copy
from pytest_rnn._keras.twins import stateful_twin as stateful_twin
from pytest_rnn._keras.twins import sync_weights as sync_weights

__all__ = [
    "DETERMINISM",
    "MODEL_FILE",
    "TRACES",
    "CachedLM",
    "Generation",
    "GraphNode",
    "ModelCache",
    "ResetStatesCallback",
    "Timing",
    "acts_per_step",
    "alongside",
    "backend_name",
    "cached_clone",
    "callback_kind",
    "causal_reason",
    "check_causal_lm",
    "check_factory",
    "check_function",
    "check_hook",
    "check_input_shapes",
    "check_model",
    "clone",
    "compiled",
    "compiled_warm",
    "computed_dtype",
    "copy_weights",
    "dataset_arrays",
    "datasets_fitted",
    "describe_layer",
    "describe_model",
    "determinism_guard",
    "eager_call",
    "epoch_end_hook",
    "every_step_copy",
    "fixed_batch",
    "fixed_steps",
    "float64_missing",
    "float64_scope",
    "get_states",
    "graph_decoder",
    "graph_nodes",
    "graph_stream",
    "input_batch",
    "input_gradients",
    "is_dataset",
    "is_graph_model",
    "is_library_file",
    "is_model",
    "is_rng_state",
    "is_rnn",
    "iter_layers",
    "keras_globals_kept",
    "keras_module",
    "layer_outputs_model",
    "load_model",
    "load_stream",
    "model_inputs",
    "needs_static_time",
    "precision_guard",
    "reads_past_only",
    "reset_states",
    "rnn_layers",
    "rounded_to",
    "save_model",
    "save_stream",
    "seed_guard",
    "seed_keras",
    "set_name_counters",
    "set_states",
    "stateful_layers",
    "stateful_twin",
    "static_time_output",
    "stream_reason",
    "suspects",
    "sync_weights",
    "tensors_model",
    "thread_for_compiled_calls",
    "time_stride",
    "timing",
    "to_numpy",
    "token_ids",
    "top_layers",
    "untouched",
    "valid_steps",
    "weight_values",
]


def __getattr__(name: str) -> Any:
    # ResetStatesCallback subclasses keras.callbacks.Callback: built on first
    # access by .states, so importing the adapter does not import Keras.
    if name == "ResetStatesCallback":
        return _states.ResetStatesCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
