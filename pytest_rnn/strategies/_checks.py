"""Argument validation shared by every strategy of the package, and the defaults it falls back on.

Each ``_check_*`` helper takes a user's argument and its name, returns the
normalised value and raises :class:`hypothesis.errors.InvalidArgument` with a
message naming the argument. The input strategies (shapes, floats, tokens,
chunk schedules) and the model strategies both use them, so one argument is
checked the same way everywhere.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy

Padding = Literal["pre", "post"]

_DEFAULT_MAX_BATCH = 4
_DEFAULT_MAX_STEPS = 16
_DEFAULT_MIN_VALUE = -1.0
_DEFAULT_MAX_VALUE = 1.0


def _check_int(value: object, name: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(f"{name}={value!r} must be an integer, not {type(value).__name__}")
    result = int(value)
    if minimum is not None and result < minimum:
        raise InvalidArgument(f"{name}={result!r} must be at least {minimum}")
    return result


def _check_order(low: int, high: int, low_name: str, high_name: str) -> None:
    if low > high:
        raise InvalidArgument(f"{low_name}={low} must not exceed {high_name}={high}")


def _check_real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(f"{name}={value!r} must be a real number, not {type(value).__name__}")
    result = float(value)
    if not np.isfinite(result):
        raise InvalidArgument(f"{name}={value!r} must be finite")
    return result


def _check_shape(shape: object, *, exact_rank: int | None = None) -> tuple[int, ...]:
    expected = "(batch, steps)" if exact_rank == 2 else "(batch, steps, *features)"
    if not isinstance(shape, (tuple, list)):
        raise InvalidArgument(f"shape={shape!r} must be a tuple {expected}")
    dims = tuple(_check_int(dim, f"shape[{i}]", minimum=1) for i, dim in enumerate(shape))
    if len(dims) < 2 or (exact_rank is not None and len(dims) != exact_rank):
        raise InvalidArgument(f"shape={shape!r} must be a tuple {expected}")
    return dims


def _check_features(features: object) -> tuple[int, ...]:
    if isinstance(features, (tuple, list)):
        return tuple(_check_int(dim, f"features[{i}]", minimum=1) for i, dim in enumerate(features))
    return (_check_int(features, "features", minimum=1),)


def _check_padding(padding: object) -> Padding:
    if padding == "pre":
        return "pre"
    if padding == "post":
        return "post"
    raise InvalidArgument(f"padding={padding!r} must be 'pre' or 'post'")


def _to_dtype(dtype: object) -> np.dtype[Any]:
    try:
        return np.dtype(dtype)  # type: ignore[call-overload]
    except (TypeError, ValueError) as err:
        raise InvalidArgument(f"dtype={dtype!r} is not a NumPy dtype") from err


def _check_float_dtype(dtype: object) -> np.dtype[Any]:
    result = _to_dtype(dtype)
    if result.kind != "f":
        raise InvalidArgument(f"dtype={dtype!r} must be a floating-point dtype, not {result}")
    return result


def _check_int_dtype(dtype: object, vocab_size: int) -> np.dtype[Any]:
    result = _to_dtype(dtype)
    if result.kind not in "iu":
        raise InvalidArgument(f"dtype={dtype!r} must be an integer dtype, not {result}")
    if vocab_size - 1 > np.iinfo(result).max:
        raise InvalidArgument(
            f"dtype={dtype!r} cannot hold token ids up to vocab_size={vocab_size}"
        )
    return result


def _value_or_strategy(value: Any, check: Any) -> SearchStrategy[Any]:
    """A strategy for ``value``: checked now if it is a value, on each draw if a strategy."""
    if isinstance(value, SearchStrategy):
        return value.map(check)
    return st.just(check(value))


def _value_range(
    elements: SearchStrategy[Any] | None, min_value: float | None, max_value: float | None
) -> tuple[float, float]:
    if elements is not None:
        if not isinstance(elements, SearchStrategy):
            raise InvalidArgument(f"elements={elements!r} must be a Hypothesis strategy")
        if min_value is not None or max_value is not None:
            raise InvalidArgument("pass either elements or min_value/max_value, not both")
    low = _DEFAULT_MIN_VALUE if min_value is None else _check_real(min_value, "min_value")
    high = _DEFAULT_MAX_VALUE if max_value is None else _check_real(max_value, "max_value")
    if low > high:
        raise InvalidArgument(f"min_value={low!r} must not exceed max_value={high!r}")
    return low, high


def _length_bounds(min_length: int, max_length: int | None) -> tuple[int, int | None]:
    low = _check_int(min_length, "min_length", minimum=1)
    if max_length is None:
        return low, None
    high = _check_int(max_length, "max_length", minimum=1)
    _check_order(low, high, "min_length", "max_length")
    return low, high


def _check_names(values: object, name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, (tuple, list)) or not values:
        raise InvalidArgument(f"{name}={values!r} must be a non-empty list drawn from {allowed}")
    for value in values:
        if value not in allowed:
            raise InvalidArgument(f"{name}: {value!r} is not one of {allowed}")
    return tuple(values)


def _check_optional_bool(value: object, name: str) -> SearchStrategy[bool]:
    if value is None:
        return st.booleans()
    if isinstance(value, SearchStrategy):
        return value.map(lambda v: _check_bool(v, name))
    return st.just(_check_bool(value, name))


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidArgument(f"{name}={value!r} must be True, False or None (both)")
    return bool(value)


def _check_bounds(
    low: object, high: object, low_name: str, high_name: str, minimum: int
) -> tuple[int, int]:
    lo = _check_int(low, low_name, minimum=minimum)
    hi = _check_int(high, high_name, minimum=minimum)
    _check_order(lo, hi, low_name, high_name)
    return lo, hi
