"""assert_fit_equivalent, assert_training_reproducible, assert_resume_equivalent: training split, repeated, resumed.

Seed 002: the same stateful LSTM trained by ``fit(epochs=1)`` in a loop, with
or without ``reset_states``, or by one ``fit(epochs=10)``, gave different
results, and showing when they agree took restarting Python. Here both runs
happen in one process under the same seed with deterministic ops, and the
report says where they part and why.

What Keras 3 carries from one ``fit`` call to the next (measured with Keras
3.15 on TensorFlow): the optimizer's variables (``iterations``, moments), the
stateful RNN states, every layer's ``SeedGenerator`` state (dropout draws
continue), and TensorFlow's shuffle stream (a new ``fit`` continues the
permutations where the previous call left them). So one ``fit(epochs=N)`` and
N calls of ``fit(epochs=1)`` agree exactly, shuffled or not, with dropout or
not. What restarts at every call: the epoch index callbacks see (a
``LearningRateScheduler`` uses its epoch-0 rate every time), ``on_train_begin``
(``EarlyStopping``/``ReduceLROnPlateau`` forget their patience) and
``validation_freq``.

The files, each importing only those above it in this list: :mod:`.diff`
(variable snapshots, loss histories, their comparison and text);
:mod:`.runs` (the seeding session, the watch on unseeded numpy generators,
the argument checks of a run, the fit runs); :mod:`.causes` (the likely
causes a failure lists); :mod:`.check` (the two assertions and the loss
picture); :mod:`.checkpoints` (the uninterrupted run that writes checkpoints,
the resumed run, what each checkpoint lost); :mod:`.resume` (the resume
assertion, its argument checks and message).
"""

from pytest_rnn._fit.check import assert_fit_equivalent as assert_fit_equivalent
from pytest_rnn._fit.check import assert_training_reproducible as assert_training_reproducible
from pytest_rnn._fit.resume import assert_resume_equivalent as assert_resume_equivalent

__all__ = ["assert_fit_equivalent", "assert_resume_equivalent", "assert_training_reproducible"]
