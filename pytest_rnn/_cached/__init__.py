"""assert_cached_decoding_matches_full: a KerasHub causal LM's cache against its full pass.

Seed 003's question asked of a causal language model: decoding with a
key/value (or recurrent) cache, chunk by chunk from a prefill, must compute the
logits of the full forward pass, and so must the model's own generation loop.

This family is the KerasHub adapter in front of the streaming engine of
:mod:`pytest_rnn._core.stream` (chunk schedules, the run with its state
hand-over, the comparison with a full pass and its wording), as
``pytest_rnn._incremental`` is the plain-function one; everything that touches
Keras or KerasHub is ``K.CachedLM`` in the adapter. The files, each importing
only those above it in this list: :mod:`.args` (argument checks); :mod:`.run`
(the model as the engine calls it, the runs); :mod:`.diagnose` (prefill or
decode, the call, the whole prefill, what the calls do with the cache);
:mod:`.verdicts` (per layer, padding, float32); :mod:`.check` (the assertion
and its report).
"""

from pytest_rnn._cached.check import (
    assert_cached_decoding_matches_full as assert_cached_decoding_matches_full,
)

__all__ = ["assert_cached_decoding_matches_full"]
