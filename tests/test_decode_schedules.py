"""decode_schedules: prefill-then-decode schedules that seek boundaries and shrink to the fewest calls.

The property tests check every drawn schedule's contract and the arguments'
checks; the seeded runs check that chunk ends seek the given boundaries; the
``find`` tests check the documented shrink order against every schedule there
is. The last test runs a real KerasHub GPT-2 with an injected cache bug through
``assert_cached_decoding_matches_full`` and checks that Hypothesis shrinks its
failure to the shortest failing schedule.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, find, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pytest_rnn import strategies as rs
from pytest_rnn.strategies import decode_schedules

FIND = settings(database=None, max_examples=2000)  # find() shrinks to the minimal example
PROPERTY = settings(max_examples=50)


def hand_overs(chunks: list[int]) -> list[int]:
    """The positions where a call after the prefill starts: ``[5, 1, 3]`` -> ``[5, 6]``."""
    return list(itertools.accumulate(chunks))[:-1]


def schedules(steps: int) -> Iterator[list[int]]:
    """Every schedule of ``steps`` tokens: each set of hand-over positions once."""
    for calls in range(1, steps + 1):
        for cuts in itertools.combinations(range(1, steps), calls - 1):
            ends = [0, *cuts, steps]
            yield [b - a for a, b in itertools.pairwise(ends)]


def shortest(candidates: Iterator[list[int]]) -> list[int]:
    """The shortest schedule as documented: fewest calls, fewest steps, then earliest ends."""
    return min(candidates, key=lambda c: (len(c), sum(c), c))


def drawn(strategy: st.SearchStrategy[list[int]], n: int) -> list[list[int]]:
    """``n`` schedules drawn in a seeded run (the same ones on every run)."""
    out: list[list[int]] = []

    @settings(max_examples=n, database=None, derandomize=True, phases=[Phase.generate])
    @given(strategy)
    def run(chunks: list[int]) -> None:
        out.append(chunks)

    run()
    return out


# --------------------------------------------------------------------------- the contract


@PROPERTY
@given(st.data())
def test_every_schedule_keeps_its_contract_under_any_bounds(data: st.DataObject) -> None:
    steps = data.draw(st.integers(1, 30), label="steps")
    min_prefill = data.draw(st.integers(1, 6), label="min_prefill")
    max_prefill = data.draw(st.none() | st.integers(min_prefill, 32), label="max_prefill")
    max_chunk = data.draw(st.none() | st.integers(1, 8), label="max_chunk")
    boundaries = data.draw(st.lists(st.integers(1, 40), max_size=4), label="boundaries")
    kwargs: dict[str, Any] = {
        "min_prefill": min_prefill,
        "max_prefill": max_prefill,
        "max_chunk": max_chunk,
        "boundaries": boundaries,
    }
    if steps < min_prefill:
        with pytest.raises(InvalidArgument, match=f"min_prefill={min_prefill}"):
            decode_schedules(steps, **kwargs)
        return
    chunks = data.draw(decode_schedules(steps, **kwargs), label="chunks")
    assert isinstance(chunks, list)
    assert all(type(c) is int and c >= 1 for c in chunks)
    assert sum(chunks) == steps
    prefill, decode = chunks[0], chunks[1:]
    assert min_prefill <= prefill <= (steps if max_prefill is None else max_prefill)
    assert max_chunk is None or all(c <= max_chunk for c in decode)


@PROPERTY
@given(decode_schedules(st.integers(1, 12), min_prefill=4, max_chunk=3))
def test_a_steps_strategy_rejects_draws_shorter_than_the_prefill(chunks: list[int]) -> None:
    assert 4 <= chunks[0] <= sum(chunks) <= 12
    assert all(1 <= c <= 3 for c in chunks[1:])


def test_every_schedule_is_drawn() -> None:
    assert {tuple(c) for c in drawn(decode_schedules(5), 300)} == {tuple(c) for c in schedules(5)}


def test_it_is_exported_from_the_strategies_package() -> None:
    assert "decode_schedules" in rs.__all__
    assert rs.decode_schedules is decode_schedules


# --------------------------------------------------------------------------- boundaries


@functools.cache
def sample(boundaries: tuple[int, ...]) -> list[list[int]]:
    """200 seeded schedules of 30 steps, seeking ``boundaries``."""
    return drawn(decode_schedules(30, boundaries=boundaries), 200)


def near(chunks: list[int], boundary: int) -> bool:
    return any(abs(h - boundary) <= 1 for h in hand_overs(chunks))


def test_chunk_ends_seek_each_boundary_and_its_neighbours() -> None:
    sought, plain = sample((13,)), sample(())
    rate = sum(near(c, 13) for c in sought) / len(sought)
    chance = sum(near(c, 13) for c in plain) / len(plain)
    assert rate >= 0.6 and rate >= chance + 0.1, (rate, chance)
    # A prefill of exactly the window (or one either side) is the case caches get wrong.
    prefills = [c[0] for c in sought]
    assert {12, 13, 14} <= set(prefills)
    assert sum(abs(p - 13) <= 1 for p in prefills) >= 2 * sum(abs(c[0] - 13) <= 1 for c in plain)
    for position in (12, 13, 14):
        assert sum(position in hand_overs(c) for c in sought) >= 0.3 * len(sought), position


def test_single_tokens_and_odd_lengths_are_favoured() -> None:
    decoding = [c for c in sample((13,)) if len(c) > 1]
    assert sum(1 in c[1:] for c in decoding) >= 0.8 * len(decoding)
    lengths = [x for c in decoding for x in c]
    assert sum(x % 2 for x in lengths) >= 0.6 * len(lengths)


def test_boundaries_past_the_sequence_are_ignored() -> None:
    assert drawn(decode_schedules(12, boundaries=[13, 40]), 30) == drawn(decode_schedules(12), 30)


def test_boundaries_may_come_in_any_order_and_repeat() -> None:
    assert drawn(decode_schedules(12, boundaries=(7, 3, 7)), 30) == drawn(
        decode_schedules(12, boundaries=[3, 7]), 30
    )


# --------------------------------------------------------------------------- shrinking


def straddles(position: int) -> Callable[[list[int]], bool]:
    """A decode call that covers ``position`` and the one before it."""
    return lambda c: any(a < position < a + n for a, n in zip(hand_overs(c), c[1:]))


SHRINKS: list[tuple[str, dict[str, Any], Callable[[list[int]], bool], list[int]]] = [
    ("anything", {}, lambda c: True, [12]),
    ("any-decoding", {}, lambda c: len(c) > 1, [1, 11]),
    ("any-decoding-min-prefill", {"min_prefill": 3}, lambda c: len(c) > 1, [3, 9]),
    ("two-hand-overs", {}, lambda c: len(c) > 2, [1, 1, 10]),
    ("a-hand-over-at-7", {}, lambda c: 7 in hand_overs(c), [7, 5]),
    ("a-hand-over-at-7-sought", {"boundaries": [4, 7]}, lambda c: 7 in hand_overs(c), [7, 5]),
    ("a-call-from-7-on", {"boundaries": [7]}, lambda c: max(hand_overs(c), default=0) >= 7, [7, 5]),
    ("a-decode-call-over-7", {"boundaries": [7]}, straddles(7), [1, 11]),
    ("a-single-token-call", {}, lambda c: 1 in c[1:-1], [1, 1, 10]),
    ("bounded", {"max_prefill": 4, "max_chunk": 2}, lambda c: True, [4, 2, 2, 2, 2]),
]


@pytest.mark.parametrize(
    ("kwargs", "predicate", "expected"),
    [case[1:] for case in SHRINKS],
    ids=[case[0] for case in SHRINKS],
)
def test_a_failure_shrinks_to_its_shortest_schedule(
    kwargs: dict[str, Any], predicate: Callable[[list[int]], bool], expected: list[int]
) -> None:
    minimal = find(decode_schedules(12, **kwargs), predicate, settings=FIND)
    assert minimal == expected
    # The documented order, checked against every schedule the bounds allow.
    max_prefill, max_chunk = kwargs.get("max_prefill", 12), kwargs.get("max_chunk", 12)
    allowed = (
        c
        for c in schedules(12)
        if kwargs.get("min_prefill", 1) <= c[0] <= max_prefill
        and max(c[1:], default=1) <= max_chunk
    )
    assert shortest(c for c in allowed if predicate(c)) == expected


@pytest.mark.parametrize("run", range(8))
def test_every_seed_shrinks_to_the_same_schedule(run: int) -> None:
    # A favoured end (odd, on a boundary) is drawn as the end itself, so the shrinker can
    # always trade its kind for "any" and go on: no seed is left at [5, 3].
    last: list[list[int]] = []

    @seed(run)
    @settings(database=None, phases=[Phase.generate, Phase.shrink])
    @given(decode_schedules(8, boundaries=[4]))
    def calls_from_4_on_fail(chunks: list[int]) -> None:
        if max(hand_overs(chunks), default=0) >= 4:
            last.append(chunks)
            raise AssertionError

    with pytest.raises(AssertionError):
        calls_from_4_on_fail()
    assert last[-1] == [4, 4]


def test_a_drawn_steps_shrinks_after_the_calls() -> None:
    strategy = decode_schedules(st.integers(1, 12), boundaries=[7])
    late = find(strategy, lambda c: max(hand_overs(c), default=0) >= 7, settings=FIND)
    assert late == [7, 1]
    assert find(strategy, lambda c: len(c) > 2, settings=FIND) == [1, 1, 1]


# --------------------------------------------------------------------------- bad arguments

INVALID: list[tuple[dict[str, Any], str]] = [
    ({"steps": 0}, "steps=0 must be at least 1"),
    ({"steps": 4.0}, "steps=4.0 must be an integer"),
    ({"steps": True}, "steps=True must be an integer"),
    ({"steps": 4, "min_prefill": 5}, "no schedule decodes steps=4 with min_prefill=5"),
    ({"steps": 5, "min_prefill": 0}, "min_prefill=0 must be at least 1"),
    ({"steps": 5, "max_prefill": 0}, "max_prefill=0 must be at least 1"),
    (
        {"steps": 5, "min_prefill": 3, "max_prefill": 2},
        "min_prefill=3 must not exceed max_prefill=2",
    ),
    ({"steps": 5, "max_chunk": 0}, "max_chunk=0 must be at least 1"),
    ({"steps": 5, "max_chunk": 1.5}, "max_chunk=1.5 must be an integer"),
    ({"steps": 5, "boundaries": 4}, "boundaries=4 must be a list of positions"),
    ({"steps": 5, "boundaries": "4"}, "boundaries='4' must be a list of positions"),
    ({"steps": 5, "boundaries": [4, 0]}, "boundaries[1]=0 must be at least 1"),
    ({"steps": 5, "boundaries": [4.0]}, "boundaries[0]=4.0 must be an integer"),
    ({"steps": 5, "boundaries": st.just([4])}, "must be a list of positions"),
]


@pytest.mark.parametrize(("kwargs", "message"), INVALID, ids=[m for _, m in INVALID])
def test_invalid_arguments_fail_at_call_time(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_schedules(**kwargs)
    assert message in str(info.value)


def test_an_invalid_drawn_steps_fails_when_drawn() -> None:
    strategy = decode_schedules(st.just(0))  # a strategy cannot be checked before it is drawn
    with pytest.raises(InvalidArgument, match="steps=0 must be at least 1"):
        drawn(strategy, 1)


def test_it_passes_stock_health_checks() -> None:
    @settings(settings.get_profile("default"), database=None)
    @given(decode_schedules(st.integers(1, 16), min_prefill=2, boundaries=[4, 8]))
    def run(chunks: list[int]) -> None:
        pass

    run()


# --------------------------------------------------------------------------- a real model

#: The injected bug's ring buffer wraps one slot early from this position on.
WINDOW = 3
STEPS = 6


def test_a_cache_bug_at_the_window_shrinks_to_a_prefill_of_the_window() -> None:
    keras_hub = pytest.importorskip("keras_hub")
    import keras

    from pytest_rnn import RNNAssertionError, assert_cached_decoding_matches_full

    class WrapsEarly(keras_hub.models.GPT2CausalLM):
        """A ring-buffer cache that wraps one slot early: from WINDOW on, writes one slot behind."""

        def call_with_cache(self, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
            index = cache_update_index - 1 if cache_update_index >= WINDOW else cache_update_index
            return super().call_with_cache(token_ids, cache, index)

    keras.utils.set_random_seed(0)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8, intermediate_dim=16,
        max_sequence_length=16,
    )  # fmt: skip
    lm = WrapsEarly(backbone=backbone, preprocessor=None)
    tokens = np.random.default_rng(0).integers(1, 50, size=(1, STEPS)).astype("int32")
    failing: list[list[int]] = []
    verdicts: dict[tuple[int, ...], RNNAssertionError | None] = {}  # the model is deterministic

    @settings(
        max_examples=10, deadline=None, database=None, derandomize=True,
        phases=[Phase.generate, Phase.shrink],  # no explain phase: it reruns under tracing
    )  # fmt: skip
    @given(decode_schedules(STEPS, boundaries=[WINDOW]))
    def test_decoding(chunks: list[int]) -> None:
        if tuple(chunks) not in verdicts:  # the shrinker draws a schedule in several ways
            try:
                assert_cached_decoding_matches_full(lm, tokens, chunks=chunks, generate=False)
            except RNNAssertionError as error:
                verdicts[tuple(chunks)] = error
            else:
                verdicts[tuple(chunks)] = None
        verdict = verdicts[tuple(chunks)]
        if verdict is not None:
            failing.append(list(chunks))
            raise verdict

    with pytest.raises(RNNAssertionError, match="prefill 3, chunks of 3") as info:
        test_decoding()
    # Every call that starts at WINDOW or later fails; the shortest such schedule:
    calls_from_the_window = (c for c in schedules(STEPS) if max(hand_overs(c), default=0) >= WINDOW)
    assert shortest(calls_from_the_window) == [3, 3]
    assert failing[-1] == [3, 3]  # the final replay: the shrunk example
    assert "wrote cache slots 2-4, not slots 3-5" in str(info.value)
