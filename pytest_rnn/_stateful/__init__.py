"""assert_stateful_equals_batch and assert_stream_resumable: streams that agree and that resume.

Seed 003: a model trained stateless on whole sequences, copied into a stateful
batch-1 model and fed one step at a time. The two must agree at every step
(sequence outputs) or at every chunk end (last-step outputs, compared with the
model on the prefix seen so far).

This family is the Keras-RNN adapter in front of the streaming engine of
:mod:`pytest_rnn._core.stream` (chunk schedules, the chunk-by-chunk run, the
comparison with a full pass and its wording). The files, each importing only
those above it in this list: :mod:`.run` (the two models of a check, the
streamed run through the engine or an in-graph loop, the full-sequence
reference); :mod:`.hints` (what is wrong with a user's streaming copy);
:mod:`.diagnose` (first differing layer, layers that cannot stream,
the hints of :mod:`.hints`, the float64 verdict); :mod:`.restored` (what a
stream's save and load lost); :mod:`.check` (the assertion, its argument checks and the
repeat and independence checks); :mod:`.resume` (a stream interrupted, saved,
loaded and continued against the uninterrupted one).
"""

from pytest_rnn._core.stream import ChunkSchedule as ChunkSchedule
from pytest_rnn._stateful.check import assert_stateful_equals_batch as assert_stateful_equals_batch
from pytest_rnn._stateful.resume import assert_stream_resumable as assert_stream_resumable

__all__ = ["ChunkSchedule", "assert_stateful_equals_batch", "assert_stream_resumable"]
