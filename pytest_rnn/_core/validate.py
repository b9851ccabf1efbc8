"""The one input validator and the argument checks every assertion shares.

Pure numpy. :func:`sequences` checks an ``x`` of ``(batch, steps,
features...)`` arrays (one array, or a list, tuple or dict of them) and gives
a :class:`Batch`; :func:`numeric`, :func:`check_int`, :func:`check_seed` and
:func:`check_tolerances` check one value each. Every error is a TypeError or a
ValueError whose message starts with the argument's name. Whether ``x`` fits
a model's inputs is the adapter's question (``_keras.check_input_shapes``).

Where two families pin different sentences for the same fault (NaN in ``x``,
an ``x`` without steps), the caller passes its sentence in as a template;
unifying them is a later, deliberate message change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _config
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import tree as _tree

__all__ = ["Batch", "check_int", "check_seed", "check_tolerances", "numeric", "sequences"]

#: Seeds Keras's ``set_random_seed`` takes: ``0 <= seed < SEED_LIMIT``.
SEED_LIMIT = 2**32


@dataclass(frozen=True, eq=False)
class Batch:
    """Validated sequences: numpy leaves ``(batch, steps, ...)`` that share batch and steps.

    Attributes:
        tree: the user's structure (an array, or a list, tuple or dict of them)
            with numpy leaves; dicts keep their own key order.
        leaves: its leaves in :func:`~pytest_rnn._core.tree.flatten` order
            (dict keys sorted).
        paths: each leaf's item path (``""``, ``[1]``, ``['a']``), as messages name it.
        batch: the number of samples, axis 0 of every leaf.
        steps: the number of time steps, axis 1 of every leaf.
    """

    tree: Any
    leaves: list[np.ndarray]
    paths: list[str]
    batch: int
    steps: int

    def map(self, fn: Callable[[np.ndarray], Any]) -> Batch:
        """``fn`` applied to every leaf; batch and steps are read again from the result."""
        leaves = [np.asarray(fn(leaf)) for leaf in self.leaves]
        batch, steps = leaves[0].shape[:2]
        return Batch(_tree.rebuild(self.tree, leaves), leaves, self.paths, int(batch), int(steps))

    def steps_slice(self, start: int, end: int) -> Batch:
        """Steps ``start`` to ``end`` (exclusive) of every sample: a chunk."""
        return self.map(lambda a: a[:, start:end])

    def samples(self, index: Any) -> Batch:
        """The samples ``index`` (a slice or an index array) picks, every step."""
        return self.map(lambda a: a[index])

    def per_copy(self) -> int:
        """Elements in one copy of the batch (all leaves), at least 1: sizes stacked calls."""
        return max(1, sum(int(leaf.size) for leaf in self.leaves))


def numeric(arr: np.ndarray, name: str, message: str) -> None:
    """``arr`` holds numbers or booleans, all finite; else an error naming ``name``.

    Args:
        arr: the array to check.
        name: how messages name it (``x``, ``x['a']``, ``series``).
        message: the family's sentence for NaN or infinity, a template with
            ``{name}`` and ``{index}`` (the first bad element), e.g.
            ``"{name} holds NaN or inf: streamed and full outputs cannot be compared"``.

    Raises:
        TypeError: the dtype is not boolean, integer or floating point.
        ValueError: a floating-point element is NaN or infinite.
    """
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers or booleans, got dtype {arr.dtype}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(message.format(name=name, index=index))


def sequences(
    x: Any,
    arg: str = "x",
    *,
    finite: str,
    empty: str,
    not_array: str | None = None,
) -> Batch:
    """Check ``x``: arrays ``(batch, steps, features...)``, alone or in a list/tuple/dict.

    Every leaf must be numeric (:func:`numeric`), have a time axis (2 dims or
    more) and share batch and steps with the others; neither may be 0.

    Args:
        x: the user's inputs.
        arg: the argument's name in messages.
        finite: the family's NaN sentence, a template for :func:`numeric`.
        empty: the family's sentence for 0 steps or 0 samples, a template with
            ``{arg}``, ``{what}`` (``"steps"`` or ``"samples"``) and ``{shape}``
            (the first leaf's), e.g. ``"{arg} has 0 {what}: there is nothing to stream"``.
        not_array: the family's sentence (a template with ``{arg}`` and
            ``{kind}``, the type's name) for an ``x`` that is ``None``, a string
            or a plain number, refused as a TypeError; ``None`` reads such an
            ``x`` as an array without a time axis (a ValueError).

    Returns:
        The :class:`Batch`: ``x`` with numpy leaves.

    Raises:
        TypeError: ``x`` is a function (or, with ``not_array``, not an array at
            all), or a leaf is not numeric or cannot be read as an array.
        ValueError: ``x`` is empty, a leaf has fewer than 2 dims or is not
            finite, the leaves disagree on batch or steps, or either is 0.
    """
    if callable(x) and not isinstance(x, np.ndarray):
        raise TypeError(f"{arg} must be an array (batch, steps, features...), got a function")
    if not_array is not None and (x is None or isinstance(x, (str, bytes, int, float))):
        raise TypeError(not_array.format(arg=arg, kind=type(x).__name__))
    flat = _tree.flatten(x)
    if not flat:
        raise ValueError(f"{arg} is empty: pass an array (batch, steps, features...)")
    leaves: list[np.ndarray] = []
    for path, leaf in flat:
        name = f"{arg}{path}"
        try:
            arr = np.asarray(leaf)
        except Exception as exc:  # ragged lists, objects numpy cannot read
            raise TypeError(f"{name} cannot be read as an array: {exc}") from exc
        if arr.ndim < 2:
            raise ValueError(
                f"{name} must be an array (batch, steps, features...) with a time axis, "
                f"got shape {arr.shape}"
            )
        numeric(arr, name, finite)
        leaves.append(arr)
    paths = [path for path, _ in flat]
    batch, steps = leaves[0].shape[:2]
    for path, arr in zip(paths, leaves):
        if arr.shape[:2] != (batch, steps):
            raise ValueError(
                f"all inputs in {arg} must share batch and steps: {arg}{path} has "
                f"{arr.shape[:2]}, {arg}{paths[0]} has {(batch, steps)}"
            )
    for what, size in (("steps", steps), ("samples", batch)):
        if size == 0:
            raise ValueError(empty.format(arg=arg, what=what, shape=leaves[0].shape))
    tree = _tree.rebuild(x, leaves)
    return Batch(tree, leaves, paths, int(batch), int(steps))


def check_int(value: Any, arg: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum`` (booleans refused); else an error naming ``arg``.

    Raises:
        TypeError: ``value`` is not an int (a bool, a float, a string).
        ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{arg} must be >= {minimum}, got {value}")
    return int(value)


def check_seed(seed: Any, arg: str = "seed") -> int:
    """The seed an assertion draws from: ``seed``, or the session's for ``None``.

    ``None`` means the session's ``--rnn-seed`` (0 unless set). An int must lie
    in ``[0, 2**32)``, the seeds Keras's ``set_random_seed`` takes.

    Raises:
        TypeError: ``seed`` is not an int or ``None`` (a bool, a float, a string).
        ValueError: ``seed`` (or the session's seed) is outside ``[0, 2**32)``.
    """
    if seed is None:
        session = int(_config.settings.seed)
        if not 0 <= session < SEED_LIMIT:
            raise ValueError(
                f"{arg}=None takes the session's --rnn-seed (ini rnn_seed), which must be "
                f"in [0, 2**32), got {session}"
            )
        return session
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{arg} must be an int, got {type(seed).__name__}")
    if not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{arg} must be in [0, 2**32), got {seed}")
    return int(seed)


def check_tolerances(rtol: Any, atol: Any) -> None:
    """Check ``rtol`` and ``atol`` before anything runs: both or neither, finite, ``>= 0``.

    The rule is :func:`~pytest_rnn._core.compare.resolve_tolerance`'s; the
    tolerance itself is resolved later, per output dtype.

    Raises:
        ValueError: only one is given, or one is negative or not finite.
        TypeError: one is not a real number.
    """
    _compare.resolve_tolerance(rtol, atol, "float32")
