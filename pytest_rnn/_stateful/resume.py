"""assert_stream_resumable: a stream saved, loaded and continued is the uninterrupted stream.

A stateful model serving a stream is checkpointed mid-stream (a restart, a
deploy, a worker moving): its states read, the model saved and loaded, the
states set back. Both runs go through the same stateful model (the user's
``stateful_model`` or a twin): the uninterrupted one feeds ``x`` cut at the
interruption points, one compiled call per piece; the interrupted one saves
and loads at each point and feeds the next piece to the loaded model. Where
they differ, :func:`~pytest_rnn._stateful.restored._resume_findings` reads the evidence of the first broken
interruption (the states just before ``save``, just after ``load``, and the
weights): a stateless rebuild, states not restored, restored into the wrong
layer or order, cast to a lower precision, changed weights.
"""

from __future__ import annotations

import bisect
import contextlib
import pathlib
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import tree as _tree
from pytest_rnn._core.stream import ChunkSchedule, chunk_pieces, compare_runs, join, mismatch_lines
from pytest_rnn._core.validate import Batch, check_int, check_tolerances
from pytest_rnn._errors import RNNAssertionError, StepComparison, StepPicture
from pytest_rnn._report import recorded
from pytest_rnn._stateful.restored import States, _resume_findings
from pytest_rnn._stateful.run import _stream_inputs

__all__ = ["assert_stream_resumable"]


@recorded
def assert_stream_resumable(
    model: Any,
    x: Any,
    *,
    at: int | Sequence[int],
    stateful_model: Any = None,
    save: Callable[[Any, pathlib.Path], Any] | None = None,
    load: Callable[[pathlib.Path], Any] | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that a stream saved and loaded after step ``at`` continues as if never interrupted.

    The uninterrupted run resets a stateful model (your ``stateful_model``, or a
    twin pytest-rnn builds with ``model``'s weights) and feeds it ``x[:, :at]``
    then ``x[:, at:]`` (one call per piece, cut at every interruption point).
    The interrupted run feeds the first piece, then at each point calls
    ``save(model, folder)`` (a fresh temporary ``pathlib.Path``, removed after),
    ``loaded = load(folder)``, and feeds the next piece to ``loaded``. Outputs
    are compared at every step (last-step outputs at the end of every piece).

    ``save`` and ``load`` own everything the stream needs to continue, the RNN
    states included: Keras's ``model.save`` does not save them (a model from
    ``keras.models.load_model`` starts from zeros). The defaults save
    ``folder / "model.keras"`` and the states in ``folder / "states.npz"``, and
    load both. Your own pair must persist the states too::

        def save(model, folder):
            model.save(folder / "model.keras")
            states = pytest_rnn.get_states(model)  # {layer path: [arrays]}
            (folder / "states.pkl").write_bytes(pickle.dumps(states))

        def load(folder):
            loaded = keras.models.load_model(folder / "model.keras")
            pytest_rnn.set_states(loaded, pickle.loads((folder / "states.pkl").read_bytes()))
            return loaded

    Args:
        model: a Keras model (Sequential or Functional), stateless or stateful.
        x: ``(batch, steps, features...)`` array (or ``(batch, steps)`` token ids),
            or a list/dict of them for a multi-input model.
        at: the step after which the stream is interrupted (``1 <= at < steps``:
            ``x[:, :at]`` is fed before the save), or a list of such points.
        stateful_model: your own streaming model, of ``x``'s batch size, used for
            both runs instead of the twin. Its states are saved and put back.
        save: ``save(model, folder)``; default: ``model.save`` plus the states.
            Given alone, the default ``load`` reads what it wrote.
        load: ``load(folder) -> model``; default: ``keras.models.load_model``
            (``compile=False``) plus the states, where ``states.npz`` exists; a
            model with custom layers needs your own (``custom_objects=``).
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            output dtype (float32: 1.3e-6 and 1e-5), or ``--rnn-rtol``/``--rnn-atol``.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: the resumed stream differs. The message gives the
            model, shapes and interruption points, the first step and sample that
            differ, how many differ and by how much, and what the states and
            weights just before ``save`` and just after ``load`` show: a loaded
            model rebuilt stateless, states not restored (zeros), restored into
            the wrong layer or order, cast to a lower precision, weights changed.
        TypeError, ValueError: an argument is wrong (``load`` returned no Keras
            model); the message names it.

    Example:
        >>> model = keras.Sequential([keras.Input((None, 3)), layers.LSTM(16), layers.Dense(1)])
        >>> pytest_rnn.assert_stream_resumable(model, x, at=[4, 9])
    """
    __tracebackhide__ = True
    K.check_model(model, "model")
    inputs = _stream_inputs(model, x, "resumed and uninterrupted")
    points = _check_at(at, inputs.steps)
    pieces = ChunkSchedule.parse(list(np.diff([0, *points, inputs.steps])), inputs.steps)
    check_tolerances(rtol, atol)
    save_fn = K.check_hook(save, "save", "save(model, folder)", K.save_stream)
    load_fn = K.check_hook(load, "load", "load(folder) -> model", K.load_stream)
    _check_models(model, stateful_model, inputs, pieces)
    with K.untouched(stateful_model), contextlib.ExitStack() as folders:
        streamer = stateful_model
        if streamer is None:
            streamer = K.cached_clone(model, "stateful", inputs.batch)
        expected = chunk_pieces(
            lambda piece: _feed(streamer, piece), lambda: K.reset_states(streamer), inputs, pieces
        )
        actual, events = _interrupted(streamer, inputs, pieces, save_fn, load_fn, folders)
        sequence = _sequence_flags(streamer, expected, pieces)
        failure = _compare_runs(expected, actual, sequence, pieces, rtol, atol)
        if failure is not None:
            context = _context(model, stateful_model, inputs, points, save, load)
            report, picture = _report(failure, sequence, pieces, events, context)
            raise RNNAssertionError(report, picture=picture)


# --------------------------------------------------------------------------- arguments


def _check_at(at: Any, steps: int) -> list[int]:
    """The interruption points, sorted: ints in ``1..steps - 1``, none twice."""
    many = isinstance(at, (list, tuple)) or (isinstance(at, np.ndarray) and at.ndim > 0)
    points = [check_int(v, "at", 1) for v in (at if many else [at])]
    if not points:
        raise ValueError("at is an empty list: give at least one step to interrupt after")
    for v in points:
        if v >= steps:
            raise ValueError(
                f"at must be in 1..{steps - 1} (x has {steps} steps: the stream is interrupted "
                f"between two steps), got {v}"
            )
    if twice := sorted({v for v in points if points.count(v) > 1}):
        raise ValueError(f"at holds {twice} more than once: give each interruption point once")
    return sorted(points)


def _check_models(model: Any, stateful_model: Any, inputs: Batch, pieces: ChunkSchedule) -> None:
    if stateful_model is None:
        if not K.is_graph_model(model):
            raise TypeError(
                f"model {model.name!r} is a subclassed {type(model).__name__}: pytest-rnn cannot "
                "build its stateful twin; pass your streaming copy as stateful_model="
            )
        if not K.rnn_layers(model):
            raise ValueError(f"model {model.name!r} has no RNN layer: no stream state to resume")
        return
    if not K.is_model(stateful_model):
        raise TypeError(
            f"stateful_model must be a Keras model, got {type(stateful_model).__name__}"
        )
    if not K.stateful_layers(stateful_model):
        raise ValueError(
            f"stateful_model {stateful_model.name!r} has no stateful RNN layer: it keeps no "
            "state between calls, so there is nothing to resume"
        )
    if (size := K.input_batch(stateful_model)) != inputs.batch:
        raise ValueError(
            f"stateful_model has batch size {size}; it must be x's batch size {inputs.batch} "
            "(the states saved are those of the whole batch)"
        )
    fixed = K.fixed_steps(stateful_model)
    if fixed is not None and any(n != fixed for n in pieces.lengths):
        raise ValueError(
            f"stateful_model takes exactly {fixed} step(s) per call, but at cuts x into pieces "
            f"of {list(pieces.lengths)} steps: build it with a None time dimension"
        )


# --------------------------------------------------------------------------- the runs


@dataclass(frozen=True)
class _Interruption:
    """One save and load, and the evidence a diagnosis reads."""

    at: int
    saved: States  # the streamer's states just before save
    saved_weights: list[tuple[str, np.ndarray]]
    loaded: Any  # the model load returned
    loaded_states: States  # its states just after load, before it ran


def _feed(model: Any, piece: Batch) -> list[np.ndarray]:
    call = K.compiled(model, piece.tree, fixed_batch=True)
    return [leaf for _, leaf in _tree.flatten(call(piece.tree))]


def _interrupted(
    streamer: Any, inputs: Batch, pieces: ChunkSchedule, save: Any, load: Any,
    folders: contextlib.ExitStack,
) -> tuple[list[list[np.ndarray]], list[_Interruption]]:  # fmt: skip
    """Reset and feed the first piece; at every point save, load, feed the loaded model the next."""
    K.reset_states(streamer)
    current, events = streamer, []
    out: list[list[np.ndarray]] = []
    for c, (start, end) in enumerate(pieces.bounds()):
        if c:  # each folder kept until the check ends: a load may read it lazily
            folder = folders.enter_context(tempfile.TemporaryDirectory(prefix="pytest-rnn-resume-"))
            saved, weights = K.get_states(current), K.weight_values(current)
            save(current, pathlib.Path(folder))
            loaded = load(pathlib.Path(folder))
            if not K.is_model(loaded):
                raise TypeError(f"load must return a Keras model, got {type(loaded).__name__}")
            events.append(_Interruption(start, saved, weights, loaded, K.get_states(loaded)))
            current = loaded
        for n, leaf in enumerate(_feed(current, inputs.steps_slice(start, end))):
            if n == len(out):
                out.append([])
            out[n].append(leaf)
    return out, events


def _sequence_flags(
    streamer: Any, out: list[list[np.ndarray]], pieces: ChunkSchedule
) -> list[bool]:
    """Which outputs have a time axis: from the graph, else from the pieces' shapes."""
    if K.is_graph_model(streamer) and K.fixed_steps(streamer) is None:
        return [
            len(t.shape) >= 2 and t.shape[1] is None for _, t in _tree.flatten(streamer.outputs)
        ]
    return [all(p.ndim >= 2 and p.shape[1] == n for p, n in zip(o, pieces.lengths)) for o in out]


@dataclass(frozen=True)
class _Failure:
    mismatches: list[tuple[int, _compare.Mismatch]]
    step: int  # the first step that differs
    joined: tuple[list[np.ndarray], list[np.ndarray]] | None  # None: a piece's shapes differ


def _compare_runs(
    expected: list[list[np.ndarray]], actual: list[list[np.ndarray]], sequence: list[bool],
    pieces: ChunkSchedule, rtol: float | None, atol: float | None,
) -> _Failure | None:  # fmt: skip
    tolerances = [K.output_tolerance(rtol, atol, e[0].dtype) for e in expected]
    for c, (start, _) in enumerate(pieces.bounds()):  # a loaded model with other outputs
        got = [actual[n][c] if n < len(actual) else np.zeros(0) for n in range(len(expected))]
        shaped = [
            (n, m)
            for n, (g, e, tol) in enumerate(zip(got, expected, tolerances))
            if g.shape != e[c].shape and (m := _compare.compare(g, e[c], tol)) is not None
        ]
        if shaped:
            return _Failure(shaped, start, None)
    joined = join(actual, sequence), join(expected, sequence)
    if mismatches := compare_runs(*joined, tolerances, sequence, None, pieces):
        return _Failure(mismatches, min(m.step_of(m.first) or 0 for _, m in mismatches), joined)
    return None


# --------------------------------------------------------------------------- the report


def _context(
    model: Any, stateful_model: Any, inputs: Batch, points: list[int], save: Any, load: Any
) -> str:
    own = [name for name, fn in (("save", save), ("load", load)) if fn is not None]
    text = (
        f"model {K.describe_model(model)}, batch {inputs.batch}, {inputs.steps} steps, "
        f"interrupted after {', '.join(f'x[:, :{p}]' for p in points)} (saved, loaded, "
        f"continued) with {'your ' + ' and '.join(own) if own else 'the default save and load'}"
    )
    if stateful_model is not None:
        text += f"\n  streamed by your stateful_model {stateful_model.name!r}"
    return text


def _report(
    failure: _Failure, sequence: list[bool], pieces: ChunkSchedule,
    events: list[_Interruption], context: str,
) -> tuple[str, StepPicture | None]:  # fmt: skip
    starts = [e.at for e in events]
    event = events[max(bisect.bisect_right(starts, failure.step) - 1, 0)]
    title = f"Stream resumed after step {event.at} differs from the uninterrupted stream."
    lines = [title, f"  {context}"]
    if not all(sequence[n] for n, _ in failure.mismatches):
        lines.append(
            "  last-step output: compared at the end of every piece "
            "(step s below is the output after step s)"
        )
    lines += mismatch_lines(failure.mismatches, sequence, "resumed", "uninterrupted")
    findings = _resume_findings(event.saved, event.saved_weights, event.loaded, event.loaded_states)
    lines += [f"  {line}" for line in findings]
    if failure.joined is None:
        return "\n".join(lines), None
    (n, m), (actual, expected) = failure.mismatches[0], failure.joined
    drawn = StepComparison(
        "resumed vs uninterrupted stream", "resumed (saved, loaded, continued)", "uninterrupted",
        actual[n], expected[n], m.tolerance.rtol, m.tolerance.atol,
        None if sequence[n] else pieces.last_steps,
    )  # fmt: skip
    return "\n".join(lines), StepPicture("resume", title, (drawn,), tuple(starts), context=context)
