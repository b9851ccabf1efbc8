"""A failing stateful check costs about what a passing one does: no work per chunk end.

A last-step model with a layer that reads a step ahead (Conv1D ``padding='same'``)
before its LSTM used to get its reference from one prefix call per chunk end
(1,000 calls for 1,000 one-step chunks) and its first-differing-layer probe
traced anew at every failure. These tests count calls, not seconds (timings
are flaky): the reference and the diagnosis make as many compiled calls for
200 steps as for 50, a warm failing check traces nothing, and the report is
the one the prefix calls and the chunk-by-chunk probe give.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest

import pytest_rnn
from pytest_rnn import _keras as K
from pytest_rnn._keras import lookahead
from pytest_rnn._stateful import diagnose

L = keras.layers


def _model(*front: Any, rnn: Any = None) -> Any:
    keras.utils.set_random_seed(7)
    return keras.Sequential(
        [keras.Input((None, 3)), *front, rnn or L.LSTM(4, name="lstm"), L.Dense(1, name="out")]
    )


def _lookahead_model() -> Any:
    return _model(L.Conv1D(4, 3, padding="same", name="conv"))


def _x(steps: int, batch: int = 2) -> np.ndarray:
    return np.random.default_rng(steps).normal(size=(batch, steps, 3)).astype("float32")


def _report(model: Any, x: np.ndarray, chunks: int = 1) -> str:
    with pytest.raises(pytest_rnn.RNNAssertionError) as info:
        pytest_rnn.assert_stateful_equals_batch(model, x, chunks=chunks)
    return str(info.value)


class _Counted:
    """Counts the calls of every compiled caller ``K.compiled`` hands out, by ``fixed_batch``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = {True: 0, False: 0}
        real = K.compiled

        def compiled(model: Any, x: Any, *, fixed_batch: bool) -> Callable[[Any], Any]:
            call = real(model, x, fixed_batch=fixed_batch)

            def counted(inputs: Any) -> Any:
                self.calls[fixed_batch] += 1
                return call(inputs)

            return counted

        monkeypatch.setattr(K, "compiled", compiled)


def _calls(model: Any, steps: int) -> dict[bool, int]:
    """Compiled calls of a warm failing check (copies made, traces done), by ``fixed_batch``."""
    x = _x(steps)
    _report(model, x)
    with pytest.MonkeyPatch.context() as monkeypatch:
        counted = _Counted(monkeypatch)
        _report(model, x)
    return counted.calls


# The default FEW_ENDS adds a compiled prefix call per chunk end (each a compile on JAX)
# and numpy logic: the other backends run FEW_ENDS=0, the cut case streamed, only.
@pytest.mark.parametrize(
    "few",
    [
        pytest.param(diagnose.FEW_ENDS, id="few-ends"),
        pytest.param(0, id="no-few-ends", marks=pytest.mark.backends),
    ],
)
def test_reference_calls_do_not_grow_with_steps(monkeypatch: pytest.MonkeyPatch, few: int) -> None:
    # The full-sequence side (reference, float64 re-run, probe): calls without a
    # fixed batch. One prefix call per chunk end made them 50 and 200 here.
    monkeypatch.setattr(diagnose, "FEW_ENDS", few)
    model = _lookahead_model()
    short = _calls(model, 50)
    long = _calls(model, 200)
    assert long[False] == short[False]
    assert long[False] <= 5 + diagnose.DIAGNOSIS_CHUNKS + few


@pytest.mark.tensorflow_only("the in-graph stream: other backends feed one compiled call per chunk")
@pytest.mark.parametrize("few", [diagnose.FEW_ENDS, 0], ids=["few-ends", "no-few-ends"])
def test_failing_check_calls_do_not_grow_with_steps(
    monkeypatch: pytest.MonkeyPatch, few: int
) -> None:
    # Streams and the probe's streamed run too: one compiled run each, or one
    # call per chunk of the few the diagnosis re-runs.
    monkeypatch.setattr(diagnose, "FEW_ENDS", few)
    model = _lookahead_model()
    short = _calls(model, 50)
    long = _calls(model, 200)
    assert long == short
    assert long[True] <= (2 + diagnose.DIAGNOSIS_CHUNKS if few else 0)


@pytest.mark.backends
def test_a_warm_failing_check_traces_nothing() -> None:
    model, x = _lookahead_model(), _x(60)
    _report(model, x)
    before = K.TRACES.count
    _report(model, x)
    assert K.TRACES.count == before


@pytest.mark.backends
def test_the_report_still_names_the_first_step_and_the_conv() -> None:
    message = _report(_lookahead_model(), _x(200))
    assert "200 steps, chunks of 1" in message
    assert "first mismatch: step 1, sample 0" in message
    assert (
        "first layer that differs: 'conv' (Conv1D(4, k=3, padding='same'): "
        "Conv1D padding='same' reads 1 future step(s))" in message
    )
    assert "-> a logic difference, not rounding" in message


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="Keras's torch LSTM projects every step's input in one matmul, which rounds in the "
    "last bit otherwise than its cell, and the copy's states come from the cell",
)
@pytest.mark.parametrize(
    ("chunks", "few"),
    [
        pytest.param(chunks, few, id=f"{chunks}-{name}")
        for name, few in (("few-ends", diagnose.FEW_ENDS), ("no-few-ends", 0))
        for chunks in (1, 3)
    ],
)
def test_the_report_is_the_one_prefix_calls_give(
    monkeypatch: pytest.MonkeyPatch, chunks: int, few: int
) -> None:
    # few=0: the probe streams in one compiled run, the float64 reference comes
    # from a float64 every-step copy, however few chunks the diagnosis re-runs.
    model, x, default = _lookahead_model(), _x(40), diagnose.FEW_ENDS
    monkeypatch.setattr(diagnose, "FEW_ENDS", few)
    fast = _report(model, x, chunks)
    # No every-step copy: one reference call per chunk end, the probe chunk by chunk.
    monkeypatch.setattr(diagnose, "FEW_ENDS", default)
    monkeypatch.setattr(K, "every_step_copy", lambda model: None)
    monkeypatch.setattr(diagnose, "_streamed_pieces", lambda *args: None)
    _assert_same_report(_report(model, x, chunks), fast)


_DECIMAL = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?")


def _assert_same_report(slow: str, fast: str) -> None:
    """The same words, steps and samples; the decimals as printed, up to their last digit.

    The two references are computed by different programs, so a value printed to four
    digits may round the other way (JAX printed 0.05937 for 0.05938, and 0.24 for
    0.2401, which also moves the table's columns).
    """
    assert " ".join(_DECIMAL.sub("#", slow).split()) == " ".join(_DECIMAL.sub("#", fast).split())
    for a, b in zip(_DECIMAL.findall(slow), _DECIMAL.findall(fast)):
        assert float(a) == pytest.approx(float(b), rel=1e-3, abs=1e-12), (a, b)


_FRONTS = {
    "same": lambda: [L.Conv1D(4, 3, padding="same")],
    "causal": lambda: [L.Conv1D(4, 3, padding="causal")],
    "dilated": lambda: [L.Conv1D(4, 5, padding="same", dilation_rate=2)],
    "stacked": lambda: [
        L.Dense(5),
        L.Conv1D(4, 4, padding="same"),
        L.LayerNormalization(),
        L.Conv1D(3, 3, padding="causal"),
    ],
    "pointwise": lambda: [L.Conv1D(4, 1)],
}
_RNNS = {"lstm": lambda: L.LSTM(4), "gru": lambda: L.GRU(3), "rnn": lambda: L.SimpleRNN(3)}


# On JAX every prefix length is a trace: the other backends run one case, and JAX
# stops at 5 steps (past every front's lookahead; 17 took it 47 s of the leg).
_STEPS = (1, 2, 5) if keras.backend.backend() == "jax" else (1, 2, 5, 17)


@pytest.mark.parametrize(
    ("front", "rnn"),
    [
        pytest.param(
            front,
            rnn,
            id=f"{rnn_id}-{front_id}",
            marks=[pytest.mark.backends] if (front_id, rnn_id) == ("stacked", "gru") else [],
        )
        for rnn_id, rnn in _RNNS.items()
        for front_id, front in _FRONTS.items()
    ],
)
def test_every_step_copy_gives_every_prefix_output(
    front: Callable[[], list[Any]], rnn: Callable[[], Any]
) -> None:
    model = _model(*front(), rnn=rnn())
    copy = K.every_step_copy(model)
    assert copy is not None
    for steps in _STEPS:
        x = _x(steps, batch=3)
        got = K.compiled(copy, x, fixed_batch=False)(x)
        call = K.compiled(model, x, fixed_batch=False)
        want = np.stack([call(x[:, :t]) for t in range(1, steps + 1)], axis=1)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.backends
@pytest.mark.torch_only("torch computes the prefix ends in blocks; TensorFlow and JAX scan them")
def test_a_lookahead_copy_gives_every_prefix_output_block_by_block(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 3 x 11 ends in blocks of 6: five blocks and a short one.
    monkeypatch.setattr(lookahead, "END_ROWS", 6)
    model = _lookahead_model()
    copy = K.every_step_copy(model)
    assert copy is not None
    x = _x(11, batch=3)
    got = K.compiled(copy, x, fixed_batch=False)(x)
    call = K.compiled(model, x, fixed_batch=False)
    want = np.stack([call(x[:, :t]) for t in range(1, 12)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    "front",
    [
        pytest.param(
            lambda: [
                L.LSTM(4, return_sequences=True, name="first"),
                L.Conv1D(4, 3, padding="same"),
            ],
            id="rnn-first",
        ),
        pytest.param(lambda: [L.Conv1D(4, 3, padding="valid")], id="valid"),
        pytest.param(lambda: [L.Conv1D(4, 3, padding="same", strides=2)], id="strided"),
        pytest.param(lambda: [L.MaxPooling1D(2, padding="same")], id="pooling"),
    ],
)
def test_no_every_step_copy_where_a_layer_reads_unbounded_or_shortens(
    front: Callable[[], list[Any]],
) -> None:
    assert K.every_step_copy(_model(*front())) is None
