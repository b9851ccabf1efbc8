"""keras-io's weather forecasting windows: ``timeseries_dataset_from_array``, checked.

The example forecasts the temperature ``future`` positions after a window of
``past`` positions, sampled every ``step``: the dataset is built with
``keras.utils.timeseries_dataset_from_array(x, y, sequence_length=past //
step, sampling_rate=step)`` where ``y`` is the temperature column shifted by
``past + future``. Two mistakes in such code train happily and raise
nothing: a target not shifted past the window (the model is shown its
answer), and features normalised with statistics computed over the whole
series, future included, inside the windowing.

``assert_windows_causal`` takes ``make_windows`` returning the dataset as the
example builds it, finds which series positions each window's inputs and
target read, and names the mistake. A windowing that only copies values is
read in 5 calls; the normalised one is measured by replacing positions one
by one (``trials=1`` here: one replacement per position is enough to see a
statistic that reaches every window).

Run: ``pytest examples/test_keras_io_weather_windows.py -s`` to see the messages.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from typing import Any

import keras
import numpy as np
import pytest

from pytest_rnn import RNNAssertionError, assert_windows_causal

PAST, FUTURE, STEP = 12, 3, 2  # keras-io: 720, 72, 6 (hourly samples of 10-minute data)
TEMPERATURE = 1  # the target column


def weather(length: int = 60, seed: int = 0) -> np.ndarray:
    """A small stand-in for the Jena climate features: ``(length, 3)`` float32."""
    t = np.arange(length)
    rng = np.random.default_rng(seed)
    daily = np.stack([np.sin(t / 4.0), np.cos(t / 5.0), np.sin(t / 7.0)], axis=1)
    return (daily + 0.1 * rng.normal(size=daily.shape)).astype("float32")


def make_windows(series: np.ndarray, *, target_start: int = PAST + FUTURE) -> Any:
    """The example's dataset: windows of PAST positions, every STEP, and the temperature after."""
    x = series[: len(series) - target_start]
    y = series[target_start:, TEMPERATURE]
    return keras.utils.timeseries_dataset_from_array(
        x, y, sequence_length=PAST // STEP, sampling_rate=STEP, batch_size=16, shuffle=False
    )


def test_correct_windows_pass() -> None:
    assert_windows_causal(make_windows, weather())


def test_a_target_that_is_not_shifted_past_the_window_is_caught() -> None:
    # y shifted by FUTURE only: the target lies inside the input window.
    with pytest.raises(RNNAssertionError) as info:
        assert_windows_causal(lambda s: make_windows(s, target_start=FUTURE), weather())
    print(info.value)
    message = str(info.value)
    assert (
        "window 0: inputs read positions 0, 2, 4, 6, 8, 10; target reads position 3, inside the "
        "span of the inputs (0-10)" in message
    )
    assert "the target lies inside the input window" in message


def test_statistics_of_the_whole_series_are_caught_and_split_statistics_pass() -> None:
    series = weather(28)

    def normalised_inside(s: np.ndarray) -> Any:  # mean and std of every position, future too
        return make_windows((s - s.mean(axis=0)) / s.std(axis=0))

    with pytest.raises(RNNAssertionError) as info:
        assert_windows_causal(normalised_inside, series, trials=1)
    print(info.value)
    message = str(info.value)
    assert "target reads positions 0-27, every position of the series" in message
    assert "a statistic of the whole series" in message

    # The example's way: statistics of the training split, computed once, outside.
    train = series[:20]
    mean, std = train.mean(axis=0), train.std(axis=0)
    assert_windows_causal(lambda s: make_windows((s - mean) / std), series, trials=1)
