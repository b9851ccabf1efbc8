"""Tests for pytest_rnn._core.compare and ._core.tree: tolerances, nested paths, time-aware mismatch reports.

Pure numpy on arrays built by hand, so every expected number is known.
No Keras and no backend are imported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pytest_rnn._config import settings
from pytest_rnn._core.compare import (
    TABLE_ROWS,
    Mismatch,
    Tolerance,
    compare,
    format_mismatch,
    resolve_tolerance,
)
from pytest_rnn._core.tree import flatten

#: The float32 default: torch.testing's (rtol, atol).
F32 = Tolerance(rtol=1.3e-6, atol=1e-5)


@pytest.fixture(autouse=True)
def no_session_tolerance() -> Iterator[None]:
    """Every test starts without --rnn-rtol/--rnn-atol and leaves them as found."""
    saved = (settings.rtol, settings.atol)
    settings.rtol = settings.atol = None
    try:
        yield
    finally:
        settings.rtol, settings.atol = saved


def zeros(batch: int, steps: int, features: int = 1) -> np.ndarray:
    return np.zeros((batch, steps, features), dtype=np.float32)


def mismatch(actual: Any, expected: Any, tolerance: Tolerance = F32, **kwargs: Any) -> Mismatch:
    """``compare`` that must find a mismatch."""
    m = compare(actual, expected, tolerance, **kwargs)
    assert m is not None, "expected a mismatch"
    return m


# --- resolve_tolerance --------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("float16", (1e-3, 1e-5)),
        ("bfloat16", (1.6e-2, 1e-5)),
        ("float32", (1.3e-6, 1e-5)),
        ("float64", (1e-7, 1e-7)),
        (np.dtype("float16"), (1e-3, 1e-5)),
        (np.dtype("float32"), (1.3e-6, 1e-5)),
        (np.dtype("float64"), (1e-7, 1e-7)),
        # Backend dtype objects: TensorFlow's carry .name, torch's print as "torch.float16".
        (SimpleNamespace(name="float16"), (1e-3, 1e-5)),
        (SimpleNamespace(name="float64"), (1e-7, 1e-7)),
        (
            type(
                "TorchLike",
                (),
                {
                    "__str__": lambda self: "torch.float64",
                    "__repr__": lambda self: "TorchLike(torch.float64)",
                },
            )(),
            (1e-7, 1e-7),
        ),
    ],
    ids=repr,
)
def test_default_tolerance_by_dtype(dtype: Any, expected: tuple[float, float]) -> None:
    assert resolve_tolerance(None, None, dtype) == Tolerance(*expected)


def test_default_tolerance_for_numpy_bfloat16_dtype() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert resolve_tolerance(None, None, np.dtype(ml_dtypes.bfloat16)) == Tolerance(1.6e-2, 1e-5)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float16, (1e-3, 1e-5)), (np.float64, (1e-7, 1e-7)), (np.int32, (0.0, 0.0))],
    ids=["np.float16", "np.float64", "np.int32"],
)
def test_default_tolerance_for_numpy_scalar_types(
    dtype: Any, expected: tuple[float, float]
) -> None:
    assert resolve_tolerance(None, None, dtype) == Tolerance(*expected)


@pytest.mark.parametrize(
    "dtype", ["int8", "int32", "int64", "uint8", "bool", np.dtype("int16"), np.dtype(bool)]
)
def test_integers_and_booleans_compare_exactly(dtype: Any) -> None:
    tol = resolve_tolerance(None, None, dtype)
    assert tol == Tolerance(0.0, 0.0)
    assert compare(np.array([[3, 4]]), np.array([[3, 4]]), tol) is None
    assert compare(np.array([[3, 4]]), np.array([[3, 5]]), tol) is not None


@pytest.mark.parametrize(("rtol", "atol", "missing"), [(0.1, None, "atol"), (None, 0.1, "rtol")])
def test_tolerances_go_together(rtol: float | None, atol: float | None, missing: str) -> None:
    given = "rtol" if missing == "atol" else "atol"
    with pytest.raises(ValueError, match=f"{given} was given without {missing}"):
        resolve_tolerance(rtol, atol, "float32")


def test_tolerances_go_together_even_with_session_values() -> None:
    settings.rtol, settings.atol = 0.25, 0.5
    with pytest.raises(ValueError, match="rtol was given without atol"):
        resolve_tolerance(0.1, None, "float32")


@pytest.mark.parametrize(
    ("rtol", "atol", "error", "name"),
    [
        (-1.0, 0.0, ValueError, "rtol"),
        (0.0, -1e-9, ValueError, "atol"),
        (np.float32(-0.5), 0.0, ValueError, "rtol"),
        (math.nan, 0.0, ValueError, "rtol"),
        (0.0, math.nan, ValueError, "atol"),
        (math.inf, 0.0, ValueError, "rtol"),
        (0.0, -math.inf, ValueError, "atol"),
        (True, 0.0, TypeError, "rtol"),
        (0.0, False, TypeError, "atol"),
        ("0.1", 0.0, TypeError, "rtol"),
        (0.0, "1e-5", TypeError, "atol"),
        ([0.1], 0.0, TypeError, "rtol"),
        (0.0, np.array([1e-5]), TypeError, "atol"),
    ],
)
def test_bad_tolerances_name_the_argument(
    rtol: Any, atol: Any, error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=rf"^{name} must be a"):
        resolve_tolerance(rtol, atol, "float32")


@pytest.mark.parametrize(
    ("rtol", "atol"), [(0, 0), (1, 2), (np.float32(0.5), np.float64(0.25)), (np.int64(1), 0.0)]
)
def test_good_tolerances_become_floats(rtol: Any, atol: Any) -> None:
    tol = resolve_tolerance(rtol, atol, "int32")
    assert tol == Tolerance(float(rtol), float(atol))
    assert type(tol.rtol) is float
    assert type(tol.atol) is float


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", np.dtype("float32")])
def test_session_tolerance_used_when_the_call_passes_neither(dtype: Any) -> None:
    settings.rtol, settings.atol = 0.25, 0.5
    assert resolve_tolerance(None, None, dtype) == Tolerance(0.25, 0.5)


def test_session_tolerance_ignored_when_the_call_passes_both() -> None:
    settings.rtol, settings.atol = 0.25, 0.5
    assert resolve_tolerance(1e-3, 2e-3, "float32") == Tolerance(1e-3, 2e-3)


def test_tolerance_describe_and_allowed() -> None:
    assert F32.describe("full") == "1e-05 + 1.3e-06*|full|"
    tol = Tolerance(rtol=0.5, atol=0.25)
    np.testing.assert_array_equal(tol.allowed(np.array([0.0, -2.0, 4.0])), [0.25, 1.25, 2.25])


# --- flatten --------------------------------------------------------------------------


def test_flatten_single_leaf_has_empty_path() -> None:
    x = np.zeros((2, 3))
    [(path, leaf)] = flatten(x)
    assert path == ""
    assert leaf is x


def test_flatten_nested_lists_tuples_and_dicts() -> None:
    a, b, c, d = (np.full((1,), i) for i in range(4))
    out = flatten([a, {"h": b, "c": (c, d)}])
    assert [path for path, _ in out] == ["[0]", "[1]['c'][0]", "[1]['c'][1]", "[1]['h']"]
    assert [leaf for _, leaf in out] == [a, c, d, b]


def test_flatten_dict_order_does_not_depend_on_insertion() -> None:
    first = flatten({"state": 1, "output": 2, "c": 3})
    second = flatten({"c": 3, "output": 2, "state": 1})
    assert first == second == [("['c']", 3), ("['output']", 2), ("['state']", 1)]


def test_flatten_strings_and_arrays_are_leaves() -> None:
    arr = np.ones((2, 2))
    out = flatten(("name", b"raw", arr))
    assert [path for path, _ in out] == ["[0]", "[1]", "[2]"]
    assert out[2][1] is arr
    assert flatten([]) == []


# --- compare --------------------------------------------------------------------------


def test_compare_within_tolerance_is_none() -> None:
    expected = np.ones((2, 3, 1), dtype=np.float32)
    assert compare(expected, expected.copy(), F32) is None
    assert compare(expected + 5e-6, expected, F32) is None  # 5e-6 < 1e-5 + 1.3e-6
    assert compare(expected.tolist(), expected, F32) is None  # array-likes are accepted


@pytest.mark.parametrize("expected", [1.0, -1.0])
def test_compare_boundary_is_inclusive(expected: float) -> None:
    # allowed = atol + rtol*|expected| = 2.5 + 0.5*1 = 3; the edges (4 and -2 for 1) are
    # exact, and one ulp beyond an edge moves the difference by a representable amount.
    tol = Tolerance(rtol=0.5, atol=2.5)
    e = np.array([[[expected]]])
    for at_edge in (expected + 3.0, expected - 3.0):
        assert abs(at_edge - expected) == 3.0
        assert compare(np.array([[[at_edge]]]), e, tol) is None
        beyond = np.nextafter(at_edge, math.copysign(math.inf, at_edge - expected))
        assert abs(beyond - expected) > 3.0
        m = mismatch(np.array([[[beyond]]]), e, tol)
        assert (m.mismatched, m.first) == (1, (0, 0, 0))


def test_first_mismatch_is_earliest_step_then_sample() -> None:
    expected = zeros(4, 6)
    actual = expected.copy()
    actual[0, 5, 0] = 1.0  # sample 0, late step
    actual[3, 1, 0] = 2.0  # sample 3, early step: this one comes first
    m = mismatch(actual, expected)
    assert m.first == (3, 1, 0)
    assert m.step_of(m.first) == 1
    assert (m.first_actual, m.first_expected) == (2.0, 0.0)
    assert [idx for idx, _, _ in m.rows] == [(3, 1, 0), (0, 5, 0)]


def test_first_mismatch_within_a_step_is_lowest_sample_then_feature() -> None:
    expected = zeros(3, 4, 3)
    actual = expected.copy()
    actual[2, 2, 0] = 1.0
    actual[1, 2, 2] = 1.0
    actual[1, 2, 1] = 1.0
    actual[0, 3, 0] = 1.0
    m = mismatch(actual, expected)
    assert m.first == (1, 2, 1)
    assert [idx for idx, _, _ in m.rows] == [(1, 2, 1), (1, 2, 2), (2, 2, 0), (0, 3, 0)]


def test_counts_and_table_rows() -> None:
    expected = zeros(4, 6)
    actual = expected.copy()
    actual[0, 5, 0] = 1.0
    actual[3, 1, 0] = 2.0
    m = mismatch(actual, expected)
    assert (m.compared, m.mismatched, m.shape) == (24, 2, (4, 6, 1))
    assert m.rows == (((3, 1, 0), 2.0, 0.0), ((0, 5, 0), 1.0, 0.0))
    assert m.tolerance == F32
    assert m.shape_error is None


def test_table_rows_are_capped_but_counts_are_not() -> None:
    expected = zeros(3, 5)
    m = mismatch(expected + 1.0, expected)
    assert m.mismatched == m.compared == 15
    assert len(m.rows) == TABLE_ROWS
    assert [idx[1] for idx, _, _ in m.rows] == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3]


def test_greatest_abs_and_rel_diff_positions() -> None:
    expected = np.ones((2, 4, 1))
    actual = expected.copy()
    expected[1, 3, 0], actual[1, 3, 0] = 100.0, 110.0  # abs 10, rel 0.1
    expected[0, 2, 0], actual[0, 2, 0] = 0.5, 1.5  # abs 1, rel 2
    m = mismatch(actual, expected)
    assert m.mismatched == 2
    assert m.max_abs == pytest.approx(10.0)
    assert m.max_abs_at == (1, 3, 0)
    assert m.max_rel == pytest.approx(2.0)
    assert m.max_rel_at == (0, 2, 0)


def test_greatest_rel_diff_against_zero_is_inf() -> None:
    expected = zeros(1, 3)
    actual = expected.copy()
    actual[0, 1, 0] = 1.0
    m = mismatch(actual, expected)
    assert m.max_rel_at == (0, 1, 0)
    assert m.max_rel == math.inf
    assert "greatest rel diff inf at (0, 1, 0)" in format_mismatch(m)[1]


def test_valid_mask_leaves_masked_steps_out() -> None:
    expected = zeros(2, 4)
    actual = expected.copy()
    actual[1, 3, 0] = 1e6  # huge, but at a masked (padded) step
    actual[0, 1, 0] = 1.0
    valid = np.ones((2, 4), dtype=bool)
    valid[1, 3] = False
    m = mismatch(actual, expected, valid=valid)
    assert (m.mismatched, m.compared) == (1, 7)
    assert m.first == m.max_abs_at == (0, 1, 0)
    assert m.max_abs == 1.0
    assert [idx for idx, _, _ in m.rows] == [(0, 1, 0)]
    # Without the mask the same arrays report the huge difference.
    unmasked = mismatch(actual, expected)
    assert (unmasked.mismatched, unmasked.max_abs_at) == (2, (1, 3, 0))


def test_valid_mask_alone_hides_a_masked_difference() -> None:
    expected = zeros(2, 4)
    actual = expected.copy()
    actual[1, 3, 0] = 1e6
    valid = np.ones((2, 4), dtype=bool)
    valid[1, 3] = False
    assert compare(actual, expected, F32, valid=valid) is None


def test_valid_mask_broadcasts_over_features() -> None:
    expected = zeros(2, 4, 3)
    valid = np.ones((2, 4), dtype=bool)
    valid[0, 0] = valid[1, 2] = False
    m = mismatch(expected + 1.0, expected, valid=valid)
    assert m.compared == m.mismatched == 6 * 3


def test_steps_map_axis_one_to_real_steps() -> None:
    # Outputs gathered at chunk ends: axis 1 position 1 stands for step 9.
    expected = zeros(2, 3)
    actual = expected.copy()
    actual[1, 1, 0] = 1.0
    m = mismatch(actual, expected, steps=[4, 9, 14])
    assert m.steps == (4, 9, 14)
    assert m.first == (1, 1, 0)
    assert m.step_of(m.first) == 9
    assert m.spoken(m.first) == (1, 9, 0)
    lines = format_mismatch(m)
    assert "first mismatch: step 9, sample 1" in lines[0]
    assert "greatest abs diff 1 at (1, 9, 0)" in lines[1]
    assert lines[3].split()[:3] == ["9", "1", "(1,"]


def test_without_steps_axis_one_is_the_step() -> None:
    m = mismatch(np.ones((2, 3, 1)), zeros(2, 3))
    assert m.steps is None
    assert m.step_of((1, 2, 0)) == 2
    assert m.spoken((1, 2, 0)) == (1, 2, 0)
    assert m.step_of((1,)) is None


def test_nan_agrees_only_with_nan() -> None:
    nan = math.nan
    assert compare(np.array([[nan, 1.0]]), np.array([[nan, 1.0]]), F32) is None
    m = mismatch(np.array([[nan, 1.0]]), np.array([[0.5, 1.0]]))
    assert (m.first, m.mismatched) == ((0, 0), 1)
    assert math.isnan(m.first_actual)
    m = mismatch(np.array([[1.0, 0.5]]), np.array([[1.0, nan]]))
    assert (m.first, m.mismatched) == ((0, 1), 1)
    assert math.isnan(m.first_expected)


def test_infinities_agree_with_the_same_infinity() -> None:
    inf = math.inf
    assert compare(np.array([[inf, -inf]]), np.array([[inf, -inf]]), F32) is None
    m = mismatch(np.array([[inf, 1.0, 1e308]]), np.array([[1.0, 1.0, -1e308]]))
    assert m.mismatched == 2
    assert [idx for idx, _, _ in m.rows] == [(0, 0), (0, 2)]


@pytest.mark.parametrize("actual", [1.0, -math.inf], ids=["finite", "opposite-inf"])
def test_infinite_expected_rejects_other_values(actual: float) -> None:
    m = compare(np.array([[actual]]), np.array([[math.inf]]), F32)
    assert m is not None
    assert m.first == (0, 0)


def test_shape_mismatch_is_reported_not_raised() -> None:
    m = mismatch(zeros(2, 3), zeros(2, 4))
    assert m.shape_error == "shape (2, 3, 1) where (2, 4, 1) was expected"
    assert (m.shape, m.compared, m.mismatched, m.rows) == ((2, 4, 1), 0, 0, ())
    assert format_mismatch(m, actual_name="streamed") == [
        "  streamed has shape (2, 3, 1) where (2, 4, 1) was expected"
    ]


def test_one_dimensional_arrays_speak_in_samples() -> None:
    m = mismatch(np.array([0.0, 2.0, 0.0]), np.zeros(3))
    assert m.first == (1,)
    lines = format_mismatch(m)
    assert lines[0] == "  first mismatch: sample 1: actual 2, expected 0"
    assert len(lines) == 2  # no step table without a time axis


def test_scalars_compare() -> None:
    m = compare(np.float64(1.0), np.float64(2.0), F32)
    assert m is not None
    assert m.first == ()
    assert "first mismatch: scalar: actual 1, expected 2" in format_mismatch(m)[0]


# --- format_mismatch ------------------------------------------------------------------


def two_mismatches_at_step_5() -> Mismatch:
    expected = np.ones((4, 6, 1), dtype=np.float32)
    actual = expected.copy()
    actual[0, 5, 0] = 3.0  # abs 2, rel 2
    actual[3, 5, 0] = 1.5  # abs 0.5, rel 0.5
    return mismatch(actual, expected, resolve_tolerance(None, None, np.float32))


def test_format_mismatch_summary_lines() -> None:
    lines = format_mismatch(
        two_mismatches_at_step_5(), actual_name="streamed", expected_name="full"
    )
    assert lines[0] == "  first mismatch: step 5, sample 0, feature 0: streamed 3, full 1"
    assert lines[1].startswith("  mismatched: 2 / 24 (8.3%); ")
    assert "greatest abs diff 2 at (0, 5, 0)" in lines[1]
    assert "greatest rel diff 2 at (0, 5, 0)" in lines[1]
    assert lines[1].endswith("allowed 1e-05 + 1.3e-06*|full|")


def test_format_mismatch_table_without_cap_line_when_all_rows_fit() -> None:
    lines = format_mismatch(
        two_mismatches_at_step_5(), actual_name="streamed", expected_name="full"
    )
    assert len(lines) == 5  # first, counts, header, 2 rows
    assert lines[2].split() == ["step", "sample", "index", "streamed", "full", "abs", "diff"]
    assert lines[3].split() == ["5", "0", "(0,", "5,", "0)", "3", "1", "2"]
    assert lines[4].split() == ["5", "3", "(3,", "5,", "0)", "1.5", "1", "0.5"]
    assert not any("mismatches, in step order" in line for line in lines)


def test_format_mismatch_default_names_and_indent() -> None:
    lines = format_mismatch(two_mismatches_at_step_5(), indent="")
    assert lines[0] == "first mismatch: step 5, sample 0, feature 0: actual 3, expected 1"
    assert lines[1].endswith("allowed 1e-05 + 1.3e-06*|expected|")
    assert "actual" in lines[2]
    assert "expected" in lines[2]


@pytest.mark.parametrize(("batch", "capped"), [(2, False), (3, True)])
def test_format_mismatch_caps_the_table(batch: int, capped: bool) -> None:
    # batch 2: exactly TABLE_ROWS (10) mismatches, all shown; batch 3: 15, first 10 shown.
    expected = zeros(batch, 5)
    m = mismatch(expected + 1.0, expected)
    lines = format_mismatch(m)
    rows = lines[3:]
    if capped:
        assert rows[-1] == "  (first 10 of 15 mismatches, in step order)"
        rows = rows[:-1]
    else:
        assert m.mismatched == TABLE_ROWS
        assert not any(line.lstrip().startswith("(first") for line in lines)
    assert len(rows) == TABLE_ROWS
    assert f"mismatched: {batch * 5} / {batch * 5} (100.0%)" in lines[1]


def test_format_mismatch_names_a_feature_tuple_beyond_3d() -> None:
    expected = np.zeros((1, 2, 2, 3))
    actual = expected.copy()
    actual[0, 1, 1, 2] = 1.0
    lines = format_mismatch(mismatch(actual, expected))
    assert lines[0].startswith("  first mismatch: step 1, sample 0, feature (1, 2): ")


def test_exceeded_is_the_rule_compare_applies() -> None:
    tol = Tolerance(rtol=0.0, atol=0.5)
    actual = np.array([1.0, 1.4, 2.0, np.nan, np.nan, np.inf, np.inf, -np.inf, 1.0])
    expected = np.array([1.0, 1.0, 1.0, np.nan, 1.0, np.inf, -np.inf, 1.0, np.inf])
    assert tol.exceeded(actual, expected).tolist() == [
        False, False, True, False, True, False, True, True, True,
    ]  # fmt: skip
    for a, e, out in zip(actual, expected, tol.exceeded(actual, expected)):
        assert (compare(np.array([a]), np.array([e]), tol) is not None) == out


def test_format_pair_prints_the_digits_that_show_a_difference() -> None:
    from pytest_rnn._core.compare import format_pair

    assert format_pair(0.8123, 0.5121) == ("0.8123", "0.5121")  # 4 digits as before
    assert format_pair(0.4995121, 0.4995178) == ("0.49951", "0.49952")
    assert format_pair(1.0, 1.0 + 1e-8) == ("1", "1.00000001")
    assert format_pair(0.25, 0.25) == ("0.25", "0.25")
    assert format_pair(float("nan"), 1.0) == ("nan", "1")


def test_a_mismatch_message_shows_values_that_differ_in_the_fifth_digit() -> None:
    from pytest_rnn._core.compare import Tolerance, compare, format_mismatch

    expected = np.array([[[0.49951]], [[0.2]]], dtype=np.float64)
    actual = expected + np.array([[[4e-6]], [[0.0]]])
    m = compare(actual, expected, Tolerance(0.0, 1e-7))
    assert m is not None
    first = format_mismatch(m, actual_name="streamed", expected_name="full")[0]
    assert first.endswith("streamed 0.499514, full 0.49951")
