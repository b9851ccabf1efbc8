"""Specs of drawn sequence models: ``LayerSpec`` and ``SequenceModel``.

A spec is a frozen, readable description (its repr reads like the Keras
calls) that ``build()`` turns into a Keras layer or ``keras.Sequential`` with
seeded initialisers; Keras is imported only there. ``SequenceModel.inputs``
draws inputs that fit the model from the input strategies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_rnn._random import kept
from pytest_rnn.strategies._checks import _DEFAULT_MAX_BATCH
from pytest_rnn.strategies._floats import padded_sequences, sequences
from pytest_rnn.strategies._shapes import sequence_shapes
from pytest_rnn.strategies._tokens import padded_token_sequences, token_sequences

_CELLS = ("LSTM", "GRU", "SimpleRNN")
_RECURRENT = frozenset(_CELLS)
_DEFAULT_VOCAB = 12


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
        with kept():
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
