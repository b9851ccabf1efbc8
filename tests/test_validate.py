"""The one input validator and the shared argument checks, on numpy arrays alone.

The last test runs a causal assertion (a numpy function, no model) to show
that ``seed=None`` reaches it as the session's ``--rnn-seed``; the fit side
of that rule is tested in ``test_fit.py``.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from pytest_rnn import _config
from pytest_rnn._core.validate import (
    Batch,
    check_int,
    check_seed,
    check_tolerances,
    numeric,
    sequences,
)

#: The two families' sentences, as they pass them (each keeps its pinned wording).
STATEFUL: dict[str, Any] = {
    "finite": "{name} holds NaN or inf: streamed and full outputs cannot be compared",
    "empty": "{arg} has 0 {what}: there is nothing to stream",
    "not_array": "{arg} must be an array (batch, steps, features...) or a list/dict of them, "
    "got {kind}",
}
CAUSAL: dict[str, Any] = {
    "finite": "{name} contains NaN or infinity (first at index {index}); pass finite values",
    "empty": "{arg} has zero {what} (shape {shape}): nothing to measure",
}


def x(*shape: int, dtype: str = "float32") -> np.ndarray:
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


# --------------------------------------------------------------------------- sequences -> Batch


def test_one_array_is_a_batch_of_one_leaf() -> None:
    batch = sequences(x(2, 3, 4), **STATEFUL)
    assert (batch.batch, batch.steps, batch.paths) == (2, 3, [""])
    assert isinstance(batch.tree, np.ndarray) and batch.leaves[0] is batch.tree
    assert batch.per_copy() == 24


def test_a_dict_keeps_its_order_and_leaves_follow_sorted_keys() -> None:
    tree = {"b": x(2, 3, 1), "a": (x(2, 3), x(2, 3, 2, dtype="float64"))}
    batch = sequences(tree, **CAUSAL)
    assert list(batch.tree) == ["b", "a"]
    assert batch.paths == ["['a'][0]", "['a'][1]", "['b']"]
    assert [leaf.shape for leaf in batch.leaves] == [(2, 3), (2, 3, 2), (2, 3, 1)]
    assert all(isinstance(leaf, np.ndarray) for leaf in batch.leaves)
    assert batch.tree["a"][1] is batch.leaves[1]  # the tree holds the same numpy leaves


def test_map_slices_and_samples_give_batches() -> None:
    batch = sequences([x(4, 6, 2), x(4, 6)], **STATEFUL)
    chunk = batch.steps_slice(2, 5)
    assert (chunk.batch, chunk.steps) == (4, 3)
    np.testing.assert_array_equal(chunk.tree[1], x(4, 6)[:, 2:5])
    one = batch.samples(slice(1, 2))
    assert (one.batch, one.steps, one.paths) == (1, 6, batch.paths)
    longer = batch.map(lambda a: np.concatenate([a, a[:, -1:]], axis=1))
    assert (longer.batch, longer.steps) == (4, 7) and isinstance(longer.tree, list)
    assert isinstance(longer, Batch) and longer.leaves[0] is longer.tree[0]


@pytest.mark.parametrize(
    ("value", "error", "fragment"),
    [
        (lambda a: a, TypeError, "x must be an array (batch, steps, features...), got a function"),
        ([], ValueError, "x is empty"),
        (np.ones(3), ValueError, "x must be an array (batch, steps, features...) with a time axis"),
        (np.array([[object()] * 3] * 2), TypeError, "x must hold numbers or booleans"),
        (np.array([["a"] * 3] * 2), TypeError, "got dtype <U1"),
        ([x(2, 3, 1), x(2, 2, 1)], ValueError, "x[1] has (2, 2), x[0] has (2, 3)"),
        ([x(2, 3, 1), x(1, 3, 1)], ValueError, "all inputs in x must share batch and steps"),
    ],
)
def test_shared_checks_speak_one_wording(value: Any, error: type, fragment: str) -> None:
    for wording in (STATEFUL, CAUSAL):
        with pytest.raises(error) as info:
            sequences(value, **wording)
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("value", "stateful", "causal"),
    [
        (np.full((2, 3, 1), np.nan), "x holds NaN or inf", "x contains NaN or infinity"),
        (x(2, 0, 1), "x has 0 steps: there is nothing to stream", "x has zero steps (shape"),
        (x(0, 3, 1), "x has 0 samples", "x has zero samples (shape (0, 3, 1))"),
        (x(0, 0, 1), "x has 0 steps", "x has zero steps"),
    ],
)
def test_each_family_keeps_its_sentence(value: np.ndarray, stateful: str, causal: str) -> None:
    with pytest.raises(ValueError, match=re.escape(stateful)):
        sequences(value, **STATEFUL)
    with pytest.raises(ValueError, match=re.escape(causal)):
        sequences(value, **CAUSAL)


def test_the_nan_sentence_names_the_leaf_and_index() -> None:
    value = {"a": x(2, 3, 1), "b": x(2, 3, 2)}
    value["b"][1, 2, 0] = np.inf
    with pytest.raises(
        ValueError, match=r"x\['b'\] contains NaN or infinity \(first at index \(1, 2, 0\)\)"
    ):
        sequences(value, **CAUSAL)


@pytest.mark.parametrize("value", [None, "abc", b"abc", 3, 1.5])
def test_not_an_array_is_a_type_error_where_the_family_says_so(value: Any) -> None:
    with pytest.raises(TypeError, match=r"x must be an array .* or a list/dict of them, got "):
        sequences(value, **STATEFUL)
    with pytest.raises(ValueError, match=re.escape("with a time axis, got shape ()")):
        sequences(value, **CAUSAL)  # read as an array without a time axis


def test_arg_names_every_message() -> None:
    with pytest.raises(ValueError, match=r"^inputs\[1\] must be an array"):
        sequences([x(2, 3), x(3)], "inputs", **CAUSAL)
    with pytest.raises(ValueError, match=r"^inputs has 0 steps"):
        sequences(x(2, 0), "inputs", **STATEFUL)


def test_integers_and_booleans_are_numeric_and_never_nan() -> None:
    batch = sequences([x(2, 3, dtype="int64"), x(2, 3) > 2], **CAUSAL)
    assert [leaf.dtype.kind for leaf in batch.leaves] == ["i", "b"]


# --------------------------------------------------------------------------- numeric


def test_numeric_refuses_complex_and_formats_the_sentence() -> None:
    with pytest.raises(TypeError, match=r"^s must hold numbers or booleans, got dtype complex128"):
        numeric(np.ones(3, dtype=complex), "s", "{name} bad")
    with pytest.raises(ValueError, match=r"^s holds NaN at \(2,\)$"):
        numeric(np.array([0.0, 1.0, np.nan]), "s", "{name} holds NaN at {index}")
    numeric(np.arange(3), "s", "{name} never")  # integers: nothing to check


# --------------------------------------------------------------------------- check_int


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "trials must be >= 1, got 0"),
        (-3, ValueError, "trials must be >= 1, got -3"),
        (True, TypeError, "trials must be an int, got bool"),
        (2.0, TypeError, "trials must be an int, got float"),
        ("2", TypeError, "trials must be an int, got str"),
        (None, TypeError, "trials must be an int, got NoneType"),
    ],
)
def test_check_int_refuses_by_name(value: Any, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        check_int(value, "trials", 1)
    assert str(info.value) == message


def test_check_int_gives_a_python_int() -> None:
    value = check_int(np.int64(4), "runs", 2)
    assert value == 4 and type(value) is int


# --------------------------------------------------------------------------- check_seed


def test_seed_none_is_the_session_seed(session_seed: int) -> None:
    assert check_seed(None) == session_seed == 3
    assert check_seed(0) == 0 and check_seed(np.uint32(7)) == 7
    assert type(check_seed(np.int64(5))) is int
    assert check_seed(2**32 - 1) == 2**32 - 1


def test_seed_none_without_a_session_seed_is_0() -> None:
    saved = _config.settings.seed
    _config.settings.seed = _config.DEFAULT_SEED
    try:
        assert check_seed(None) == 0
    finally:
        _config.settings.seed = saved


@pytest.mark.parametrize(
    ("seed", "error", "message"),
    [
        (-1, ValueError, "seed must be in [0, 2**32), got -1"),
        (2**32, ValueError, "seed must be in [0, 2**32), got 4294967296"),
        ("a", TypeError, "seed must be an int, got str"),
        (1.5, TypeError, "seed must be an int, got float"),
        (True, TypeError, "seed must be an int, got bool"),
    ],
)
def test_check_seed_refuses_by_name(seed: Any, error: type, message: str) -> None:
    with pytest.raises(error) as info:
        check_seed(seed)
    assert str(info.value) == message


def test_a_session_seed_keras_cannot_take_is_named() -> None:
    saved = _config.settings.seed
    _config.settings.seed = -5
    try:
        with pytest.raises(ValueError, match=r"^seed=None takes the session's --rnn-seed .*-5"):
            check_seed(None)
    finally:
        _config.settings.seed = saved


# --------------------------------------------------------------------------- check_tolerances


@pytest.mark.parametrize(
    ("rtol", "atol", "error", "fragment"),
    [
        (1e-3, None, ValueError, "rtol was given without atol"),
        (None, 0.0, ValueError, "atol was given without rtol"),
        (-1.0, 0.0, ValueError, "rtol must be a finite number >= 0"),
        (0.0, float("nan"), ValueError, "atol must be a finite number >= 0"),
        ("tight", 0.0, TypeError, "rtol must be a real number"),
    ],
)
def test_check_tolerances_refuses_early(rtol: Any, atol: Any, error: type, fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        check_tolerances(rtol, atol)


def test_check_tolerances_takes_both_or_neither() -> None:
    check_tolerances(None, None)
    check_tolerances(0, 0)
    check_tolerances(1e-3, 1e-5)


# --------------------------------------------------------------------------- the session seed


def test_causal_seed_none_draws_from_the_session_seed(
    monkeypatch: pytest.MonkeyPatch, session_seed: int
) -> None:
    from pytest_rnn import dependence_map

    seeds: list[Any] = []
    original = np.random.default_rng

    def recording(seed: Any = None) -> np.random.Generator:
        seeds.append(seed)
        return original(seed)

    monkeypatch.setattr(np.random, "default_rng", recording)
    data = np.random.RandomState(0).normal(size=(2, 4, 1))
    dependence_map(lambda a: np.cumsum(a, axis=1), data, trials=1)
    assert seeds and set(seeds) == {session_seed}
    seeds.clear()
    dependence_map(lambda a: np.cumsum(a, axis=1), data, trials=1, seed=0)
    assert seeds and set(seeds) == {0}
