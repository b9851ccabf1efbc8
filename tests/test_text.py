"""Tests for pytest_rnn._core.text: the message fragments, on plain values and numpy arrays.

Every expected string is the one the messages print today; no Keras is imported.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pytest_rnn._core.text import (
    GRID_STEPS,
    MAX_LINES,
    STR_STEPS,
    count_range,
    describe_kwargs,
    describe_values,
    error_line,
    fmt_shape,
    grid,
    plural,
    ranges,
    shapes,
    steps_word,
)


@pytest.mark.parametrize(
    ("n", "word", "text"),
    [
        (0, "trial", "0 trials"),
        (1, "trial", "1 trial"),
        (2, "trial", "2 trials"),
        (1, "future step", "1 future step"),
        (3, "input position", "3 input positions"),
    ],
)
def test_plural(n: int, word: str, text: str) -> None:
    assert plural(n, word) == text


@pytest.mark.parametrize(
    ("steps", "text"),
    [
        ([], ""),
        ([3], "3"),
        ([0, 1, 2, 5], "0-2, 5"),
        ([5, 0, 2, 1], "0-2, 5"),
        ([1, 3, 4, 5, 9, 10], "1, 3-5, 9-10"),
        (np.array([2, 3]), "2-3"),
    ],
)
def test_ranges(steps: list[int], text: str) -> None:
    assert ranges(steps) == text


def test_steps_word() -> None:
    assert steps_word([3]) == "step 3"
    assert steps_word([0, 1, 2, 5]) == "steps 0-2, 5"
    assert steps_word([0, 1, 2, 3, 4], "position") == "positions 0-4"
    assert steps_word([4], "position") == "position 4"


def test_count_range() -> None:
    assert count_range([3, 3], 8) == "3/8"
    assert count_range([1, 3, 2], 8) == "1-3/8"


def test_grid_small() -> None:
    symbols = np.array([["#", "."], ["#", "X"]])
    assert grid(symbols, "label", GRID_STEPS) == [
        "  label \\ input  0 1",
        "              0  # .",
        "              1  # X",
    ]


def test_grid_cut_after_cap() -> None:
    symbols = np.full((30, 30), ".")
    lines = grid(symbols, "output", 12)
    assert len(lines) == 1 + 12 + 1
    assert lines[0] == "  output \\ input  " + " ".join(f"{c:>2}" for c in range(12))
    assert lines[1] == "               0   " + "  ".join(["."] * 12)
    assert lines[-1] == "  (first 12 of 30 steps shown)"


def test_caps() -> None:
    assert (GRID_STEPS, STR_STEPS, MAX_LINES) == (12, 24, 10)


@pytest.mark.parametrize(
    ("shape", "text"),
    [((), "()"), ((4,), "(4,)"), ((None, 3), "(None, 3)"), ((2, 5, 1), "(2, 5, 1)")],
)
def test_fmt_shape(shape: tuple[int | None, ...], text: str) -> None:
    assert fmt_shape(shape) == text
    if None not in shape:
        assert fmt_shape(shape) == str(shape)


def test_describe_values() -> None:
    assert describe_values(np.full((4, 1), -1)) == "-1"
    assert describe_values(np.full((4, 1), 0.5, dtype="float32")) == "0.5"
    assert describe_values(np.array([1.0 / 3])) == "0.3333"
    assert describe_values(np.arange(4.0).reshape(4, 1)) == "array of shape (4, 1)"
    assert describe_values(np.arange(3)) == "array of shape (3,)"
    assert describe_values(np.zeros((0, 2))) == "array of shape (0, 2)"


def test_shapes() -> None:
    assert shapes(np.zeros((8, 4, 2))) == "(8, 4, 2)"
    assert shapes([np.zeros((8, 4)), np.zeros(8)]) == "[(8, 4), (8,)]"
    assert shapes({"b": np.zeros(3), "a": np.zeros((2, 1))}) == "[(2, 1), (3,)]"


def test_describe_kwargs() -> None:
    class EarlyStopping:
        pass

    kwargs = {
        "batch_size": 8,
        "shuffle": False,
        "validation_split": 0.25,
        "name": "run",
        "class_weight": None,
        "callbacks": [EarlyStopping()],
        "sample_weight": np.ones(3),
    }
    assert describe_kwargs(kwargs) == (
        "{'batch_size': 8, 'shuffle': False, 'validation_split': 0.25, 'name': 'run', "
        "'class_weight': None, 'callbacks': [EarlyStopping], 'sample_weight': <ndarray>}"
    )
    assert describe_kwargs({}) == "{}"


def test_importing_text_loads_no_numpy() -> None:
    """The plugin imports ``_report`` at start-up, and ``_report`` imports this module."""
    code = (
        "import json, sys\n"
        "import pytest_rnn._core.text, pytest_rnn._report\n"
        "print(json.dumps('numpy' in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) is False


# TensorFlow's runtime errors announce themselves on the first line; the reason comes later.
GRAPH_ERROR = """Graph execution error:

Detected at node functional_1/reshape/Reshape defined at (most recent call last):
  File "/x/site-packages/keras/src/layers/reshaping/reshape.py", line 52, in call

Input to reshape is a tensor with 12 values, but the requested shape has 6
\t [[{{node functional_1/reshape/Reshape}}]] [Op:__inference_body_1234]"""


@pytest.mark.parametrize(
    "error, line",
    [
        (
            ValueError("When using `stateful=True` in a RNN, the batch size must be static.\nmore"),
            "ValueError: When using `stateful=True` in a RNN, the batch size must be static.",
        ),
        (
            RuntimeError(GRAPH_ERROR),
            "RuntimeError: Graph execution error: Input to reshape is a tensor with 12 values, "
            "but the requested shape has 6",
        ),
        (KeyError(), "KeyError"),
        (ValueError("x" * 400), "ValueError: " + "x" * 297 + "..."),
    ],
    ids=["first-line", "graph-execution", "empty", "long"],
)
def test_error_line_quotes_the_reason(error: BaseException, line: str) -> None:
    assert error_line(error) == line


def test_error_line_of_a_real_tensorflow_runtime_error() -> None:
    tf = pytest.importorskip("tensorflow")

    @tf.function(input_signature=[tf.TensorSpec([None, 3])])  # the length is known at run time
    def pick(t: object) -> object:
        return tf.gather(t, [tf.shape(t)[0] + 6])

    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        pick(tf.zeros([4, 3]))
    line = error_line(info.value)
    assert line.startswith("InvalidArgumentError: Graph execution error: ")
    assert "indices[0] = 10 is not in [0, 4)" in line and "[Op:" not in line

