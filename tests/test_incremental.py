"""assert_incremental_matches_full: step functions in numpy, torch, JAX and Keras against their full pass.

Every model comes correct (it passes under a one-step, an even and an uneven
schedule) and with the bugs people ship when they hand a state from call to
call: the state not handed back, ``start`` ignored by a positional encoding,
the state of the wrong step, a step that starts over in every call. Each bug
must be caught with a message that says which call computed the first
mismatch and what to suspect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from pytest_rnn._errors import RNNAssertionError, StepPicture
from pytest_rnn._incremental import assert_incremental_matches_full

# torch and JAX are optional here (the CI's TensorFlow leg has neither): their tests skip.
try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None
try:
    import jax
    import jax.numpy as jnp
except ImportError:  # pragma: no cover - depends on the environment
    jax = jnp = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
needs_jax = pytest.mark.skipif(jax is None, reason="jax is not installed")

B, T, F = 2, 16, 3
SCHEDULES: list[Any] = [1, 3, [5, 1, 3, 2, 4, 1]]
ALPHA = 0.3


@pytest.fixture
def x() -> np.ndarray:
    # Positive values: every partial sum differs from the sum of its chunk alone.
    return np.random.default_rng(0).uniform(0.5, 1.5, size=(B, T, F))


def failure(step: Callable[..., Any], full: Callable[..., Any], x: Any, **kw: Any) -> str:
    """The report of a check that must fail."""
    with pytest.raises(RNNAssertionError) as info:
        assert_incremental_matches_full(step, full, x, **kw)
    return str(info.value)


# =========================================================================== numpy: a running sum and an EMA


def ema(x: np.ndarray, last: np.ndarray) -> np.ndarray:
    """The exponential moving average of ``x`` over time, continuing from ``last``."""
    out = np.empty_like(x)
    for t in range(x.shape[1]):
        last = (1 - ALPHA) * last + ALPHA * x[:, t]
        out[:, t] = last
    return out


def machine_full(x: np.ndarray) -> dict[str, np.ndarray]:
    return {"sum": np.cumsum(x, axis=1), "ema": ema(x, np.zeros((len(x), F)))}


def machine_init(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((len(x), F)), np.zeros((len(x), F))


def machine_step(
    xc: np.ndarray, state: tuple[np.ndarray, np.ndarray], start: int
) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    total, last = state
    out = {"sum": total[:, None] + np.cumsum(xc, axis=1), "ema": ema(xc, last)}
    return out, (out["sum"][:, -1], out["ema"][:, -1])


def forgetful_step(xc: np.ndarray, state: Any, start: int) -> Any:
    """The bug: the state it was given goes back out, the new one is dropped."""
    out, _ = machine_step(xc, state, start)
    return out, state


def scaled_step(xc: np.ndarray, state: Any, start: int) -> Any:
    """Not the function full computes, whatever the chunks."""
    out, new = machine_step(xc, state, start)
    return {"sum": out["sum"] * 1.01, "ema": out["ema"]}, new


def centred_step(xc: np.ndarray, state: Any, start: int) -> Any:
    """Reads ahead within a call: the sum minus its chunk's mean, plus the mean of the whole."""
    out, new = machine_step(xc, state, start)
    whole = xc.shape[1] == T
    shift = 0.0 if whole else out["sum"].mean(axis=1, keepdims=True)
    return {"sum": out["sum"] - shift, "ema": out["ema"]}, new


@pytest.mark.parametrize("chunks", SCHEDULES, ids=str)
def test_a_numpy_state_machine_passes_under_every_schedule(x: np.ndarray, chunks: Any) -> None:
    assert_incremental_matches_full(machine_step, machine_full, x, init=machine_init, chunks=chunks)


def test_dict_inputs_are_cut_alike(x: np.ndarray) -> None:
    def full(xs: dict[str, np.ndarray]) -> np.ndarray:
        return np.cumsum(xs["a"] * xs["b"], axis=1)

    def step(xs: dict[str, np.ndarray], total: Any, start: int) -> Any:
        assert xs["a"].shape == xs["b"].shape
        out = (0.0 if total is None else total) + np.cumsum(xs["a"] * xs["b"], axis=1)
        return out, out[:, -1:]

    assert_incremental_matches_full(step, full, {"a": x, "b": x[..., ::-1]}, chunks=[5, 11])


@pytest.mark.parametrize("chunks", [3, [5, 1, 3, 2, 4, 1]], ids=str)
def test_a_state_not_handed_back_is_caught_at_the_second_call(x: np.ndarray, chunks: Any) -> None:
    message = failure(forgetful_step, machine_full, x, init=machine_init, chunks=chunks)
    second = 3 if chunks == 3 else 5
    lines = message.splitlines()
    assert lines[0] == "Incremental output differs from the full output."
    assert lines[1].startswith(
        "  step 'forgetful_step', full 'machine_full', init 'machine_init', batch 2, 16 steps, chunks "
    )
    assert "  output [1]:" in lines  # flatten order: 'ema' then 'sum'
    assert f"  first mismatch: step {second}, sample 0, feature 0: incremental " in message
    assert f"step {second} was computed by chunk 1 (step" in message
    assert f"start={second}), call 2 of " in message and "at its first step" in message
    assert "step(x, init(x), 0) agrees with full" in message
    assert "the hand-over between calls is suspect" in message
    assert (
        "measured: step returned the state it was given, unchanged, in the call before chunk 1"
        in message
    )


def test_a_step_that_differs_from_full_is_told_apart_from_the_hand_over(x: np.ndarray) -> None:
    message = failure(scaled_step, machine_full, x, init=machine_init, chunks=4)
    assert "step 0 was computed by chunk 0 (steps 0-3, start=0), call 1 of 4" in message
    assert "step(x, init(x), 0) differs from full too (first at step 0, sample 0)" in message
    assert "step itself computes something other than full" in message
    assert "hand-over between calls is suspect" not in message and "measured:" not in message


def test_with_one_chunk_the_run_is_the_whole_call(x: np.ndarray) -> None:
    message = failure(scaled_step, machine_full, x, init=machine_init, chunks=T)
    assert "chunks of 16" in message and "call 1 of 1" in message
    assert "one chunk: the incremental run is itself a single whole-sequence call" in message


def test_a_step_that_reads_ahead_within_a_call_is_named(x: np.ndarray) -> None:
    message = failure(centred_step, machine_full, x, init=machine_init, chunks=4)
    assert "agrees with full, yet chunk 0 differs" in message
    assert "reads ahead" in message


def test_a_state_lost_in_part_is_caught_after_the_steps_that_agree(x: np.ndarray) -> None:
    def full(xs: np.ndarray) -> np.ndarray:  # a sum, plus 10 once the warm-up of 6 steps is over
        return np.cumsum(xs, axis=1) + 10.0 * (np.arange(T) >= 6)[None, :, None]

    def step(xc: np.ndarray, total: Any, start: int) -> Any:
        total = np.zeros((B, F)) if total is None else total
        out = total[:, None] + np.cumsum(xc, axis=1)
        warm = np.arange(xc.shape[1]) >= 6  # the bug: a step count that restarts in every call
        return out + 10.0 * warm[None, :, None], out[:, -1]

    message = failure(step, full, x, chunks=[5, 11])
    assert (
        "step 6 was computed by chunk 1 (steps 5-15, start=5), call 2 of 2, after 1 step of it that agree"
        in message
    )
    assert (
        "the first steps of chunk 1 agree, so part of what the next call needs arrives" in message
    )


def test_a_whole_call_step_cannot_make_is_said_and_the_failure_stays(x: np.ndarray) -> None:
    def short_calls_only(xc: np.ndarray, state: Any, start: int) -> Any:
        if xc.shape[1] > 4:
            raise ValueError("at most 4 steps per call")
        return forgetful_step(xc, state, start)

    message = failure(short_calls_only, machine_full, x, init=machine_init, chunks=4)
    assert "step(x, init(x), 0) could not be made (ValueError: at most 4 steps per call)" in message


def test_the_valid_mask_leaves_padded_positions_out(x: np.ndarray) -> None:
    valid = np.ones((B, T), bool)
    valid[1, 12:] = False  # sample 1 is post-padded after 12 steps

    def padded_full(xs: np.ndarray) -> np.ndarray:
        out = np.cumsum(xs, axis=1)
        out[1, 12:] = -99.0  # whatever a model writes at padded steps
        return out

    def step(xc: np.ndarray, total: np.ndarray, start: int) -> Any:
        out = total[:, None] + np.cumsum(xc, axis=1)
        return out, out[:, -1]

    def init(xs: np.ndarray) -> np.ndarray:
        return np.zeros((B, F))

    assert_incremental_matches_full(step, padded_full, x, init=init, chunks=3, valid=valid)
    valid[1, 12] = True  # a position where the two really differ is compared again
    message = failure(step, padded_full, x, init=init, chunks=3, valid=valid)
    assert "29 of 32 positions valid" in message
    assert "first mismatch: step 12, sample 1, feature 0" in message
    assert "mismatched: 3 / 87 " in message


def test_tolerances_apply_and_the_failure_has_the_streaming_picture(x: np.ndarray) -> None:
    def full(xs: np.ndarray) -> np.ndarray:
        return np.cumsum(xs, axis=1) * (1 + 1e-9)

    def step(xc: np.ndarray, total: Any, start: int) -> Any:
        out = (0.0 if total is None else total) + np.cumsum(xc, axis=1)
        return out, out[:, -1:]

    assert_incremental_matches_full(step, full, x, chunks=[5, 11], rtol=1e-6, atol=0.0)
    with pytest.raises(RNNAssertionError) as info:
        assert_incremental_matches_full(
            scaled_step, machine_full, x, init=machine_init, chunks=[5, 11]
        )
    picture = info.value.picture
    assert isinstance(picture, StepPicture) and picture.kind == "incremental"
    assert picture.chunk_ends == (5, 16)
    assert [c.actual_name for c in picture.comparisons] == [
        "incremental (step, chunk by chunk)",
        "whole call",
    ]


def test_the_global_random_state_is_left_alone(x: np.ndarray) -> None:
    def noisy(xc: np.ndarray, total: Any, start: int) -> Any:
        np.random.random()  # the user's own draw: the assertion puts the state back
        out = (0.0 if total is None else total) + np.cumsum(xc, axis=1)
        return out, out[:, -1:]

    before = np.random.get_state()[1].copy()
    assert_incremental_matches_full(noisy, lambda xs: np.cumsum(xs, axis=1), x, chunks=3)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_an_error_inside_step_reaches_the_user(x: np.ndarray) -> None:
    def broken(xc: np.ndarray, state: Any, start: int) -> Any:
        raise ZeroDivisionError("inside step")

    with pytest.raises(ZeroDivisionError, match="inside step"):
        assert_incremental_matches_full(broken, machine_full, x)


# =========================================================================== torch: nn.LSTM and nn.GRU


H = 4


def positions(start: int, steps: int) -> Any:
    """A sinusoidal encoding of steps ``start .. start + steps - 1``, added to every feature."""
    t = torch.arange(start, start + steps, dtype=torch.float64)
    return torch.sin(0.7 * t)[None, :, None]


class Torch:
    """A float64 nn.LSTM and nn.GRU (batch_first) and the step functions people write for them."""

    def __init__(self, kind: str) -> None:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            cls = torch.nn.LSTM if kind == "lstm" else torch.nn.GRU
            self.net = cls(F, H, batch_first=True, dtype=torch.float64)

    def full(self, xs: np.ndarray) -> Any:
        return self.net(torch.from_numpy(xs))[0]

    def step(self, xc: np.ndarray, state: Any, start: int) -> Any:
        return self.net(torch.from_numpy(xc), state)

    def zeros(self, xs: np.ndarray) -> Any:
        h = torch.zeros(1, len(xs), H, dtype=torch.float64)
        return (h, h.clone()) if isinstance(self.net, torch.nn.LSTM) else h

    def keeps_the_given_state(self, xc: np.ndarray, state: Any, start: int) -> Any:
        out, _ = self.net(torch.from_numpy(xc), state)
        return out, state

    def full_positional(self, xs: np.ndarray) -> Any:
        return self.net(torch.from_numpy(xs) + positions(0, xs.shape[1]))[0]

    def step_positional(self, xc: np.ndarray, state: Any, start: int) -> Any:
        return self.net(torch.from_numpy(xc) + positions(start, xc.shape[1]), state)

    def step_local_positions(self, xc: np.ndarray, state: Any, start: int) -> Any:
        return self.net(torch.from_numpy(xc) + positions(0, xc.shape[1]), state)

    def one_step_early(self, xc: np.ndarray, state: Any, start: int) -> Any:
        out, _ = self.net(torch.from_numpy(xc), state)
        _, early = self.net(torch.from_numpy(xc[:, :-1]), state)
        return out, early


@needs_torch
@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("chunks", SCHEDULES, ids=str)
def test_torch_rnns_stepped_with_their_hidden_state_pass(
    x: np.ndarray, kind: str, chunks: Any
) -> None:
    m = Torch(kind)
    with torch.no_grad():
        assert_incremental_matches_full(m.step, m.full, x, chunks=chunks)
        assert_incremental_matches_full(
            m.step_positional, m.full_positional, x, init=m.zeros, chunks=chunks
        )


@needs_torch
def test_torch_outputs_that_require_grad_are_detached(x: np.ndarray) -> None:
    m = Torch("lstm")
    assert_incremental_matches_full(m.step, m.full, x, chunks=[5, 11])


@needs_torch
def test_torch_lstm_returning_its_initial_state_is_caught(x: np.ndarray) -> None:
    m = Torch("lstm")
    with torch.no_grad():
        message = failure(m.keeps_the_given_state, m.full, x, init=m.zeros, chunks=3)
    assert "init 'zeros'" in message and "chunks of 3 (last 1)" in message
    assert (
        "step 3 was computed by chunk 1 (steps 3-5, start=3), call 2 of 6, at its first step"
        in message
    )
    assert "measured: step returned the state it was given, unchanged" in message


@needs_torch
def test_torch_gru_dropping_its_state_is_caught(x: np.ndarray) -> None:
    m = Torch("gru")
    with torch.no_grad():
        message = failure(m.keeps_the_given_state, m.full, x, chunks=[5, 1, 3, 2, 4, 1])
    assert "state None at the start" in message
    assert "call 2 of 6, at its first step" in message
    assert "measured: step returned None as its state in the call before chunk 1" in message


@needs_torch
def test_torch_positions_at_the_local_index_are_caught(x: np.ndarray) -> None:
    m = Torch("lstm")
    with torch.no_grad():
        message = failure(
            m.step_local_positions, m.full_positional, x, init=m.zeros, chunks=[5, 11]
        )
    assert "step 5 was computed by chunk 1 (steps 5-15, start=5), call 2 of 2" in message
    assert "agrees with full: step computes what full computes" in message
    assert "start is not used to advance a position index" in message
    assert (
        "measured: chunk 1 gives the same output with start=0 as with start=5: step ignores start"
        in message
    )


@needs_torch
def test_torch_off_by_one_hand_over_is_caught(x: np.ndarray) -> None:
    m = Torch("lstm")
    with torch.no_grad():
        message = failure(m.one_step_early, m.full, x, init=m.zeros, chunks=4)
    assert (
        "step 4 was computed by chunk 1 (steps 4-7, start=4), call 2 of 4, at its first step"
        in message
    )
    assert "the state at the wrong step" in message
    assert (
        "it is the state after step 3, the last step of chunk 0 (not one step earlier or later)"
        in message
    )
    assert "returned the state it was given" not in message


# =========================================================================== JAX: a scan


class Scan:
    """A tanh RNN written with ``jax.lax.scan``: full from zeros, step from the state it is given."""

    def __init__(self) -> None:
        rng = np.random.default_rng(2)
        self.w = jnp.asarray(rng.normal(size=(F, H)), jnp.float32) * 0.5
        self.u = jnp.asarray(rng.normal(size=(H, H)), jnp.float32) * 0.5

    def _scan(self, xs: Any, h: Any) -> tuple[Any, Any]:
        def cell(h: Any, xt: Any) -> tuple[Any, Any]:
            h = jnp.tanh(xt @ self.w + h @ self.u)
            return h, h

        h, ys = jax.lax.scan(cell, h, jnp.swapaxes(jnp.asarray(xs, jnp.float32), 0, 1))
        return jnp.swapaxes(ys, 0, 1), h

    def init(self, xs: np.ndarray) -> Any:
        return jnp.zeros((len(xs), H), jnp.float32)

    def full(self, xs: np.ndarray) -> Any:
        return self._scan(xs, self.init(xs))[0]

    def step(self, xc: np.ndarray, h: Any, start: int) -> Any:
        return self._scan(xc, h)

    def starts_over(self, xc: np.ndarray, h: Any, start: int) -> Any:
        return self._scan(xc, self.init(xc))


@needs_jax
@pytest.mark.parametrize("chunks", SCHEDULES, ids=str)
def test_a_jax_scan_passes(x: np.ndarray, chunks: Any) -> None:
    m = Scan()
    assert_incremental_matches_full(
        m.step, m.full, x.astype(np.float32), init=m.init, chunks=chunks
    )


@needs_jax
def test_a_jax_scan_that_starts_over_in_every_call_is_caught(x: np.ndarray) -> None:
    m = Scan()
    message = failure(m.starts_over, m.full, x.astype(np.float32), init=m.init, chunks=[5, 11])
    assert "allowed 1e-05 + 1.3e-06*|full|" in message  # float32 tolerance, from full's dtype
    assert (
        "measured: chunk 1 gives the same output from init(x)'s state as from the state handed "
        "over: step ignores the state it is given" in message
    )


# =========================================================================== Keras: a stateful LSTM stepped by hand


@pytest.mark.backends
def test_a_keras_stateful_lstm_stepped_by_hand_passes_and_a_reset_per_call_fails(
    x: np.ndarray,
) -> None:
    import keras

    from pytest_rnn import reset_states, stateful_twin

    model = keras.Sequential([keras.Input((None, F)), keras.layers.LSTM(H, return_sequences=True)])
    twin = stateful_twin(model, batch_size=B)
    x32 = x.astype(np.float32)

    def full(xs: np.ndarray) -> Any:
        return model(xs, training=False)

    def init(xs: np.ndarray) -> None:
        reset_states(twin)

    def step(xc: np.ndarray, state: None, start: int) -> tuple[Any, None]:
        return twin(xc, training=False), None

    def step_reset(xc: np.ndarray, state: None, start: int) -> tuple[Any, None]:
        reset_states(twin)
        return twin(xc, training=False), None

    assert_incremental_matches_full(step, full, x32, init=init, chunks=[5, 1, 3, 2, 4, 1])
    message = failure(step_reset, full, x32, init=init, chunks=4)
    assert "call 2 of 4, at its first step" in message
    assert "measured: step returned None as its state in the call before chunk 1" in message


# =========================================================================== end to end

USER_FILE = """
import numpy as np
from pytest_rnn._incremental import assert_incremental_matches_full

x = np.random.default_rng(0).uniform(0.5, 1.5, size=(2, 8, 1))

def full(x):
    return np.cumsum(x, axis=1)

def step(x_chunk, total, start):
    out = total[:, None] + np.cumsum(x_chunk, axis=1)
    return out, out[:, -1]

def forgetful(x_chunk, total, start):
    return total[:, None] + np.cumsum(x_chunk, axis=1), total

def init(x):
    return np.zeros((2, 1))

def test_carried():
    assert_incremental_matches_full(step, full, x, init=init, chunks=[3, 5])

def test_forgotten():
    assert_incremental_matches_full(forgetful, full, x, init=init, chunks=[3, 5])
"""


def test_a_user_test_file_passes_and_fails_with_the_report_and_its_picture(
    pytester: pytest.Pytester,
) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(test_user=USER_FILE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--rnn-report-dir", "pics")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*RNNAssertionError: Incremental output differs from the full output.",
            "*step 'forgetful', full 'full', init 'init', batch 2, 8 steps, chunks [[]3, 5[]] (2 chunks)",
            "*step 3 was computed by chunk 1 (steps 3-7, start=3), call 2 of 2, at its first step",
            "*measured: step returned the state it was given, unchanged, in the call before chunk 1*",
            "*picture: *test_forgotten-assert_incremental_matches_full.png",
        ]
    )
    assert "pytest_rnn/_incremental/" not in result.stdout.str()  # the user's line, not ours
    assert len(list((pytester.path / "pics").iterdir())) == 1


# =========================================================================== bad arguments


def _cumsum(xs: np.ndarray) -> np.ndarray:
    return np.cumsum(xs, axis=1)


def _returning(y: Callable[[np.ndarray], Any]) -> Callable[..., Any]:
    """A step that returns ``(y(x_chunk), None)``."""
    return lambda xc, state, start: (y(xc), None)


_GOOD = _returning(lambda xc: np.cumsum(xc, axis=1))

BAD: dict[str, tuple[dict[str, Any], type[Exception], str]] = {
    "step-not-callable": (
        {"step": np.zeros(3)}, TypeError,
        r"^step must be a function step\(x_chunk, state, start\) -> \(y_chunk, state\), got ndarray",
    ),
    "full-not-callable": (
        {"full": np.zeros((B, T, F))}, TypeError,
        r"^full must be a function full\(x\) -> y, got ndarray; pass the function that computes",
    ),
    "init-a-state": (
        {"init": np.zeros((B, F))}, TypeError,
        r"^init must be a function init\(x\) -> state, got ndarray; to start from a fixed state s, pass init=lambda x: s",
    ),
    "step-no-pair": (
        {"step": lambda xc, s, start: np.cumsum(xc, axis=1)}, TypeError,
        r"^step must return a pair \(y_chunk, state\) on chunk 0 \(steps 0-2, start=0\), it returned ndarray",
    ),
    "step-triple": (
        {"step": lambda xc, s, start: (xc, s, start)}, TypeError,
        r"step must return a pair .*, it returned a tuple of 3 items",
    ),
    "chunk-steps": (
        {"step": _returning(lambda xc: xc[:, :1])}, ValueError,
        r"^step's y_chunk on chunk 0 \(steps 0-2, start=0\) has shape \(2, 1, 3\), but it must be "
        r"\(2, 3, 3\): one entry per step of the call \(3\), not 1",
    ),
    "chunk-batch": (
        {"step": _returning(lambda xc: xc[:1])}, ValueError,
        r"has shape \(1, 3, 3\), but it must be \(2, 3, 3\): x's batch of 2, not 1",
    ),
    "chunk-features": (
        {"step": _returning(lambda xc: np.concatenate([xc, xc[..., :1]], axis=2))}, ValueError,
        r"but it must be \(2, 3, 3\): full\(x\)'s per-step shape \(3,\), not \(4,\)",
    ),
    "chunk-no-time-axis": (
        {"step": _returning(lambda xc: xc[:, 0, 0])}, ValueError,
        r"has shape \(2,\), but it must be \(2, 3, 3\): an output needs a batch and a time axis",
    ),
    "structure": (
        {"full": lambda xs: {"sum": _cumsum(xs), "x": xs}}, ValueError,
        r"^step's y_chunk on chunk 0 \(steps 0-2, start=0\) holds one array where full\(x\) "
        r"returns outputs \['sum'\], \['x'\]: step and full must return the same structure",
    ),
    "step-output-none": (
        {"step": _returning(lambda xc: None)}, TypeError,
        r"^step's y_chunk on chunk 0 \(steps 0-2, start=0\) is None",
    ),
    "full-last-step-only": (
        {"full": lambda xs: xs.sum(axis=1)}, ValueError,
        r"^full\(x\) has shape \(2, 3\), but full must return outputs \(batch, steps, \.\.\.\), here \(2, 16, \.\.\.\)",
    ),
    "full-none": ({"full": lambda xs: None}, TypeError, r"^full\(x\) is None"),
    "full-empty": ({"full": lambda xs: []}, ValueError, r"^full\(x\) returned no arrays"),
    "full-strings": (
        {"full": lambda xs: [np.full((B, T), "a")]}, TypeError,
        r"^full\(x\)\[0\] must hold numbers or booleans, got dtype <U1",
    ),
    "valid-shape": (
        {"valid": np.ones((B, T - 1), bool)}, ValueError,
        r"^valid has shape \(2, 15\), but it must be \(batch, steps\) = \(2, 16\) like x",
    ),
    "valid-dtype": (
        {"valid": np.ones((B, T))}, TypeError,
        r"^valid must be a boolean mask \(batch, steps\) .*got dtype float64 \(a 0/1 mask: pass valid=mask.astype\(bool\)\)",
    ),
    "valid-empty": ({"valid": np.zeros((B, T), bool)}, ValueError, r"^valid is False everywhere"),
    "chunks-sum": ({"chunks": [3, 3]}, ValueError, r"chunks \[3, 3\] sum to 6, but x has 16 steps"),
    "chunks-zero": ({"chunks": 0}, ValueError, r"chunks must be a positive chunk length"),
    "rtol-alone": ({"rtol": 1e-3}, ValueError, r"^rtol was given without atol"),
    "x-nan": (
        {"x": np.full((B, T, F), np.nan)}, ValueError,
        r"^x holds NaN or inf: incremental and full outputs cannot be compared",
    ),
    "x-none": ({"x": None}, TypeError, r"^x must be an array \(batch, steps, features\.\.\.\)"),
    "x-no-time": ({"x": np.zeros(4)}, ValueError, r"^x must be an array .* with a time axis"),
    "x-no-steps": ({"x": np.zeros((B, 0, F))}, ValueError, r"^x has 0 steps: there is nothing to run step by step"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_arguments_are_refused_by_name(x: np.ndarray, case: str) -> None:
    changes, error, pattern = BAD[case]
    kw: dict[str, Any] = {"step": _GOOD, "full": _cumsum, "x": x, "chunks": 3, **changes}
    with pytest.raises(error, match=pattern) as info:
        assert_incremental_matches_full(kw.pop("step"), kw.pop("full"), kw.pop("x"), **kw)
    assert not isinstance(info.value, RNNAssertionError)
