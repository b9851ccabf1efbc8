"""assert_labels_causal: per-step labels use only input steps the model may see.

The labels' dependence map is measured with :class:`~.measure._LabelCaller`,
and, with ``model``, the model's receptive field with :func:`~.measure._model_map`;
a label dependence outside the allowed region (steps ``<= t + horizon``, or
what the model sees plus the declared forecast) fails. The rest of the file is
the failure's text: the message, the hint that names the pattern and the grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._causal.args import _check_sequences, _name_of, _probe
from pytest_rnn._causal.measure import _LabelCaller, _model_map, _prepare_model
from pytest_rnn._core import perturb as _perturb
from pytest_rnn._core import text as _text
from pytest_rnn._core import validate as _validate
from pytest_rnn._core.validate import Batch
from pytest_rnn._errors import DependencePicture, RNNAssertionError
from pytest_rnn._report import recorded


def _visible_text(steps: list[int]) -> str:
    if not steps:
        return "depends on no input step"
    if len(steps) == 1:
        return f"depends only on step {steps[0]}"
    return f"depends on steps {_text.ranges(steps)}"


def _label_hint(bad: np.ndarray, labels: np.ndarray, horizon: int, with_model: bool) -> str:
    """What the pattern of bad dependences usually means."""
    t = labels.shape[0]
    cols = np.flatnonzero(labels.any(axis=0))
    rows_with = [r for r in range(t) if labels[r].any()]
    if len(cols) == 1 and len(rows_with) > 1 and bad.any():
        c = int(cols[0])
        how = (
            " (e.g. y[i, :] = ... inside a loop over steps: the last step overwrites the others)"
            if c == t - 1
            else ""
        )
        return (
            f"every label step depends on input step {c} alone: the labels of the whole "
            f"sequence were set from one step{how}. Set each step's label from its own "
            "step (y[i, t] = ...)."
        )
    future = [(r, c) for r, c in zip(*np.nonzero(bad)) if c > r]
    past = [(r, c) for r, c in zip(*np.nonzero(bad)) if c <= r]
    hints = []
    if future:
        ahead = sorted({int(c - r) for r, c in future})
        if not with_model:
            hints.append(
                f"the labels look {_text.ranges(ahead)} step(s) ahead; if that is a forecast "
                f"target, declare it with horizon={max(ahead)}, otherwise compute each "
                "label from steps <= t"
            )
        else:
            hints.append(
                "labels use later steps the model cannot see: use a model that reads them "
                f"(e.g. Bidirectional) or, for a forecast, declare horizon={max(ahead)}"
            )
    if past:
        hints.append(
            "labels use earlier steps the model cannot see: a per-step model "
            "(Dense/TimeDistributed) sees only its own step; use a recurrent or causal "
            "Conv1D model, or labels of each step alone"
        )
    return "; ".join(hints) + "."


def _label_grid(labels: np.ndarray, bad: np.ndarray, sees: np.ndarray | None) -> list[str]:
    symbols = np.full(labels.shape, ".", dtype="<U1")
    if sees is not None:
        symbols[sees] = "o"
    symbols[labels] = "#"
    symbols[bad] = "X"
    legend = "X: label depends on it and may not; #: label depends on it, allowed"
    if sees is not None:
        legend = (
            "X: label depends on it, model cannot see it; #: label depends, model sees it; "
            "o: model sees it only"
        )
    return [
        "  dependence map:",
        *_text.grid(symbols, "label", _text.GRID_STEPS),
        f"  {legend}; .: neither",
    ]


@recorded
def assert_labels_causal(
    make_labels: Callable[[Any], Any],
    x: Any,
    *,
    model: Any = None,
    horizon: int = 0,
    trials: int = 8,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that per-step labels use only input steps the model may see.

    Dependence is measured by replacing one input step at a time with the
    values of another (sample, step) of ``x`` (``trials`` times per step) and
    watching which label steps change (see :func:`dependence_map`).

    - Without ``model``: the label at step ``t`` may depend only on input
      steps ``<= t + horizon``. ``horizon > 0`` declares a forecast target
      (``label[t] = x[t + 1]`` passes with ``horizon=1``).
    - With ``model``: every input step a label depends on must be visible to
      the model's output at the same step (its receptive field, measured the
      same way, plus input gradients). Steps ``t+1 .. t+horizon`` are
      the declared forecast and exempt. A TimeDistributed model sees only its
      own step; an LSTM sees every earlier step; a Bidirectional one all steps.

    Args:
        make_labels: your function ``x -> labels (batch, steps, ...)`` (or a
            list/dict of such). An array is refused: dependence needs the function.
        x: inputs ``(batch, steps, features...)``, or a list/dict of them.
        model: optional Keras model with per-step outputs.
        horizon: how many steps ahead the labels may look (>= 0).
        trials: replacements per input step (more finds rarer dependence).
        seed: seed of the replacements (default: the session seed, 0).
        rtol: tolerance for "a label changed" (with ``atol``; default by dtype).
        atol: see ``rtol``.

    Raises:
        RNNAssertionError: a label depends on a step it may not. The message
            lists, per label step, the offending input steps with how many
            samples showed it in how many trials, what the model's output at
            that step depends on, a text grid for short sequences, and what the
            pattern usually means.
        TypeError: ``make_labels`` is not a function, ``model`` not a Keras model.
        ValueError: a bad ``x``, a negative ``horizon``, or ``make_labels``
            returning another batch size or step count.

    Example:
        >>> def labels(x):  # seed 001's bug: every step labelled from the last one
        ...     last = x[:, -1].sum(axis=-1) > 50
        ...     return np.repeat(last[:, None], x.shape[1], axis=1)
        >>> pytest_rnn.assert_labels_causal(labels, x, model=model)
        RNNAssertionError: Labels depend on input steps the model cannot see ...
          label at step 0 depends on input step 1 (64/64 samples, 8 trials); the
          model's output at step 0 depends only on step 0
    """
    __tracebackhide__ = True
    K.check_function(make_labels, "make_labels", "labels", "x -> labels (batch, steps, ...)")
    horizon = _validate.check_int(horizon, "horizon", 0)
    probe = _probe(trials, seed, rtol, atol)
    batch = _check_sequences(x)
    if model is not None:
        K.check_model(model, "model")
        K.check_input_shapes(model, list(zip(batch.paths, batch.leaves)), "x")
    with K.untouched():
        caller = _LabelCaller(make_labels, batch, probe, "make_labels")
        per = _perturb.per_sample_map(caller, batch, probe.trials, probe.seed, caller.tolerances)
        seen_by: np.ndarray | None = None
        if model is not None:
            # rtol/atol are the labels'; the model's outputs keep their dtype's default.
            mr = _prepare_model(model, batch, replace(probe, rtol=None, atol=None))
            model_per, _ = _model_map(mr, batch)
            seen_by = np.asarray(model_per.any(axis=1))
    counts = per.sum(axis=1)
    labels = counts > 0
    t = batch.steps
    rows, cols = np.indices((t, t))
    forecast = (cols > rows) & (cols <= rows + horizon)
    allowed = cols <= rows + horizon if seen_by is None else seen_by | forecast
    bad = labels & ~allowed
    if not bad.any():
        return None
    message = _labels_message(
        make_labels, model, batch, probe.trials, horizon, counts, bad, seen_by
    )
    region = "steps <= t" + (f" + {horizon}" if horizon else "")
    picture = DependencePicture(
        message.splitlines()[0], counts, batch.batch, allowed, bad, "label step", "input step",
        f"allowed: {region}" if seen_by is None else "the model's receptive field"
        + (f" (+ horizon {horizon})" if horizon else ""),
    )  # fmt: skip
    raise RNNAssertionError(message, picture=picture)


def _labels_message(
    make_labels: Any,
    model: Any,
    batch: Batch,
    trials: int,
    horizon: int,
    counts: np.ndarray,
    bad: np.ndarray,
    seen_by: np.ndarray | None,
) -> str:
    labels = counts > 0
    t = batch.steps
    if seen_by is None:
        head = (
            f"Labels depend on later input steps (horizon={horizon}): the label at step t "
            f"may use only steps <= t{f' + {horizon}' if horizon else ''}."
        )
    else:
        head = (
            "Labels depend on input steps the model cannot see at the same step: "
            "a model trained on them can only guess."
        )
    where = f"make_labels {_name_of(make_labels)!r} on x of {batch.batch} samples, {t} steps"
    if model is not None:
        where += f"; model {K.describe_model(model)}"
    lines = [head, f"  {where}; {_text.plural(trials, 'trial')} per input step"]
    bad_rows = [r for r in range(t) if bad[r].any()]
    for r in bad_rows[:_text.MAX_LINES]:
        steps = [int(c) for c in np.flatnonzero(bad[r])]
        found = (
            f"label at step {r} depends on input {_text.steps_word(steps)} "
            f"({_text.count_range([int(counts[r, c]) for c in steps], batch.batch)} samples, "
            f"{_text.plural(trials, 'trial')})"
        )
        if seen_by is not None:
            found += f"; the model's output at step {r} {_visible_text(list(np.flatnonzero(seen_by[r])))}"
        lines.append(f"  {found}")
    if len(bad_rows) > _text.MAX_LINES:
        lines.append(
            f"  ... and {len(bad_rows) - _text.MAX_LINES} more label steps ({len(bad_rows)} in all)"
        )
    if t <= _text.GRID_STEPS:
        lines.extend(_label_grid(labels, bad, seen_by))
    lines.append(
        f"  What it usually means: {_label_hint(bad, labels, horizon, seen_by is not None)}"
    )
    return "\n".join(lines)
