"""No missed bugs: known bugs injected into random models are each caught, with the right words.

For every drawn model (``sequence_models()``, ``seq2seq_models()``) each bug
that applies to it is injected, the assertion meant to catch it is called, and
the bug counts as caught only when that assertion raises ``RNNAssertionError``
with the message fragment that names the bug. The test tallies caught /
injected per bug, prints the tally and requires them equal; a miss fails the
Hypothesis example, which shrinks to the smallest model that hides the bug.

Inputs are random normal-ish data (not Hypothesis arrays, which shrink towards
zeros, where a conv or a reset state changes nothing and no bug is visible),
with at least 3 steps, 2 samples and 2 valid steps per sample.

The number of examples is a third of ``RNN_RELIABILITY_EXAMPLES`` (default 9,
so 3 here: about 13 assertion calls on new models per example). Long run: ``RNN_RELIABILITY_EXAMPLES=300 pytest -m reliability -p no:xdist -s``.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers as L
from keras import ops

import pytest_rnn
from pytest_rnn.strategies import (
    LayerSpec,
    Seq2SeqModel,
    SequenceModel,
    rnn_settings,
    seq2seq_models,
    sequence_models,
)

EXAMPLES = max(1, int(os.environ.get("RNN_RELIABILITY_EXAMPLES", "9")) // 3)

pytestmark = [
    pytest.mark.reliability,
    # Conv1D drops a Masking layer's mask: expected for the injected lookahead conv.
    pytest.mark.filterwarnings("ignore:.*does not support masking:UserWarning"),
]

MUTATIONS = settings(rnn_settings, max_examples=EXAMPLES, database=None)

Check = Callable[[], None]
# name -> (spec, x) -> [(assertion, expected fragment, call)] for each way the bug shows
SequenceBug = Callable[[SequenceModel, np.ndarray], list[tuple[str, str, Check]]]


# --------------------------------------------------------------------------- inputs


def informative_inputs(spec: SequenceModel, batch: int, steps: int, seed: int) -> np.ndarray:
    """Random data that shows a bug: no zero steps but padding, >= 2 valid steps per sample."""
    g = np.random.default_rng(seed)
    if spec.tokens:
        x = g.integers(1, spec.vocab_size or 2, size=(batch, steps)).astype("int32")
    else:
        dtype = "float64" if spec.dtype == "float64" else "float32"
        x = g.uniform(-1, 1, size=(batch, steps, spec.features or 1)).astype(dtype)
    if spec.masked:
        lengths = g.integers(2, steps + 1, size=batch)
        pre = bool(seed % 2)
        for i, n in enumerate(lengths):
            if pre:
                x[i, : steps - n] = 0
            else:
                x[i, n:] = 0
    return x


# --------------------------------------------------------------------------- bugs in sequence models


def _stateful(model: Any, x: np.ndarray, **kw: Any) -> Check:
    return lambda: pytest_rnn.assert_stateful_equals_batch(model, x, chunks=1, **kw)


def _streams_and_causal(spec: SequenceModel, x: np.ndarray, fragment: str) -> list[Any]:
    model = spec.build()
    checks = [("stateful", fragment, _stateful(model, x))]
    if spec.return_sequences:
        checks.append(("causal", fragment, lambda: pytest_rnn.assert_model_causal(model, x)))
    return checks


def conv_same(spec: SequenceModel, x: np.ndarray) -> list[Any]:
    conv = LayerSpec.of("Conv1D", 4, 3, padding="same")
    return _streams_and_causal(
        spec.inserted(spec.first_recurrent, conv), x, "Conv1D padding='same' reads 1 future"
    )


def bidirectional(spec: SequenceModel, x: np.ndarray) -> list[Any]:
    i = spec.first_recurrent
    layer = spec.layers[i]
    wrapped = LayerSpec(layer.kind, layer.args, layer.kwargs, "Bidirectional")
    return _streams_and_causal(spec.replace(i, wrapped), x, "Bidirectional")


def go_backwards(spec: SequenceModel, x: np.ndarray) -> list[Any]:
    i = spec.first_recurrent
    backwards = spec.replace(i, spec.layers[i].replace(go_backwards=True))
    return _streams_and_causal(backwards, x, "go_backwards=True")


def time_normalisation(spec: SequenceModel, x: np.ndarray) -> list[Any]:
    # Keras 3.15 on torch hands axis=1 to F.layer_norm, which normalises the last axis (or
    # raises); over time and features together is a trailing block it computes right.
    axis: Any = [1, 2] if keras.backend.backend() == "torch" else 1
    norm = LayerSpec.of("LayerNormalization", axis=axis, center=False, scale=False)
    return _streams_and_causal(
        spec.inserted(spec.first_recurrent, norm), x, "normalises over the time axis"
    )


def weights_not_copied(spec: SequenceModel, x: np.ndarray) -> list[Any]:
    other = SequenceModel(spec.layers, spec.features, spec.dtype, spec.seed + 1)
    copy = other.build(batch_size=1, stateful=True)
    return [
        (
            "stateful",
            "stateful_model's weights are not model's",
            _stateful(spec.build(), x, stateful_model=copy),
        )
    ]


def layer_left_stateless(spec: SequenceModel, x: np.ndarray) -> list[Any]:
    # The last recurrent layer: a forgotten state anywhere must show.
    i = max(n for n, layer in enumerate(spec.layers) if layer.recurrent)
    copy = spec.replace(i, spec.layers[i].replace(stateful=False))
    stream = copy.build(batch_size=1, stateful=True)
    return [
        (
            "stateful",
            r"has stateful=False: its state starts from zeros",
            _stateful(spec.build(), x, stateful_model=stream),
        )
    ]


def batch_mixing(spec: SequenceModel, x: np.ndarray) -> list[Any]:
    mixing = LayerSpec.of("UnitNormalization", axis=0)  # normalises across the batch
    model = spec.inserted(spec.first_recurrent, mixing).build()
    return [("stateful", "Samples are not independent", _stateful(model, x))]


def label_shift(spec: SequenceModel, x: np.ndarray) -> list[Any]:
    def future(inputs: np.ndarray) -> np.ndarray:
        # Seed 001's bug in its commonest form: the label of step t is set from step t + 1.
        per_step = inputs % 3 if spec.tokens else inputs.sum(axis=-1) > 0
        return np.concatenate([per_step[:, 1:], per_step[:, -1:]], axis=1).astype("int32")

    model = spec.build() if spec.return_sequences else None
    return [
        (
            "labels",
            r"label at step \d+ depends on input step",
            lambda: pytest_rnn.assert_labels_causal(future, x, model=model),
        )
    ]


SEQUENCE_BUGS: dict[str, SequenceBug] = {
    "Conv1D padding='same' inserted": conv_same,
    "Bidirectional first RNN": bidirectional,
    "go_backwards first RNN": go_backwards,
    "LayerNormalization over time inserted": time_normalisation,
    "stateful copy, weights not copied": weights_not_copied,
    "stateful copy, a layer left stateless": layer_left_stateless,
    "batch-mixing layer inserted": batch_mixing,
    "labels shifted by one step": label_shift,
}


# --------------------------------------------------------------------------- bugs in encoder-decoders


def encoder_inputs(spec: Seq2SeqModel, batch: int, steps: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed)
    if spec.tokens:
        return g.integers(1, spec.vocab_size, size=(batch, steps)).astype("int32")
    dtype = "float64" if spec.dtype == "float64" else "float32"
    return g.uniform(-1, 1, size=(batch, steps, spec.features or 1)).astype(dtype)


def decoder_state_reset(net: Any) -> tuple[Any, Any] | None:
    step = net.decoder_step_model
    y_prev, *state_in = step.inputs
    y = step.outputs[0]
    # The step model hands back the states it was given: the decoder restarts from
    # the encoder states at every step.
    return net.encoder_model, keras.Model([y_prev, *state_in], [y, *map(L.Identity(), state_in)])


def encoder_states_dropped(net: Any) -> tuple[Any, Any] | None:
    zeros = [ops.zeros_like(s) for s in net.encoder_states]
    encoder = keras.Model(net.encoder_input, zeros if len(zeros) > 1 else zeros[0])
    return encoder, net.decoder_step_model


def untrained_head(net: Any) -> tuple[Any, Any] | None:
    step = net.decoder_step_model
    y_prev, *state_in = step.inputs
    x = net.decoder_embedding(y_prev) if net.decoder_embedding is not None else y_prev
    out, *new = net.decoder_rnn(x, initial_state=state_in)
    fresh = L.Dense(net.dense.units, activation=net.dense.get_config()["activation"])
    return net.encoder_model, keras.Model([y_prev, *state_in], [fresh(out), *new])


SEQ2SEQ_BUGS: dict[str, tuple[Callable[[Any], tuple[Any, Any] | None], str, int]] = {
    # name: (wiring, fragment, fewest decoder steps that can show it)
    "decoder state reset every step": (decoder_state_reset, "step 1 is the first that differs", 2),
    "encoder states not passed": (encoder_states_dropped, "step 0 differs", 1),
    "fresh untrained output layer": (untrained_head, "step 0 differs", 1),
}


# --------------------------------------------------------------------------- the tally


class Tally:
    """Caught / injected per bug, and what each miss looked like."""

    def __init__(self) -> None:
        self.injected: Counter[str] = Counter()
        self.caught: Counter[str] = Counter()

    def run(self, bug: str, check: Check, fragment: str) -> str | None:
        """Inject one bug; the miss description, or None if caught as expected."""
        self.injected[bug] += 1
        try:
            check()
        except pytest_rnn.RNNAssertionError as error:
            if re.search(fragment, str(error)):
                self.caught[bug] += 1
                return None
            return f"{bug}: raised without {fragment!r}:\n{error}"
        except Exception as error:  # a crash is a miss too: the user gets no answer
            return f"{bug}: crashed with {type(error).__name__}: {error}"
        return f"{bug}: passed"

    def report(self) -> str:
        width = max(map(len, self.injected), default=10)
        lines = [f"{'bug':<{width}}  caught / injected"]
        lines += [
            f"{b:<{width}}  {self.caught[b]:>6} / {n}" for b, n in sorted(self.injected.items())
        ]
        total = sum(self.caught.values()), sum(self.injected.values())
        lines.append(f"{'total':<{width}}  {total[0]:>6} / {total[1]}")
        return "\n".join(lines)


def test_bugs_injected_into_drawn_models_are_caught() -> None:
    tally = Tally()

    @MUTATIONS
    @given(
        spec=sequence_models(max_layers=2),
        batch=st.integers(2, 4),
        steps=st.integers(3, 8),
        seed=st.integers(0, 2**16),
    )
    def check(spec: SequenceModel, batch: int, steps: int, seed: int) -> None:
        x = informative_inputs(spec, batch, steps, seed)
        misses = []
        for bug, inject in SEQUENCE_BUGS.items():
            for assertion, fragment, call in inject(spec, x):
                miss = tally.run(f"{bug} ({assertion})", call, fragment)
                if miss:
                    misses.append(miss)
        assert not misses, "\n\n".join(misses)

    check()
    print(f"\nmutations (sequence models, {EXAMPLES} examples):\n{tally.report()}")
    assert tally.caught == tally.injected
    assert len(tally.injected) >= len(SEQUENCE_BUGS)


def test_bugs_wired_into_drawn_encoder_decoders_are_caught() -> None:
    tally = Tally()

    @MUTATIONS
    @given(
        spec=seq2seq_models(min_decoder_steps=2),
        batch=st.integers(2, 4),
        steps=st.integers(2, 6),
        seed=st.integers(0, 2**16),
    )
    def check(spec: Seq2SeqModel, batch: int, steps: int, seed: int) -> None:
        enc = encoder_inputs(spec, batch, steps, seed)
        net = spec.build()
        misses = []
        for bug, (wire, fragment, fewest) in SEQ2SEQ_BUGS.items():
            if spec.decoder_steps < fewest:
                continue
            inference = wire(net)
            miss = tally.run(
                bug,
                lambda inference=inference: pytest_rnn.assert_inference_matches_training(
                    net.train, inference, enc, **spec.inference_kwargs
                ),
                fragment,
            )
            if miss:
                misses.append(miss)
        assert not misses, "\n\n".join(misses)

    check()
    print(f"\nmutations (encoder-decoders, {EXAMPLES} examples):\n{tally.report()}")
    assert tally.caught == tally.injected
    assert len(tally.injected) == len(SEQ2SEQ_BUGS)


def test_step_states_handed_back_in_another_dtype_are_judged_not_crashed() -> None:
    # The reset wiring above on a float64 model hands back float32 states (Identity
    # follows the global float32 policy); the fused decode loop raised a TypeError.
    spec = Seq2SeqModel(cell="GRU", units=3, features=None, decoder_steps=3, dtype="float64")
    net = spec.build()
    enc = encoder_inputs(spec, 2, 4, seed=0)
    reset = decoder_state_reset(net)
    assert reset is not None
    assert reset[1].outputs[1].dtype == "float32"
    with pytest.raises(pytest_rnn.RNNAssertionError, match="step 1 is the first that differs"):
        pytest_rnn.assert_inference_matches_training(net.train, reset, enc, **spec.inference_kwargs)
    pytest_rnn.assert_inference_matches_training(net.train, net.pair, enc, **spec.inference_kwargs)


def test_batch_mixing_is_caught_when_the_other_samples_read_the_same_backwards() -> None:
    # Time-reversing a palindromic sample changes nothing, so the independence check
    # saw no change and missed the mixing; such samples now take another sample's data.
    spec = SequenceModel((LayerSpec.of("Embedding", 4, 1), LayerSpec.of("LSTM", 2)), features=None)
    x = np.array([[1, 2, 3], [2, 1, 2]], dtype="int32")  # sample 1 is a palindrome
    mixing = spec.inserted(1, LayerSpec.of("UnitNormalization", axis=0)).build()
    with pytest.raises(pytest_rnn.RNNAssertionError, match="Samples are not independent"):
        pytest_rnn.assert_stateful_equals_batch(mixing, x)
    pytest_rnn.assert_stateful_equals_batch(spec.build(), x)
