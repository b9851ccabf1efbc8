"""Batch shapes and padding layouts: ``sequence_shapes`` and ``PaddedSequences``.

:func:`sequence_shapes` draws ``(batch, steps, *features)``;
:class:`PaddedSequences` is the padded batch that the float and token padding
strategies return, and the helpers here draw its per-sample lengths and build
its mask for ``"pre"`` or ``"post"`` padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import reject
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_rnn.strategies._checks import (
    _DEFAULT_MAX_BATCH,
    _DEFAULT_MAX_STEPS,
    Padding,
    _check_features,
    _check_int,
    _check_order,
    _value_or_strategy,
)


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
