"""Decode schedules: ``decode_schedules``, a prefill then decode chunks for a cached model.

A schedule is ``[prefill, decode chunk, ...]``: positive lengths summing to
``steps``, the first call filling the empty cache and each later one handing
it on. The helpers here work out which call counts the bounds allow and draw
one schedule, end by end, favouring the lengths and positions where caches
break (single tokens, odd lengths, ends on and beside given boundaries) while
shrinking towards the fewest calls and the shortest prefill.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from pytest_rnn.strategies._checks import _check_int, _check_order


def _call_counts(
    steps: int, min_prefill: int, max_prefill: int | None, max_chunk: int | None
) -> tuple[int, int] | None:
    """The range of call counts (prefill included) that can decode ``steps``, or None."""
    if steps < min_prefill:
        return None
    longest_prefill = steps if max_prefill is None else min(max_prefill, steps)
    longest_chunk = steps if max_chunk is None else min(max_chunk, steps)
    # After the longest prefill, the fewest decode chunks of at most longest_chunk.
    fewest = 1 + -(-(steps - longest_prefill) // longest_chunk)
    return fewest, 1 + steps - min_prefill


def _check_boundaries(boundaries: object) -> tuple[int, ...]:
    if isinstance(boundaries, (str, bytes)) or not isinstance(boundaries, Iterable):
        raise InvalidArgument(
            f"boundaries={boundaries!r} must be a list of positions (ints of at least 1)"
        )
    checked = (_check_int(b, f"boundaries[{i}]", minimum=1) for i, b in enumerate(list(boundaries)))
    return tuple(sorted(set(checked)))


def decode_schedules(
    steps: int | SearchStrategy[int],
    *,
    min_prefill: int = 1,
    max_prefill: int | None = None,
    max_chunk: int | None = None,
    boundaries: Iterable[int] = (),
) -> SearchStrategy[list[int]]:
    """Schedules for decoding ``steps`` tokens with a cache: a prefill, then decode chunks.

    A schedule is a list of positive lengths that sums exactly to ``steps``, the
    first being the prefill, such as ``[5, 1, 3, 2, 1]`` for 12 steps: the
    ``chunks`` of :func:`~pytest_rnn.assert_cached_decoding_matches_full`.
    ``[steps]``, the prefill alone, is drawn when ``max_prefill`` allows it.

    Each call's length is drawn from any length the bounds allow, or one of the
    lengths where caches break: a single token, an odd length, or a length that
    ends the call on, one before or one after a position of ``boundaries``.
    Boundaries past ``steps`` are ignored.

    Schedules shrink towards the fewest calls, then (when ``steps`` is a
    strategy) the fewest steps, then the shortest prefill, then the earliest
    hand-overs: each decode chunk in turn as short as it can be, the last taking
    the rest. A failure that needs any decoding therefore shrinks to two calls,
    ``[min_prefill, steps - min_prefill]``; one that needs a call from position 7
    on, to ``[7, steps - 7]``; one that needs two hand-overs, to
    ``[min_prefill, 1, steps - min_prefill - 1]``. ``[steps]`` is the minimum
    only of a test that fails without decoding at all.

    Args:
        steps: Value or strategy. The number of tokens, at least 1. When it is a
            strategy, a drawn ``steps`` shorter than ``min_prefill`` is rejected,
            not reported.
        min_prefill: Shortest prefill, at least 1.
        max_prefill: Longest prefill. Defaults to ``steps``; pass ``steps - 1``
            for a fixed ``steps`` to always decode at least one call.
        max_chunk: Longest decode chunk (the prefill is bounded by
            ``max_prefill`` alone). Defaults to no limit; 1 decodes token by
            token, as generation does.
        boundaries: Positions, each at least 1, where the model's internals
            change: the attention window of a sliding-window model, the cache
            length, a block size.

    Returns:
        A strategy of lists of ints.

    Raises:
        InvalidArgument: If a bound or boundary is not a positive int, a
            minimum exceeds its maximum, ``boundaries`` is not a list of
            positions, or (for a fixed ``steps``) ``steps`` is shorter than
            ``min_prefill``, e.g. ``decode_schedules(4, min_prefill=5)``.

    Example:
        ::

            @given(st.data())
            def test_decoding(data):
                tokens = data.draw(token_sequences(vocab_size=50))
                chunks = data.draw(decode_schedules(tokens.shape[1], boundaries=[4]))
                assert_cached_decoding_matches_full(lm, tokens, chunks=chunks)
    """
    min_prefill = _check_int(min_prefill, "min_prefill", minimum=1)
    if max_prefill is not None:
        max_prefill = _check_int(max_prefill, "max_prefill", minimum=1)
        _check_order(min_prefill, max_prefill, "min_prefill", "max_prefill")
    if max_chunk is not None:
        max_chunk = _check_int(max_chunk, "max_chunk", minimum=1)
    marks = _check_boundaries(boundaries)
    if isinstance(steps, SearchStrategy):
        step_counts = steps.map(lambda n: _check_int(n, "steps", minimum=1))
    else:
        fixed = _check_int(steps, "steps", minimum=1)
        if _call_counts(fixed, min_prefill, max_prefill, max_chunk) is None:
            raise InvalidArgument(
                f"no schedule decodes steps={fixed} with min_prefill={min_prefill}: "
                "the prefill alone is longer than the sequence"
            )
        step_counts = st.just(fixed)
    return _decode_schedules(step_counts, min_prefill, max_prefill, max_chunk, marks)


def _end(draw: st.DrawFn, low: int, high: int, start: int, marks: tuple[int, ...]) -> int:
    """Where a call from position ``start`` ends, in ``[low, high]``; shrinks to ``low``.

    Two choices: which kind of end, then the end itself. The kinds are any end
    (first, so that shrinking leaves the favoured kinds behind), the end of a
    single token, the end of an odd length, and, one kind per boundary, the
    ends on and beside it. Every kind draws the end itself (a position, not a
    length or an index) and maps no smaller draw onto it, so the shrinker can
    always swap a favoured kind for "any" and keep the end, and shrinking away
    an earlier call leaves the later hand-overs where they were. A forced end
    draws its two choices too: a schedule of more calls is then never simpler
    to Hypothesis than one of fewer.
    """
    kinds = [st.integers(low, high)]
    if low == start + 1 < high:
        kinds.append(st.integers(low, low))
    if low < high:
        # The length from start made odd by ending one earlier; low itself stays.
        kinds.append(
            st.integers(low, high).map(lambda e: e if e == low or (e - start) % 2 else e - 1)
        )
    kinds += [
        st.integers(max(low, b - 1), min(high, b + 1))
        for b in marks
        if low <= b + 1 and b - 1 <= high
    ]
    return draw(kinds[draw(st.integers(0, len(kinds) - 1))])


@st.composite
def _decode_schedules(
    draw: st.DrawFn,
    step_counts: SearchStrategy[int],
    min_prefill: int,
    max_prefill: int | None,
    max_chunk: int | None,
    boundaries: tuple[int, ...],
) -> list[int]:
    steps = draw(step_counts)
    counts = _call_counts(steps, min_prefill, max_prefill, max_chunk)
    if counts is None:
        reject()
    marks = tuple(b for b in boundaries if b <= steps)
    longest_prefill = steps if max_prefill is None else min(max_prefill, steps)
    longest_chunk = steps if max_chunk is None else min(max_chunk, steps)
    calls = draw(st.integers(*counts))
    ends = [0]
    for left_after in range(calls - 1, 0, -1):
        # Keep the rest decodable: left_after chunks of 1 to longest_chunk tokens each.
        start = ends[-1]
        if start == 0:
            low, high = min_prefill, longest_prefill
        else:
            low, high = start + 1, start + longest_chunk
        low = max(low, steps - left_after * longest_chunk)
        high = min(high, steps - left_after)
        ends.append(_end(draw, low, high, start, marks))
    ends.append(steps)
    return [b - a for a, b in itertools.pairwise(ends)]
