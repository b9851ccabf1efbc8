"""Hypothesis strategies for sequence-model inputs.

Written in the style of :mod:`hypothesis.extra.numpy`. Each function is a noun
naming what it generates. Bounds are keyword-only ``min_*``/``max_*``
arguments with small defaults. Arguments documented as "value or strategy"
take a plain value or a Hypothesis strategy of such values. Invalid arguments
raise :class:`hypothesis.errors.InvalidArgument` when the function is called,
before any test draws from the strategy.

Defaults stay small (batch <= 4, steps <= 16, values in [-1, 1]) so that
tests running a recurrent model on every example finish quickly and the model
does not saturate.

:func:`sequence_models` and :func:`seq2seq_models` draw small Keras models as
readable specs (:class:`SequenceModel`, :class:`Seq2SeqModel`) whose ``build()``
makes the model with seeded weights.

This module imports only Hypothesis and NumPy. No deep-learning backend is
loaded when you build these strategies or draw specs; ``build()`` imports Keras.

Example:
    A streaming test that draws a batch and a schedule to feed it in::

        from hypothesis import given, strategies as st
        from pytest_rnn.strategies import chunkings, rnn_settings, sequences

        @rnn_settings
        @given(st.data())
        def test_streaming(data):
            x = data.draw(sequences())
            chunks = data.draw(chunkings(x.shape[1]))
            ...
"""

from __future__ import annotations

import functools
import numbers
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, reject, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

__all__ = [
    "LayerSpec",
    "PaddedSequences",
    "Seq2SeqModel",
    "Seq2SeqNet",
    "SequenceModel",
    "chunkings",
    "padded_sequences",
    "padded_token_sequences",
    "rnn_settings",
    "seq2seq_models",
    "sequence_models",
    "sequence_shapes",
    "sequences",
    "token_sequences",
]

Padding = Literal["pre", "post"]

_DEFAULT_MAX_BATCH = 4
_DEFAULT_MAX_STEPS = 16
_DEFAULT_MIN_VALUE = -1.0
_DEFAULT_MAX_VALUE = 1.0

rnn_settings: settings = settings(
    deadline=None,
    max_examples=25,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
"""Hypothesis settings for ``@given`` tests that build or run a Keras model.

A model's first call traces a TensorFlow function, which can take seconds.
Later calls take milliseconds. Hypothesis's default 200 ms deadline would
report that first call as a failure, or as a flaky test once the trace is
cached. So this object sets ``deadline=None`` and suppresses the health checks
that slow examples trip (``too_slow``, ``data_too_large`` and
``large_base_example``). ``max_examples=25`` keeps one test to a few seconds.

Settings objects are decorators, so you can apply this one to a test. The
pytest-rnn plugin can also register it as a profile. Any setting not listed
here comes from the Hypothesis profile active when this module was first
imported. To change more, derive from it: ``settings(rnn_settings, max_examples=100)``.

Example:
    ::

        @rnn_settings
        @given(x=sequences())
        def test_masking(x):
            ...
"""


@dataclass(frozen=True, eq=False)
class PaddedSequences:
    """A padded batch with its lengths and mask (from :func:`padded_sequences`).

    Attributes:
        x: The batch, shape ``(batch, steps, *features)`` (tokens: ``(batch, steps)``).
            Every padded step holds ``value`` at every position.
        lengths: ``int32`` array of shape ``(batch,)``: the number of valid steps per sample.
        mask: ``bool`` array of shape ``(batch, steps)``: ``True`` at valid steps.
            For ``x`` of shape ``(batch, steps, features)`` this is the mask that
            ``keras.layers.Masking(mask_value=value)`` computes. For token batches
            it is the mask that ``Embedding(mask_zero=True)`` computes.
        padding: ``"pre"`` (padding before the valid steps) or ``"post"`` (after).
        value: The pad value, as ``x``'s dtype stores it (``0.1`` in ``float16`` is
            ``0.0999755859375``), so ``x[~mask] == value`` holds exactly.

    Example:
        ::

            batch = data.draw(padded_sequences(padding="pre"))
            first = batch.unpadded(0)  # the valid steps of sample 0
            assert first.shape[0] == batch.lengths[0]
    """

    x: npt.NDArray[Any]
    lengths: npt.NDArray[np.int32]
    mask: npt.NDArray[np.bool_]
    padding: Padding
    value: float | int

    def unpadded(self, index: int) -> npt.NDArray[Any]:
        """Return sample ``index`` without its padded steps.

        Args:
            index: The sample's position in the batch.

        Returns:
            An array of shape ``(lengths[index], *features)``.

        Example:
            ::

                run_one = model(batch.unpadded(0)[None])
        """
        return self.x[index][self.mask[index]]


# --------------------------------------------------------------------------- validation


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


# --------------------------------------------------------------------------- shapes


def sequence_shapes(
    *,
    min_batch: int = 1,
    max_batch: int | None = None,
    min_steps: int = 1,
    max_steps: int | None = None,
    features: int | tuple[int, ...] | SearchStrategy[int] | SearchStrategy[tuple[int, ...]] = 3,
) -> SearchStrategy[tuple[int, ...]]:
    """Shapes ``(batch, steps, *feature_dims)`` of a batch of sequences.

    Batch and steps shrink towards their minimums.

    Args:
        min_batch: Smallest batch size, at least 1.
        max_batch: Largest batch size. Defaults to ``max(min_batch, 4)``.
        min_steps: Fewest time steps, at least 1.
        max_steps: Most time steps. Defaults to ``max(min_steps, 16)``.
        features: Value or strategy. The trailing dimensions: an int ``n`` gives
            ``(batch, steps, n)``, a tuple gives ``(batch, steps, *features)``, and
            ``()`` gives ``(batch, steps)``.

    Returns:
        A strategy of shape tuples.

    Raises:
        InvalidArgument: If a bound is not an int, is below 1, or a minimum exceeds
            its maximum. A ``features`` value is checked at the call, a
            ``features`` strategy on each draw.

    Example:
        ::

            @given(sequence_shapes(max_steps=8, features=st.integers(1, 4)))
            def test_output_shape(shape):
                batch, steps, n = shape
    """
    min_batch = _check_int(min_batch, "min_batch", minimum=1)
    if max_batch is None:
        max_batch = max(min_batch, _DEFAULT_MAX_BATCH)
    max_batch = _check_int(max_batch, "max_batch", minimum=1)
    _check_order(min_batch, max_batch, "min_batch", "max_batch")
    min_steps = _check_int(min_steps, "min_steps", minimum=1)
    if max_steps is None:
        max_steps = max(min_steps, _DEFAULT_MAX_STEPS)
    max_steps = _check_int(max_steps, "max_steps", minimum=1)
    _check_order(min_steps, max_steps, "min_steps", "max_steps")
    feature_dims = _value_or_strategy(features, _check_features)
    return st.tuples(
        st.integers(min_batch, max_batch), st.integers(min_steps, max_steps), feature_dims
    ).map(lambda parts: (parts[0], parts[1], *parts[2]))


# --------------------------------------------------------------------------- float batches


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


# --------------------------------------------------------------------------- padding


def _draw_lengths(
    draw: st.DrawFn, batch: int, steps: int, min_length: int, max_length: int | None
) -> npt.NDArray[np.int32]:
    """Draw one valid length per sample. The padded count shrinks to 0 (no padding)."""
    longest = steps if max_length is None else min(max_length, steps)
    if min_length > longest:
        reject()  # only reachable with a user shape strategy: this shape cannot fit the bounds
    padded = draw(
        st.lists(st.integers(steps - longest, steps - min_length), min_size=batch, max_size=batch)
    )
    return np.asarray([steps - p for p in padded], dtype=np.int32)


def _mask(lengths: npt.NDArray[np.int32], steps: int, padding: Padding) -> npt.NDArray[np.bool_]:
    positions = np.arange(steps)
    if padding == "post":
        return positions[None, :] < lengths[:, None]
    return positions[None, :] >= (steps - lengths)[:, None]


def _default_shapes(min_length: int, features: int | tuple[int, ...]) -> SearchStrategy[Any]:
    return sequence_shapes(min_steps=min_length, features=features)


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


# --------------------------------------------------------------------------- chunk schedules


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
    shrinks to a two-chunk schedule such as ``[1, steps - 1]``. That tells you more
    than an all-ones schedule would. ``[steps]`` needs no hand-over, so it is
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
    chunks: list[int] = []
    remaining = steps
    for left_after in range(count - 1, 0, -1):
        # Keep the rest splittable: left_after chunks must fit in what this one leaves.
        low = max(min_chunk, remaining - left_after * largest)
        high = min(largest, remaining - left_after * min_chunk)
        chunk = draw(st.integers(low, high))
        chunks.append(chunk)
        remaining -= chunk
    chunks.append(remaining)
    return chunks


# --------------------------------------------------------------------------- token batches


def _token_bounds(vocab_size: int, min_token: int, *, padded: bool) -> tuple[int, int]:
    min_token = _check_int(min_token, "min_token", minimum=1 if padded else 0)
    vocab_size = _check_int(vocab_size, "vocab_size", minimum=1)
    if min_token >= vocab_size:
        raise InvalidArgument(
            f"min_token={min_token} leaves no token id below vocab_size={vocab_size}"
        )
    return vocab_size, min_token


def _token_shapes(
    shape: tuple[int, ...] | SearchStrategy[tuple[int, ...]] | None, min_length: int
) -> SearchStrategy[tuple[int, ...]]:
    if shape is None:
        return _default_shapes(min_length, ())
    if isinstance(shape, SearchStrategy):
        return shape.map(lambda s: _check_shape(s, exact_rank=2))
    fixed = _check_shape(shape, exact_rank=2)
    if fixed[1] < min_length:
        raise InvalidArgument(f"shape={shape!r} has fewer steps than min_length={min_length}")
    return st.just(fixed)


def token_sequences(
    *,
    shape: tuple[int, int] | SearchStrategy[tuple[int, ...]] | None = None,
    vocab_size: int = 16,
    min_token: int = 1,
    dtype: npt.DTypeLike | SearchStrategy[Any] = "int32",
) -> SearchStrategy[npt.NDArray[Any]]:
    """Integer arrays ``(batch, steps)`` of token ids, the input of an ``Embedding`` model.

    Ids lie in ``[min_token, vocab_size - 1]`` and shrink towards ``min_token``. The
    default ``min_token=1`` keeps id 0 free for padding, so these batches contain
    no padding under ``Embedding(mask_zero=True)``. For padded batches use
    :func:`padded_token_sequences`.

    Args:
        shape: Value or strategy. Exactly ``(batch, steps)``. Defaults to
            :func:`sequence_shapes` with ``features=()``.
        vocab_size: The ``input_dim`` of the embedding. Ids stay below it.
        min_token: Smallest id, at least 0.
        dtype: Value or strategy. An integer dtype that can hold ``vocab_size - 1``.
            Defaults to ``int32``.

    Returns:
        A strategy of NumPy integer arrays.

    Raises:
        InvalidArgument: On a bad shape, a non-integer dtype, or ``min_token`` not
            below ``vocab_size``.

    Example:
        ::

            @given(tokens=token_sequences(vocab_size=100))
            def test_embedding_model(tokens):
                assert model(tokens).shape[0] == tokens.shape[0]
    """
    vocab_size, min_token = _token_bounds(vocab_size, min_token, padded=False)
    shapes = _token_shapes(shape, 1)
    dtypes = _value_or_strategy(dtype, lambda d: _check_int_dtype(d, vocab_size))
    return _token_sequences(shapes, dtypes, vocab_size, min_token)


@st.composite
def _token_sequences(
    draw: st.DrawFn,
    shapes: SearchStrategy[tuple[int, ...]],
    dtypes: SearchStrategy[np.dtype[Any]],
    vocab_size: int,
    min_token: int,
) -> npt.NDArray[Any]:
    shape = draw(shapes)
    dtype = draw(dtypes)
    return draw(hnp.arrays(dtype, shape, elements=st.integers(min_token, vocab_size - 1)))


def padded_token_sequences(
    *,
    shape: tuple[int, int] | SearchStrategy[tuple[int, ...]] | None = None,
    vocab_size: int = 16,
    min_token: int = 1,
    dtype: npt.DTypeLike | SearchStrategy[Any] = "int32",
    padding: str | SearchStrategy[str] = "post",
    min_length: int = 1,
    max_length: int | None = None,
) -> SearchStrategy[PaddedSequences]:
    """Padded token batches, with 0 at padded steps, for ``Embedding(mask_zero=True)``.

    Valid steps hold ids in ``[min_token, vocab_size - 1]`` with ``min_token >= 1``.
    So ``result.mask`` is exactly ``tokens != 0``, which is the mask
    ``mask_zero=True`` computes. Lengths and padding sides are drawn as in
    :func:`padded_sequences`. The result's ``value`` is 0.

    Args:
        shape: Value or strategy. Exactly ``(batch, steps)``. Defaults to
            :func:`sequence_shapes` with ``features=()`` and ``min_steps=min_length``.
            A drawn shape whose ``steps`` is below ``min_length`` is rejected.
        vocab_size: The ``input_dim`` of the embedding, id 0 included.
        min_token: Smallest valid id, at least 1.
        dtype: Value or strategy. An integer dtype. Defaults to ``int32``.
        padding: Value or strategy. ``"pre"`` or ``"post"``.
        min_length: Fewest valid steps per sample, at least 1.
        max_length: Most valid steps per sample. Defaults to ``steps``.

    Returns:
        A strategy of :class:`PaddedSequences` with an integer ``x``.

    Raises:
        InvalidArgument: On what :func:`token_sequences` rejects, ``min_token < 1``, a
            padding other than ``"pre"``/``"post"`` or bad length bounds.

    Example:
        ::

            @given(batch=padded_token_sequences(padding="pre", vocab_size=50))
            def test_mask_zero(batch):
                assert (batch.mask == (batch.x != 0)).all()
    """
    vocab_size, min_token = _token_bounds(vocab_size, min_token, padded=True)
    min_length, max_length = _length_bounds(min_length, max_length)
    shapes = _token_shapes(shape, min_length)
    dtypes = _value_or_strategy(dtype, lambda d: _check_int_dtype(d, vocab_size))
    paddings = _value_or_strategy(padding, _check_padding)
    return _padded_token_sequences(
        shapes, dtypes, vocab_size, min_token, paddings, min_length, max_length
    )


@st.composite
def _padded_token_sequences(
    draw: st.DrawFn,
    shapes: SearchStrategy[tuple[int, ...]],
    dtypes: SearchStrategy[np.dtype[Any]],
    vocab_size: int,
    min_token: int,
    paddings: SearchStrategy[Padding],
    min_length: int,
    max_length: int | None,
) -> PaddedSequences:
    shape = draw(shapes)
    dtype = draw(dtypes)
    tokens = np.array(
        draw(hnp.arrays(dtype, shape, elements=st.integers(min_token, vocab_size - 1)))
    )
    side = draw(paddings)
    lengths = _draw_lengths(draw, shape[0], shape[1], min_length, max_length)
    mask = _mask(lengths, shape[1], side)
    tokens[~mask] = 0
    return PaddedSequences(x=tokens, lengths=lengths, mask=mask, padding=side, value=0)


# --------------------------------------------------------------------------- models

_CELLS = ("LSTM", "GRU", "SimpleRNN")
_RECURRENT = frozenset(_CELLS)
_SEQ2SEQ_CELLS = ("LSTM", "GRU")
_MODEL_DTYPES = ("float32", "float64")
_HEAD_ACTIVATIONS = (None, "tanh", "sigmoid", "softmax")
_DROPOUT_RATES = (0.1, 0.25, 0.5)
_DEFAULT_VOCAB = 12
_START_ID = 1
_START_VALUE = -1.0


def _format_arg(value: Any) -> str:
    return repr(value)


@dataclass(frozen=True)
class LayerSpec:
    """One Keras layer, written as the call that makes it: ``LSTM(4, return_sequences=True)``.

    Part of a :class:`SequenceModel`. ``kind`` names a class in ``keras.layers``;
    ``wrapper`` (``"TimeDistributed"`` or ``"Bidirectional"``) wraps it. Weights are
    initialised from seeds, so building the same spec twice gives the same weights.

    Attributes:
        kind: A ``keras.layers`` class name, e.g. ``"GRU"``, ``"Dense"``, ``"Conv1D"``.
        args: Positional arguments of the layer.
        kwargs: Keyword arguments, as ``(name, value)`` pairs in call order.
        wrapper: ``None``, or the ``keras.layers`` wrapper that takes this layer.

    Example:
        ::

            conv = LayerSpec.of("Conv1D", 4, 3, padding="same")
            bad = spec.inserted(0, conv)  # a model that reads one step ahead
    """

    kind: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    wrapper: str | None = None

    @classmethod
    def of(cls, kind: str, *args: Any, wrapper: str | None = None, **kwargs: Any) -> LayerSpec:
        """The spec of ``keras.layers.<kind>(*args, **kwargs)``, optionally wrapped.

        Args:
            kind: A ``keras.layers`` class name.
            *args: Positional arguments of the layer.
            wrapper: ``"TimeDistributed"``, ``"Bidirectional"`` or ``None``.
            **kwargs: Keyword arguments of the layer.

        Returns:
            A frozen :class:`LayerSpec`.

        Example:
            ::

                LayerSpec.of("LSTM", 4, wrapper="Bidirectional", return_sequences=True)
        """
        return cls(kind, tuple(args), tuple(kwargs.items()), wrapper)

    @property
    def options(self) -> dict[str, Any]:
        """The keyword arguments as a dict."""
        return dict(self.kwargs)

    @property
    def recurrent(self) -> bool:
        """True for ``LSTM``, ``GRU`` and ``SimpleRNN`` (wrapped or not)."""
        return self.kind in _RECURRENT

    def replace(self, **kwargs: Any) -> LayerSpec:
        """This spec with some keyword arguments set (or added).

        Example:
            ::

                LayerSpec.of("GRU", 4).replace(go_backwards=True)
        """
        merged = {**self.options, **kwargs}
        return LayerSpec(self.kind, self.args, tuple(merged.items()), self.wrapper)

    def __repr__(self) -> str:
        parts = [_format_arg(a) for a in self.args]
        parts += [f"{k}={_format_arg(v)}" for k, v in self.kwargs]
        text = f"{self.kind}({', '.join(parts)})"
        return f"{self.wrapper}({text})" if self.wrapper else text

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints falsifying examples with this, not with repr().
        printer.text(repr(self))

    def build(self, *, seed: int, dtype: str | None = None, stateful: bool | None = None) -> Any:
        """A new Keras layer with seeded initialisers.

        Args:
            seed: Seed of this layer's initialisers.
            dtype: The layer's dtype policy (``None``: Keras's global policy).
            stateful: For recurrent layers whose spec does not set ``stateful``
                itself: the value to use (``None``: the Keras default).

        Returns:
            The Keras layer (wrapped if the spec says so).

        Example:
            ::

                layer = LayerSpec.of("GRU", 4).build(seed=0, stateful=True)
        """
        import keras

        kwargs = {**_initializers(keras, self.kind, seed), **self.options}
        if self.recurrent and stateful is not None:
            kwargs.setdefault("stateful", stateful)
        if dtype is not None:
            kwargs.setdefault("dtype", dtype)
        layer = getattr(keras.layers, self.kind)(*self.args, **kwargs)
        if self.wrapper is None:
            return layer
        wrap_kwargs = {} if dtype is None else {"dtype": dtype}
        return getattr(keras.layers, self.wrapper)(layer, **wrap_kwargs)


def _initializers(keras: Any, kind: str, seed: int) -> dict[str, Any]:
    """Seeded initialisers for the layers these strategies draw (others keep Keras's)."""
    init = keras.initializers
    glorot = init.GlorotUniform(seed=seed)
    bias = init.RandomUniform(-0.5, 0.5, seed=seed + 1)
    if kind in _RECURRENT:
        return {
            "kernel_initializer": glorot,
            "recurrent_initializer": init.Orthogonal(seed=seed + 2),
            "bias_initializer": bias,
        }
    if kind in ("Dense", "Conv1D"):
        return {"kernel_initializer": glorot, "bias_initializer": bias}
    if kind == "Embedding":
        # Trained embeddings are of order 1; Keras's +-0.05 would hide most differences.
        return {"embeddings_initializer": init.RandomUniform(-1.0, 1.0, seed=seed)}
    return {}


class _KeepGlobalRandom:
    """Python's and numpy's global random state put back after a model is built."""

    def __enter__(self) -> None:
        import random

        self._py = random.getstate()
        self._np = np.random.get_state()

    def __exit__(self, *exc: object) -> None:
        import random

        random.setstate(self._py)
        np.random.set_state(self._np)


@dataclass(frozen=True)
class SequenceModel:
    """A small Keras sequence model, as drawn by :func:`sequence_models`.

    Its repr reads like the model, so a falsifying example shows what failed::

        SequenceModel(features=3, layers=[Masking(mask_value=0.0), LSTM(4, return_sequences=True),
                      Dense(2, activation='tanh')], dtype='float32', seed=0)

    :meth:`build` makes a fresh Keras model with the same weights every time;
    :meth:`inputs` draws inputs that fit it (padded where the model masks).

    Attributes:
        layers: The layers in order, after the input.
        features: Features per step of a float input, or ``None`` for token ids
            (the first layer is then an ``Embedding``).
        dtype: Every layer's dtype policy (``"float32"``, ``"float64"``,
            ``"mixed_float16"``...), or ``None`` for Keras's global policy.
        seed: Seed of the initialisers; layer ``i`` uses ``seed * 1000 + 10 * i``.

    Example:
        ::

            @rnn_settings
            @given(st.data())
            def test_streams(data):
                spec = data.draw(sequence_models())
                model = spec.build()
                x = data.draw(spec.inputs())
                pytest_rnn.assert_stateful_equals_batch(model, x)
    """

    layers: tuple[LayerSpec, ...]
    features: int | None = 3
    dtype: str | None = "float32"
    seed: int = 0

    def __repr__(self) -> str:
        head = "tokens" if self.features is None else f"features={self.features}"
        layers = ", ".join(repr(layer) for layer in self.layers)
        return f"SequenceModel({head}, layers=[{layers}], dtype={self.dtype!r}, seed={self.seed})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints falsifying examples with this, not with repr().
        printer.text(repr(self))

    @property
    def tokens(self) -> bool:
        """True when the model takes token ids ``(batch, steps)``."""
        return self.features is None

    @property
    def vocab_size(self) -> int | None:
        """The first ``Embedding``'s ``input_dim``, or ``None``."""
        for layer in self.layers:
            if layer.kind == "Embedding":
                return int(layer.args[0])
        return None

    @property
    def masked(self) -> bool:
        """True when a ``Masking`` layer or ``Embedding(mask_zero=True)`` masks padded steps."""
        return any(
            layer.kind == "Masking"
            or (layer.kind == "Embedding" and layer.options.get("mask_zero"))
            for layer in self.layers
        )

    @property
    def return_sequences(self) -> bool:
        """True when the output has a time axis (the last recurrent layer returns sequences)."""
        rnns = [layer for layer in self.layers if layer.recurrent]
        return bool(rnns) and bool(rnns[-1].options.get("return_sequences"))

    def replace(self, index: int, layer: LayerSpec) -> SequenceModel:
        """This spec with layer ``index`` replaced by ``layer``."""
        layers = list(self.layers)
        layers[index] = layer
        return SequenceModel(tuple(layers), self.features, self.dtype, self.seed)

    def inserted(self, index: int, layer: LayerSpec) -> SequenceModel:
        """This spec with ``layer`` inserted before layer ``index``.

        Example:
            ::

                leaky = spec.inserted(spec.first_recurrent, LayerSpec.of("Conv1D", 4, 3, padding="same"))
        """
        layers = list(self.layers)
        layers.insert(index, layer)
        return SequenceModel(tuple(layers), self.features, self.dtype, self.seed)

    @property
    def first_recurrent(self) -> int:
        """The index of the first recurrent layer."""
        return next(i for i, layer in enumerate(self.layers) if layer.recurrent)

    def build(
        self, *, batch_size: int | None = None, stateful: bool = False, name: str | None = None
    ) -> Any:
        """A new ``keras.Sequential`` with this spec's layers and seeded weights.

        Building leaves Python's and numpy's global random state as it was.

        Args:
            batch_size: Static batch size of the input (``None``: open). A stateful
                model needs one.
            stateful: ``stateful`` of every recurrent layer that does not set it itself:
                ``build(batch_size=1, stateful=True)`` is a user's streaming copy.
            name: The model's name (default ``"drawn"``, or ``"drawn_stateful"``).

        Returns:
            A built Keras model: ``(batch, steps, features)`` floats or ``(batch, steps)``
            ids in, ``(batch, steps, units)`` or ``(batch, units)`` out.

        Example:
            ::

                model = spec.build()
                stream = spec.build(batch_size=1, stateful=True)  # same weights
        """
        import keras

        if self.tokens:
            shape: tuple[int | None, ...] = (batch_size, None)
            in_dtype = "int32"
        else:
            shape = (batch_size, None, self.features)
            in_dtype = "float64" if self.dtype == "float64" else "float32"
        with _KeepGlobalRandom():
            built = [
                layer.build(seed=self.seed * 1000 + 10 * i, dtype=self.dtype, stateful=stateful)
                for i, layer in enumerate(self.layers)
            ]
            return keras.Sequential(
                [keras.Input(batch_shape=shape, dtype=in_dtype), *built],
                name=name or ("drawn_stateful" if stateful else "drawn"),
            )

    def inputs(
        self,
        *,
        min_batch: int = 1,
        max_batch: int = _DEFAULT_MAX_BATCH,
        min_steps: int = 1,
        max_steps: int = 12,
    ) -> SearchStrategy[npt.NDArray[Any]]:
        """Inputs that fit the model: floats in ``[-1, 1]`` or token ids, padded where it masks.

        A masked model gets ``pre`` or ``post`` padding (pad value 0, at least one
        valid step per sample); floats have the model's dtype (``float32`` under a
        mixed policy).

        Args:
            min_batch: Smallest batch size.
            max_batch: Largest batch size.
            min_steps: Fewest steps.
            max_steps: Most steps.

        Returns:
            A strategy of arrays ``(batch, steps, features)`` or ``(batch, steps)``.

        Raises:
            InvalidArgument: On bad bounds, as :func:`sequence_shapes` raises.

        Example:
            ::

                x = data.draw(spec.inputs(min_steps=3, max_steps=8))
        """
        features: int | tuple[int, ...] = () if self.features is None else self.features
        shapes = sequence_shapes(
            min_batch=min_batch,
            max_batch=max_batch,
            min_steps=min_steps,
            max_steps=max_steps,
            features=features,
        )
        pads = st.sampled_from(["post", "pre"])
        vocab = self.vocab_size or _DEFAULT_VOCAB
        if self.tokens and self.masked:
            return padded_token_sequences(shape=shapes, vocab_size=vocab, padding=pads).map(
                lambda b: b.x
            )
        if self.tokens:
            return token_sequences(shape=shapes, vocab_size=vocab)
        dtype = "float64" if self.dtype == "float64" else "float32"
        if self.masked:
            return padded_sequences(shape=shapes, dtype=dtype, padding=pads).map(lambda b: b.x)
        return sequences(shape=shapes, dtype=dtype)


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


def sequence_models(
    *,
    cells: tuple[str, ...] | list[str] = _CELLS,
    min_layers: int = 1,
    max_layers: int = 2,
    min_units: int = 2,
    max_units: int = 8,
    max_features: int = 4,
    return_sequences: bool | SearchStrategy[bool] | None = None,
    tokens: bool | SearchStrategy[bool] | None = None,
    dtypes: tuple[str, ...] | list[str] = _MODEL_DTYPES,
) -> SearchStrategy[SequenceModel]:
    """Small Keras sequence models of the kinds people build, as readable specs.

    A drawn model has, in order: a float input (optionally ``Masking``) or token
    ids into an ``Embedding`` (``mask_zero`` drawn); optional ``Dropout``; one to
    ``max_layers`` recurrent layers (``cells``; all but the last return
    sequences), each optionally followed by ``LayerNormalization`` over features
    or ``Dropout``; and optionally a head, ``Dense`` or ``TimeDistributed(Dense)``
    (``tanh``, ``sigmoid``, ``softmax`` over at least 2 units, or linear). Every
    such model is correct: it streams, it is causal when it returns sequences.
    Models shrink towards one LSTM on float inputs without extras.

    Args:
        cells: Recurrent layer kinds to draw from: ``"LSTM"``, ``"GRU"``, ``"SimpleRNN"``.
        min_layers: Fewest recurrent layers, at least 1.
        max_layers: Most recurrent layers.
        min_units: Fewest units per recurrent and head layer, at least 1.
        max_units: Most units.
        max_features: Most input features (float inputs) or embedding size.
        return_sequences: Value or strategy. Whether the output has a time axis;
            ``None`` draws both.
        tokens: Value or strategy. Token-id inputs into an ``Embedding``; ``None``
            draws both.
        dtypes: Dtype policies to draw from (``"float32"``, ``"float64"``).

    Returns:
        A strategy of :class:`SequenceModel`; ``.build()`` makes the Keras model,
        ``.inputs()`` draws inputs for it.

    Raises:
        InvalidArgument: On an unknown cell or dtype, a bound below its minimum, or a
            minimum above its maximum.

    Example:
        ::

            @rnn_settings
            @given(st.data())
            def test_streams(data):
                spec = data.draw(sequence_models(cells=["GRU"], return_sequences=True))
                pytest_rnn.assert_model_causal(spec.build(), data.draw(spec.inputs()))
    """
    cell_names = _check_names(cells, "cells", _CELLS)
    dtype_names = _check_names(dtypes, "dtypes", _MODEL_DTYPES)
    layers = _check_bounds(min_layers, max_layers, "min_layers", "max_layers", 1)
    units = _check_bounds(min_units, max_units, "min_units", "max_units", 1)
    features = _check_int(max_features, "max_features", minimum=1)
    sequence = _check_optional_bool(return_sequences, "return_sequences")
    token = _check_optional_bool(tokens, "tokens")
    return _sequence_models(cell_names, dtype_names, layers, units, features, sequence, token)


@st.composite
def _sequence_models(
    draw: st.DrawFn,
    cells: tuple[str, ...],
    dtypes: tuple[str, ...],
    layer_bounds: tuple[int, int],
    unit_bounds: tuple[int, int],
    max_features: int,
    sequence: SearchStrategy[bool],
    token: SearchStrategy[bool],
) -> SequenceModel:
    units = st.integers(*unit_bounds)
    rates = st.sampled_from(_DROPOUT_RATES)
    layers: list[LayerSpec] = []
    tokens = draw(token, label="tokens")
    features: int | None = None
    if tokens:
        vocab = draw(st.integers(4, 16), label="vocab_size")
        embed = draw(st.integers(1, max_features), label="embedding_dim")
        mask_zero = draw(st.booleans(), label="mask_zero")
        layers.append(LayerSpec.of("Embedding", vocab, embed, mask_zero=mask_zero))
    else:
        features = draw(st.integers(1, max_features), label="features")
        if draw(st.booleans(), label="masking"):
            layers.append(LayerSpec.of("Masking", mask_value=0.0))
    if draw(st.booleans(), label="input dropout"):
        layers.append(LayerSpec.of("Dropout", draw(rates)))
    n_rnn = draw(st.integers(*layer_bounds), label="recurrent layers")
    returns = draw(sequence, label="return_sequences")
    for i in range(n_rnn):
        cell = draw(st.sampled_from(cells), label="cell")
        last = i == n_rnn - 1
        width = draw(units)
        layers.append(LayerSpec.of(cell, width, return_sequences=returns or not last))
        extra = draw(st.sampled_from([None, "LayerNormalization", "Dropout"]), label="after")
        if extra == "LayerNormalization" and width > 1:  # one feature normalises to a constant
            layers.append(LayerSpec.of("LayerNormalization"))
        elif extra == "Dropout":
            layers.append(LayerSpec.of("Dropout", draw(rates)))
    head = draw(st.sampled_from([None, "Dense", "TimeDistributed"]), label="head")
    if head == "TimeDistributed" and not returns:
        head = "Dense"
    if head is not None:
        width = draw(units)
        activations = [a for a in _HEAD_ACTIVATIONS if a != "softmax" or width > 1]
        activation = draw(st.sampled_from(activations), label="activation")
        wrapper = "TimeDistributed" if head == "TimeDistributed" else None
        layers.append(LayerSpec.of("Dense", width, wrapper=wrapper, activation=activation))
    dtype = draw(st.sampled_from(dtypes), label="dtype")
    seed = draw(st.integers(0, 2**16), label="seed")
    return SequenceModel(tuple(layers), features, dtype, seed)


# --------------------------------------------------------------------------- encoder-decoder


@dataclass(frozen=True, eq=False)
class Seq2SeqNet:
    """A built encoder-decoder: the teacher-forced model, its tutorial inference pair, its layers.

    ``train`` is ``[encoder_inputs, decoder_inputs] -> outputs (batch, steps, ...)``;
    ``encoder_model`` maps encoder inputs to the encoder's final states and
    ``decoder_step_model`` maps ``[y_prev, *states]`` to ``[y, *states]``, both
    built from ``train``'s own layers (the Keras tutorial form). The layers and
    the encoder's input and state tensors are there to wire other inferences,
    correct or broken, from the same weights.

    Example:
        ::

            net = spec.build()
            pytest_rnn.assert_inference_matches_training(
                net.train, (net.encoder_model, net.decoder_step_model), x, **spec.inference_kwargs
            )
    """

    train: Any
    encoder_model: Any
    decoder_step_model: Any
    encoder_input: Any
    encoder_states: list[Any]
    decoder_embedding: Any
    decoder_rnn: Any
    dense: Any

    @property
    def pair(self) -> tuple[Any, Any]:
        """``(encoder_model, decoder_step_model)``: the inference argument."""
        return self.encoder_model, self.decoder_step_model


@dataclass(frozen=True)
class Seq2SeqModel:
    """An encoder-decoder as drawn by :func:`seq2seq_models`; :meth:`build` makes it.

    Attributes:
        cell: ``"LSTM"`` (states ``h, c``) or ``"GRU"`` (state ``h``).
        units: The latent size of encoder and decoder.
        features: Features per step of float encoder and decoder inputs (the
            decoder's output has as many, fed back unchanged), or ``None`` for
            token ids (``Embedding`` in, ``softmax`` over ``vocab_size`` out, fed
            back by argmax).
        vocab_size: Token vocabulary (token models).
        embedding_dim: Embedding size (token models).
        decoder_steps: Steps of the teacher-forced decoder input.
        activation: Activation of the float decoder's ``Dense`` head.
        dtype: Every layer's dtype policy, or ``None`` for Keras's global one.
        seed: Seed of the initialisers.

    Example:
        ::

            spec = data.draw(seq2seq_models(cells=["GRU"]))
            net = spec.build()
            enc, dec = data.draw(spec.inputs())
    """

    cell: str = "LSTM"
    units: int = 4
    features: int | None = 3
    vocab_size: int = _DEFAULT_VOCAB
    embedding_dim: int = 4
    decoder_steps: int = 4
    activation: str | None = None
    dtype: str | None = "float32"
    seed: int = 0

    def __repr__(self) -> str:
        kind = (
            f"tokens, vocab_size={self.vocab_size}, embedding_dim={self.embedding_dim}"
            if self.tokens
            else f"features={self.features}, activation={self.activation!r}"
        )
        return (
            f"Seq2SeqModel({self.cell}({self.units}), {kind}, "
            f"decoder_steps={self.decoder_steps}, dtype={self.dtype!r}, seed={self.seed})"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # Hypothesis prints falsifying examples with this, not with repr().
        printer.text(repr(self))

    @property
    def tokens(self) -> bool:
        """True for a token model."""
        return self.features is None

    @property
    def start(self) -> float | int:
        """The start value the decoder is fed at step 0: id 1, or -1.0."""
        return _START_ID if self.tokens else _START_VALUE

    @property
    def inference_kwargs(self) -> dict[str, Any]:
        """``start`` and ``feedback`` for :func:`pytest_rnn.assert_inference_matches_training`."""
        if self.tokens:
            return {"start": self.start, "feedback": "argmax"}
        return {"start": self.start}

    def build(self) -> Seq2SeqNet:
        """The teacher-forced model and its tutorial inference pair, sharing their layers.

        Returns:
            A :class:`Seq2SeqNet`. Weights are the same at every build.

        Example:
            ::

                net = spec.build()
                y = net.train([enc, dec])
        """
        import keras

        seed = self.seed * 1000
        cell_spec = LayerSpec.of(self.cell, self.units, return_state=True)
        decoder_spec = cell_spec.replace(return_sequences=True)
        in_dtype = "float64" if self.dtype == "float64" else "float32"
        with _KeepGlobalRandom():
            if self.tokens:
                enc_in = keras.Input((None,), dtype="int32", name="encoder_ids")
                dec_in = keras.Input((self.decoder_steps,), dtype="int32", name="decoder_ids")
                embed = LayerSpec.of("Embedding", self.vocab_size, self.embedding_dim)
                enc_x = embed.build(seed=seed + 1, dtype=self.dtype)(enc_in)
                dec_embed = embed.build(seed=seed + 2, dtype=self.dtype)
                head = LayerSpec.of("Dense", self.vocab_size, activation="softmax")
            else:
                assert self.features is not None
                enc_in = keras.Input((None, self.features), dtype=in_dtype, name="encoder_x")
                dec_in = keras.Input(
                    (self.decoder_steps, self.features), dtype=in_dtype, name="decoder_x"
                )
                enc_x, dec_embed = enc_in, None
                head = LayerSpec.of("Dense", self.features, activation=self.activation)
            encoder = cell_spec.build(seed=seed + 3, dtype=self.dtype)
            _, *states = encoder(enc_x)
            decoder = decoder_spec.build(seed=seed + 4, dtype=self.dtype)
            dense = head.build(seed=seed + 5, dtype=self.dtype)
            dec_x = dec_embed(dec_in) if dec_embed is not None else dec_in
            seq, *_ = decoder(dec_x, initial_state=states)
            train = keras.Model([enc_in, dec_in], dense(seq), name=f"train_{self.cell.lower()}")

            encoder_model = keras.Model(
                enc_in, states if len(states) > 1 else states[0], name="encoder_model"
            )
            if self.tokens:
                y_prev = keras.Input((1,), dtype="int32", name="y_prev")
                step_x = dec_embed(y_prev)
            else:
                y_prev = keras.Input((1, self.features), dtype=in_dtype, name="y_prev")
                step_x = y_prev
            state_in = [
                keras.Input((self.units,), dtype=in_dtype, name=f"state_{i}")
                for i in range(len(states))
            ]
            out, *new_states = decoder(step_x, initial_state=state_in)
            step_model = keras.Model(
                [y_prev, *state_in], [dense(out), *new_states], name="decoder_step"
            )
        return Seq2SeqNet(
            train, encoder_model, step_model, enc_in, list(states), dec_embed, decoder, dense
        )

    def inputs(
        self,
        *,
        min_batch: int = 1,
        max_batch: int = _DEFAULT_MAX_BATCH,
        min_steps: int = 1,
        max_steps: int = 8,
    ) -> SearchStrategy[tuple[npt.NDArray[Any], npt.NDArray[Any]]]:
        """``(encoder_inputs, decoder_inputs)`` for one batch; the decoder's start at step 0.

        Args:
            min_batch: Smallest batch size.
            max_batch: Largest batch size.
            min_steps: Fewest encoder steps.
            max_steps: Most encoder steps.

        Returns:
            A strategy of pairs of arrays with the same batch size.

        Example:
            ::

                enc, dec = data.draw(spec.inputs(max_batch=3))
        """
        shapes = sequence_shapes(
            min_batch=min_batch,
            max_batch=max_batch,
            min_steps=min_steps,
            max_steps=max_steps,
            features=() if self.features is None else self.features,
        )
        return _seq2seq_inputs(self, shapes)


@st.composite
def _seq2seq_inputs(
    draw: st.DrawFn, spec: Seq2SeqModel, shapes: SearchStrategy[tuple[int, ...]]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    shape = draw(shapes)
    batch = shape[0]
    if spec.tokens:
        enc = draw(token_sequences(shape=(batch, shape[1]), vocab_size=spec.vocab_size))
        dec = np.array(
            draw(token_sequences(shape=(batch, spec.decoder_steps), vocab_size=spec.vocab_size))
        )
        dec[:, 0] = _START_ID
        return enc, dec
    dtype = "float64" if spec.dtype == "float64" else "float32"
    assert spec.features is not None
    enc = draw(sequences(shape=shape, dtype=dtype))
    dec = np.array(draw(sequences(shape=(batch, spec.decoder_steps, spec.features), dtype=dtype)))
    dec[:, 0] = _START_VALUE
    return enc, dec


def seq2seq_models(
    *,
    cells: tuple[str, ...] | list[str] = _SEQ2SEQ_CELLS,
    min_units: int = 2,
    max_units: int = 8,
    max_features: int = 4,
    min_decoder_steps: int = 1,
    max_decoder_steps: int = 6,
    tokens: bool | SearchStrategy[bool] | None = None,
    dtypes: tuple[str, ...] | list[str] = _MODEL_DTYPES,
) -> SearchStrategy[Seq2SeqModel]:
    """Encoder-decoder models in the Keras tutorial form, for the seq2seq assertion.

    The encoder's final states start the decoder; the decoder is teacher-forced
    in ``train`` and stepped one output at a time by the tutorial's
    ``(encoder_model, decoder_step_model)`` pair built from the same layers.
    Float models feed their output back unchanged; token models feed back its
    argmax. Every drawn pair is correctly wired.

    Args:
        cells: Recurrent layer kinds to draw from: ``"LSTM"``, ``"GRU"``.
        min_units: Smallest latent size, at least 1.
        max_units: Largest latent size.
        max_features: Most float features per step, or the largest embedding size.
        min_decoder_steps: Fewest decoder steps, at least 1.
        max_decoder_steps: Most decoder steps.
        tokens: Value or strategy. Token models; ``None`` draws both.
        dtypes: Dtype policies to draw from (``"float32"``, ``"float64"``).

    Returns:
        A strategy of :class:`Seq2SeqModel`.

    Raises:
        InvalidArgument: On an unknown cell or dtype, or bad bounds.

    Example:
        ::

            @rnn_settings
            @given(st.data())
            def test_inference(data):
                spec = data.draw(seq2seq_models())
                net = spec.build()
                enc, dec = data.draw(spec.inputs())
                pytest_rnn.assert_inference_matches_training(
                    net.train, net.pair, enc, decoder_inputs=dec, **spec.inference_kwargs
                )
    """
    cell_names = _check_names(cells, "cells", _SEQ2SEQ_CELLS)
    dtype_names = _check_names(dtypes, "dtypes", _MODEL_DTYPES)
    units = _check_bounds(min_units, max_units, "min_units", "max_units", 1)
    features = _check_int(max_features, "max_features", minimum=1)
    steps = _check_bounds(
        min_decoder_steps, max_decoder_steps, "min_decoder_steps", "max_decoder_steps", 1
    )
    token = _check_optional_bool(tokens, "tokens")
    return st.builds(
        Seq2SeqModel,
        cell=st.sampled_from(cell_names),
        units=st.integers(*units),
        # Both branches draw the same choices, so shrinking reaches float inputs.
        features=st.tuples(token, st.integers(1, features)).map(lambda p: None if p[0] else p[1]),
        vocab_size=st.integers(4, 16),
        embedding_dim=st.integers(1, features),
        decoder_steps=st.integers(*steps),
        activation=st.sampled_from([None, "tanh"]),
        dtype=st.sampled_from(dtype_names),
        seed=st.integers(0, 2**16),
    )
