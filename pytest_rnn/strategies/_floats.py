"""Float batches: ``sequences`` and ``padded_sequences``.

Both draw arrays with :func:`hypothesis.extra.numpy.arrays` from finite,
non-subnormal values rounded inwards to the dtype (``_float_elements``);
``padded_sequences`` then pads them so that ``keras.layers.Masking`` computes
exactly the returned mask.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from pytest_rnn.strategies._checks import (
    Padding,
    _check_float_dtype,
    _check_padding,
    _check_real,
    _check_shape,
    _length_bounds,
    _value_or_strategy,
    _value_range,
)
from pytest_rnn.strategies._shapes import (
    PaddedSequences,
    _default_shapes,
    _draw_lengths,
    _mask,
    sequence_shapes,
)


def _float_bound(value: float, dtype: np.dtype[Any], *, up: bool, name: str) -> float:
    """``value`` moved inwards to the nearest number ``dtype`` represents exactly."""
    info = np.finfo(dtype)
    if abs(value) > float(info.max):
        raise InvalidArgument(f"{name}={value!r} is out of range for dtype {dtype}")
    result = dtype.type(value)
    if up and float(result) < value:
        result = np.nextafter(result, dtype.type(np.inf))
    elif not up and float(result) > value:
        result = np.nextafter(result, dtype.type(-np.inf))
    return float(result)


@functools.lru_cache(maxsize=64)
def _float_elements(
    dtype: np.dtype[Any], min_value: float, max_value: float
) -> SearchStrategy[float]:
    low = _float_bound(min_value, dtype, up=True, name="min_value")
    high = _float_bound(max_value, dtype, up=False, name="max_value")
    if low > high:
        raise InvalidArgument(
            f"no {dtype} value lies between min_value={min_value!r} and max_value={max_value!r}"
        )
    # Subnormals are left out: TensorFlow flushes them to zero on some kernels, so they
    # make backends disagree for reasons that have nothing to do with the model.
    elements = st.floats(
        low,
        high,
        width=min(dtype.itemsize * 8, 64),  # type: ignore[arg-type]
        allow_nan=False,
        allow_infinity=False,
        allow_subnormal=False,
    )
    elements.validate()
    return elements


def sequences(
    *,
    shape: tuple[int, ...] | SearchStrategy[tuple[int, ...]] | None = None,
    dtype: npt.DTypeLike | SearchStrategy[Any] = "float32",
    elements: SearchStrategy[Any] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> SearchStrategy[npt.NDArray[Any]]:
    """Float arrays of shape ``(batch, steps, *features)``: a batch of sequences.

    Values are finite and never subnormal. They lie in ``[-1, 1]`` by default, which
    keeps ``tanh``/``sigmoid`` gates away from saturation. The arrays are built with
    :func:`hypothesis.extra.numpy.arrays` and shrink towards zeros.

    Args:
        shape: Value or strategy. Defaults to ``sequence_shapes()``. Needs at least two
            dimensions, all at least 1.
        dtype: Value or strategy. A floating-point dtype. Defaults to ``float32``.
        elements: A strategy for the values. It replaces ``min_value``/``max_value``,
            and finiteness is then its responsibility.
        min_value: Smallest value. Defaults to -1.0. Rounded inwards to ``dtype``.
        max_value: Largest value. Defaults to 1.0. Rounded inwards to ``dtype``.

    Returns:
        A strategy of NumPy arrays.

    Raises:
        InvalidArgument: On a bad shape, a non-float dtype, a non-finite bound,
            ``min_value > max_value``, or ``elements`` combined with bounds.

    Example:
        ::

            @given(x=sequences(shape=(2, 5, 3)))
            def test_lstm_is_finite(x):
                assert np.isfinite(model(x)).all()
    """
    low, high = _value_range(elements, min_value, max_value)
    shapes = sequence_shapes() if shape is None else _value_or_strategy(shape, _check_shape)
    dtypes = _value_or_strategy(dtype, _check_float_dtype)
    if elements is None and not isinstance(dtype, SearchStrategy):
        _float_elements(_check_float_dtype(dtype), low, high)  # fail now, not on the first draw
    return _sequences(shapes, dtypes, elements, low, high)


@st.composite
def _sequences(
    draw: st.DrawFn,
    shapes: SearchStrategy[tuple[int, ...]],
    dtypes: SearchStrategy[np.dtype[Any]],
    elements: SearchStrategy[Any] | None,
    low: float,
    high: float,
) -> npt.NDArray[Any]:
    shape = draw(shapes)
    dtype = draw(dtypes)
    values = _float_elements(dtype, low, high) if elements is None else elements
    return draw(hnp.arrays(dtype, shape, elements=values))


def padded_sequences(
    *,
    shape: tuple[int, ...] | SearchStrategy[tuple[int, ...]] | None = None,
    dtype: npt.DTypeLike | SearchStrategy[Any] = "float32",
    elements: SearchStrategy[Any] | None = None,
    min_value: float | None = None,
    max_value: float | None = None,
    padding: str | SearchStrategy[str] = "post",
    min_length: int = 1,
    max_length: int | None = None,
    value: float = 0.0,
) -> SearchStrategy[PaddedSequences]:
    """Padded float batches with their per-sample lengths and mask.

    Draws a batch as in :func:`sequences`, then one valid length per sample, then
    sets every padded step to ``value``. ``padding="post"`` pads after the valid
    steps and ``"pre"`` pads before them. The number of padded steps shrinks towards
    0, so a minimal failing example keeps only the padding it needs.

    For inputs shaped ``(batch, steps, features)``, ``result.mask`` is exactly the
    mask that ``keras.layers.Masking(mask_value=value)`` computes: a step is masked
    iff all of its features equal ``value``. Each valid step therefore has at least
    one element that differs from ``value``. A valid step drawn as all-``value``
    gets one element redrawn from ``elements`` (or the value range) excluding
    ``value``. Other elements of a valid step may still equal ``value``.

    Args:
        shape: Value or strategy, as in :func:`sequences`. Defaults to
            :func:`sequence_shapes` with ``min_steps=min_length``. A drawn shape whose
            ``steps`` is below ``min_length`` is rejected, not reported.
        dtype: Value or strategy. A floating-point dtype. Defaults to ``float32``.
        elements: A strategy for the values, as in :func:`sequences`. It must be able
            to produce something other than ``value``.
        min_value: Smallest value. Defaults to -1.0.
        max_value: Largest value. Defaults to 1.0.
        padding: Value or strategy. ``"pre"`` or ``"post"``, one per batch.
        min_length: Fewest valid steps per sample, at least 1.
        max_length: Most valid steps per sample. Defaults to ``steps``. It is capped at
            ``steps``.
        value: The pad value. Must be finite. It may lie outside the value range.

    Returns:
        A strategy of :class:`PaddedSequences`.

    Raises:
        InvalidArgument: On any argument :func:`sequences` rejects, a padding other
            than ``"pre"``/``"post"``, bad length bounds, a non-finite ``value``, a fixed
            ``shape`` with fewer than ``min_length`` steps, or a value range that holds
            nothing but ``value``.

    Example:
        ::

            @given(batch=padded_sequences(padding=st.sampled_from(["pre", "post"])))
            def test_masking(batch):
                y = model(batch.x)  # model starts with Masking(mask_value=0.0)
                for i in range(len(batch.x)):
                    np.testing.assert_allclose(y[i], model(batch.unpadded(i)[None])[0])
    """
    low, high = _value_range(elements, min_value, max_value)
    min_length, max_length = _length_bounds(min_length, max_length)
    pad = _check_real(value, "value")
    paddings = _value_or_strategy(padding, _check_padding)
    if shape is None:
        shapes: SearchStrategy[tuple[int, ...]] = _default_shapes(min_length, 3)
    elif isinstance(shape, SearchStrategy):
        shapes = shape.map(_check_shape)
    else:
        fixed = _check_shape(shape)
        if fixed[1] < min_length:
            raise InvalidArgument(f"shape={shape!r} has fewer steps than min_length={min_length}")
        shapes = st.just(fixed)
    dtypes = _value_or_strategy(dtype, _check_float_dtype)
    if elements is None and not isinstance(dtype, SearchStrategy):
        float_dtype = _check_float_dtype(dtype)
        _float_elements(float_dtype, low, high)
        only = _float_bound(low, float_dtype, up=True, name="min_value")
        if only == _float_bound(high, float_dtype, up=False, name="max_value") and (
            float_dtype.type(only) == float_dtype.type(pad)
        ):
            raise InvalidArgument(
                f"min_value == max_value == value={value!r} leaves no value for valid steps"
            )
    return _padded_sequences(
        shapes, dtypes, elements, low, high, paddings, min_length, max_length, pad
    )


@st.composite
def _padded_sequences(
    draw: st.DrawFn,
    shapes: SearchStrategy[tuple[int, ...]],
    dtypes: SearchStrategy[np.dtype[Any]],
    elements: SearchStrategy[Any] | None,
    low: float,
    high: float,
    paddings: SearchStrategy[Padding],
    min_length: int,
    max_length: int | None,
    value: float,
) -> PaddedSequences:
    shape = draw(shapes)
    dtype = draw(dtypes)
    values = _float_elements(dtype, low, high) if elements is None else elements
    x = draw(hnp.arrays(dtype, shape, elements=values))
    side = draw(paddings)
    batch, steps = shape[0], shape[1]
    lengths = _draw_lengths(draw, batch, steps, min_length, max_length)
    mask = _mask(lengths, steps, side)
    pad = dtype.type(value)

    flat = np.array(x).reshape(batch, steps, -1)
    all_pad = np.all(flat == pad, axis=2) & mask
    if all_pad.any():
        not_pad = values.filter(lambda v: dtype.type(v) != pad)
        for b, t in zip(*np.nonzero(all_pad), strict=True):
            flat[b, t, 0] = draw(not_pad)
    flat[~mask] = pad
    return PaddedSequences(
        x=flat.reshape(shape), lengths=lengths, mask=mask, padding=side, value=pad.item()
    )
