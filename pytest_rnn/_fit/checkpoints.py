"""The runs of ``assert_resume_equivalent``: the uninterrupted fit that writes checkpoints, the resumed one.

:func:`_runs` trains both. The uninterrupted ``fit(epochs=N)`` writes the
first checkpoint itself, from :func:`~pytest_rnn._keras.saving.epoch_end_hook`
after the user's callbacks (where ``ModelCheckpoint`` writes), and trains on;
the resumed run loads it as a new process would (:func:`_round_trip`: the
seed and Keras's name counters set again, ``load(folder)``) and fits on with
``initial_epoch``. What each checkpoint lost between save and load is a
:class:`_RoundTrip`, worded by :func:`_trip_lines`.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_rnn import _keras as K
from pytest_rnn._fit.diff import _compare_vars, _format_vars, _snapshot, _Var, _VarReport
from pytest_rnn._fit.runs import (
    _build,
    _check_fit_signature,
    _Data,
    _fit,
    _fresh_callbacks,
    _history,
    _Session,
    _Trained,
    _trained,
)


@dataclass(frozen=True)
class _RoundTrip:
    """What one checkpoint kept: the model just before ``save`` against the one ``load`` gave."""

    epoch: int  # resumed after this many epochs
    lost: _VarReport  # saved model (A) against loaded model (B)
    changed: list[str]  # settings that differ: dtype policy, optimizer configuration
    warnings: list[warnings.WarningMessage]  # what the load warned


@dataclass
class _Checkpoint:
    """A checkpoint written at the end of an epoch: its folder and the model as it was saved."""

    epoch: int
    folder: Path
    saved: Any  # the model save was given (it may train on after the save)
    before: list[_Var]
    settings: dict[str, str]


def _runs(
    session: _Session,
    make_model: Any,
    data: _Data,
    kwargs: dict[str, Any],
    epochs: int,
    cut: list[int],
    save: Callable[..., Any],
    load: Callable[..., Any],
    tmp: Path,
    earlier: list[Any],
    rtol: float | None,
    atol: float | None,
) -> tuple[_Trained, _Trained | None, list[_RoundTrip]]:
    """The uninterrupted run, and (with a ``cut``) the run resumed at each epoch of it.

    The uninterrupted ``fit(epochs)`` writes the first checkpoint itself, at the
    end of epoch ``cut[0]`` (after the user's callbacks, as ModelCheckpoint
    does), so the resumed run shares its first epochs instead of training them
    again. The resumed run loads it as a new process would and fits on, writing
    the next checkpoint the same way at the end of its last epoch. A dataset
    factory is called by each process: once for the uninterrupted run, again
    after every load.
    """
    session.begin_run()
    model = _build(make_model, "make_model", earlier)
    earlier.append(model)
    _check_fit_signature(model, kwargs)
    written: list[_Checkpoint] = []

    def fit(model: Any, start: int, end: int, checkpoint: int | None) -> dict[str, list[float]]:
        x, y = data.for_run()
        callbacks = _fresh_callbacks(kwargs.get("callbacks") or [])
        if checkpoint is not None:
            callbacks.append(K.epoch_end_hook(checkpoint, write))
        run = {**kwargs, "epochs": end, "initial_epoch": start, "callbacks": callbacks}
        return _history(_fit(model, x, y, **run))

    def write(model: Any, epoch: int) -> None:
        folder = Path(tempfile.mkdtemp(prefix=f"after-epoch-{epoch}-", dir=tmp))
        before, settings = _snapshot(model, rng_apart=True), _settings(model)
        save(model, folder)
        written.append(_Checkpoint(epoch, folder, model, before, settings))

    history = fit(model, 0, epochs, cut[0] if cut else None)
    single = _trained(model, history, rng_apart=True)
    if not cut:
        return single, None, []
    resumed = {k: v[: cut[0]] for k, v in history.items()}
    trips = []
    for n, start in enumerate(cut):
        if not written or written[-1].epoch != start:
            stopped = len(next(iter(resumed.values()), []))
            raise ValueError(
                f"training stopped after epoch {stopped} (a callback set stop_training) before "
                f"resume_at={start}: there is no checkpoint to resume from; resume earlier"
            )
        model, trip = _round_trip(session, written[-1], load, rtol, atol)
        trips.append(trip)
        end = cut[n + 1] if n + 1 < len(cut) else epochs
        more = fit(model, start, end, end if end < epochs else None)
        for key, values in more.items():
            resumed.setdefault(key, []).extend(values)
    return single, _trained(model, resumed, rng_apart=True), trips


def _round_trip(
    session: _Session,
    checkpoint: _Checkpoint,
    load: Callable[..., Any],
    rtol: float | None,
    atol: float | None,
) -> tuple[Any, _RoundTrip]:
    """Start afresh as a new process would and load ``checkpoint``: the loaded model, what it lost."""
    session.begin_run()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load(checkpoint.folder)
    if not K.is_model(loaded):
        raise TypeError(f"load(folder) must return a Keras model, got {type(loaded).__name__}")
    if loaded is checkpoint.saved:
        raise ValueError(
            "load(folder) returned the model it was saved from: it must build or load a new "
            "one from the folder, as a resumed process does"
        )
    if not getattr(loaded, "compiled", False) or getattr(loaded, "optimizer", None) is None:
        raise ValueError(
            f"load(folder) returned the uncompiled model {loaded.name!r}: a resumed fit needs "
            "the loss and optimizer (keras.models.load_model keeps them; compile after "
            "load_weights)"
        )
    settings, epoch = checkpoint.settings, checkpoint.epoch
    lost = _compare_vars(checkpoint.before, _snapshot(loaded, rng_apart=True), rtol, atol)
    after = _settings(loaded)
    changed = [
        f"{k}: {settings[k]} -> {after.get(k)}" for k in settings if settings[k] != after.get(k)
    ]
    return loaded, _RoundTrip(epoch, lost, changed, list(caught))


def _settings(model: Any) -> dict[str, str]:
    """What a checkpoint must keep besides variables: the dtype policy, the optimizer's configuration."""
    policy = getattr(model, "dtype_policy", None)
    out = {"dtype policy": str(getattr(policy, "name", policy))}
    optimizer = model.optimizer
    out["optimizer"] = type(optimizer).__name__
    try:
        config = optimizer.get_config()
    except Exception:  # pragma: no cover - an optimizer without a config
        config = {}
    for key, value in config.items():
        if key != "name":  # floats at float32 precision: 0.01, not 0.009999999776482582
            out[f"optimizer {key}"] = f"{value:.7g}" if isinstance(value, float) else repr(value)
    return out


def _trip_lines(trip: _RoundTrip) -> list[str]:
    """What the checkpoint after one epoch lost, in the message."""
    head = f"  checkpoint after epoch {trip.epoch}"
    report = trip.lost
    if report.ok and not trip.changed:
        return [
            f"{head}: the loaded model equals the saved one (every variable, RNN state, setting)"
        ]
    lines = [f"{head}: the loaded model differs from the saved one"]
    lines += ["  " + line for line in _format_vars(report, "saved", "loaded")]
    lines += [f"    {c}" for c in trip.changed]
    lines += [f"    Keras warned while loading: {w}" for w in _said(trip.warnings)]
    return lines


def _said(caught: list[warnings.WarningMessage]) -> list[str]:
    """The load's warnings worth a line of the message (deprecations are not)."""
    quiet = (DeprecationWarning, PendingDeprecationWarning)
    return [str(w.message).strip() for w in caught if not issubclass(w.category, quiet)]
