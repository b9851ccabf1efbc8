"""Tests of assert_fit_equivalent and assert_training_reproducible (seed 002).

Tiny models (units 4), 32-64 samples, 2-3 epochs: every call trains two or
three models, so the data stay small.
"""

from __future__ import annotations

import functools
import random
import warnings
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pytest
from models import changed, global_state_snapshot, regressor, seed002_model

import pytest_rnn
from pytest_rnn._core.compare import Tolerance
from pytest_rnn._errors import RNNAssertionError
from pytest_rnn._fit import assert_fit_equivalent, assert_training_reproducible
from pytest_rnn._fit.causes import _fit_causes
from pytest_rnn._fit.diff import (
    _compare_history,
    _compare_vars,
    _format_losses,
    _format_vars,
    _Var,
)

T, F, N, BATCH = 4, 2, 32, 8


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(N, T, F)).astype("float32")
    return x, x.sum(axis=(1, 2))[:, None].astype("float32")


#: Model 'plain': LSTM 'lstm' -> Dense 'dense', compiled (adam unless ``optimizer=`` says).
make_stateless = functools.partial(
    regressor, T, F, optimizer="adam", layer_names=True, name="plain"
)
#: Seed 002's shape, small: two stacked stateful LSTMs with a static batch.
make_stateful = functools.partial(seed002_model, batch=BATCH, steps=T, features=F)


def make_dropout() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((T, F)),
            keras.layers.LSTM(4, dropout=0.2, recurrent_dropout=0.2),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(1),
        ]
    )
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    return model


STATEFUL_KW = {"batch_size": BATCH, "shuffle": False}


# --------------------------------------------------------------------------- globals


@pytest.fixture
def global_state() -> Callable[[], Callable[[], None]]:
    """Seed the globals and return a check that every global the assertions touch is as it was.

    The globals are all of ``global_state_snapshot``, Keras's name counters
    included, on the backend in use. Called first thing in the test body, not
    in the fixture's set-up: pytest-randomly reseeds between the two.
    """

    def start() -> Callable[[], None]:
        backend = keras.backend.backend()
        random.seed(123)
        np.random.seed(456)
        if backend == "tensorflow":
            import tensorflow as tf

            tf.random.set_seed(789)
        elif backend == "torch":
            import torch

            torch.manual_seed(789)
        before = global_state_snapshot()

        def check() -> None:
            found = changed(before, global_state_snapshot())
            assert not found, f"{found} changed"

        return check

    return start


# --------------------------------------------------------------------------- equivalent runs pass


@pytest.mark.parametrize("reset", [False, True], ids=["states-carried", "states-reset"])
@pytest.mark.backends
@pytest.mark.fits_stateful
def test_seed_002_stateful_model_passes_with_and_without_resets(
    data: tuple[np.ndarray, np.ndarray], reset: bool, global_state: Callable[[], Callable[[], None]]
) -> None:
    globals_kept = global_state()
    assert_fit_equivalent(
        make_stateful, *data, epochs=3, fit_kwargs=STATEFUL_KW, reset_states=reset, rtol=0, atol=0
    )
    globals_kept()


@pytest.mark.backends
def test_dropout_and_metrics_pass(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Dropout seed-generator states are variables: consecutive fits continue the draws."""
    assert_fit_equivalent(
        make_dropout,
        *data,
        epochs=2,
        fit_kwargs={"batch_size": BATCH, "validation_split": 0.25},
        rtol=0,
        atol=0,
    )


def test_a_step_based_learning_rate_schedule_passes(data: tuple[np.ndarray, np.ndarray]) -> None:
    """The fix for an epoch-indexed schedule: one that reads optimizer.iterations."""

    def make() -> keras.Model:
        schedule = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=4, decay_rate=0.5)
        return make_stateless(optimizer=keras.optimizers.SGD(schedule))

    assert_fit_equivalent(make, *data, epochs=3, fit_kwargs={"batch_size": BATCH})


def test_multi_input_model_with_default_shuffle_passes(data: tuple[np.ndarray, np.ndarray]) -> None:
    """Keras 3 continues TensorFlow's shuffle stream from one fit call to the next."""
    x, y = data

    def make() -> keras.Model:
        a, b = keras.Input((T, F), name="a"), keras.Input((T, F), name="b")
        h = keras.layers.GRU(4)(keras.layers.Concatenate()([a, b]))
        model = keras.Model({"a": a, "b": b}, keras.layers.Dense(1)(h))
        model.compile(optimizer="rmsprop", loss="mse")
        return model

    assert_fit_equivalent(make, {"a": x, "b": -x}, y, fit_kwargs={"batch_size": BATCH})


# --------------------------------------------------------------------------- differences caught


def _lr_schedule(epoch: int, lr: float) -> float:
    return 0.05 * 0.5**epoch


@pytest.mark.backends
def test_epoch_indexed_learning_rate_scheduler_is_caught(
    data: tuple[np.ndarray, np.ndarray], global_state: Callable[[], Callable[[], None]]
) -> None:
    globals_kept = global_state()
    scheduler = keras.callbacks.LearningRateScheduler(_lr_schedule)
    with pytest.raises(RNNAssertionError) as info:
        assert_fit_equivalent(
            # Named: Keras numbers optimizer names per process ("sgd_4" after other tests).
            lambda: make_stateless(optimizer=keras.optimizers.SGD(name="sgd")),
            *data,
            epochs=3,
            fit_kwargs={"batch_size": BATCH, "callbacks": [scheduler], "shuffle": False},
        )
    globals_kept()
    message = str(info.value)
    assert message.startswith("One fit(epochs=3) and 3 x fit(epochs=1) train differently.")
    assert "model 'plain' (LSTM(4) -> Dense(1))" in message
    # Epoch 1 uses the same rate in both runs; epoch 2 is the first to differ.
    assert "first epoch whose loss differs: epoch 2/3: fit(epochs=3) " in message
    assert (
        "'learning_rate' differs too, first at epoch 2: fit(epochs=3) 0.025, 3 x fit(epochs=1) 0.05"
        in message
    )
    assert (
        "first variable that differs: layer 'lstm' (LSTM(4)) 'kernel' [plain/lstm/lstm_cell/kernel]"
        in message
    )
    assert "greatest abs diff" in message
    assert "optimizer sgd/learning_rate" in message  # optimizer state compared too
    assert "fit_kwargs['callbacks'][0] (LearningRateScheduler)" in message
    assert "epochs=i + 1, initial_epoch=i" in message
    assert "LearningRateSchedule" in message
    assert "sample order" not in message  # shuffle=False was given: no shuffle cause
    rows = [line.split() for line in message.splitlines() if line.strip()[:1] in ("*", "1")]
    assert rows[0][0] == "1"  # epoch 1 agrees: unmarked
    assert rows[1][:2] == ["*", "2"] and rows[2][:2] == ["*", "3"]
    assert scheduler.model is None  # the user's callback was not used: each run has a copy


class _EpochDecay(keras.callbacks.Callback):
    """A hand-written epoch-indexed schedule: the same bug without LearningRateScheduler."""

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.model.optimizer.learning_rate.assign(0.05 / (1 + epoch))


class _Counter(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[int] = []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.epochs.append(epoch)


def test_every_epoch_dependent_callback_is_named(data: tuple[np.ndarray, np.ndarray]) -> None:
    counter = _Counter()
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="loss", patience=0, min_delta=1e9, factor=0.5
    )
    callbacks = [_EpochDecay(), plateau, counter, pytest_rnn.ResetStatesCallback()]
    with pytest.raises(RNNAssertionError) as info:
        assert_fit_equivalent(
            lambda: make_stateless(optimizer="sgd"),
            *data,
            epochs=3,
            fit_kwargs={"batch_size": BATCH, "callbacks": callbacks, "shuffle": False},
        )
    message = str(info.value)
    assert "fit_kwargs['callbacks'][0] (_EpochDecay) defines on_epoch_begin" in message
    assert (
        "fit_kwargs['callbacks'][1] (ReduceLROnPlateau) counts epochs without improvement"
        in message
    )
    assert "fit_kwargs['callbacks'][2] (_Counter) defines on_epoch_end" in message
    assert "callbacks'][3]" not in message  # resetting at every epoch start is split-proof
    assert counter.epochs == []  # the user's callback objects are not run


def test_validation_freq_is_caught(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(RNNAssertionError) as info:
        assert_fit_equivalent(
            make_stateless,
            *data,
            epochs=2,
            fit_kwargs={"batch_size": BATCH, "validation_split": 0.25, "validation_freq": 2},
        )
    message = str(info.value)
    assert "history keys that differ: 'val_loss' only in A" in message
    assert "validation_freq=2 counts epochs from the start of each fit call" in message
    assert "the per-epoch losses agree" in message
    assert "the single fit repeats itself under seed 0" in message
    assert "shuffle was not given, and fit shuffles by default (shuffle=True)" in message


class _ResetOnTrainBegin(keras.callbacks.Callback):
    def on_train_begin(self, logs: Any = None) -> None:
        pytest_rnn.reset_states(self.model)


@pytest.mark.backends
@pytest.mark.fit_carries_states
def test_states_reset_in_one_run_only_is_caught(data: tuple[np.ndarray, np.ndarray]) -> None:
    """A reset at every fit call: once in the single fit, every epoch in the loop."""
    with pytest.raises(RNNAssertionError) as info:
        assert_fit_equivalent(
            make_stateful,
            *data,
            epochs=2,
            fit_kwargs={**STATEFUL_KW, "callbacks": [_ResetOnTrainBegin()]},
        )
    message = str(info.value)
    assert "(_ResetOnTrainBegin) defines on_train_begin" in message
    # Adadelta's small steps keep the weights within tolerance; the states tell.
    assert "RNN states 4 of 4" in message
    assert "the weights agree but the RNN states differ" in message


@pytest.mark.backends
def test_unseeded_numpy_in_make_model_is_caught(data: tuple[np.ndarray, np.ndarray]) -> None:
    def make() -> keras.Model:
        model = make_stateless()
        rng = np.random.default_rng()  # the bug: no seed
        model.set_weights([rng.normal(size=w.shape).astype(w.dtype) for w in model.get_weights()])
        return model

    with pytest.raises(RNNAssertionError) as info:
        assert_fit_equivalent(make, *data, fit_kwargs={"batch_size": BATCH, "shuffle": False})
    message = str(info.value)
    assert "the single fit does not even repeat itself under seed 0" in message
    assert "np.random.default_rng() without a seed was called at test_fit.py:" in message
    assert " in make:" in message


# --------------------------------------------------------------------------- training reproducible


def _train_seeded(x: np.ndarray, y: np.ndarray, *, seed: int | None = 0) -> keras.Model:
    model = regressor(T, F, rnn=keras.layers.GRU, optimizer="adam", layer_names=True)
    order = np.random.default_rng(seed).permutation(len(x))
    model.fit(x[order], y[order], epochs=2, batch_size=BATCH, verbose=0)
    return model


def _train_unseeded(x: np.ndarray, y: np.ndarray) -> keras.Model:
    return _train_seeded(x, y, seed=None)


@pytest.mark.backends
def test_seeded_training_reproduces_bitwise(
    data: tuple[np.ndarray, np.ndarray], global_state: Callable[[], Callable[[], None]]
) -> None:
    globals_kept = global_state()
    assert_training_reproducible(lambda: _train_seeded(*data), rtol=0, atol=0)
    globals_kept()


@pytest.mark.tensorflow_only("TensorFlow's op-determinism flag")
def test_stateful_training_reproduces_and_determinism_stays_on(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    from tensorflow.python.framework import config as tf_config

    def train() -> keras.Model:
        model = make_stateful()
        model.fit(*data, epochs=2, verbose=0, **STATEFUL_KW)
        return model

    tf_config.enable_op_determinism()  # the caller's own setting is left as it was
    try:
        assert_training_reproducible(train)
        assert tf_config.is_op_determinism_enabled()
    finally:
        tf_config.disable_op_determinism()


@pytest.mark.backends
def test_unseeded_numpy_shuffle_is_caught(
    data: tuple[np.ndarray, np.ndarray], global_state: Callable[[], Callable[[], None]]
) -> None:
    globals_kept = global_state()

    def train() -> keras.Model:
        return _train_unseeded(*data)

    with pytest.raises(RNNAssertionError) as info:
        assert_training_reproducible(train, runs=3)
    globals_kept()
    message = str(info.value)
    assert message.startswith(
        "train() does not reproduce under seed 0: run 2, run 3 of 3 differ from run 1."
    )
    assert "  run 2:" in message and "  run 3:" in message
    assert "model 'sequential" in message
    assert "first variable that differs: layer 'gru' (GRU(4)) 'kernel' [" in message
    assert "greatest abs diff" in message and ": run 1 " in message and ", run 3 " in message
    assert "np.random.default_rng() without a seed was called at test_fit.py:" in message
    assert " in _train_seeded:" in message
    assert "os.urandom" in message


def test_a_different_number_of_steps_is_named(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    calls: list[int] = []

    def train() -> keras.Model:
        calls.append(1)
        model = make_stateless()
        model.fit(x[: 8 * (len(calls) + 1)], y[: 8 * (len(calls) + 1)], batch_size=BATCH, verbose=0)
        return model

    with pytest.raises(
        RNNAssertionError, match=r"took a different number of steps \(2 in run 1, 3"
    ):
        assert_training_reproducible(train)


def test_fresh_models_per_call_is_what_reproducible_asks() -> None:
    """A model built outside train() is trained on: caught as the same object."""
    model = make_stateless()
    with pytest.raises(ValueError, match=r"train\(\) returned the same model object twice"):
        assert_training_reproducible(lambda: model)


# --------------------------------------------------------------------------- bad calls


def _uncompiled() -> keras.Model:
    return keras.Sequential([keras.Input((T, F)), keras.layers.LSTM(4)])


_SHARED = make_stateless()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"make_model": _SHARED}, TypeError, r"make_model must be a function.*lambda: build_model\(\)"),
        ({"make_model": 3}, TypeError, "make_model must be a function"),
        ({"make_model": lambda: "model"}, TypeError, r"make_model\(\) must return a Keras model"),
        ({"make_model": _uncompiled}, ValueError, r"make_model\(\) returned the uncompiled model"),
        ({"make_model": lambda: _SHARED}, ValueError, r"make_model\(\) returned the same model"),
        ({"epochs": 0}, ValueError, "epochs must be >= 1"),
        ({"epochs": 1.5}, TypeError, "epochs must be an int"),
        ({"epochs": True}, TypeError, "epochs must be an int"),
        ({"y": np.zeros((N - 1, 1))}, ValueError, "x and y must hold as many samples: x has 32, y has 31"),
        ({"x": [np.zeros((N, T, F)), np.zeros((N - 2, T, F))]}, ValueError, "x holds arrays of different lengths"),
        ({"x": None}, TypeError, "x must be an array"),
        ({"y": [1.0, 2.0]}, TypeError, r"y\[0\] must be an array"),
        ({"fit_kwargs": {"epochs": 3}}, ValueError, r"fit_kwargs must not set \['epochs'\]"),
        ({"fit_kwargs": {"initial_epoch": 1}}, ValueError, r"fit_kwargs must not set \['initial_epoch'\]"),
        ({"fit_kwargs": {"x": 1, "y": 2}}, ValueError, r"fit_kwargs must not set \['x', 'y'\]"),
        ({"fit_kwargs": [("batch_size", 8)]}, TypeError, "fit_kwargs must be a dict"),
        ({"fit_kwargs": {"callbacks": _EpochDecay()}}, TypeError, r"fit_kwargs\['callbacks'\] must be a list"),
        ({"reset_states": "yes"}, TypeError, "reset_states must be True or False"),
        ({"seed": -1}, ValueError, "seed must be in"),
        ({"seed": "0"}, TypeError, "seed must be an int"),
        ({"rtol": 1e-3}, ValueError, "rtol was given without atol"),
        ({"rtol": -1.0, "atol": 0.0}, ValueError, "rtol must be a finite number"),
    ],
    ids=lambda v: None,
)  # fmt: skip
def test_fit_equivalent_bad_calls(
    data: tuple[np.ndarray, np.ndarray], kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args = {"make_model": make_stateless, "x": data[0], "y": data[1], **kwargs}
    with pytest.raises(error, match=match):
        assert_fit_equivalent(args.pop("make_model"), args.pop("x"), args.pop("y"), **args)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"train": _SHARED}, TypeError, r"train must be a function.*lambda"),
        ({"train": None}, TypeError, "train must be a function"),
        ({"train": lambda: None}, TypeError, r"train\(\) must return the trained Keras model, got NoneType"),
        ({"train": lambda: (_SHARED, None)}, TypeError, r"train\(\) must return the trained Keras model, got tuple"),
        ({"runs": 1}, ValueError, "runs must be >= 2"),
        ({"runs": 2.0}, TypeError, "runs must be an int"),
        ({"seed": 2**32}, ValueError, "seed must be in"),
        ({"atol": 1e-3}, ValueError, "atol was given without rtol"),
    ],
)  # fmt: skip
def test_training_reproducible_bad_calls(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    args = {"train": make_stateless, **kwargs}
    with pytest.raises(error, match=match):
        assert_training_reproducible(args.pop("train"), **args)


# --------------------------------------------------------------------------- message builders


def _var(key: str, value: Any, kind: str = "weight") -> _Var:
    return _Var(key, kind, f"layer '{key}' (Dense(1)) 'kernel' [m/{key}/kernel]", np.asarray(value))


def test_compare_vars_reports_the_first_and_greatest() -> None:
    a = [_var("d0", [1.0, 2.0]), _var("d1", [[0.0, 1.0]]), _var("it", np.int64(5), "optimizer")]
    b = [_var("d0", [1.0, 2.0]), _var("d1", [[0.5, 1.0]]), _var("it", np.int64(6), "optimizer")]
    report = _compare_vars(a, b, None, None)
    assert [d.label.split("'")[1] for d in report.diffs] == ["d1", "it"]
    assert report.totals == {"weight": 2, "optimizer": 1}
    lines = _format_vars(report, "A", "B")
    text = "\n".join(lines)
    assert "variables that differ: 2 of 3 (weights 1 of 2, optimizer variables 1 of 1)" in text
    assert (
        "first variable that differs: layer 'd1' (Dense(1)) 'kernel' [m/d1/kernel], shape (1, 2)"
        in text
    )
    assert "greatest abs diff 0.5 at (0, 0): A 0, B 0.5; 1 of 2 values differ" in text
    # Greatest first: the integer step count (diff 1) before the kernel (0.5).
    table = lines[lines.index("  greatest differences:") + 2 :]
    assert table[0].split()[0] == "1" and "'it'" in table[0]


def test_compare_vars_tolerance_and_exact_integers() -> None:
    a = [_var("w", [1.0]), _var("i", np.int64(3), "optimizer")]
    b = [_var("w", [1.0 + 1e-7]), _var("i", np.int64(3), "optimizer")]
    assert _compare_vars(a, b, None, None).ok  # float32 default allows 1e-7
    assert not _compare_vars(a, b, 0.0, 0.0).ok  # bitwise asked


def test_compare_vars_pairs_by_position_when_paths_differ() -> None:
    a = [_var("lstm", [1.0]), _var("dense", [2.0])]
    b = [_var("lstm_7", [1.0]), _var("dense_7", [2.5])]
    report = _compare_vars(a, b, None, None)
    assert [d.label for d in report.diffs] == [a[1].label]
    short = _compare_vars(a, b[:1], None, None)
    assert short.structure == ["2 weight variables in one run, 1 in the other"]


def test_variable_table_is_capped() -> None:
    a = [_var(f"d{i}", [0.0]) for i in range(13)]
    b = [_var(f"d{i}", [float(i + 1)]) for i in range(13)]
    text = "\n".join(_format_vars(_compare_vars(a, b, None, None), "A", "B"))
    assert "(first 10 of 13 differing variables, greatest first)" in text
    assert "'d12'" in text and "'d2'" not in text


def test_history_comparison() -> None:
    tol = Tolerance(1.3e-6, 1e-5)
    a = {"loss": [1.0, 0.5, 0.25], "mae": [1.0, 1.0, 1.0], "val_loss": [2.0, 2.0, 2.0]}
    b = {"loss": [1.0, 0.5, 0.3], "mae": [1.0, 0.9, 1.0]}
    diffs, only = _compare_history(a, b, tol)
    assert [(d.key, d.epoch) for d in diffs] == [("loss", 2), ("mae", 1)]
    assert only == ["'val_loss' only in A"]
    text = "\n".join(_format_losses(diffs, only, "one", "loop", tol))
    assert "first epoch whose loss differs: epoch 3/3: one 0.25, loop 0.3" in text
    assert "'mae' differs too, first at epoch 2: one 1, loop 0.9" in text
    assert "history keys that differ: 'val_loss' only in A (A = one, B = loop)" in text
    assert _compare_history(a, a, tol) == ([], [])
    # validation_freq: a key with fewer values in one run
    _, other = _compare_history({"val_loss": [1.0, 2.0]}, {"val_loss": [1.0]}, tol)
    assert other == ["'val_loss' has 2 values in A, 1 in B"]


def test_fit_causes_for_stateful_runs() -> None:
    def causes(**kw: Any) -> str:
        args: dict[str, Any] = dict(
            fit_kwargs={}, callbacks=[], stateful=["lstm"], reset=False, weights_differ=True,
            states_differ=True, repeat=None, unseeded=[], seed=0,
        )  # fmt: skip
        return "\n".join(_fit_causes(**{**args, **kw}))

    text = causes()
    assert "shuffle was not given" in text and "a stateful model should not shuffle" in text
    assert "stateful layers ['lstm'] carry their states" in text
    assert "Compare with reset_states=True" in text
    assert "carry their states" not in causes(reset=True)
    assert "shuffle" not in causes(fit_kwargs={"shuffle": False})
    assert "should not shuffle" not in causes(stateful=[])
    only_states = causes(weights_differ=False, fit_kwargs={"shuffle": False})
    assert only_states.startswith("the weights agree but the RNN states differ")
    assert "carry their states" not in only_states
    assert causes(unseeded=["a.py:3 in f"]).count("a.py:3 in f") == 1


# --------------------------------------------------------------------------- end to end


def test_a_user_test_file_passes_and_fails_with_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import os
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import numpy as np
        from pytest_rnn import assert_fit_equivalent

        x = np.random.default_rng(0).normal(size=(16, 3, 2)).astype("float32")
        y = x.sum(axis=(1, 2))[:, None]

        def make():
            model = keras.Sequential(
                [keras.Input((3, 2)), keras.layers.SimpleRNN(4), keras.layers.Dense(1)]
            )
            model.compile(optimizer="sgd", loss="mse")
            return model

        def test_plain_loop():
            assert_fit_equivalent(make, x, y, fit_kwargs={"batch_size": 8})

        def test_epoch_schedule():
            schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
            assert_fit_equivalent(make, x, y, fit_kwargs={"batch_size": 8, "callbacks": [schedule]})
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*RNNAssertionError: One fit(epochs=2) and 2 x fit(epochs=1) train differently.",
            "*first epoch whose loss differs: epoch 2/2*",
            "*(LearningRateScheduler) is called with the epoch index*initial_epoch=i*",
        ]
    )
    assert "pytest_rnn/_fit/" not in result.stdout.str()  # __tracebackhide__: the user's line, not ours


# --------------------------------------------------------------------------- the session seed


def _first_draw(seed: int) -> float:
    """numpy's first global draw after ``keras.utils.set_random_seed(seed)``."""
    return float(np.random.RandomState(seed).random_sample())


def test_training_reproducible_without_seed_takes_the_session_seed(
    data: tuple[np.ndarray, np.ndarray], session_seed: int
) -> None:
    draws: list[float] = []

    def train() -> keras.Model:
        draws.append(float(np.random.random()))
        return _train_seeded(*data)

    assert_training_reproducible(train)
    assert draws == [_first_draw(session_seed)] * 2
    draws.clear()
    assert_training_reproducible(train, seed=0)  # an explicit seed wins over the session's
    assert draws == [_first_draw(0)] * 2


def test_fit_equivalent_without_seed_takes_the_session_seed(
    data: tuple[np.ndarray, np.ndarray], session_seed: int
) -> None:
    draws: list[float] = []

    def make() -> keras.Model:
        draws.append(float(np.random.random()))
        return make_stateless()

    assert_fit_equivalent(make, *data, epochs=1, fit_kwargs={"batch_size": BATCH})
    assert draws and set(draws) == {_first_draw(session_seed)}



# --------------------------------------------------------------------------- tf.data


def _dataset(data: tuple[np.ndarray, np.ndarray], *, shuffle: bool = True) -> Any:
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(data)
    return (dataset.shuffle(N) if shuffle else dataset).batch(BATCH)


def test_fit_equivalent_takes_a_function_building_a_shuffling_dataset(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    assert_fit_equivalent(make_stateless, lambda: _dataset(data), None, epochs=3)
    assert "fit" not in vars(keras.Model)


def test_one_shuffling_dataset_both_runs_iterate_is_named(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    with pytest.raises(RNNAssertionError) as info:
        assert_fit_equivalent(make_stateless, _dataset(data), None, epochs=2)
    text = str(info.value)
    assert "; x tf.data.Dataset (TensorSpec(shape=(None, 4, 2)" in text
    assert "fit_kwargs {'verbose': 0, 'shuffle': False}" in text
    assert (
        "likely causes:\n    - x is one tf.data.Dataset object that both runs iterate: if it "
        "shuffles, every pass over it draws the next order from the dataset's own seed stream "
        "(seeded or not), so a later run trains on other orders than the first. Pass the "
        "function that builds it instead (x=make_dataset)" in text
    )
    assert "does not even repeat itself" not in text  # no third run on a dataset that moved on
    # The same object without a shuffle orders every pass alike: nothing to report.
    assert_fit_equivalent(make_stateless, _dataset(data, shuffle=False), None, epochs=2)


def test_dataset_arguments_are_checked(data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"^y must be None when x is a function building a tf"):
        assert_fit_equivalent(make_stateless, lambda: _dataset(data), data[1])
    with pytest.raises(ValueError, match=r"^y must be None when x is a tf\.data\.Dataset"):
        assert_fit_equivalent(make_stateless, _dataset(data), data[1])
    with pytest.raises(
        TypeError, match=r"^x\(\) must return a tf\.data\.Dataset yielding .* got tuple$"
    ):
        assert_fit_equivalent(make_stateless, lambda: data, None)
    with pytest.raises(TypeError, match=r"generators are not taken \(a tf\.data\.Dataset is\)"):
        assert_fit_equivalent(make_stateless, [iter(data[0])], data[1])


def test_training_reproducible_names_one_dataset_shared_by_every_run(
    data: tuple[np.ndarray, np.ndarray],
) -> None:
    shared = _dataset(data)

    def train_outside() -> keras.Model:
        model = make_stateless()
        model.fit(shared, epochs=1, verbose=0, shuffle=False)
        return model

    def train_inside() -> keras.Model:
        model = make_stateless()
        model.fit(_dataset(data), epochs=1, verbose=0, shuffle=False)
        return model

    with pytest.raises(RNNAssertionError) as info:
        assert_training_reproducible(train_outside)
    assert (
        "where the randomness may come from:\n    - every run of train() fits on the same "
        "tf.data.Dataset object (built outside train()): if it shuffles" in str(info.value)
    )
    assert "Build the dataset inside train(), after the seed is set" in str(info.value)
    assert "fit" not in vars(keras.Model)  # the watch is gone, on failure too
    assert_training_reproducible(train_inside)


@pytest.mark.backends
def test_what_keras_cannot_fit_on_a_backend_is_said(
    data: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_rnn._fit import runs

    monkeypatch.setattr(runs, "_WARNED", set())
    backend = keras.backend.backend()

    def check() -> None:
        assert_fit_equivalent(make_stateful, *data, epochs=2, fit_kwargs=STATEFUL_KW)

    if backend == "torch":  # in-place state assignment breaks autograd: said, not bare
        with pytest.raises(RuntimeError, match=r"^Keras cannot fit the stateful RNN layers \["):
            check()
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2 if backend == "jax" else 1):  # said once per process
            check()
    said = [str(w.message) for w in caught if "all-zero states after fit()" in str(w.message)]
    if backend == "jax":
        assert len(said) == 1
        assert said[0].startswith("pytest-rnn: the stateful RNN layers ['")
        assert "run it on TensorFlow for that" in said[0]
    else:
        assert said == []  # TensorFlow carries them: nothing to say
