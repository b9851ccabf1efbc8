"""Why cached decoding differs from the full pass: where it starts, and what the calls do.

:func:`diagnose` says whether the first mismatch is in the prefill or the
decode and which call computed it, decodes the whole sequence in one prefill
(if that agrees with the full pass, the fault is in the hand-over between
calls), and :func:`measured` re-runs the calls up to the first differing one
to see what each does with the cache: whether it hands back the cache it was
given, which cache slots it writes (against the positions it was given),
whether the next call reads the cache and its ``cache_update_index`` at all.
The per-layer, padding and float32 verdicts are in :mod:`.verdicts`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from pytest_rnn._cached.run import Case, cached_run, cached_step, positions
from pytest_rnn._core.compare import Mismatch
from pytest_rnn._core.stream import ChunkSchedule, Handover, chunk_pieces, compare_runs, first_step
from pytest_rnn._core.text import error_line, plural, ranges

__all__ = ["WHOLE_PREFILL", "diagnose", "measured", "same_values"]

#: The one-call decode the diagnosis compares with, as messages write it.
WHOLE_PREFILL = (
    "a single whole-sequence prefill (one call_with_cache on every token, from an empty cache)"
)


def same_values(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    """Whether two caches' values are the same arrays, bit for bit."""
    return len(a) == len(b) and all(
        x.shape == y.shape and bool(np.array_equal(x, y, equal_nan=True)) for x, y in zip(a, b)
    )


def diagnose(case: Case, mismatches: list[tuple[int, Mismatch]]) -> list[str]:
    """Prefill or decode, the call that computed the first mismatch, the whole prefill, the measures."""
    schedule = case.schedule
    p, _, m = first_step(mismatches)
    k = schedule.chunk_of(p)
    a = schedule.bounds()[k][0]
    calls = len(schedule.lengths)
    phase = "prefill" if k == 0 else "decode"
    at = (
        "at its first position" if p == a else f"after {plural(p - a, 'position')} of it that agree"
    )
    lines = [
        f"  in the {phase}: position {p} (sample {m.first[0]}) was computed by call {k + 1} of "
        f"{calls}, {case.call_text(k)}, {at}"
    ]
    if calls == 1:
        lines.append(
            "  one call: the cached run is itself a single whole-sequence prefill, so "
            "call_with_cache computes something other than the full pass (not a hand-over "
            "between calls)"
        )
    elif k == 0:
        lines.append(
            f"  the prefill from an empty cache already differs: call_with_cache computes "
            f"something other than the full pass on {positions(*schedule.bounds()[0])} (not a "
            "hand-over between calls)"
        )
    else:
        lines.append(_whole_prefill(case))
    return lines + measured(case, k)


def _whole_prefill(case: Case) -> str:
    whole = ChunkSchedule((case.inputs.steps,))
    try:
        out, _ = cached_run(case.model, case.inputs, whole)
    except Exception as error:  # advice only: never hide the real failure behind it
        return f"  {WHOLE_PREFILL} could not be made ({error_line(error)})"
    differs = compare_runs([out], [case.reference], [case.tolerance], [True], case.valid, whole)
    if differs:
        q, _, m = first_step(differs)
        return (
            f"  {WHOLE_PREFILL} differs from the full pass too (first at position {q}, sample "
            f"{m.first[0]}): call_with_cache itself computes something else, not only the "
            "hand-over between calls"
        )
    return (
        f"  {WHOLE_PREFILL} agrees with the full pass: the bug is in the hand-over between "
        "calls (the cache each call returns and the next one reads, the index each call is given)"
    )


def measured(case: Case, k: int) -> list[str]:
    """What the calls do with the cache, measured on a re-run; ``k``: the first differing chunk."""
    model, schedule, inputs = case.model, case.schedule, case.inputs
    seen: list[_Seen] = []
    base = cached_step(model)

    def watched(chunk: Any, cache: Any, start: int) -> tuple[list[np.ndarray], Any]:
        before = model.values(cache)
        out, new = base(chunk, cache, start)
        seen.append(_Seen(start, start + chunk.steps, cache, before, model.values(new)))
        return out, new

    a, b = schedule.bounds()[k]
    facts: list[str] = []
    try:
        probe = Handover(watched, lambda: model.empty_cache(case.tokens, case.mask))
        chunk_pieces(probe.feed, probe.reset, inputs, schedule)
        stale = _unchanged(seen)
        facts += stale
        if model.indexed:
            facts += _slots(case, seen)
        if k > 0:
            chunk, given = inputs.steps_slice(a, b), seen[k].cache
            here, valid, one = [case.cached[:, a:b]], case.valid[:, a:b], ChunkSchedule((b - a,))

            def same(out: list[np.ndarray]) -> bool:
                return not compare_runs(out, here, [case.tolerance], [True], valid, one)

            unindexed = model.indexed and same(base(chunk, given, 0)[0])
            if unindexed:
                facts.append(
                    f"chunk {k} gives the same logits with cache_update_index=0 as with "
                    f"cache_update_index={a}: call_with_cache ignores the index it is given, so "
                    "the position offset is not advanced (every call works at position 0)"
                )
            empty = model.empty_cache(case.tokens, case.mask)
            if not (stale or unindexed) and same(base(chunk, empty, a)[0]):
                facts.append(
                    f"chunk {k} gives the same logits from an empty cache as from the cache handed "
                    "over: the cache it is given is not read (dropped before the call)"
                )
    except Exception as error:  # advice only: never hide the real failure behind it
        return [f"  measured on the calls: not possible ({error_line(error)})"]
    return [f"  measured: {fact}" for fact in facts]


class _Seen(NamedTuple):
    """One watched call: its positions, the cache it was given and the values in and out."""

    start: int
    end: int
    cache: Any
    before: list[np.ndarray]
    after: list[np.ndarray]


def _unchanged(seen: list[_Seen]) -> list[str]:
    """Calls that returned the cache they were given, bit for bit."""
    same = [j for j, call in enumerate(seen) if same_values(call.before, call.after)]
    if not same or len(seen) == 1:
        return []
    if len(same) == len(seen):
        return [
            f"call_with_cache returned the cache it was given, unchanged, in all {len(seen)} "
            "calls: the cache it writes is dropped and a stale cache handed back (return the "
            "updated cache)"
        ]
    if same == [0]:
        return [
            "call_with_cache returned the cache it was given, unchanged, in the prefill (chunk 0) "
            "only: the cache is dropped after the prefill, so the decode starts from an empty cache"
        ]
    return [
        f"call_with_cache returned the cache it was given, unchanged, in chunks {ranges(same)}: "
        "what those calls write is dropped"
    ]


def _slots(case: Case, seen: list[_Seen]) -> list[str]:
    """Which cache slots each call wrote, against the positions it was given."""
    axes = case.model.time_axes(case.tokens, case.mask)
    if not any(ax is not None for ax in axes):
        return []
    for j, (a, b, _, before, after) in enumerate(seen):
        if same_values(before, after):
            return []  # said by _unchanged
        wrote = _written(before, after, axes)
        want = list(range(a, b))
        if wrote == want:
            continue
        where = f"call {j + 1}, {case.call_text(j)},"
        if not wrote:
            return [f"{where} changed the cache but wrote no slot of its own"]
        got = f"cache {_slots_word(wrote)}, not {_slots_word(want)}"
        if a > 0 and wrote == list(range(b - a)):
            why = (
                "it writes at slot 0 whatever cache_update_index it is given: the position "
                "offset is not advanced"
            )
        elif len(wrote) == len(want) and wrote[-1] - wrote[0] == len(want) - 1:
            shift = wrote[0] - a
            why = (
                f"the write is off by {shift:+d} (the cache is written at cache_update_index "
                f"{shift:+d}, so the positions the next calls read are shifted)"
            )
        else:
            why = "the slots written are not the positions of the call's tokens"
        return [f"{where} wrote {got}: {why}"]
    return [
        f"each of the {len(seen)} calls wrote exactly the cache slots of its own positions (the "
        "write side of the cache is right)"
    ]


def _slots_word(slots: list[int]) -> str:
    return f"slot {slots[0]}" if len(slots) == 1 else f"slots {ranges(slots)}"


def _written(
    before: list[np.ndarray], after: list[np.ndarray], axes: list[int | None]
) -> list[int]:
    """The time slots where any cache array changed."""
    slots: set[int] = set()
    for x, y, ax in zip(before, after, axes):
        if ax is None or x.shape != y.shape:
            continue
        changed = np.moveaxis(x != y, ax, 0).reshape(x.shape[ax], -1).any(axis=1)
        slots.update(int(i) for i in np.flatnonzero(changed))
    return sorted(slots)
