"""Token-id batches: ``token_sequences`` and ``padded_token_sequences``.

Integer arrays ``(batch, steps)`` for models that start with an ``Embedding``;
the padded form uses id 0 at padded steps, so its mask is the one
``Embedding(mask_zero=True)`` computes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp
from hypothesis.strategies import SearchStrategy

from pytest_rnn.strategies._checks import (
    Padding,
    _check_int,
    _check_int_dtype,
    _check_padding,
    _check_shape,
    _length_bounds,
    _value_or_strategy,
)
from pytest_rnn.strategies._shapes import PaddedSequences, _default_shapes, _draw_lengths, _mask


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
