"""Specs of drawn encoder-decoders: ``Seq2SeqModel`` and the ``Seq2SeqNet`` it builds.

``Seq2SeqModel.build()`` imports Keras and wires the teacher-forced model and
the tutorial ``(encoder_model, decoder_step_model)`` pair from the same seeded
layers; ``Seq2SeqModel.inputs`` draws encoder and decoder inputs for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_rnn._random import kept
from pytest_rnn.strategies._checks import _DEFAULT_MAX_BATCH
from pytest_rnn.strategies._floats import sequences
from pytest_rnn.strategies._shapes import sequence_shapes
from pytest_rnn.strategies._specs import _DEFAULT_VOCAB, LayerSpec
from pytest_rnn.strategies._tokens import token_sequences

_START_ID = 1
_START_VALUE = -1.0


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
        with kept():
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
