"""assert_incremental_matches_full: any state-carrying model, in any framework, against its full pass.

Seed 003's question asked of plain functions: ``full(x)`` computes a whole
sequence at once, ``step(x_chunk, state, start) -> (y_chunk, state)`` computes
it chunk by chunk, handing its state to the next call. The two must agree at
every valid position. A torch or JAX RNN, a hand-written cache, a Keras model
stepped by hand: whatever carries state can be checked.

This family is the plain-function adapter in front of the streaming engine of
:mod:`pytest_rnn._core.stream` (chunk schedules, the run with its state
hand-over, the comparison with a full pass and its wording), as
``pytest_rnn._stateful`` is the Keras-RNN one. The files, each importing only
those above it in this list: :mod:`.args` (argument checks); :mod:`.run` (the
user's functions as the engine calls them, and the checks on what they
return); :mod:`.diagnose` (the call that computed the first mismatch, the
whole-sequence call, what the state and ``start`` do); :mod:`.check` (the
assertion and its report).
"""

from pytest_rnn._incremental.check import (
    assert_incremental_matches_full as assert_incremental_matches_full,
)

__all__ = ["assert_incremental_matches_full"]
