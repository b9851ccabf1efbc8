"""torch: streamed runs through TorchScript traces of one chunk call (``_keras/traced.py``).

Run on the torch leg (``KERAS_BACKEND=torch pytest -m backends``); skipped,
with the reason, on the other backends.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
import pytest
from models import STREAM_FRONTS

import pytest_rnn
from pytest_rnn import _keras as K
from pytest_rnn._keras import traced

pytestmark = [pytest.mark.backends, pytest.mark.torch_only("TorchScript traces are torch's")]

_FRONTS = {
    **STREAM_FRONTS,
    "conv-same-lstm": lambda: [
        keras.layers.Conv1D(3, 3, padding="same"),
        keras.layers.LSTM(4, return_sequences=True),
    ],
}

#: 24 steps: one-step chunks (traced); nine of them (traced) among chunks of 2 and 3 (eager,
#: too rare to trace); one chunk (eager).
_SCHEDULES = {"chunks of 1": [1] * 24, "mixed": [1, 2] * 6 + [1, 1, 1, 3], "one chunk": [24]}


def _model(front: Any, seed: int = 3) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((None, 3)), *front(), keras.layers.Dense(2)])


def _inputs(steps: int = 24) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(2, steps, 3)).astype("float32")
    x[1, steps - 5 :] = 0.0  # padding, for the masked model
    return x


def _bounds(lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    ends = np.cumsum(lengths).astype(np.int32)
    return np.concatenate([[0], ends[:-1]]).astype(np.int32), ends


def _chunk_by_chunk(twin: Any, x: np.ndarray, lengths: list[int], sequence: bool) -> Any:
    """The eager stream: one Keras call per chunk, from reset states."""
    K.reset_states(twin)
    starts, ends = _bounds(lengths)
    outs = [K.eager_call(twin, x[:, a:b]) for a, b in zip(starts, ends)]
    return np.concatenate(outs, axis=1) if sequence else np.stack(outs, axis=1)


@pytest.mark.parametrize("lengths", list(_SCHEDULES.values()), ids=list(_SCHEDULES))
@pytest.mark.parametrize("front", list(_FRONTS.values()), ids=list(_FRONTS))
def test_a_traced_stream_is_the_eager_stream_bit_for_bit(front: Any, lengths: list[int]) -> None:
    model = _model(front)
    twin = K.stateful_twin(model, batch_size=2)
    x = _inputs()
    sequence = len(model.outputs[0].shape) == 3
    loop = K.graph_stream(twin, x, [sequence], trace=True)
    assert loop is not None
    traces = K.TRACES.count
    out = loop(x, *_bounds(lengths))[0]
    last = K.get_states(twin)
    # One trace per chunk length the schedule repeats (a single chunk: none).
    assert K.TRACES.count - traces == len({n for n in lengths if lengths.count(n) >= 8})
    expected = _chunk_by_chunk(twin, x, lengths, sequence)
    np.testing.assert_array_equal(out, expected)
    # The twin holds the last states, as after the eager run.
    for name, states in K.get_states(twin).items():
        for got, want in zip(last[name], states):
            np.testing.assert_array_equal(got, want)
    # Warm, the traces are replayed: the same outputs, nothing traced again.
    traces = K.TRACES.count
    np.testing.assert_array_equal(loop(x, *_bounds(lengths))[0], expected)
    assert K.TRACES.count == traces


@keras.saving.register_keras_serializable(package="test_traced")
class _OwnLSTM(keras.layers.LSTM):
    """A user's layer class: it may branch on values, which a trace would freeze."""


@keras.saving.register_keras_serializable(package="test_traced")
class _OwnCell(keras.layers.GRUCell):
    """A user's cell class inside Keras's own RNN layer."""


@pytest.mark.parametrize(
    "front",
    [
        lambda: [_OwnLSTM(4, return_sequences=True)],
        lambda: [keras.layers.RNN(_OwnCell(4), return_sequences=True)],
    ],
    ids=["own layer", "own cell"],
)
def test_a_model_with_a_class_of_the_users_is_never_traced(front: Any) -> None:
    model = _model(front)
    twin = K.stateful_twin(model, batch_size=2)
    assert K.graph_stream(twin, _inputs(), [True], trace=True) is None
    # And the check still streams it, chunk by chunk.
    pytest_rnn.assert_stateful_equals_batch(model, _inputs(), chunks=1)


def _frozen(real: Any, fn: Any, args: Any, **kwargs: Any) -> Any:
    """A "trace" that always gives the first chunk's answer, whatever it is given."""
    first = real(fn, args, **kwargs)(*args)
    return lambda *_: first


def _refuses(real: Any, fn: Any, args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("not traceable")


@pytest.mark.parametrize("fake", [_frozen, _refuses], ids=["disagrees", "fails"])
@pytest.mark.parametrize("front", ["lstm-gru-rnn", "last-step"])
def test_a_trace_that_disagrees_or_fails_leaves_the_stream_eager(
    monkeypatch: pytest.MonkeyPatch, fake: Any, front: str
) -> None:
    """A trace is kept only once it agrees on a second chunk, whose states are not zero."""
    import torch

    real, made = torch.jit.trace, []

    def spy(fn: Any, args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return fake(real, fn, args, **kwargs)

    monkeypatch.setattr(torch.jit, "trace", spy)
    model = _model(_FRONTS[front])
    twin = K.stateful_twin(model, batch_size=2)
    x = _inputs()
    sequence = front != "last-step"
    loop = K.graph_stream(twin, x, [sequence], trace=True)
    assert loop is not None
    lengths = [1] * 24
    for _ in range(2):  # not tried again: eager from now on
        np.testing.assert_array_equal(
            loop(x, *_bounds(lengths))[0], _chunk_by_chunk(twin, x, lengths, sequence)
        )
    assert made == [1]


def test_traces_per_twin_are_bounded_and_rare_lengths_run_eagerly() -> None:
    from pytest_rnn._keras import traced

    model = _model(_FRONTS["last-step"])
    twin = K.stateful_twin(model, batch_size=2)
    x = _inputs(steps=120)
    loop = K.graph_stream(twin, x, [False], trace=True)
    assert loop is not None
    traces = K.TRACES.count
    rare = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]  # each once
    loop(x, *_bounds(rare))
    assert K.TRACES.count == traces
    for n in (1, 2, 3, 4, 5, 6):  # 6 lengths, each repeated enough
        lengths = [n] * (120 // n)
        np.testing.assert_array_equal(
            loop(x, *_bounds(lengths))[0], _chunk_by_chunk(twin, x, lengths, False)
        )
    assert K.TRACES.count - traces == traced.TRACES_PER_TWIN


def test_the_check_traces_its_own_twin_never_a_users_stateful_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_rnn._keras import loops

    traced_models: list[Any] = []
    real = loops.traced_stream

    def spy(twin: Any, *args: Any) -> Any:
        traced_models.append(twin)
        return real(twin, *args)

    monkeypatch.setattr(loops, "traced_stream", spy)
    model = _model(_FRONTS["last-step"], seed=5)
    copy = keras.Sequential(
        [
            keras.Input(batch_shape=(2, None, 3)),
            keras.layers.LSTM(4, stateful=True),
            keras.layers.Dense(2),
        ]
    )
    copy.set_weights(model.get_weights())
    x = _inputs()
    pytest_rnn.assert_stateful_equals_batch(model, x, stateful_model=copy)
    assert traced_models == []
    pytest_rnn.assert_stateful_equals_batch(model, x)
    assert len(traced_models) == 1 and traced_models[0] is not copy


def test_a_streaming_bug_is_still_caught_and_no_warning_reaches_the_user() -> None:
    """Conv1D padding='same' reads a step ahead: the traced stream differs from the full pass."""
    front = [
        keras.layers.Conv1D(3, 3, padding="same", name="conv"),
        keras.layers.LSTM(4, return_sequences=True),
    ]
    model = _model(lambda: front, seed=6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch.jit.trace's deprecation note among them
        with pytest.raises(pytest_rnn.RNNAssertionError) as caught:
            pytest_rnn.assert_stateful_equals_batch(model, _inputs(), chunks=1)
    message = str(caught.value)
    assert "Streamed output differs from the full-sequence output." in message
    assert "first layer that differs: 'conv' (Conv1D(3, k=3, padding='same'): Conv1D " in message


def _scan_case() -> tuple[Any, Any, Any, list[Any]]:
    """An LSTM cell stepped over 12 steps: ``(fn, init, xs, variables)``."""
    import torch

    keras.utils.set_random_seed(7)
    cell = keras.layers.LSTMCell(4)
    cell.build((2, 3))
    dense = keras.layers.Dense(2)
    dense.build((2, 4))

    def fn(carry: Any, x: Any) -> Any:
        h, c = carry
        y, (h, c) = cell(x, [h, c], training=False)
        return (h, c), dense(y)

    init = (torch.zeros(2, 4), torch.zeros(2, 4))
    xs = torch.as_tensor(np.random.default_rng(1).normal(size=(12, 2, 3)).astype("float32"))
    return fn, init, xs, [*cell.variables, *dense.variables]


def test_a_traced_scan_is_keras_scan_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from pytest_rnn._keras import traced

    fn, init, xs, variables = _scan_case()
    with torch.no_grad():
        (h, c), ys = keras.ops.scan(fn, init, xs)
    real, traces, calls = torch.jit.trace, [], []

    def spy(f: Any, args: Any, **kwargs: Any) -> Any:
        traces.append(1)
        return real(f, args, **kwargs)

    def counted(carry: Any, x: Any) -> Any:
        calls.append(1)
        return fn(carry, x)

    monkeypatch.setattr(torch.jit, "trace", spy)
    (h2, c2), ys2 = traced.scan(counted, init, xs, variables=variables)
    for a, b in [(h, h2), (c, c2), (ys, ys2)]:
        assert torch.equal(a, b)
    # Traced once; eager on the first two steps and while tracing, replays after.
    assert traces == [1] and len(calls) == 3
    # Without the variables (a step that may call a user's code): Keras's scan.
    traces.clear()
    calls.clear()
    with torch.no_grad():
        (_, _), ys3 = traced.scan(counted, init, xs, variables=None)
    assert torch.equal(ys3, ys) and traces == [] and len(calls) == 12


def test_a_traced_scan_that_disagrees_runs_eagerly(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from pytest_rnn._keras import traced

    fn, init, xs, variables = _scan_case()
    with torch.no_grad():
        _, ys = keras.ops.scan(fn, init, xs)
    real = torch.jit.trace

    def frozen(f: Any, args: Any, **kwargs: Any) -> Any:
        first = real(f, args, **kwargs)(*args)
        return lambda *_: first  # the first step's answer, whatever it is given

    monkeypatch.setattr(torch.jit, "trace", frozen)
    _, ys2 = traced.scan(fn, init, xs, variables=variables)
    assert torch.equal(ys, ys2)


def test_the_failing_path_reference_replays_traces_and_agrees_with_prefix_calls() -> None:
    """The every-prefix reference of a Conv1D 'same' -> LSTM model: its states loop replays
    one trace, and the prefix ends run at once (no trace, no loop)."""
    model = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(4, 3, padding="same"),
            keras.layers.LSTM(4),
            keras.layers.Dense(1),
        ]
    )
    copy = K.every_step_copy(model)
    assert copy is not None
    x = _inputs(steps=20)
    traces = []
    import torch

    real = torch.jit.trace
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.jit, "trace", lambda *a, **k: traces.append(1) or real(*a, **k))
        got = K.compiled(copy, x, fixed_batch=False)(x)
    assert len(traces) == 1  # the states loop
    call = K.compiled(model, x, fixed_batch=False)
    want = np.stack([call(x[:, :t]) for t in range(1, 21)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ KerasHub causal LMs


def _hub(name: str) -> Any:
    """A tiny KerasHub causal LM of Keras's and KerasHub's own classes (2 layers, hidden 16)."""
    hub = pytest.importorskip("keras_hub")
    keras.utils.set_random_seed(0)
    common = {"vocabulary_size": 50, "num_layers": 2, "hidden_dim": 16, "intermediate_dim": 32}
    backbone = {
        "GPT2": lambda: hub.models.GPT2Backbone(num_heads=2, max_sequence_length=32, **common),
        "Llama": lambda: hub.models.LlamaBackbone(
            num_query_heads=2, num_key_value_heads=1, **common
        ),
        "GPTNeoX": lambda: hub.models.GPTNeoXBackbone(
            num_heads=2, max_sequence_length=32, **common
        ),
    }[name]()
    return getattr(hub.models, f"{name}CausalLM")(backbone=backbone, preprocessor=None)


def _tokens(steps: int = 12) -> np.ndarray:
    return np.random.default_rng(0).integers(1, 50, size=(2, steps)).astype("int32")


def _eager_decode(lm: K.CachedLM, tokens: np.ndarray, lengths: list[int]) -> np.ndarray:
    mask = np.ones_like(tokens, bool)
    cache, out = lm.empty_cache(tokens, mask), []
    for a, b in zip(*_bounds(lengths)):
        logits, cache = lm.call(tokens[:, a:b], mask[:, a:b], cache, int(a))
        out.append(logits)
    return np.concatenate(out, axis=1)


@pytest.mark.parametrize("lengths", [[1] * 12, [1] * 8 + [2, 2]], ids=["chunks of 1", "mixed"])
@pytest.mark.parametrize("name", ["GPT2", "Llama", "GPTNeoX"])
def test_cached_decoding_replays_are_the_eager_calls_bit_for_bit(
    name: str, lengths: list[int]
) -> None:
    from pytest_rnn._keras.hub import _LOOPS

    lm = K.CachedLM(_hub(name))
    tokens = _tokens()
    mask = np.ones_like(tokens, bool)
    bounds = list(zip(*(b.tolist() for b in _bounds(lengths))))
    traces = K.TRACES.count
    out = lm.decode(tokens, mask, lm.empty_cache(tokens, mask), bounds)
    assert out is not None and K.TRACES.count == traces + 1  # one-token calls only
    np.testing.assert_array_equal(out[0], _eager_decode(lm, tokens, lengths))
    loop = _LOOPS.of(lm.lm)[("decode", tokens.shape)]
    step = next(c for c in loop.__closure__ if isinstance(c.cell_contents, traced.Replays))
    # GPT-NeoX too: its query rotation at position 0 is a bug of the model, not of a trace.
    assert step.cell_contents.replaying


def test_a_subclass_of_the_users_decodes_eagerly() -> None:
    from pytest_rnn._keras import hub_loops

    hub = pytest.importorskip("keras_hub")

    class Yours(hub.models.GPT2CausalLM):
        pass

    keras.utils.set_random_seed(0)
    lm = Yours(backbone=_hub("GPT2").backbone, preprocessor=None)
    cache = K.CachedLM(lm).empty_cache(_tokens(), np.ones((2, 12), bool))
    assert hub_loops.decode_loop(lm, indexed=True, takes_mask=False, cache=cache) is None


def test_the_generation_loop_replays_one_trace_checked_in_every_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_rnn._keras import hub_generation

    lm = K.CachedLM(_hub("GPT2"))
    prompt = np.zeros((2, 12), bool)
    prompt[:, 0] = True  # a one-token prompt: 11 iterations
    first, other = _tokens(), _tokens()[::-1].copy()
    replayed = [lm.generate(first, prompt)]
    traces = K.TRACES.count
    replayed.append(lm.generate(other, prompt))  # other tokens: the forced ones are inputs
    assert K.TRACES.count == traces and all(g.compiled for g in replayed)
    checks: list[bool] = []
    real = traced._checked

    def spy(*args: Any) -> Any:
        result, agrees = real(*args)
        checks.append(agrees)
        return result, agrees

    monkeypatch.setattr(traced, "_checked", spy)
    lm.generate(first, prompt)
    assert checks == [True]  # checked again, on the loop's first iteration
    monkeypatch.setattr(hub_generation, "REPEATS", 10**6)  # eager: the reference
    for tokens, got in zip([first, other], replayed):
        want = lm.generate(tokens, prompt)
        assert not want.compiled
        np.testing.assert_array_equal(got.logits, want.logits)
        np.testing.assert_array_equal(got.tokens, tokens)


def test_a_bug_in_kerashubs_own_class_is_caught_through_the_replays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A position offset never advanced, patched into GPT2CausalLM itself (a class of KerasHub)."""
    hub = pytest.importorskip("keras_hub")
    from pytest_rnn._keras.hub import _LOOPS

    real = hub.models.GPT2CausalLM.call_with_cache

    def at_zero(self: Any, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
        return real(self, token_ids, cache, keras.ops.zeros_like(cache_update_index))

    monkeypatch.setattr(hub.models.GPT2CausalLM, "call_with_cache", at_zero)
    lm = _hub("GPT2")
    tokens = _tokens()
    with pytest.raises(pytest_rnn.RNNAssertionError) as caught:
        pytest_rnn.assert_cached_decoding_matches_full(lm, tokens, chunks=1, generate=False)
    text = str(caught.value)
    assert "in the decode: position 1 (sample 0) was computed by call 2 of 12" in text
    assert "ignores the index it is given, so the position offset is not advanced" in text
    loop = _LOOPS.of(lm)[("decode", tokens.shape)]
    step = next(c for c in loop.__closure__ if isinstance(c.cell_contents, traced.Replays))
    assert step.cell_contents.replaying


def test_a_replay_that_raises_falls_back_to_the_eager_call() -> None:
    def call(x: Any) -> Any:
        return x * 2

    def broken(*_: Any) -> Any:
        raise RuntimeError("cannot run")

    import torch

    step = traced.Replays(call, lambda: None)
    step.traces["kept"] = broken  # a kept trace that raises on replay
    x = torch.ones(2)
    assert torch.equal(step("kept", True, (x,)), x * 2)
    assert step.traces["kept"] is None and not step.replaying
    step.pending["checked"] = broken  # and one that raises while it is checked
    assert torch.equal(step("checked", True, (x,)), x * 2)
    assert step.traces["checked"] is None


def test_traces_made_side_by_side_leave_the_warning_filters_as_they_were() -> None:
    # The cached check's two loops trace in two threads; the filter each trace sets is the
    # process's, so one trace at a time, or the later restore brings back the other's.
    import threading
    import time

    import torch

    def slow(x: Any) -> Any:
        time.sleep(0.2)  # the first trace is still running when the second starts
        return x * 2

    before = list(warnings.filters)
    args = (torch.ones(2),)
    first, second = traced.Replays(slow, lambda: None), traced.Replays(slow, lambda: None)
    beside = threading.Thread(target=first, args=((2,), True, args))
    beside.start()
    time.sleep(0.05)
    assert torch.equal(second((2,), True, args), torch.full((2,), 2.0))
    beside.join()
    assert warnings.filters == before
    assert first.pending and second.pending  # both traced


def test_replays_run_in_inference_mode_and_eager_calls_do_not() -> None:
    # A replay creates no variable, so it runs without autograd's bookkeeping; an eager
    # call may run any Keras code (a layer built there must keep ordinary weights, which
    # training can use), so it runs as the caller set it.
    import torch

    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    step = traced.Replays(traced.with_values(dense, dense.weights), lambda: None)
    x = torch.ones(2, 4)
    values = tuple(v.value for v in dense.weights)
    with torch.no_grad():  # as the streams and loops call it
        results = [step((2, 4), True, (values, x)) for _ in range(4)]  # eager, check, replays
    assert step.replaying
    assert [r.is_inference() for r in results] == [False, False, True, True]
    assert all(torch.equal(r, results[0]) for r in results)
    assert not any(v.value.is_inference() for v in dense.weights)
    torch.sum(dense(x)).backward()  # the weights still take gradients
    assert dense.kernel.value.grad is not None
