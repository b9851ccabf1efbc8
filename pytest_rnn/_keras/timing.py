"""Layers whose output at a step reads other steps than that step and the past.

The one table of such layers. Its renderers give the wording each family
pins: :func:`stream_reason` for streaming.
"""

from __future__ import annotations

import contextlib
from typing import Any

from pytest_rnn._keras.layers import keras_module

__all__ = ["time_hazard"]


def time_hazard(layer: Any, *, streaming: bool) -> str | None:
    """Why ``layer`` makes an output depend on other steps than the past, or ``None``.

    With ``streaming=True`` also layers that read only the past but need more
    than the chunk in hand (causal convolution without a buffer, attention
    without a cache) are named.
    """
    keras = keras_module()
    L = keras.layers
    if isinstance(layer, L.Bidirectional):
        return "Bidirectional reads the sequence backwards too: every step depends on the whole sequence"
    if isinstance(layer, L.RNN) and getattr(layer, "go_backwards", False):
        return "go_backwards=True runs from the last step: every output depends on later steps"
    if isinstance(layer, L.TimeDistributed):
        return None
    cfg: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        cfg = layer.get_config()
    if isinstance(layer, L.Conv1D) or (type(layer).__name__.startswith("Conv1D")):
        k = cfg.get("kernel_size", (1,))
        d = cfg.get("dilation_rate", (1,))
        k = k[0] if isinstance(k, (list, tuple)) else k
        d = d[0] if isinstance(d, (list, tuple)) else d
        reach = (int(k) - 1) * int(d)
        padding = cfg.get("padding")
        if reach == 0:
            return None
        if padding == "same":
            return f"Conv1D padding='same' reads {reach // 2 + reach % 2} future step(s)"
        if padding == "valid":
            return f"Conv1D padding='valid' reads {reach} future step(s) and shortens the sequence"
        if padding == "causal" and streaming:
            return (
                f"Conv1D padding='causal' needs the previous {reach} step(s), which a streamed "
                "chunk does not carry (no streaming buffer)"
            )
        return None
    name = type(layer).__name__
    if name in ("MultiHeadAttention", "Attention", "AdditiveAttention", "GroupedQueryAttention"):
        if streaming:
            return f"{name} attends over its whole input; a streamed chunk sees only itself"
        return f"{name} attends over every step unless called with use_causal_mask=True"
    if isinstance(layer, L.LayerNormalization):
        axis = cfg.get("axis", -1)
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        ndim = (
            len(layer.input.shape)
            if hasattr(layer, "_inbound_nodes") and layer._inbound_nodes
            else 3
        )
        if any(a % ndim == 1 for a in axes):
            return f"LayerNormalization(axis={axis}) normalises over the time axis: every step depends on the whole sequence"
        return None
    if name.startswith(("GlobalAveragePooling1D", "GlobalMaxPooling1D", "Flatten")):
        return f"{name} mixes every step of the sequence"
    if name in ("MaxPooling1D", "AveragePooling1D"):
        return f"{name} pools neighbouring steps together"
    return None
