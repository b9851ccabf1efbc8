"""Chunk schedules: ``chunkings``, the ways to feed ``steps`` time steps to a stateful model.

A schedule is a list of positive chunk lengths summing to ``steps``; the
helpers here work out which chunk counts the bounds allow and draw one
schedule that shrinks towards the fewest, earliest-short chunks.
"""

from __future__ import annotations

import itertools

from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

from pytest_rnn.strategies._checks import _check_int, _check_order


def _chunk_counts(
    steps: int, min_chunk: int, max_chunk: int | None, min_chunks: int, max_chunks: int | None
) -> tuple[int, int] | None:
    """The range of chunk counts that can split ``steps``, or None if there is none."""
    largest = steps if max_chunk is None else min(max_chunk, steps)
    fewest = max(min_chunks, -(-steps // largest))
    most = steps // min_chunk
    if max_chunks is not None:
        most = min(most, max_chunks)
    return (fewest, most) if fewest <= most else None


def chunkings(
    steps: int | SearchStrategy[int],
    *,
    min_chunk: int = 1,
    max_chunk: int | None = None,
    min_chunks: int = 1,
    max_chunks: int | None = None,
) -> SearchStrategy[list[int]]:
    """Schedules for feeding ``steps`` time steps to a stateful model in chunks.

    A schedule is a list of positive chunk lengths that sums exactly to ``steps``,
    such as ``[3, 1, 4]`` for 8 steps. Schedules can be uneven, single-step
    (``[1] * steps``) or whole (``[steps]``).

    Schedules shrink towards the fewest chunks, then towards the earlier chunks
    being shortest. A streaming bug that needs one state hand-over therefore
    shrinks to a two-chunk schedule such as ``[1, steps - 1]``, and one that needs
    a hand-over at step 7 to ``[7, steps - 7]`` (each end is drawn as a position,
    so shrinking away an earlier chunk keeps the later hand-overs in place). That
    tells you more than an all-ones schedule would. ``[steps]`` needs no hand-over, so it is
    the minimum only for tests that fail without streaming.

    Args:
        steps: Value or strategy. The number of time steps, at least 1. When it is a
            strategy, a drawn ``steps`` that no schedule within the bounds can split
            is rejected, not reported.
        min_chunk: Shortest chunk, at least 1.
        max_chunk: Longest chunk. Defaults to ``steps``.
        min_chunks: Fewest chunks, at least 1. Use 2 to always exercise a hand-over.
        max_chunks: Most chunks. Defaults to no limit.

    Returns:
        A strategy of lists of ints.

    Raises:
        InvalidArgument: If a bound is not a positive int, a minimum exceeds its
            maximum, or (for a fixed ``steps``) no schedule fits the bounds, e.g.
            ``chunkings(5, min_chunk=3, max_chunk=4)``.

    Example:
        ::

            @given(st.data())
            def test_streaming(data):
                x = data.draw(sequences())
                chunks = data.draw(chunkings(x.shape[1], min_chunks=2))
                assert sum(chunks) == x.shape[1]
    """
    min_chunk = _check_int(min_chunk, "min_chunk", minimum=1)
    if max_chunk is not None:
        max_chunk = _check_int(max_chunk, "max_chunk", minimum=1)
        _check_order(min_chunk, max_chunk, "min_chunk", "max_chunk")
    min_chunks = _check_int(min_chunks, "min_chunks", minimum=1)
    if max_chunks is not None:
        max_chunks = _check_int(max_chunks, "max_chunks", minimum=1)
        _check_order(min_chunks, max_chunks, "min_chunks", "max_chunks")
    if isinstance(steps, SearchStrategy):
        step_counts = steps.map(lambda n: _check_int(n, "steps", minimum=1))
    else:
        fixed = _check_int(steps, "steps", minimum=1)
        if _chunk_counts(fixed, min_chunk, max_chunk, min_chunks, max_chunks) is None:
            raise InvalidArgument(
                f"no schedule splits steps={fixed} with min_chunk={min_chunk}, "
                f"max_chunk={max_chunk}, min_chunks={min_chunks}, max_chunks={max_chunks}"
            )
        step_counts = st.just(fixed)
    return _chunkings(step_counts, min_chunk, max_chunk, min_chunks, max_chunks)


@st.composite
def _chunkings(
    draw: st.DrawFn,
    step_counts: SearchStrategy[int],
    min_chunk: int,
    max_chunk: int | None,
    min_chunks: int,
    max_chunks: int | None,
) -> list[int]:
    steps = draw(step_counts)
    counts = _chunk_counts(steps, min_chunk, max_chunk, min_chunks, max_chunks)
    if counts is None:
        reject()
    fewest, most = counts
    largest = steps if max_chunk is None else min(max_chunk, steps)
    count = draw(st.integers(fewest, most))
    # Each chunk's end is drawn as a position, not a length: shrinking away an
    # earlier chunk then leaves the later hand-overs where they were, so a bug
    # that needs a hand-over at step 7 shrinks to [7, steps - 7], not to
    # [1, 1, 1, 4, steps - 7].
    ends = [0]
    for left_after in range(count - 1, 0, -1):
        # Keep the rest splittable: left_after chunks must fit in what this one leaves.
        start = ends[-1]
        low = max(start + min_chunk, steps - left_after * largest)
        high = min(start + largest, steps - left_after * min_chunk)
        ends.append(draw(st.integers(low, high)))
    ends.append(steps)
    return [b - a for a, b in itertools.pairwise(ends)]
