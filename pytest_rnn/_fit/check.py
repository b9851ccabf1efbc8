"""The two assertions, ``assert_fit_equivalent`` and ``assert_training_reproducible``.

Each checks its arguments, trains under one :class:`~.runs._Session`,
compares the runs with :mod:`.diff`, and on a difference raises
:class:`~pytest_rnn._errors.RNNAssertionError` with the lines of
:mod:`.diff`, the likely causes of :mod:`.causes` and the loss picture
(:func:`_loss_picture`) that the report draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_rnn import _keras as K
from pytest_rnn._core.compare import Tolerance, resolve_tolerance
from pytest_rnn._core.text import describe_kwargs
from pytest_rnn._core.validate import check_int, check_seed, check_tolerances
from pytest_rnn._errors import LossPicture, RNNAssertionError
from pytest_rnn._fit.causes import _callback_causes, _fit_causes, _reproducible_causes
from pytest_rnn._fit.diff import (
    _compare_history,
    _compare_vars,
    _format_losses,
    _format_vars,
    _snapshot,
    _Var,
    _VarReport,
)
from pytest_rnn._fit.runs import (
    _check_fit_kwargs,
    _last_history,
    _Session,
    _train,
    _Trained,
    _training_data,
    _watch_unseeded,
)
from pytest_rnn._report import recorded

# --------------------------------------------------------------------------- assertions


@recorded
def assert_fit_equivalent(
    make_model: Callable[[], Any],
    x: Any,
    y: Any,
    *,
    epochs: int = 2,
    fit_kwargs: Mapping[str, Any] | None = None,
    reset_states: bool = False,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that one ``fit(epochs=N)`` trains like N calls of ``fit(epochs=1)``.

    Both runs start from ``keras.utils.set_random_seed(seed)`` and a fresh
    model from ``make_model()``, with deterministic ops on (TensorFlow op
    determinism; torch deterministic algorithms; JAX is deterministic on CPU,
    see the README for GPUs). Compared
    after training: every model variable (weights, non-trainable variables,
    dropout seed-generator states), the optimizer's variables (``iterations``,
    moments, ...), every stateful RNN state, and the per-epoch values of every
    ``History`` key (loss, metrics, validation).

    The loop is the one people write (seed 002): plain ``fit(x, y, epochs=1,
    **fit_kwargs)`` repeated, without ``initial_epoch``. ``fit_kwargs`` go to
    both runs unchanged; ``shuffle`` keeps Keras's default ``True`` unless you
    pass it (Keras 3 on TensorFlow continues the shuffle stream from one fit
    call to the next, so shuffled runs agree too), and ``verbose`` defaults to
    0. Each run gets its own copy of your callbacks; yours are not touched.

    Args:
        make_model: function returning a fresh *compiled* model at every call.
        x: training inputs: an array, or a list/dict of arrays; or a
            ``tf.data.Dataset`` yielding ``(inputs, targets)`` batches, or a
            function that builds one (then ``y`` is None). The function is
            called at the start of each run, after the seed is set, so both
            runs get the same pipeline and the same shuffle orders; one
            dataset object iterated by both runs continues its shuffle order
            from one run into the next, and the message says so.
            ``shuffle`` defaults to False for a dataset (it orders itself).
        y: training targets, as many samples as ``x``; None with a dataset.
        epochs: N, the number of epochs (>= 1).
        fit_kwargs: more ``fit`` arguments (``batch_size``, ``shuffle``,
            ``callbacks``, ``validation_data``...); not ``x``, ``y``,
            ``epochs`` or ``initial_epoch``.
        reset_states: reset every stateful RNN layer before every epoch in both
            runs: ``ResetStatesCallback`` in the single fit, ``reset_states``
            before each call in the loop.
        seed: the seed both runs start from; None: the session's --rnn-seed (0 unless set).
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            dtype (float32: 1.3e-6 and 1e-5; integer variables exactly).
            ``rtol=0, atol=0`` asks for bitwise equality, which deterministic
            ops on CPU give.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: the runs differ. The message gives the first epoch
            whose loss differs (both losses, a per-epoch table), how many
            weights, optimizer variables and RNN states differ, the first
            variable that differs (layer, weight name and path, greatest
            difference) and the likely causes it detects: an epoch-indexed
            callback (``LearningRateScheduler``: use ``initial_epoch``),
            ``EarlyStopping``/``ReduceLROnPlateau``, ``validation_freq``,
            shuffling, states carried or reset differently, and whether the
            single fit repeats itself at all (non-deterministic ops, unseeded
            randomness, with the line that called ``np.random.default_rng()``).
        TypeError, ValueError: an argument is wrong; the message names it.

    Example:
        >>> def make_model():
        ...     model = keras.Sequential([keras.Input(batch_shape=(100, 1, 1)),
        ...                               layers.LSTM(10, stateful=True), layers.Dense(1)])
        ...     model.compile(loss="mse", optimizer="adadelta")
        ...     return model
        >>> pytest_rnn.assert_fit_equivalent(make_model, x, y, epochs=3, reset_states=True,
        ...                                  fit_kwargs={"batch_size": 100, "shuffle": False})
    """
    __tracebackhide__ = True
    K.check_factory(make_model, "make_model", "builds and compiles a new model")
    data = _training_data(x, y)
    epochs = check_int(epochs, "epochs", 1)
    kwargs = _check_fit_kwargs(fit_kwargs)
    kwargs.setdefault("verbose", 0)
    if data.pipeline:  # a dataset orders itself; Keras warns about its default shuffle=True
        kwargs.setdefault("shuffle", False)
    if not isinstance(reset_states, bool):
        raise TypeError(f"reset_states must be True or False, got {type(reset_states).__name__}")
    seed = check_seed(seed)
    check_tolerances(rtol, atol)

    built: list[Any] = []
    with _Session(seed).active() as session, _watch_unseeded() as unseeded:

        def run(split: bool) -> _Trained:
            return _train(
                session, make_model, data, kwargs,
                epochs=epochs, split=split, reset=reset_states, earlier=built,
            )  # fmt: skip

        single, loop = run(split=False), run(split=True)
        loss_tol = K.output_tolerance(rtol, atol, single.compute_dtype)
        losses, other = _compare_history(single.history, loop.history, loss_tol)
        variables = _compare_vars(single.variables, loop.variables, rtol, atol)
        if not losses and not other and variables.ok:
            return
        callback_causes = _callback_causes(kwargs.get("callbacks") or [], epochs)
        repeat = None
        if not callback_causes and data.kind != "dataset":
            # Only an unexplained failure pays for a third run (a shared dataset moves on).
            again = run(split=False)
            repeat = _compare_vars(single.variables, again.variables, rtol, atol)
    name_a, name_b = f"fit(epochs={epochs})", f"{epochs} x fit(epochs=1)"
    causes = _fit_causes(
        fit_kwargs=kwargs,
        callbacks=callback_causes,
        stateful=single.stateful,
        reset=reset_states,
        weights_differ=variables.differs("weight"),
        states_differ=variables.differs("RNN state"),
        repeat=repeat,
        unseeded=list(unseeded),
        seed=seed,
        data=data.kind,
    )
    lines = [
        f"One {name_a} and {name_b} train differently.",
        f"  model {single.description}; {data.describe()}; "
        f"fit_kwargs {describe_kwargs(kwargs)}; reset_states={reset_states}; seed {seed}",
        *_format_losses(losses, other, name_a, name_b, loss_tol),
        *_format_vars(variables, name_a, name_b),
        "  likely causes:",
        *(f"    - {c}" for c in causes),
    ]
    picture = _loss_picture(
        lines[0], {name_a: single.history, name_b: loop.history}, variables, loss_tol
    )
    raise RNNAssertionError("\n".join(lines), picture=picture)


@recorded
def assert_training_reproducible(
    train: Callable[[], Any],
    *,
    runs: int = 2,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that ``train()`` gives the same model every time under the same seed.

    Before each run: ``keras.utils.set_random_seed(seed)`` and deterministic
    ops on (as in :func:`assert_fit_equivalent`). Every run's model must agree with the first run's: every
    model variable, the optimizer's variables and the stateful RNN states.
    Randomness that the seed does not reach (an unseeded
    ``np.random.default_rng()`` shuffling or splitting the data, seeds from
    the clock or ``os.urandom``, file-listing order) makes the runs differ.

    Args:
        train: function that builds, trains and returns a Keras model, a new one
            at every call.
        runs: how many times to run it (>= 2).
        seed: the seed every run starts from; None: the session's --rnn-seed (0 unless set).
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            dtype (float32: 1.3e-6 and 1e-5; integer variables exactly);
            ``rtol=0, atol=0`` asks for bitwise equality.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: a run differs from the first. The message names the
            run, how many weights, optimizer variables and RNN states differ,
            the first variable that differs (layer, weight name and path,
            greatest difference), and where the randomness may come from,
            with the file and line of any ``np.random.default_rng()`` called
            without a seed, and whether every run fitted on one and the same
            ``tf.data.Dataset`` object (built outside ``train()``: a shuffling
            one continues its order from run to run).
        TypeError, ValueError: an argument is wrong, or ``train`` does not
            return a new Keras model; the message names it.

    Example:
        >>> def train():
        ...     model = make_model()
        ...     model.fit(x, y, epochs=2, verbose=0)
        ...     return model
        >>> pytest_rnn.assert_training_reproducible(train)
    """
    __tracebackhide__ = True
    K.check_factory(train, "train", "builds, trains and returns a new model")
    runs = check_int(runs, "runs", 2)
    seed = check_seed(seed)
    check_tolerances(rtol, atol)

    snapshots: list[list[_Var]] = []
    histories: dict[str, dict[str, list[float]]] = {}
    models: list[Any] = []
    fitted: list[list[Any]] = []  # per run: the datasets its fit calls iterated
    with _Session(seed).active() as session, _watch_unseeded() as unseeded:
        for _ in range(runs):
            session.begin_run()
            with K.datasets_fitted() as datasets:
                model = train()
            fitted.append(datasets)
            if not K.is_model(model):
                raise TypeError(
                    f"train() must return the trained Keras model, got {type(model).__name__}"
                )
            if any(model is m for m in models):
                raise ValueError(
                    "train() returned the same model object twice: it must build and train a "
                    "new model at every call"
                )
            models.append(model)
            snapshots.append(_snapshot(model))
            histories[f"run {len(models)}"] = _last_history(model)
        description = K.describe_model(models[0])
        del models
    reports = [
        (n, _compare_vars(snapshots[0], s, rtol, atol)) for n, s in enumerate(snapshots[1:], 2)
    ]
    failed = [(n, r) for n, r in reports if not r.ok]
    if not failed:
        return
    lines = [
        f"train() does not reproduce under seed {seed}: "
        f"{', '.join(f'run {n}' for n, _ in failed)} of {runs} differ{'s' if len(failed) == 1 else ''} "
        "from run 1.",
        f"  model {description}",
    ]
    for n, report in failed:
        if len(failed) > 1:
            lines.append(f"  run {n}:")
        lines.extend(_format_vars(report, "run 1", f"run {n}"))
    lines.append("  where the randomness may come from:")
    shared = any(d is e for d in fitted[0] for later in fitted[1:] for e in later)
    lines.extend(f"    - {c}" for c in _reproducible_causes(failed, list(unseeded), shared))
    picture = _loss_picture(
        lines[0], histories, failed[0][1], resolve_tolerance(rtol, atol, "float32")
    )
    raise RNNAssertionError("\n".join(lines), picture=picture)


def _loss_picture(
    title: str,
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    variables: _VarReport,
    tol: Tolerance,
    *,
    marks: Sequence[tuple[int, str]] = (),
) -> LossPicture:
    """Per-epoch loss of every run (``loss``, else the first key they share) and the differing variables.

    ``marks``: ``(epoch, label)`` lines drawn after those epochs (the resume points).
    """
    keys = [
        k for k in next(iter(histories.values()), {}) if all(k in h for h in histories.values())
    ]
    key = "loss" if "loss" in keys else (keys[0] if keys else "loss")
    losses = {name: list(h.get(key, [])) for name, h in histories.items()}
    runs = list(histories.values())
    parted = [
        d.epoch
        for other in runs[1:]
        for d in _compare_history({key: runs[0].get(key, [])}, {key: other.get(key, [])}, tol)[0]
    ]
    return LossPicture(
        title, losses, key, min(parted) if parted else None,
        tuple((d.label, d.mismatch.max_abs) for d in variables.diffs), tol.rtol, tol.atol,
        marks=tuple(marks),
    )  # fmt: skip
