"""Why the incremental run differs from ``full``: the lines a failure report adds below the mismatch.

:func:`diagnose` names the call that computed the first mismatching step and
makes one extra call, ``step(x, init(x), 0)`` on the whole sequence: if that
differs from ``full`` too, ``step`` itself computes something else; if it
agrees, the fault is in cutting ``x`` into calls. For a fault between calls
:func:`_measured` re-runs the chunks before the first differing one and
measures what ``step`` does with its state and ``start`` there: whether it
hands a changed state back, whether the next chunk depends on that state, and
whether it depends on ``start``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_rnn._core.compare import Mismatch
from pytest_rnn._core.stream import (
    ChunkSchedule,
    Handover,
    chunk_pieces,
    compare_runs,
    first_step,
)
from pytest_rnn._core.text import error_line, plural
from pytest_rnn._errors import StepComparison
from pytest_rnn._incremental.run import Case, chunk_text, run, same_values, snapshot

__all__ = ["WHOLE_CALL", "diagnose"]

#: The one extra call the diagnosis makes, as messages write it.
WHOLE_CALL = "a single whole-sequence call step(x, init(x), 0)"




def diagnose(
    case: Case, mismatches: list[tuple[int, Mismatch]]
) -> tuple[list[str], StepComparison | None]:
    """The report's lines below the mismatch table, and the whole call's pair to draw if it differs."""
    schedule = case.schedule
    step, _, _ = first_step(mismatches)
    k = schedule.chunk_of(step)
    start = schedule.bounds()[k][0]
    calls = len(schedule.lengths)
    at = (
        "at its first step"
        if step == start
        else f"after {plural(step - start, 'step')} of it that agree"
    )
    lines = [
        f"  step {step} was computed by {chunk_text(schedule, k)}, call {k + 1} of {calls}, {at}"
    ]
    if calls == 1:
        lines.append(
            "  one chunk: the incremental run is itself a single whole-sequence call "
            "step(x, init(x), 0), so step computes something other than full (not a "
            "hand-over between calls)"
        )
        return lines, None
    whole = ChunkSchedule((case.inputs.steps,))
    try:
        out = run(
            case.call(lambda _: " in the whole-sequence call step(x, init(x), 0)"),
            case.initial, case.inputs, whole, len(case.reference),
        )  # fmt: skip
    except Exception as error:  # advice only: never hide the real failure behind it
        lines.append(
            f"  {WHOLE_CALL} could not be made ({error_line(error)}): a step function that "
            "differs from full and a hand-over that loses something are not told apart"
        )
        return lines, None
    differs = compare_runs(out, case.reference, case.tolerances, case.sequence, case.valid, whole)
    if differs:
        w, n, m = first_step(differs)
        lines.append(
            f"  {WHOLE_CALL} differs from full too (first at step {w}, sample {m.first[0]}): "
            "step itself computes something other than full, not only the hand-over between "
            "calls; fix step (or full) first"
        )
        drawn = StepComparison(
            "single whole-sequence call step(x, init(x), 0) vs full"
            + (f", output [{n}]" if len(out) > 1 else ""),
            "whole call", "full", out[n], case.reference[n],
            m.tolerance.rtol, m.tolerance.atol, None, case.valid,
        )  # fmt: skip
        return lines, drawn
    if k == 0:
        lines.append(
            f"  {WHOLE_CALL} agrees with full, yet chunk 0 differs: step's output at a step "
            "depends on later steps of the same call (it reads ahead: normalises over the "
            "chunk, uses its length or its last step), so a shorter call changes it"
        )
        return lines, None
    if step == start:
        suspect = (
            "the state step returns is not the one the next call needs (the state it was "
            "given, or the state at the wrong step), or start is not used to advance a "
            "position index (a positional encoding or time feature at start + t, not t)"
        )
    else:
        suspect = (
            f"the first steps of chunk {k} agree, so part of what the next call needs arrives: "
            "one of several states, a buffer or a counter may be lost or off by one, or a "
            "position that matters only later may ignore start (use start + t, not t)"
        )
    lines.append(
        f"  {WHOLE_CALL} agrees with full: step computes what full computes, so the hand-over "
        f"between calls is suspect: {suspect}"
    )
    return lines + _measured(case, k), None


def _measured(case: Case, k: int) -> list[str]:
    """What ``step`` does with its state and ``start``, measured on chunk ``k`` (``k >= 1``)."""
    schedule, inputs = case.schedule, case.inputs
    start, end = schedule.bounds()[k]
    base = case.call()
    seen: list[tuple[list[np.ndarray] | None, list[np.ndarray] | None]] = []

    def watched(chunk: Any, state: Any, at: int) -> tuple[list[np.ndarray], Any]:
        before = snapshot(state)
        out, new = base(chunk, state, at)
        seen.append((before, snapshot(new)))
        return out, new

    here = [s[:, start:end] for s in case.streamed]
    valid = None if case.valid is None else case.valid[:, start:end]
    one = ChunkSchedule((end - start,))

    def same(out: list[np.ndarray]) -> bool:
        return not compare_runs(out, here, case.tolerances, case.sequence, valid, one)

    before_k = "in the call before chunk 1" if k == 1 else f"in all {k} calls before chunk {k}"
    facts = []
    try:
        probe = Handover(watched, case.initial)
        chunk_pieces(
            probe.feed,
            probe.reset,
            inputs.steps_slice(0, start),
            ChunkSchedule(schedule.lengths[:k]),
        )
        chunk = inputs.steps_slice(start, end)
        lost = True
        if all(after == [] for _, after in seen):
            facts.append(
                f"step returned None as its state {before_k}: unless its state lives elsewhere "
                "(a stateful model, an object it updates), return the new state as the "
                "pair's second item"
            )
        elif all(
            b is not None and a is not None and len(b) > 0 and same_values(b, a) for b, a in seen
        ):
            facts.append(
                f"step returned the state it was given, unchanged, {before_k}: it does not hand "
                "its new state back (return the updated state, not the one passed in)"
            )
        else:
            lost = False
        if same(base(chunk, probe.state, 0)[0]):
            facts.append(
                f"chunk {k} gives the same output with start=0 as with start={start}: step "
                "ignores start, so any position it uses (a positional encoding, a time feature, "
                "a step counter) restarts at 0 in every call (fine for a model without positions)"
            )
        if not lost:
            origin = "init(x)'s state" if case.has_init else "a state of None"
            if same(base(chunk, case.initial(), start)[0]):
                facts.append(
                    f"chunk {k} gives the same output from {origin} as from the state handed "
                    "over: step ignores the state it is given (it starts over in every call)"
                )
            else:
                facts.append(
                    f"the state handed over to chunk {k} changes its output, so it is used: "
                    f"check that it is the state after step {start - 1}, the last step of chunk "
                    f"{k - 1} (not one step earlier or later), with every part of it returned"
                )
    except Exception as error:  # advice only: never hide the real failure behind it
        return [f"  measured on chunk {k}: not possible ({error_line(error)})"]
    return [f"  measured: {fact}" for fact in facts]
