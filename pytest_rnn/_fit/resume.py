"""``assert_resume_equivalent``: training interrupted by a checkpoint goes on as if never stopped.

The uninterrupted ``fit(epochs=N)`` writes a checkpoint at the end of the
first ``resume_at`` epoch, from a callback placed after the user's (where
``ModelCheckpoint`` writes), and trains on. The resumed run starts from that
checkpoint as a new process would (the seed and Keras's name counters set
again, ``load(folder)``, fresh copies of the callbacks) and fits on with
``initial_epoch=r``, writing the next checkpoint the same way. So the two
runs share their first epochs, and cost ``N + (N - r)`` epochs, not ``2N``.
:func:`~pytest_rnn._fit.checkpoints._round_trip` compares the model just
before the save with the one the load returns; what the checkpoint lost there (optimizer slots, the iteration
count, RNN states, the ``SeedGenerator`` states Dropout draws from, the dtype
policy, the optimizer's configuration) is the evidence the causes of
:func:`~pytest_rnn._fit.causes._resume_causes` are read from.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pytest_rnn import _keras as K
from pytest_rnn._core.text import describe_kwargs
from pytest_rnn._core.validate import check_int, check_seed, check_tolerances
from pytest_rnn._errors import RNNAssertionError
from pytest_rnn._fit.causes import _callback_state_causes, _resume_causes
from pytest_rnn._fit.check import _loss_picture
from pytest_rnn._fit.checkpoints import _RoundTrip, _runs, _said, _trip_lines
from pytest_rnn._fit.diff import (
    _compare_history,
    _compare_vars,
    _format_losses,
    _format_vars,
    _VarReport,
)
from pytest_rnn._fit.runs import (
    _check_fit_kwargs,
    _Session,
    _Trained,
    _training_data,
    _watch_unseeded,
)
from pytest_rnn._report import recorded

_DEFAULT_SAVE = f"model.save(folder / {K.MODEL_FILE!r})"
_DEFAULT_LOAD = f"keras.models.load_model(folder / {K.MODEL_FILE!r})"


@recorded
def assert_resume_equivalent(
    make_model: Callable[[], Any],
    x: Any,
    y: Any,
    *,
    epochs: int = 2,
    resume_at: int | list[int] = 1,
    save: Callable[[Any, Path], Any] | None = None,
    load: Callable[[Path], Any] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that training resumed from a checkpoint equals training never interrupted.

    Run A: ``make_model()`` then ``fit(x, y, epochs=epochs)``, which calls
    ``save(model, folder)`` at the end of epoch ``resume_at`` (from a callback
    after yours, where ``ModelCheckpoint`` writes) and trains on. Run B goes on
    from that checkpoint as a new process would: the seed set again, ``model =
    load(folder)``, new copies of the callbacks, ``fit(x, y, epochs=epochs,
    initial_epoch=resume_at)`` (a list of ``resume_at`` stops at each: run B
    saves and loads again there). Both start from
    ``keras.utils.set_random_seed(seed)`` with deterministic ops. Compared at
    the end: every weight, every optimizer variable (its
    iteration count, moments, learning rate), every stateful RNN state, and
    the per-epoch values of every ``History`` key. The states of
    ``SeedGenerator``s are left out of the verdict (an unused one may differ
    harmlessly); one that training draws from shows in the weights, and the
    message then says it was not restored.

    What Keras 3's defaults keep (``model.save`` to ``model.keras``,
    ``keras.models.load_model``): the weights, the compile arguments and the
    whole optimizer. What they lose: RNN states (zeros after the load) and
    the ``SeedGenerator`` states (Dropout, ``recurrent_dropout``), so a model
    that carries states across epochs or uses dropout does not resume exactly
    with them; the message says how to carry both.

    Args:
        make_model: function returning a fresh *compiled* model at every call.
        x: training inputs: an array, a list/dict of arrays, a
            ``tf.data.Dataset`` yielding ``(x, y)`` batches, or a function that
            builds one (then ``y`` is None). The function is called by each
            process: once by the uninterrupted run, again after every load,
            as a restarted job would. A dataset that shuffles draws a new
            order at every pass; a resumed process starts that stream again
            (the message says so).
        y: training targets, as many samples as ``x``; None with a dataset.
        epochs: N, the epochs of the uninterrupted run (>= 2).
        resume_at: the epoch (1..N-1) after which run B is saved and loaded,
            or a list of them.
        save: ``save(model, folder)`` writes the checkpoint into ``folder`` (a
            new empty ``pathlib.Path``, removed after). Default:
            ``model.save(folder / "model.keras")``.
        load: ``load(folder)`` returns the model to continue with. Default:
            ``keras.models.load_model(folder / "model.keras")``.
        fit_kwargs: more ``fit`` arguments (``batch_size``, ``shuffle``,
            ``callbacks``, ``validation_data``...); not ``x``, ``y``, ``epochs``
            or ``initial_epoch``. ``verbose`` defaults to 0.
        seed: the seed both runs start from; None: the session's --rnn-seed (0 unless set).
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            dtype (float32: 1.3e-6 and 1e-5; integer variables exactly).
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: the resumed run differs. The message gives the
            first epoch whose loss differs (a per-epoch table), the first
            variable that differs (layer and name, optimizer slots as
            ``optimizer ...``), what each checkpoint lost between save and
            load, and the causes with their fixes: optimizer state not
            restored, RNN states or ``SeedGenerator`` states not in the
            checkpoint, a callback whose state restarts (EarlyStopping,
            ReduceLROnPlateau), the dtype policy or the optimizer's
            configuration changed, a dataset's shuffle order.
        TypeError, ValueError: an argument is wrong; the message names it.

    Example:
        >>> def make_model():
        ...     model = keras.Sequential([keras.Input((20, 3)), layers.LSTM(16), layers.Dense(1)])
        ...     model.compile(optimizer="adam", loss="mse")
        ...     return model
        >>> pytest_rnn.assert_resume_equivalent(make_model, x, y, epochs=3, resume_at=[1, 2],
        ...                                     fit_kwargs={"batch_size": 32})
    """
    __tracebackhide__ = True
    K.check_factory(make_model, "make_model", "builds and compiles a new model")
    data = _training_data(x, y)
    dataset = data.pipeline
    epochs = check_int(epochs, "epochs", 2)
    points = _resume_points(resume_at, epochs)
    save_fn = K.check_hook(save, "save", "save(model, folder)", K.save_model)
    load_fn = K.check_hook(load, "load", "load(folder) -> model", K.load_model)
    kwargs = _check_fit_kwargs(fit_kwargs, "assert_resume_equivalent")
    kwargs.setdefault("verbose", 0)
    if dataset:  # a dataset orders itself; Keras warns about its default shuffle=True
        kwargs.setdefault("shuffle", False)
    seed = check_seed(seed)
    check_tolerances(rtol, atol)

    built: list[Any] = []
    with (
        _Session(seed).active() as session,
        _watch_unseeded() as unseeded,
        tempfile.TemporaryDirectory(prefix="pytest-rnn-resume-") as tmp,
    ):

        def runs(
            cut: list[int], fit: dict[str, Any] = kwargs
        ) -> tuple[_Trained, _Trained | None, list[_RoundTrip]]:
            return _runs(session, make_model, data, fit, epochs, cut, save_fn, load_fn,
                         Path(tmp), built, rtol, atol)  # fmt: skip

        single, resumed_or_none, trips = runs(points)
        assert resumed_or_none is not None
        resumed = resumed_or_none
        loss_tol = K.output_tolerance(rtol, atol, single.compute_dtype)
        losses, other = _compare_history(single.history, resumed.history, loss_tol)
        full = _compare_vars(single.variables, resumed.variables, rtol, atol)
        variables = full.without("RNG state")
        if not losses and not other and variables.ok:
            for trip in trips:  # the load's warnings reach the user of a passing check too
                for w in trip.warnings:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            return
        callbacks = _callback_state_causes(kwargs.get("callbacks") or [])
        repeat: _VarReport | None = None
        unshuffled_ok: bool | None = None
        if not callbacks and not any(t.lost.diffs or t.lost.structure or t.changed for t in trips):
            # Only an unexplained failure pays for more runs: the uninterrupted one again,
            # and where fit shuffles arrays, both runs without shuffling.
            again = runs([])[0]
            repeat = _compare_vars(single.variables, again.variables, rtol, atol)
            if kwargs.get("shuffle", True) and not dataset:
                a, b, _ = runs(points, {**kwargs, "shuffle": False})
                assert b is not None
                unshuffled = _compare_vars(a.variables, b.variables, rtol, atol)
                unshuffled_ok = unshuffled.without("RNG state").ok
    name_a, name_b = f"fit(epochs={epochs})", "resumed"
    at = (
        f"epoch {points[0]}"
        if len(points) == 1
        else (f"epochs {', '.join(str(p) for p in points[:-1])} and {points[-1]}")
    )
    causes = _resume_causes(
        trips=[(t.epoch, t.lost, t.changed, _said(t.warnings)) for t in trips],
        rng_differs=[d.label for d in full.diffs if d.kind == "RNG state"],
        callbacks=callbacks,
        stateful=single.stateful,
        fit_kwargs=kwargs,
        dataset=dataset,
        repeat=repeat,
        unshuffled=unshuffled_ok,
        unseeded=list(unseeded),
        seed=seed,
    )
    lines = [
        f"Training resumed from a checkpoint after {at} differs from one uninterrupted {name_a}.",
        f"  model {single.description}; {data.describe()}; "
        f"fit_kwargs {describe_kwargs(kwargs)}; seed {seed}",
        f"  checkpoint: save {_name(save, _DEFAULT_SAVE)}, load {_name(load, _DEFAULT_LOAD)}",
        *_format_losses(losses, other, name_a, name_b, loss_tol),
        *_format_vars(variables, name_a, name_b),
        *(line for trip in trips for line in _trip_lines(trip)),
        "  likely causes:",
        *(f"    - {c}" for c in causes),
    ]
    picture = _loss_picture(
        lines[0], {name_a: single.history, name_b: resumed.history}, variables, loss_tol,
        marks=[(p, f"resumed after epoch {p}") for p in points],
    )  # fmt: skip
    raise RNNAssertionError("\n".join(lines), picture=picture)


# --------------------------------------------------------------------------- arguments


def _resume_points(resume_at: Any, epochs: int) -> list[int]:
    """``resume_at`` as a sorted list of distinct epochs in ``1..epochs-1``."""
    many = isinstance(resume_at, (list, tuple))
    values = list(resume_at) if many else [resume_at]
    if many and not values:
        raise ValueError("resume_at must name at least one epoch, got an empty list")
    points = [check_int(v, "resume_at", 1) for v in values]
    late = [p for p in points if p >= epochs]
    if late:
        raise ValueError(
            f"resume_at must lie in 1..{epochs - 1} (before the last of epochs={epochs}), "
            f"got {late[0]}"
        )
    if len(set(points)) != len(points):
        raise ValueError(f"resume_at names an epoch twice: {values}")
    return sorted(points)


def _name(fn: Any, default: str) -> str:
    return default if fn is None else getattr(fn, "__qualname__", type(fn).__name__)
