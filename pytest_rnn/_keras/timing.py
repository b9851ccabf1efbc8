"""Layers whose output at a step reads other steps than that step and the past.

:func:`timing` is the one table of them: the only code that reads a layer's
class and configuration to say which steps it reads. The renderers give the
wording each family pins: :func:`stream_reason` for streaming,
:func:`causal_reason` for causality; :func:`suspects` walks a model for the
layers a renderer names. The streaming family's every-step copy asks the
table through :mod:`.everystep`.

Today's three tables disagree in places (ARCHITECTURE 2.1b). A :class:`Timing`
keeps each table's answer (``streams``, ``causal``, ``per_step``), so every
family keeps its verdict until they are reconciled on purpose;
``tests/test_timing.py`` lists each disagreement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from pytest_rnn._core.text import plural
from pytest_rnn._keras.layers import iter_layers, keras_module

__all__ = [
    "Suspect",
    "Timing",
    "causal_reason",
    "stream_reason",
    "suspects",
    "time_stride",
    "timing",
]

#: Layers that act on each step alone (training=False) when they normalise
#: the feature axis only: their output at step t reads only the input at step t.
_PER_STEP = (
    "Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "AlphaDropout",
    "GaussianNoise", "GaussianDropout", "ActivityRegularization", "Identity",
    "BatchNormalization", "LayerNormalization",
)  # fmt: skip

#: Attention layers: every step attends to every other unless a mask says otherwise.
_ATTENTION = ("MultiHeadAttention", "Attention", "AdditiveAttention", "GroupedQueryAttention")

#: The convolutions the causality table knows, by exact class name.
_CAUSAL_CONVS = ("Conv1D", "SeparableConv1D", "DepthwiseConv1D")

#: Convolutions over (time, space...): the first spatial axis of a sequence input is time
#: (ConvLSTM next-frame heads, spectrogram front ends). Both tables name them.
_SPATIAL_CONVS = (
    "Conv2D", "Conv3D", "SeparableConv2D", "DepthwiseConv2D", "Conv2DTranspose", "Conv3DTranspose",
)  # fmt: skip

#: A renderer: ``(layer, nodes) -> why it reads other steps``, or ``None``.
Reason = Callable[[Any, Sequence[Any]], str | None]


@dataclass(frozen=True)
class Timing:
    """Which steps a layer's output at step t reads, as today's tables see it.

    Attributes:
        kind: what it reads, by the widest of the tables: ``"bidirectional"``
            and ``"backwards"`` (later steps, from the last one), ``"future"``
            (``steps`` later steps), ``"buffer"`` (``steps`` earlier steps: more
            than a streamed chunk holds), ``"attention"`` (every step),
            ``"time-normalisation"``, ``"pooling"`` (neighbouring steps),
            ``"global"`` (every step, into one), ``"repeat"`` (one vector over
            ``steps`` new steps: RepeatVector), ``"per-step"`` (its own step),
            ``"recurrent"`` (every earlier step, through its state) or
            ``"nested"`` (a model: what its layers read).
        layer: the class name, as the causality messages print it.
        steps: how many other steps it reads, when known.
        padding: a convolution's or pooling's ``padding``.
        axis: a normalisation's ``axis``, as its config spells it.
        streams: the streaming table names it (:func:`stream_reason`).
        causal: the causality table names it (:func:`causal_reason`).
        per_step: the every-step table counts it as acting on each step alone
            (:func:`acts_per_step`).
        nested: a Keras model; the causality table names what it holds.
        sequences: a recurrent layer's ``return_sequences``.
        stateful: a recurrent layer's ``stateful``.
        stock: exactly Keras's LSTM, GRU or SimpleRNN, without ``return_state``.
        stride: input steps per output step along time (a convolution's or
            pooling's first ``strides``): its output step t covers input steps
            ``stride * t`` .. ``stride * (t + 1) - 1``.
        spatial: a 2-D or 3-D convolution (channels last), whose first spatial
            axis is the sequence's time axis.
    """

    kind: str
    layer: str
    steps: int | None = None
    padding: str | None = None
    axis: Any = None
    streams: bool = False
    causal: bool = False
    per_step: bool = False
    nested: bool = False
    sequences: bool = False
    stateful: bool = False
    stock: bool = False
    stride: int = 1
    spatial: bool = False


class Suspect(NamedTuple):
    """A layer a renderer names: where it sits, the layer, and why."""

    path: str
    layer: Any
    reason: str


def timing(layer: Any, nodes: Sequence[Any] = ()) -> Timing | None:
    """Which steps ``layer`` reads, or ``None`` where no table knows the layer.

    Args:
        layer: a Keras layer or model.
        nodes: Keras nodes of the layer's calls. Attention called with
            ``use_causal_mask=True`` or an ``attention_mask`` in any of them is
            left to measurement by the causality table (``causal=False``).
    """
    keras = keras_module()
    L = keras.layers
    name = type(layer).__name__
    if isinstance(layer, L.Bidirectional):
        return Timing("bidirectional", name, streams=True, causal=True)
    if isinstance(layer, L.RNN) and getattr(layer, "go_backwards", False):
        return Timing("backwards", name, streams=True, causal=True)
    if isinstance(layer, L.TimeDistributed):
        return Timing("per-step", name)  # its inner layer works within one step
    if isinstance(layer, L.RNN):  # its attributes: its config serializes the whole cell
        return Timing(
            "recurrent",
            name,
            sequences=bool(layer.return_sequences),
            stateful=bool(layer.stateful),
            stock=type(layer) in (L.LSTM, L.GRU, L.SimpleRNN) and not layer.return_state,
        )
    cfg: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        cfg = layer.get_config()
    nested = isinstance(layer, keras.Model)
    stream_conv = isinstance(layer, L.Conv1D) or name.startswith("Conv1D")
    if stream_conv or name in _CAUSAL_CONVS:
        return _conv(name, cfg, streams=stream_conv, causal=name in _CAUSAL_CONVS, nested=nested)
    if name in _SPATIAL_CONVS and cfg.get("data_format", "channels_last") == "channels_last":
        return _conv(name, cfg, streams=True, causal=True, nested=nested, spatial=True)
    if name in _ATTENTION:
        masked = any(_masked(node) for node in nodes)
        return Timing("attention", name, streams=True, causal=not masked)
    axis = cfg.get("axis", -1)
    per_step = name in _PER_STEP and axis in (-1, [-1], (-1,))
    layer_norm = isinstance(layer, L.LayerNormalization)
    other_norm = "Normalization" in name and name != "BatchNormalization"
    if layer_norm or other_norm:
        axes = axis if isinstance(axis, (list, tuple)) else [axis]
        streams = layer_norm and any(a % _ndim(layer) == 1 for a in axes)
        causal = other_norm and (1 in axes or -2 in axes)
        if streams or causal:
            return Timing(
                "time-normalisation",
                name,
                axis=axis,
                streams=streams,
                causal=causal,
                per_step=per_step,
                nested=nested,
            )
    if name.startswith(("GlobalAveragePooling1D", "GlobalMaxPooling1D", "Flatten")):
        return Timing("global", name, streams=True, nested=nested)
    if name == "RepeatVector":  # one vector (an encoder's last step) over n new steps
        return Timing("repeat", name, steps=cfg.get("n"), streams=True, nested=nested)
    if name in ("MaxPooling1D", "AveragePooling1D"):
        padding = cfg.get("padding")
        return Timing(
            "pooling",
            name,
            padding=padding,
            streams=True,
            causal=padding == "same",
            nested=nested,
            stride=_first(cfg.get("strides") or cfg.get("pool_size", 1)),
        )
    if per_step:
        return Timing("per-step", name, axis=cfg.get("axis"), per_step=True)
    if nested:
        return Timing("nested", name, nested=True)
    return None


def _first(value: Any) -> int:
    """The time axis's entry of a per-axis setting (an int, or a list/tuple of them)."""
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def _conv(
    name: str,
    cfg: dict[str, Any],
    *,
    streams: bool,
    causal: bool,
    nested: bool,
    spatial: bool = False,
) -> Timing | None:
    """A convolution's timing along its first axis: ``dilation * (kernel - 1)`` steps past its first."""
    reach = _first(cfg.get("dilation_rate", 1)) * (_first(cfg.get("kernel_size", 1)) - 1)
    padding = cfg.get("padding")
    stride = _first(cfg.get("strides", 1))
    if reach == 0:
        return Timing("per-step", name, 0, padding, nested=nested, stride=stride, spatial=spatial)
    by_padding: dict[Any, tuple[str, int]] = {
        "same": ("future", reach - reach // 2),  # TensorFlow pads more on the right
        "valid": ("future", reach),
        "causal": ("buffer", reach),
    }
    if padding not in by_padding:
        return None
    kind, steps = by_padding[padding]
    return Timing(
        kind, name, steps, padding,
        streams=streams, causal=causal and kind == "future", nested=nested, stride=stride,
        spatial=spatial,
    )  # fmt: skip


def time_stride(model: Any) -> int:
    """Input steps per output step of ``model``: the product of its layers' time strides."""
    stride = 1
    for _, layer in iter_layers(model):
        t = timing(layer)
        stride *= t.stride if t is not None else 1
    return stride


def _masked(node: Any) -> bool:
    """Whether a Keras node called its attention layer causally or with a mask of its own."""
    kwargs = node.arguments.kwargs
    return bool(kwargs.get("use_causal_mask") or kwargs.get("attention_mask") is not None)


def _ndim(layer: Any) -> int:
    """The rank of the layer's (first) input once it has been called; 3 before."""
    if hasattr(layer, "_inbound_nodes") and layer._inbound_nodes:
        return len(layer.input.shape)
    return 3


# --------------------------------------------------------------------------- renderers


def stream_reason(layer: Any, nodes: Sequence[Any] = ()) -> str | None:
    """Why ``layer`` makes a streamed output differ from the full pass, or ``None``.

    Also names layers that read only the past but need more than the chunk in
    hand (causal convolution without a buffer, attention without a cache).
    ``nodes`` is there for :func:`suspects` and unused: how a layer was called
    does not give a chunk the steps it lacks.
    """
    del nodes
    t = timing(layer)
    if t is None or not t.streams:
        return None
    if t.kind == "bidirectional":
        return "Bidirectional reads the sequence backwards too: every step depends on the whole sequence"
    if t.kind == "backwards":
        return "go_backwards=True runs from the last step: every output depends on later steps"
    if t.spatial and t.kind == "future":
        return (
            f"{t.layer} padding={t.padding!r} reads {t.steps} future step(s) along its first "
            "spatial axis, which is the time axis here"
        )
    if t.kind == "future" and t.padding == "same":
        return f"Conv1D padding='same' reads {t.steps} future step(s)"
    if t.kind == "future":
        return f"Conv1D padding='valid' reads {t.steps} future step(s) and shortens the sequence"
    if t.kind == "buffer":
        return (
            f"Conv1D padding='causal' needs the previous {t.steps} step(s), which a streamed "
            "chunk does not carry (no streaming buffer)"
        )
    if t.kind == "attention":
        return f"{t.layer} attends over its whole input; a streamed chunk sees only itself"
    if t.kind == "time-normalisation":
        return f"LayerNormalization(axis={t.axis}) normalises over the time axis: every step depends on the whole sequence"
    if t.kind == "global":
        return f"{t.layer} mixes every step of the sequence"
    if t.kind == "repeat":
        return (
            f"RepeatVector repeats one vector over {t.steps} new steps: its output steps are "
            "not the input's (an encoder's last step repeated), so it cannot stream"
        )
    if t.kind == "pooling":
        return f"{t.layer} pools neighbouring steps together"
    return None


def causal_reason(layer: Any, nodes: Sequence[Any] = ()) -> str | None:
    """Why ``layer`` reads later steps, from its configuration, or ``None``.

    Args:
        layer: a Keras layer or model (a model is named by its first suspect).
        nodes: Keras nodes of its calls: attention called with a causal mask
            or a mask of the caller's is measured, not guessed.
    """
    t = timing(layer, nodes)
    if t is None:
        return None
    if not t.causal:
        if t.nested and (inner := suspects(layer, causal_reason)):
            return f"nested model containing {inner[0].path!r} ({inner[0].reason})"
        return None
    name = t.layer
    if t.spatial and t.kind == "future":
        return (
            f"{name} padding={t.padding!r} reads {plural(t.steps or 0, 'future step')} along "
            "its first spatial axis, the time axis here (kernel_size[0] > 1): make that axis "
            "causal (kernel_size[0] = 1, or pad the time axis on the left only with "
            "ZeroPadding and use padding='valid')"
        )
    if t.kind == "bidirectional":
        return "Bidirectional: its backward RNN reads the sequence from the last step"
    if t.kind == "backwards":
        return "go_backwards=True: it reads the sequence from the last step"
    if t.kind == "future" and t.padding == "same":
        return f"{name} padding='same' reads {plural(t.steps or 0, 'future step')}; use padding='causal'"
    if t.kind == "future":
        return (
            f"{name} padding='valid' puts output step t over input steps t..t+{t.steps} "
            "(reads later steps); use padding='causal'"
        )
    if t.kind == "attention":
        return f"{name} called without use_causal_mask=True: every step attends to later steps"
    if t.kind == "time-normalisation":
        return (
            f"{name}(axis={t.axis}) normalises over the time axis: every step sees statistics "
            "of the whole sequence"
        )
    if t.kind == "pooling":
        return f"{name} padding='same' pools over later steps"
    return None


# --------------------------------------------------------------------------- every-step copy


# --------------------------------------------------------------------------- walker


def suspects(model: Any, reason: Reason, *, wrapped: bool = False) -> list[Suspect]:
    """Every layer of ``model`` that ``reason`` names, depth first; a named layer is not looked into.

    The two families walk differently today, so each keeps its walk:

    Args:
        model: a Keras model.
        reason: a renderer, :func:`stream_reason` or :func:`causal_reason`;
            it gets each layer with the nodes of its calls.
        wrapped: ``False`` (the causality walk): the top-level layers and,
            recursively, those of nested models (models themselves are not
            asked, nor the layers inside wrappers: a TimeDistributed's inner
            layer works within one step). ``True`` (the streaming walk): every
            layer, nested models, wrappers, their inner layers and custom
            layers' sublayers included.
    """
    keras = keras_module()
    found: list[Suspect] = []
    models = {""}  # paths whose children the causality walk visits
    for path, layer in iter_layers(model):
        if any(path.startswith(f"{s.path}/") for s in found):
            continue
        if not wrapped:
            if path.rpartition("/")[0] not in models:
                continue
            if isinstance(layer, keras.Model):
                models.add(path)
                continue
        why = reason(layer, getattr(layer, "_inbound_nodes", ()))
        if why:
            found.append(Suspect(path, layer, why))
    return found
