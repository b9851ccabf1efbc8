"""Likely causes: why one fit and a loop of fits, two seeded runs, or a resumed run end apart.

Pure functions of what the runs showed (the callbacks, ``fit_kwargs``, which
variables differ, whether the single fit repeats itself, where an unseeded
generator was made, what a checkpoint lost between save and load): each
returns the cause sentences of the failure message, most specific first.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pytest_rnn import _keras as K
from pytest_rnn._fit.diff import _VarReport


def _callback_kinds(callbacks: Sequence[Any]) -> Iterator[tuple[str, str, list[str]]]:
    """Each callback as ``(where, kind, hooks)``: its place in the message and :func:`K.callback_kind`."""
    for n, cb in enumerate(callbacks):
        yield (f"fit_kwargs['callbacks'][{n}] ({type(cb).__name__})", *K.callback_kind(cb))


def _callback_causes(callbacks: Sequence[Any], epochs: int) -> list[str]:
    """Callbacks whose behaviour depends on the epoch index or on the start of training."""
    causes = []
    for where, kind, hooks in _callback_kinds(callbacks):
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


#: A tf.data.Dataset object that several runs iterate: its shuffle order moves on.
_SHARED_DATASET = (
    "{what}: if it shuffles, every pass over it draws the next order from the dataset's own "
    "seed stream (seeded or not), so a later run trains on other orders than the first. {fix}"
)


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
    data: str = "arrays",
) -> list[str]:
    """Likely causes of a fit(epochs=N) / N x fit(epochs=1) difference, most specific first."""
    causes = list(callbacks)
    if data == "dataset":
        causes.append(
            _SHARED_DATASET.format(
                what="x is one tf.data.Dataset object that both runs iterate",
                fix="Pass the function that builds it instead (x=make_dataset): it is called "
                "in each run after the seed is set, so each run gets its own pipeline",
            )
        )
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


def _reproducible_causes(
    failed: list[tuple[int, _VarReport]], unseeded: list[str], shared_dataset: bool = False
) -> list[str]:
    """Where the randomness of runs that differ under one seed may come from."""
    causes = _unseeded_lines(unseeded)
    if shared_dataset:
        causes.append(
            _SHARED_DATASET.format(
                what="every run of train() fits on the same tf.data.Dataset object (built "
                "outside train())",
                fix="Build the dataset inside train(), after the seed is set, so each run "
                "gets its own pipeline",
            )
        )
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


# --------------------------------------------------------------------------- resume


def _callback_state_causes(callbacks: Sequence[Any]) -> list[str]:
    """Callbacks whose state a checkpoint does not hold: it restarts in the resumed process."""
    causes = []
    for where, kind, hooks in _callback_kinds(callbacks):
        if kind == "patience":
            causes.append(
                f"{where} keeps its count of epochs without improvement and its best value in "
                "the callback object, which no checkpoint holds: the resumed process starts "
                "counting afresh in on_train_begin. Save its state (wait, best, and for "
                "ReduceLROnPlateau cooldown_counter) with the checkpoint and set it back on the "
                "new callback before fit"
            )
        elif kind == "other" and hooks:
            causes.append(
                f"{where} defines {', '.join(hooks)}: the resumed process builds it anew and "
                "runs on_train_begin again. If it keeps state across epochs, save that state "
                "with the checkpoint"
            )
    return causes


def _resume_causes(
    *,
    trips: list[tuple[int, _VarReport, list[str], list[str]]],
    rng_differs: list[str],
    callbacks: list[str],
    stateful: list[str],
    fit_kwargs: Mapping[str, Any],
    dataset: bool,
    repeat: _VarReport | None,
    unshuffled: bool | None,
    unseeded: list[str],
    seed: int,
) -> list[str]:
    """Likely causes of a resumed run that parts from the uninterrupted one, most specific first.

    ``trips``: per checkpoint, ``(epoch, what the load lost, settings changed,
    Keras's load warnings)``; ``rng_differs``: the SeedGenerator states that
    end apart in the two runs; ``unshuffled``: whether both runs agree with
    ``shuffle=False`` (None: not tried).
    """
    causes: list[str] = []
    seen: set[str] = set()

    def add(key: str, text: str) -> None:
        if key not in seen:
            seen.add(key)
            causes.append(text)

    for epoch, lost, changed, warned in trips:
        at = f"after epoch {epoch}"
        optimizer = [d for d in lost.diffs if d.kind == "optimizer"]
        counts = [p for p in lost.structure if " optimizer variables " in p]
        if optimizer or counts:
            steps = next((d for d in optimizer if d.label.endswith("/iteration")), None)
            what = (
                f"its iteration count is {steps.value_b:.0f} instead of {steps.value_a:.0f}"
                if steps is not None
                else (counts[0].replace("one run", "the saved model").replace(
                    "the other", "the loaded one") if counts else
                    f"{len(optimizer)} optimizer variables differ")
            )  # fmt: skip
            add(
                "optimizer",
                f"the optimizer state was not restored (checkpoint {at}: {what}): the loaded "
                "model trains on with a fresh optimizer (moments at zero, the step count and any "
                "LearningRateSchedule restarted). keras.models.load_model restores it from a "
                ".keras file; with save_weights/load_weights, build the optimizer before loading "
                "(model.optimizer.build(model.trainable_variables)) or Keras skips its variables",
            )
        if any(d.kind == "weight" for d in lost.diffs) or any(
            " weight " in p for p in lost.structure
        ):
            add(
                "weights",
                f"the loaded weights differ from the saved ones (checkpoint {at}): load(folder) "
                "does not give back what save wrote (another file, a rebuilt or re-initialised "
                "layer)",
            )
        states = [d for d in lost.diffs if d.kind == "RNN state"]
        if states:
            layers = sorted({d.label.split("'")[1] for d in states if "'" in d.label})
            add(
                "states",
                f"the RNN states of {layers} are not in the checkpoint (after the load at epoch "
                f"{epoch} they are not what was saved): Keras's model.save and save_weights do not "
                "save RNN states. Save pytest_rnn.get_states(model) beside the model and call "
                "pytest_rnn.set_states(loaded, states) after loading, or reset the states at "
                "every epoch (pytest_rnn.ResetStatesCallback) so no epoch starts from them",
            )
        for change in changed:
            add(
                change,
                f"the checkpoint {at} changed a setting: {change}. Save and load the whole model "
                "(model.save / keras.models.load_model keep the dtype policy and compile "
                "arguments), or compile the loaded model exactly as the first",
            )
        for text in warned:
            add(f"warned:{text}", f"Keras warned while loading (checkpoint {at}): {text}")
    if rng_differs and any(d.kind == "RNG state" for _, lost, _, _ in trips for d in lost.diffs):
        add(
            "rng",
            f"the SeedGenerator states that Dropout and recurrent_dropout draw from end apart "
            f"({', '.join(rng_differs[:3])}{', ...' if len(rng_differs) > 3 else ''}): Keras "
            "keeps them in model.variables but does not save them, so a loaded model starts "
            "them again from their seed and draws other dropout masks. Carry them: save "
            "[v.numpy() for v in model.variables if v.name == 'seed_generator_state'] with the "
            "checkpoint and assign them, in order, to the loaded model's",
        )
    causes.extend(callbacks)
    if dataset:
        causes.append(
            "x is a tf.data.Dataset: if it shuffles, every pass over it draws a new order from "
            "the dataset's own seed stream, and a resumed process starts that stream again. "
            "Derive each epoch's order from the epoch (shuffle with seed=seed + epoch on a "
            "dataset built per epoch), or shuffle=False in the pipeline"
        )
    if repeat is not None and not repeat.ok:
        causes.append(
            f"the uninterrupted fit does not even repeat itself under seed {seed} with op "
            "determinism on: make_model or the data use randomness that "
            "keras.utils.set_random_seed does not control. Check with "
            "assert_training_reproducible"
        )
    elif unshuffled:
        shuffle = fit_kwargs.get("shuffle", True)
        given = f"shuffle={shuffle!r}" + ("" if "shuffle" in fit_kwargs else ", the default")
        causes.append(
            f"the shuffle order: with shuffle=False both runs agree. fit shuffles ({given}) "
            f"and on the {K.backend_name()} backend each epoch's order is drawn from the "
            "global random stream, which the resumed process starts again from its seed, so "
            "its first epoch repeats an earlier epoch's order. Pass shuffle=False and order "
            "each epoch yourself from its index (np.random.default_rng(seed + epoch))"
        )
    elif repeat is not None:
        causes.append(
            "every checkpoint gave back every variable, state and setting compared, and the "
            "uninterrupted fit repeats itself: what differs lives outside the model (Python "
            "state your make_model, data or callbacks keep between fit calls)"
        )
    causes.extend(_unseeded_lines(unseeded))
    if stateful and "states" not in seen:
        causes.append(
            f"stateful layers {stateful} carry their states from epoch to epoch: compare with "
            "a ResetStatesCallback in fit_kwargs['callbacks'] to see whether they are the "
            "difference"
        )
    if fit_kwargs.get("shuffle", True) and not causes:
        causes.append(
            "fit shuffles (shuffle=True by default): the resumed process draws each epoch's "
            "order from a stream started afresh by the seed; pass shuffle=False to see whether "
            "the order is the difference"
        )
    return causes
