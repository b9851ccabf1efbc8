"""Likely causes: why one fit and a loop of fits, or two seeded runs, end apart.

Pure functions of what the runs showed (the callbacks, ``fit_kwargs``, which
variables differ, whether the single fit repeats itself, where an unseeded
generator was made): each returns the cause sentences of the failure
message, most specific first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_rnn import _keras as K
from pytest_rnn._fit.diff import _VarReport


def _callback_causes(callbacks: Sequence[Any], epochs: int) -> list[str]:
    """Callbacks whose behaviour depends on the epoch index or on the start of training."""
    causes = []
    for n, cb in enumerate(callbacks):
        name = type(cb).__name__
        where = f"fit_kwargs['callbacks'][{n}] ({name})"
        kind, hooks = K.callback_kind(cb)
        if kind == "epoch_schedule":
            causes.append(
                f"{where} is called with the epoch index, and the index restarts at 0 in every "
                "fit(epochs=1) call: the loop trains every epoch with the epoch-0 learning rate. "
                f"Fix the loop: `for i in range({epochs}): model.fit(x, y, epochs=i + 1, "
                "initial_epoch=i)`, or schedule by step instead: give the optimizer a "
                "keras.optimizers.schedules.LearningRateSchedule (it reads optimizer.iterations, "
                "which carries over between fit calls)"
            )
        elif kind == "patience":
            causes.append(
                f"{where} counts epochs without improvement and starts counting afresh in "
                "on_train_begin, i.e. at every fit call of the loop: there it never reaches its "
                "patience. Call fit once, or keep your own counter across the loop"
            )
        elif hooks:
            causes.append(
                f"{where} defines {', '.join(hooks)}: in the loop every fit call is a new "
                "training run (on_train_begin/on_train_end run each time) and its only epoch "
                "is epoch 0. If it uses the epoch index or keeps state across epochs, "
                "pass initial_epoch=i in your loop or keep that state outside fit"
            )
    return causes


def _fit_causes(
    *,
    fit_kwargs: Mapping[str, Any],
    callbacks: list[str],
    stateful: list[str],
    reset: bool,
    weights_differ: bool,
    states_differ: bool,
    repeat: _VarReport | None,
    unseeded: list[str],
    seed: int,
) -> list[str]:
    """Likely causes of a fit(epochs=N) / N x fit(epochs=1) difference, most specific first."""
    causes = list(callbacks)
    freq = fit_kwargs.get("validation_freq", 1)
    if freq != 1:
        causes.append(
            f"validation_freq={freq!r} counts epochs from the start of each fit call: the loop "
            "validates on other epochs than the single fit (or never), and validation runs the "
            "model (and moves stateful RNN states)"
        )
    if stateful and states_differ and not weights_differ:
        causes.append(
            "the weights agree but the RNN states differ: the states were reset or carried "
            "differently in the two runs (a callback or code that resets states in one of them)"
        )
    if repeat is not None and not repeat.ok:
        causes.append(
            f"the single fit does not even repeat itself under seed {seed} with op determinism "
            "on: make_model or the data use randomness that keras.utils.set_random_seed does not "
            "control, or an op has no deterministic kernel (GPU). Check with "
            "assert_training_reproducible"
        )
    elif repeat is not None:
        causes.append(
            f"the single fit repeats itself under seed {seed}: the difference comes from "
            "splitting training into several fit calls, not from unseeded randomness"
        )
    causes.extend(_unseeded_lines(unseeded))
    shuffle = fit_kwargs.get("shuffle", True)
    if shuffle:
        given = (
            f"shuffle={shuffle!r}"
            if "shuffle" in fit_kwargs
            else ("shuffle was not given, and fit shuffles by default (shuffle=True)")
        )
        advice = (
            "; a stateful model should not shuffle at all (its states carry from one batch to "
            "the next in sample order): pass fit_kwargs={'shuffle': False}"
            if stateful
            else ""
        )
        causes.append(
            f"{given}: each epoch's sample order is drawn from the backend's random stream, so "
            "the runs agree only if they draw the same permutations in the same order (anything "
            f"else drawing from the stream between fit calls shifts it){advice}"
        )
    if stateful and not reset and not callbacks and not (states_differ and not weights_differ):
        causes.append(
            f"stateful layers {stateful} carry their states from each epoch into the next "
            "(reset_states=False): anything that resets or moves them in one run only (a "
            "callback, validation, predict between fit calls) changes every later epoch. "
            "Compare with reset_states=True to see whether the states are the difference"
        )
    return causes


def _unseeded_lines(sites: list[str]) -> list[str]:
    """One cause per call site of ``np.random.default_rng()`` without a seed."""
    return [
        f"np.random.default_rng() without a seed was called at {site}: it draws from the "
        "operating system, not from keras.utils.set_random_seed. Give it a seed "
        "(np.random.default_rng(seed))"
        for site in sites
    ]


def _reproducible_causes(failed: list[tuple[int, _VarReport]], unseeded: list[str]) -> list[str]:
    """Where the randomness of runs that differ under one seed may come from."""
    causes = _unseeded_lines(unseeded)
    steps = [
        d
        for _, r in failed
        for d in r.diffs
        if d.kind == "optimizer" and d.label.endswith("/iteration")
    ]
    if steps:
        d = steps[0]
        causes.append(
            f"the optimizer took a different number of steps ({d.value_a:.0f} in run 1, "
            f"{d.value_b:.0f} in another): the data size, batch size or epochs change between runs"
        )
    causes += [
        "a numpy Generator or RandomState made without a seed (np.random.default_rng(), "
        "np.random.RandomState()), or random.Random(), used to shuffle, split, augment or "
        "initialise: give it a seed",
        "seeds taken from the clock, os.urandom, uuid or hash() of strings (PYTHONHASHSEED)",
        "data whose order changes between runs: os.listdir/glob order, iterating a set, "
        "a tf.data pipeline with unseeded shuffle or parallel interleave",
        "ops without a deterministic kernel (some GPU ops), or a model built outside train() "
        f"and reused; {K.backend_name()} backend: {K.DETERMINISM.get(K.backend_name(), '?')}",
    ]
    return causes
