"""What the streaming family's every-step copy asks of the one table of :mod:`.timing`."""

from __future__ import annotations

from typing import Any

from pytest_rnn._keras.timing import timing

__all__ = ["acts_per_step", "reads_past_only"]


def acts_per_step(layer: Any) -> bool:
    """Whether ``layer`` acts on each step alone, by the every-step table (``_PER_STEP``)."""
    t = timing(layer)
    return t is not None and t.per_step


def reads_past_only(layer: Any, *, last: bool) -> bool:
    """Whether ``layer`` is a stateless, forward stock RNN whose every-step copy is its output.

    Args:
        layer: a top-level layer of a Sequential.
        last: it is the model's last RNN, so it must return the last step only
            (every earlier RNN must return every step).
    """
    t = timing(layer)
    return (
        t is not None
        and t.kind == "recurrent"
        and t.stock
        and not t.stateful
        and t.sequences != last
    )
