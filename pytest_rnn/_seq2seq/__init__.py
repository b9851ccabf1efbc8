"""Seq2seq: the inference graph built from trained layers vs the teacher-forced training graph.

Seed 000: a decoder trained with teacher forcing (the input at step ``t`` is the
target at ``t - 1``) and an inference loop built from the same layers that feeds
its own outputs back. The two score 0.045 and 0.16 on the same data, and nobody
can tell whether the loop is wired wrong or the gap is expected.

:func:`assert_inference_matches_training` settles the wiring: run the inference,
feed its outputs back, shift them right behind the start value and give them to
the training model as decoder inputs. A correctly wired inference is then the
training model, step for step. :func:`teacher_forcing_gap` reports the rest: the
loss with ground-truth decoder inputs vs the loss with the model's own, per step
(exposure bias).

The files, each importing only those above it in this list: :mod:`.case` (the
checked case, the feedback, small helpers); :mod:`.forms` (the three inference
forms and the fused-decoder cache); :mod:`.persample` (``per_sample``: a loop
that decodes one sample at a time and may stop early); :mod:`.prepare` (the
arguments checked into a case, the runs); :mod:`.hints` (the messages);
:mod:`.check` (the assertion); :mod:`.gap` (``TeacherForcingGap``,
``teacher_forcing_gap`` and the losses).
"""

from pytest_rnn._seq2seq.check import (
    assert_inference_matches_training as assert_inference_matches_training,
)
from pytest_rnn._seq2seq.gap import TeacherForcingGap as TeacherForcingGap
from pytest_rnn._seq2seq.gap import teacher_forcing_gap as teacher_forcing_gap
from pytest_rnn._seq2seq.persample import per_sample as per_sample

__all__ = [
    "TeacherForcingGap",
    "assert_inference_matches_training",
    "per_sample",
    "teacher_forcing_gap",
]
