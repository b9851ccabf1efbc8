"""Tests for pytest_rnn._core.perturb: plans, stacking and measuring, on numpy functions alone.

The batch here is a plain dataclass with the fields the engine reads, so the
engine's contract (``tree``, ``leaves``, ``batch``, ``steps``, ``per_copy()``)
is what is tested. No Keras is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from pytest_rnn._core import perturb
from pytest_rnn._core.compare import Tolerance
from pytest_rnn._core.tree import flatten, rebuild

TOL = Tolerance(rtol=1e-7, atol=1e-7)


@dataclass(frozen=True)
class Seqs:
    """The least a batch needs for the engine."""

    tree: Any
    leaves: list[np.ndarray]
    batch: int
    steps: int

    def per_copy(self) -> int:
        return max(1, sum(int(leaf.size) for leaf in self.leaves))


def seqs(tree: Any) -> Seqs:
    leaves = [np.asarray(leaf) for _, leaf in flatten(tree)]
    batch, steps = leaves[0].shape[:2]
    return Seqs(rebuild(tree, leaves), leaves, int(batch), int(steps))


def cumsum_call(tree: Any, copies: int) -> list[np.ndarray]:
    """A causal per-step function: output t depends on input steps 0..t."""
    return [np.cumsum(np.asarray(tree), axis=1)]


# --------------------------------------------------------------------------- donors


def test_pool_adds_a_high_and_a_low_row() -> None:
    rows = np.array([[0.0, 10.0], [2.0, 30.0], [1.0, 20.0]])
    out = perturb.pool(rows)
    assert out.shape == (5, 2)
    np.testing.assert_array_equal(out[:3], rows)
    np.testing.assert_array_equal(out[3], [3.0, 40.0])  # max + max(range/2, 1)
    np.testing.assert_array_equal(out[4], [-1.0, 0.0])


def test_pool_of_integers_keeps_valid_ids() -> None:
    out = perturb.pool(np.array([[3], [7], [5]]))
    assert out.dtype.kind == "i"
    assert out[3:, 0].tolist() == [7, 3]


def test_extremes() -> None:
    assert perturb.extremes(2, 10).tolist() == [-1, -1]
    assert perturb.extremes(4, 10).tolist() == [10, 11, -1, -1]


@pytest.mark.parametrize(("batch", "steps"), [(1, 2), (1, 7), (3, 4), (5, 1)])
def test_donors_are_never_the_replaced_element(batch: int, steps: int) -> None:
    donor = perturb.donors(np.random.default_rng(0), 500, batch, steps)
    own = np.arange(batch)[:, None] * steps + np.arange(steps)[None, :]
    assert donor.shape == (500, batch, steps)
    assert (donor != own[None]).all()
    assert donor.min() >= 0 and donor.max() < batch * steps
    # Every other element is drawn: the shift leaves no hole and no bias to one donor.
    assert set(np.unique(donor[:, 0, 0]).tolist()) == set(range(1, batch * steps))


def test_step_donors_put_the_extremes_first() -> None:
    donor = perturb.step_donors(np.random.default_rng(0), 4, 2, 3)
    assert donor.shape == (12, 2, 3)
    for t in range(3):
        trials = donor[t * 4 : (t + 1) * 4]
        assert (trials[0] == 6).all() and (trials[1] == 7).all()
        assert (trials[2:] < 6).all()


# --------------------------------------------------------------------------- plans and stacking


def test_step_plan_replaces_one_step_per_copy() -> None:
    b = seqs(np.zeros((2, 3, 1)))
    mask, donor = perturb.step_plan(b, 2, np.random.default_rng(0))
    assert mask.shape == donor.shape == (6, 2, 3)
    for c in range(6):
        assert mask[c].all(axis=0).tolist() == [t == c // 2 for t in range(3)]


def test_suffix_plan_replaces_steps_from_s_on() -> None:
    b = seqs(np.zeros((2, 4, 1)))
    mask, donor = perturb.suffix_plan(b, 1, np.random.default_rng(0))
    assert mask.shape == donor.shape == (3, 2, 4)
    assert mask[:, 0].tolist() == [
        [False, True, True, True],
        [False, False, True, True],
        [False, False, False, True],
    ]


def test_stack_replaces_only_masked_elements_from_the_pool() -> None:
    x = np.arange(12.0).reshape(2, 3, 2)
    tree = {"b": x[..., :1] * 10, "a": x}
    b = seqs(tree)
    mask = np.zeros((2, 2, 3), dtype=bool)
    donor = np.zeros((2, 2, 3), dtype=np.int64)
    mask[1, 0, 2], donor[1, 0, 2] = True, 4  # copy 1, sample 0, step 2 <- (sample 1, step 1)
    out = perturb.stack(b, mask, donor)
    assert sorted(out) == ["a", "b"]
    assert out["a"].shape == (4, 3, 2) and out["b"].shape == (4, 3, 1)
    np.testing.assert_array_equal(out["a"][:2], x)  # copy 0: untouched
    expected = x.copy()
    expected[0, 2] = x[1, 1]
    np.testing.assert_array_equal(out["a"][2:], expected)
    assert out["b"][2, 2, 0] == x[1, 1, 0] * 10


def test_stack_reaches_the_extreme_rows() -> None:
    x = np.array([[[0.0], [4.0]]])
    mask = np.ones((2, 1, 2), dtype=bool)
    donor = np.stack([np.full((1, 2), 2), np.full((1, 2), 3)])
    out = perturb.stack(seqs(x), mask, donor)
    assert out[:, :, 0].tolist() == [[6.0, 6.0], [-2.0, -2.0]]


# --------------------------------------------------------------------------- measuring


def test_changed_uses_the_tolerance_rule() -> None:
    base = np.array([[[1.0, np.inf], [2.0, 0.0]]])  # (batch 1, steps 2, features 2)
    bumped = base.copy()
    bumped[0, 1, 1] = 1.0
    flipped = base.copy()
    flipped[0, 0, 1] = -np.inf
    hit, size = perturb.changed(np.stack([base, bumped, flipped]), base, TOL)
    assert hit[:, 0].tolist() == [[False, False], [False, True], [True, False]]
    assert size[1, 0, 1] == 1.0
    assert size[2, 0, 0] == np.finfo(np.float64).max  # an infinite change: the largest float
    nan = np.array([[[np.nan], [1.0]]])
    hit, _ = perturb.changed(np.stack([nan, nan + 1]), nan, TOL)
    assert hit[:, 0].tolist() == [[False, False], [False, True]]  # NaN agrees only with NaN


def test_changed_without_feature_axes() -> None:
    base = np.array([[1.0, 2.0]])
    hit, size = perturb.changed(np.array([[[1.0, 3.0]]]), base, TOL)
    assert hit.tolist() == [[[False, True]]]
    assert size.tolist() == [[[0.0, 1.0]]]


def test_merge_pads_shorter_outputs() -> None:
    a = (np.array([[[True, False, False]]]), np.array([[[1.0, 0.0, 0.0]]]))
    b = (np.array([[[False, True]]]), np.array([[[0.0, 2.0]]]))
    hit, change = perturb.merge([a, b])
    assert hit.tolist() == [[[True, True, False]]]
    assert change.tolist() == [[[1.0, 2.0, 0.0]]]


def test_per_sample_map_of_a_causal_function() -> None:
    x = np.random.default_rng(1).normal(size=(3, 5, 2))
    per = perturb.per_sample_map(cumsum_call, seqs(x), 2, 0, [TOL])
    assert per.shape == (5, 3, 5)
    expected = np.tril(np.ones((5, 5), dtype=bool))
    assert (per == expected[:, None, :]).all()


def test_measure_each_chunks_with_one_reference_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(2).normal(size=(2, 4, 3))
    b = seqs(x)
    mask, donor = perturb.step_plan(b, 3, np.random.default_rng(0))
    whole = perturb.measure_each(cumsum_call, b, mask, donor, [TOL])

    rows: list[int] = []

    def call(tree: Any, copies: int) -> list[np.ndarray]:
        arr = np.asarray(tree)
        assert arr.shape[0] == copies * b.batch
        np.testing.assert_array_equal(arr[: b.batch], x)  # the reference rides first
        rows.append(arr.shape[0])
        return cumsum_call(tree, copies)

    monkeypatch.setattr(perturb, "CHUNK_ELEMENTS", 5 * b.per_copy())  # 4 copies per call
    chunked = perturb.measure_each(call, b, mask, donor, [TOL])
    assert rows == [10, 10, 10]  # 12 copies: 4 + 4 + 4, each with the reference
    for (h1, s1), (h2, s2) in zip(whole, chunked):
        np.testing.assert_array_equal(h1, h2)
        np.testing.assert_array_equal(s1, s2)


def test_measure_each_pads_the_last_call(monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.random.default_rng(3).normal(size=(1, 3, 1))
    b = seqs(x)
    mask, donor = perturb.suffix_plan(b, 5, np.random.default_rng(0))  # 10 copies
    rows: list[int] = []

    def call(tree: Any, copies: int) -> list[np.ndarray]:
        rows.append(copies)
        return cumsum_call(tree, copies)

    monkeypatch.setattr(perturb, "CHUNK_ELEMENTS", 5 * b.per_copy())
    (hit, _), = perturb.measure_each(call, b, mask, donor, [TOL])
    assert rows == [5, 5, 5]  # 4 + 4 + 2 copies, the last padded to the same rows
    assert hit.shape == (10, 1, 3)
    assert not hit[:, 0, 0].any()  # step 0 never changes when steps s >= 1 change
