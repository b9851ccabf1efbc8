"""Default tolerances under realistic numerics: no false alarm on correct models, logic still called logic.

Cases: 1,000-step sequences streamed one step at a time, saturating activations
(inputs x100, weights x5), Keras mixed_float16 / mixed_bfloat16 policies (the
model's own output dtype, and a float32 head), and LSTM/GRU configurations that
are cuDNN-eligible versus ones that force the generic kernel. This suite runs on
CPU, where TensorFlow runs the generic kernel for both configurations: the
cuDNN kernel itself is not exercised here.

Each correct case prints the largest streamed-vs-full difference the assertion
sees (0 means bit for bit). Heavier variants are marked ``slow`` and run only
when selected: ``pytest tests/test_numerics.py -m slow -p no:xdist -s``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np
import pytest

import pytest_rnn
from pytest_rnn._core.compare import DEFAULT_TOLERANCES
from pytest_rnn.strategies import LayerSpec, SequenceModel

LOGIC = "float64 re-run: mismatch persists .* -> a logic difference, not rounding"


@pytest.fixture(autouse=True)
def _slow_only_when_selected(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("slow") and "slow" not in (
        request.config.option.markexpr or ""
    ):
        pytest.skip("slow: select it with -m slow")


@contextmanager
def dtype_policy(name: str | None) -> Iterator[None]:
    """Keras's global dtype policy set for the block, always put back."""
    old = keras.config.dtype_policy()
    if name is not None:
        keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)
    assert keras.config.dtype_policy().name == old.name


def model(
    cell: str, *, units: int = 8, features: int = 3, layers: int = 1, policy: str | None = None,
    head_dtype: str | None = None, seed: int = 0, **cell_kwargs: Any,
) -> Any:  # fmt: skip
    """``cell`` x layers -> Dense(2), seeded; built under ``policy`` (global policy restored)."""
    head = {} if head_dtype is None else {"dtype": head_dtype}
    spec = SequenceModel(
        (
            *[LayerSpec.of(cell, units, return_sequences=True, **cell_kwargs)] * layers,
            LayerSpec.of("Dense", 2, **head),
        ),
        features=features,
        dtype=None,
        seed=seed,
    )
    with dtype_policy(policy):
        return spec.build()


def inputs(batch: int, steps: int, features: int = 3, *, scale: float = 1.0) -> np.ndarray:
    g = np.random.default_rng(steps)
    return (g.normal(size=(batch, steps, features)) * scale).astype("float32")


def largest_difference(net: Any, x: np.ndarray, chunks: Any) -> float:
    """The greatest streamed-vs-full difference the assertion sees (0.0: bit for bit)."""
    try:
        pytest_rnn.assert_stateful_equals_batch(net, x, chunks=chunks, rtol=0.0, atol=0.0)
    except pytest_rnn.RNNAssertionError as error:
        found = re.search(r"greatest abs diff ([-+.e\d]+)", str(error))
        assert found, str(error)
        return float(found.group(1))
    return 0.0


def passes_with_defaults(case: str, net: Any, x: np.ndarray, chunks: Any) -> float:
    """The assertion passes with its default tolerances; prints the difference it saw."""
    pytest_rnn.assert_stateful_equals_batch(net, x, chunks=chunks)
    diff = largest_difference(net, x, chunks)
    dtype = keras.backend.standardize_dtype(net.outputs[0].dtype)
    print(f"\n{case}: output {dtype}, largest streamed-vs-full difference {diff:.3g}")
    rtol, atol = DEFAULT_TOLERANCES[dtype]
    assert diff <= atol + rtol * float(np.abs(keras.ops.convert_to_numpy(net(x))).max())
    return diff


# --------------------------------------------------------------------------- long sequences


@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_a_thousand_steps_streamed_one_at_a_time_match_the_batch(cell: str) -> None:
    passes_with_defaults(f"{cell}(8), 1000 steps, chunks of 1", model(cell), inputs(2, 1000), 1)


@pytest.mark.slow
@pytest.mark.parametrize("cell", ["LSTM", "GRU"])
def test_two_wide_layers_over_a_thousand_steps_match_the_batch(cell: str) -> None:
    net = model(cell, units=64, features=8, layers=2)
    passes_with_defaults(f"2 x {cell}(64), batch 8, 1000 steps", net, inputs(8, 1000, 8), 1)


# --------------------------------------------------------------------------- large activations


@pytest.mark.parametrize("cell", ["LSTM", "GRU", "SimpleRNN"])
def test_saturating_activations_do_not_false_alarm(cell: str) -> None:
    net = model(cell)
    net.set_weights([w * 5 for w in net.get_weights()])
    x = inputs(3, 40, scale=100.0)
    passes_with_defaults(f"{cell}(8), inputs x100, weights x5", net, x, [7, 1, 32])


# --------------------------------------------------------------------------- mixed precision


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize(
    ("cell", "head_dtype"), [("LSTM", None), ("GRU", "float32")], ids=["LSTM", "GRU-float32-head"]
)
def test_mixed_precision_policies_do_not_false_alarm(
    policy: str, cell: str, head_dtype: str | None
) -> None:
    net = model(cell, policy=policy, head_dtype=head_dtype)
    expected = head_dtype or policy.removeprefix("mixed_")
    assert keras.backend.standardize_dtype(net.outputs[0].dtype) == expected
    with dtype_policy(policy):  # the policy in force while the user's test runs
        passes_with_defaults(
            f"{cell}(8) under {policy}, head {expected}", net, inputs(2, 60), [5, 1, 54]
        )
    assert keras.config.dtype_policy().name == "float32"


# --------------------------------------------------------------------------- kernels

KERNELS = {
    # cuDNN-eligible on a GPU: the defaults (tanh, sigmoid, no recurrent dropout, not unrolled).
    "LSTM-cudnn-eligible": ("LSTM", {}),
    "LSTM-generic": ("LSTM", {"recurrent_activation": "hard_sigmoid"}),
    "GRU-cudnn-eligible": ("GRU", {"reset_after": True}),
    "GRU-generic": ("GRU", {"reset_after": False}),
}


@pytest.mark.parametrize("kernel", list(KERNELS))
def test_cudnn_eligible_and_generic_configurations_do_not_false_alarm(kernel: str) -> None:
    cell, kwargs = KERNELS[kernel]
    passes_with_defaults(kernel, model(cell, **kwargs), inputs(2, 20), 1)


# --------------------------------------------------------------------------- a real bug stays a bug


def leaky(policy: str | None = None) -> Any:
    spec = SequenceModel(
        (
            LayerSpec.of("Conv1D", 4, 3, padding="same"),
            LayerSpec.of("LSTM", 8, return_sequences=True),
            LayerSpec.of("Dense", 2),
        ),
        features=3,
        dtype=None,
    )
    with dtype_policy(policy):
        return spec.build()


@pytest.mark.parametrize(
    ("policy", "steps", "chunks"),
    [
        (None, 1000, [400, 1, 599]),
        ("mixed_float16", 60, 1),
        ("mixed_bfloat16", 60, 1),
        pytest.param(None, 1000, 1, marks=pytest.mark.slow),
        pytest.param("mixed_float16", 1000, 1, marks=pytest.mark.slow),
    ],
    ids=["1000-steps", "mixed_float16", "mixed_bfloat16", "1000-steps-chunks-of-1", "f16-1000"],
)
def test_float64_triage_calls_a_lookahead_conv_a_logic_difference(
    policy: str | None, steps: int, chunks: Any
) -> None:
    net = leaky(policy)
    with pytest.raises(pytest_rnn.RNNAssertionError) as info:
        pytest_rnn.assert_stateful_equals_batch(net, inputs(2, steps), chunks=chunks)
    message = str(info.value)
    assert "Conv1D padding='same' reads 1 future step" in message
    assert re.search(LOGIC, message), message
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.tensorflow_only("TensorFlow's C++ graph optimizer logs float64 graphs")
def test_the_float64_rerun_keeps_tensorflow_cpp_logs_out_of_stderr(
    capfd: pytest.CaptureFixture[str],
) -> None:
    import os

    from pytest_rnn._keras.float64 import float64_scope

    with pytest.raises(pytest_rnn.RNNAssertionError, match="float64 re-run"):
        pytest_rnn.assert_stateful_equals_batch(leaky(None), inputs(2, 12))
    with float64_scope():  # anything else written meanwhile comes through, in order
        os.write(2, b"W0000 00:00:1.5 1 util.cc:163] Not handling type DT_DOUBLE\nuser line\n")
    err = capfd.readouterr().err
    assert "DT_DOUBLE" not in err
    assert "user line\n" in err


def test_float32_rounding_is_called_rounding_not_logic() -> None:
    # The other direction of the triage: the generic LSTM kernel's last-bit
    # difference fails a zero tolerance and the float64 re-run calls it rounding.
    net = model("LSTM", recurrent_activation="hard_sigmoid")
    try:
        pytest_rnn.assert_stateful_equals_batch(net, inputs(2, 20), rtol=0.0, atol=0.0)
    except pytest_rnn.RNNAssertionError as error:
        assert "float32 rounding, not logic" in str(error)
    else:
        assert keras.backend.backend() == "jax", "a zero tolerance passed"
        pytest.skip("JAX streams this LSTM bit for bit: no rounding to triage")
