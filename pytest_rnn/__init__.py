"""pytest-rnn: prove that the sequence model you train is the function you run.

Assertions for Keras 3 sequence models, to call inside your own tests:

- :func:`assert_stateful_equals_batch`: a stateful streaming copy agrees with
  the batch model, chunk by chunk (seed 003).
- :func:`assert_inference_matches_training`: a seq2seq inference graph is the
  function that was trained (:func:`per_sample` marks a loop that decodes one
  sample at a time); :func:`teacher_forcing_gap` explains the rest (seed 000).
- :func:`assert_labels_causal`, :func:`assert_model_causal`,
  :func:`assert_windows_causal`: labels depend only on steps the model can see (seed 001).
- :func:`assert_fit_equivalent`, :func:`assert_training_reproducible`,
  :func:`assert_resume_equivalent`: training that can be split, repeated and
  resumed from a checkpoint (seed 002).
- :func:`assert_stream_resumable`: a stream saved and restored mid-way goes on
  as if never interrupted.
- :func:`assert_incremental_matches_full`: any state-carrying step function, in
  any framework, computes what its full pass computes (seed 003, today);
  :func:`assert_cached_decoding_matches_full`: a KerasHub causal LM decoding
  with its cache computes what its full pass computes.

Helpers for stateful models (Keras 3 removed ``Model.reset_states``):
:func:`reset_states`, :func:`get_states`, :func:`set_states`,
:func:`stateful_twin` and :class:`ResetStatesCallback`.

Hypothesis strategies live in :mod:`pytest_rnn.strategies`. Importing this
package does not import Keras or any backend.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pytest_rnn._errors import RNNAssertionError as RNNAssertionError

if TYPE_CHECKING:  # the same names, for type checkers and IDEs
    from pytest_rnn._cached import (
        assert_cached_decoding_matches_full as assert_cached_decoding_matches_full,
    )
    from pytest_rnn._causal import DependenceMap as DependenceMap
    from pytest_rnn._causal import assert_labels_causal as assert_labels_causal
    from pytest_rnn._causal import assert_model_causal as assert_model_causal
    from pytest_rnn._causal import assert_windows_causal as assert_windows_causal
    from pytest_rnn._causal import dependence_map as dependence_map
    from pytest_rnn._fit import assert_fit_equivalent as assert_fit_equivalent
    from pytest_rnn._fit import assert_resume_equivalent as assert_resume_equivalent
    from pytest_rnn._fit import assert_training_reproducible as assert_training_reproducible
    from pytest_rnn._incremental import (
        assert_incremental_matches_full as assert_incremental_matches_full,
    )
    from pytest_rnn._keras import ResetStatesCallback as ResetStatesCallback
    from pytest_rnn._keras import get_states as get_states
    from pytest_rnn._keras import reset_states as reset_states
    from pytest_rnn._keras import set_states as set_states
    from pytest_rnn._keras import stateful_twin as stateful_twin
    from pytest_rnn._seq2seq import TeacherForcingGap as TeacherForcingGap
    from pytest_rnn._seq2seq import (
        assert_inference_matches_training as assert_inference_matches_training,
    )
    from pytest_rnn._seq2seq import per_sample as per_sample
    from pytest_rnn._seq2seq import teacher_forcing_gap as teacher_forcing_gap
    from pytest_rnn._stateful import (
        assert_stateful_equals_batch as assert_stateful_equals_batch,
    )
    from pytest_rnn._stateful import assert_stream_resumable as assert_stream_resumable

__version__ = "0.2.0"  # the one place the version is written (pyproject reads it)

# Public name -> the private module that defines it. Loaded on first use: a
# pytest plugin is imported by every pytest run in the environment, so the
# package costs only what a test actually uses (numpy included).
_LAZY = {
    "assert_cached_decoding_matches_full": "_cached",
    "DependenceMap": "_causal",
    "assert_labels_causal": "_causal",
    "assert_model_causal": "_causal",
    "assert_windows_causal": "_causal",
    "dependence_map": "_causal",
    "assert_fit_equivalent": "_fit",
    "assert_resume_equivalent": "_fit",
    "assert_training_reproducible": "_fit",
    "assert_incremental_matches_full": "_incremental",
    "ResetStatesCallback": "_keras",
    "get_states": "_keras",
    "reset_states": "_keras",
    "set_states": "_keras",
    "stateful_twin": "_keras",
    "TeacherForcingGap": "_seq2seq",
    "assert_inference_matches_training": "_seq2seq",
    "per_sample": "_seq2seq",
    "teacher_forcing_gap": "_seq2seq",
    "assert_stateful_equals_batch": "_stateful",
    "assert_stream_resumable": "_stateful",
}

__all__ = sorted(["RNNAssertionError", *_LAZY])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_rnn' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"pytest_rnn.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
