"""What the incremental check reads from its arguments before it calls anything.

:func:`check_function` refuses a ``step``, ``full`` or ``init`` that cannot be
called; :func:`check_inputs` is the family's check of ``x`` (the core
validator with this family's sentences); :func:`check_valid` reads the
``valid`` mask. :func:`name_of` is how messages name the user's functions.
Nothing here imports the rest of the package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.validate import Batch, sequences

__all__ = ["SIGNATURES", "check_function", "check_inputs", "check_valid", "name_of"]

#: How each function is called, as messages show it.
SIGNATURES = {
    "step": "step(x_chunk, state, start) -> (y_chunk, state)",
    "full": "full(x) -> y",
    "init": "init(x) -> state",
}

#: What a message adds for a value passed where its function was expected.
_VALUE_HINTS = {
    "step": "",
    "full": "; pass the function that computes the outputs, not the outputs themselves",
    "init": (
        "; to start from a fixed state s, pass init=lambda x: s (init=None starts from a "
        "state of None)"
    ),
}


def check_function(fn: Any, arg: str) -> None:
    """``fn`` can be called; else a TypeError naming ``arg`` and how it is called.

    Raises:
        TypeError: ``fn`` is not callable.
    """
    if callable(fn):
        return
    raise TypeError(
        f"{arg} must be a function {SIGNATURES[arg]}, got {type(fn).__name__}{_VALUE_HINTS[arg]}"
    )


def check_inputs(x: Any) -> Batch:
    """``x`` checked as the sequences ``full`` and ``step`` take (the core validator).

    Raises:
        TypeError, ValueError: as :func:`~pytest_rnn._core.validate.sequences`.
    """
    return sequences(
        x,
        finite="{name} holds NaN or inf: incremental and full outputs cannot be compared",
        empty="{arg} has 0 {what}: there is nothing to run step by step",
        not_array="{arg} must be an array (batch, steps, features...) or a list/dict of them, "
        "got {kind}",
    )


def check_valid(valid: Any, inputs: Batch) -> np.ndarray | None:
    """The ``(batch, steps)`` boolean mask of the positions to compare, or ``None`` for all.

    Any array type is accepted (numpy, a framework tensor, nested lists) as
    long as it holds booleans.

    Raises:
        TypeError: ``valid`` cannot be read as an array or is not boolean.
        ValueError: ``valid`` is not ``(batch, steps)`` or leaves no position to compare.
    """
    if valid is None:
        return None
    try:
        mask = np.asarray(K.to_numpy(valid))
    except Exception as exc:  # ragged lists, objects no library reads as an array
        raise TypeError(f"valid cannot be read as an array: {exc}") from exc
    want = (inputs.batch, inputs.steps)
    if mask.dtype != np.bool_:
        hint = " (a 0/1 mask: pass valid=mask.astype(bool))" if mask.dtype.kind in "iuf" else ""
        raise TypeError(
            f"valid must be a boolean mask (batch, steps) of the positions to compare, "
            f"got dtype {mask.dtype}{hint}"
        )
    if mask.shape != want:
        raise ValueError(
            f"valid has shape {mask.shape}, but it must be (batch, steps) = {want} like x: "
            "one flag per sample and step, True where the outputs are compared"
        )
    if not mask.any():
        raise ValueError("valid is False everywhere: no position would be compared")
    return mask


def name_of(fn: Any) -> str:
    """How a message names the user's function: its ``__name__``, a model's name, or its type."""
    name = fn.name if K.is_model(fn) else getattr(fn, "__name__", None)
    return name if isinstance(name, str) else type(fn).__name__
