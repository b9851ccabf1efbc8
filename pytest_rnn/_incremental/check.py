"""The assertion ``assert_incremental_matches_full``: any state-carrying model, any framework.

The assertion checks its arguments (:mod:`.args`), then, under
``K.untouched``, runs ``full`` once and ``step`` chunk by chunk through the
streaming engine, the state handed from call to call (:mod:`.run`), and
compares the two with the engine's comparison. A failure's report is the
engine's mismatch block and the diagnosis of :mod:`.diagnose`; its picture is
the streaming family's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.compare import Mismatch, resolve_tolerance
from pytest_rnn._core.stream import ChunkSchedule, compare_runs, mismatch_block
from pytest_rnn._core.validate import Batch, check_tolerances
from pytest_rnn._errors import RNNAssertionError, StepComparison, StepPicture
from pytest_rnn._incremental.args import check_function, check_inputs, check_valid, name_of
from pytest_rnn._incremental.diagnose import diagnose
from pytest_rnn._incremental.run import Case, full_outputs, on_chunk, run, step_function
from pytest_rnn._report import recorded

__all__ = ["TITLE", "assert_incremental_matches_full"]

#: The first line of every failure report.
TITLE = "Incremental output differs from the full output."


@recorded
def assert_incremental_matches_full(
    step: Callable[[Any, Any, int], Any],
    full: Callable[[Any], Any],
    x: Any,
    *,
    init: Callable[[Any], Any] | None = None,
    chunks: int | Sequence[int] = 1,
    valid: Any = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that running ``step`` chunk by chunk, state handed on, gives ``full``'s outputs.

    The check for any model that carries state, in any framework. The
    reference is ``full(x)``. The incremental run starts from ``init(x)`` (or a
    state of ``None``), cuts ``x`` by ``chunks`` and calls
    ``step(x_chunk, state, start)`` on each chunk in order, passing on the state
    each call returns; ``start`` is the chunk's first step index. The outputs
    of the calls, joined along time, must equal ``full(x)`` at every valid
    position, within the tolerance of ``full``'s dtype.

    ``x`` reaches ``full``, ``init`` and ``step`` as numpy arrays (in ``x``'s
    structure); outputs may be numpy, Keras, TensorFlow, JAX or torch arrays
    (torch ones are detached), or a list/tuple/dict of them that ``step`` and
    ``full`` return alike. Python's and numpy's global random state and the
    matmul precision settings are left as they were; full float32 precision
    (TF32 off) is used while the functions run.

    Args:
        step: ``step(x_chunk, state, start) -> (y_chunk, state)``; ``x_chunk``
            is ``x[:, start:start + n]``, ``y_chunk`` is ``(batch, n, ...)``.
        full: ``full(x) -> y``, every output ``(batch, steps, ...)``.
        x: ``(batch, steps, features...)`` array (or ``(batch, steps)``), or a
            list/dict of them sharing batch and steps.
        init: ``init(x) -> state``, the state the first call gets; ``None``
            starts from a state of ``None``. It is called again before every
            run (a failure's diagnosis runs ``step`` again), so a model that
            keeps its state inside itself (a Keras stateful model) is reset there.
        chunks: a chunk length (the last chunk may be shorter) or a list of
            lengths summing to the number of steps: uneven schedules are where
            hand-overs break.
        valid: a ``(batch, steps)`` boolean mask of the positions to compare
            (padding left out); ``None`` compares every position.
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            ``full``'s output dtype (float32: 1.3e-6 and 1e-5), or
            ``--rnn-rtol``/``--rnn-atol``.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: the outputs differ. The message names the functions,
            shapes and chunking, the first step and sample that differ, how many
            differ and by how much, the call (chunk, steps, ``start``) that
            computed the first mismatching step, and whether one whole-sequence
            call ``step(x, init(x), 0)`` agrees with ``full`` (then the state
            hand-over between calls is at fault, with what a re-run measured about
            the state and ``start``) or not (then ``step`` itself differs).
        TypeError, ValueError: an argument is wrong, or ``step``/``full`` return
            something that cannot be compared (no ``(y, state)`` pair, another
            structure, another number of steps or batch); the message names it.

    Example:
        >>> lstm = torch.nn.LSTM(3, 8, batch_first=True)
        >>> def full(x):
        ...     return lstm(torch.from_numpy(x))[0]
        >>> def step(x_chunk, state, start):
        ...     return lstm(torch.from_numpy(x_chunk), state)
        >>> with torch.no_grad():
        ...     assert_incremental_matches_full(step, full, x, chunks=[5, 1, 3])
    """
    __tracebackhide__ = True
    check_function(step, "step")
    check_function(full, "full")
    if init is not None:
        check_function(init, "init")
    inputs = check_inputs(x)
    schedule = ChunkSchedule.parse(chunks, inputs.steps)
    check_tolerances(rtol, atol)
    mask = check_valid(valid, inputs)
    with K.untouched():
        report, picture = _check(step, full, init, inputs, schedule, mask, rtol, atol)
    if report is not None:
        raise RNNAssertionError(report, picture=picture)


def _check(
    step: Callable[[Any, Any, int], Any],
    full: Callable[[Any], Any],
    init: Callable[[Any], Any] | None,
    inputs: Batch,
    schedule: ChunkSchedule,
    valid: np.ndarray | None,
    rtol: float | None,
    atol: float | None,
) -> tuple[str | None, StepPicture | None]:
    """Run both sides and compare; the failure report and its picture, or ``None`` when they agree."""
    outputs, reference = full_outputs(full, inputs)

    def initial() -> Any:
        return None if init is None else init(inputs.tree)

    call = step_function(step, outputs, on_chunk(schedule))
    streamed = run(call, initial, inputs, schedule, len(reference))
    tolerances = [resolve_tolerance(rtol, atol, ref.dtype) for ref in reference]
    sequence = [True] * len(reference)
    mismatches = compare_runs(streamed, reference, tolerances, sequence, valid, schedule)
    if not mismatches:
        return None, None
    case = Case(
        step, outputs, initial, inputs, schedule, reference, streamed, tolerances, valid,
        has_init=init is not None,
    )  # fmt: skip
    hints, whole = diagnose(case, mismatches)
    lines = [
        TITLE,
        f"  {_context(step, full, init, inputs, schedule, valid)}",
        *mismatch_block(mismatches, sequence, actual="incremental", expected="full"),
        *hints,
    ]
    drawn = [_drawn(case, *mismatches[0])]
    if whole is not None:
        drawn.append(whole)
    return "\n".join(lines), StepPicture("incremental", TITLE, tuple(drawn), schedule.ends)


def _drawn(case: Case, n: int, m: Mismatch) -> StepComparison:
    """The incremental run against ``full`` for output ``n``, as the picture draws it."""
    return StepComparison(
        "incremental vs full output" + (f", output [{n}]" if len(case.reference) > 1 else ""),
        "incremental (step, chunk by chunk)", "full (whole sequence at once)",
        case.streamed[n], case.reference[n], m.tolerance.rtol, m.tolerance.atol,
        None, case.valid,
    )  # fmt: skip


def _context(
    step: Any,
    full: Any,
    init: Any,
    inputs: Batch,
    schedule: ChunkSchedule,
    valid: np.ndarray | None,
) -> str:
    start = f"init {name_of(init)!r}" if init is not None else "state None at the start"
    text = (
        f"step {name_of(step)!r}, full {name_of(full)!r}, {start}, batch {inputs.batch}, "
        f"{inputs.steps} steps, {schedule.describe()}"
    )
    if valid is not None:
        text += f"; {int(valid.sum())} of {valid.size} positions valid"
    return text
