"""Which series positions a windowing function copies: one call per tag series, no perturbation.

Plain windowing (numpy slicing, ``keras.utils.timeseries_dataset_from_array``)
only copies series values into its outputs. Called on a *tag series*, a
series of the same shape whose every element is distinct, each output
element then names the element it was copied from. :func:`tag_series` draws
a few such series; :func:`copied_from` reads the copies and accepts them only
when every tag agrees on every element (an element that is the same in every
output is a constant). Anything that computes (a difference, a normalisation,
a maximum whose position depends on the values) fails that agreement, and the
caller measures dependence by perturbation instead.
"""

from __future__ import annotations

import numpy as np

__all__ = ["copied_from", "dependence", "tag_series"]


def tag_series(rng: np.random.Generator, series: np.ndarray, count: int) -> list[np.ndarray] | None:
    """``count`` series shaped like ``series`` with all elements distinct, or None where none exist.

    Each element is drawn uniformly within its column's range in ``series``
    (so the values stay in the domain the windowing expects); floating
    series only, as integers cannot be made distinct in a narrow range.
    """
    if series.dtype.kind != "f":
        return None
    rows = series.reshape(series.shape[0], -1).astype(np.float64)
    low, high = rows.min(axis=0), rows.max(axis=0)
    span = np.where(high > low, high - low, np.maximum(np.abs(low), 1.0))
    tags = []
    for _ in range(count):
        tag = (low + span * rng.random(rows.shape)).astype(series.dtype)
        if np.unique(tag).size != tag.size:
            return None
        tags.append(tag.reshape(series.shape))
    return tags


def copied_from(
    tags: list[np.ndarray],
    outputs: list[list[np.ndarray]],
    series: np.ndarray,
    output: list[np.ndarray],
) -> list[np.ndarray] | None:
    """Per output leaf, the flat series index each element copies (-1: a constant), or None.

    ``outputs[i]`` are the output leaves for ``tags[i]``; ``output`` those for
    ``series`` itself, which must agree with the same copies. None unless
    every element of every leaf is a copy of one and the same series element
    under every tag, or the same value under every tag and ``series``.
    """
    found = []
    for k, leaf in enumerate(output):
        index: np.ndarray | None = None
        for tag, outs in zip(tags, outputs):
            values = outs[k].ravel()
            if outs[k].dtype.kind != "f":
                index = np.full(values.shape, -2)
                break
            flat = tag.astype(outs[k].dtype).ravel()
            order = np.argsort(flat, kind="stable")
            ordered = flat[order]
            at = np.minimum(np.searchsorted(ordered, values), ordered.size - 1)
            here = np.where(ordered[at] == values, order[at], -1)
            index = here if index is None else np.where(index == here, index, -2)
        assert index is not None
        constant = np.ones(index.shape, dtype=bool)
        for outs in [*outputs[1:], output]:
            constant &= _same(outs[k].ravel(), outputs[0][k].ravel())
        copied = index >= 0
        if not (copied | constant).all():
            return None
        base = series.astype(leaf.dtype).ravel()
        if not (leaf.ravel()[copied] == base[index[copied]]).all():
            return None
        found.append(np.where(copied, index, -1))
    return found


def dependence(index: list[np.ndarray], windows: int, shape: tuple[int, ...]) -> np.ndarray:
    """``(windows, length)``: the positions of a ``shape`` series each window's copies come from."""
    length, row = shape[0], int(np.prod(shape[1:], dtype=np.int64))
    dep = np.zeros((windows, length), dtype=bool)
    for per_leaf in index:
        flat = per_leaf.reshape(windows, -1)
        rows, cols = np.nonzero(flat >= 0)
        dep[rows, flat[rows, cols] // row] = True
    return dep


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise equality, NaN equal to NaN."""
    return (a == b) | (np.isnan(a) & np.isnan(b)) if a.dtype.kind == "f" else a == b
