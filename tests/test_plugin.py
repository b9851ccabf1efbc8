"""End-to-end tests of the pytest plugin: real pytest sessions run with ``pytester``.

Sessions that only read options run in-process (fast). Sessions that import
TensorFlow, or that need a fresh Hypothesis profile, run in a subprocess; those
are few, and each generated file holds several cases.
"""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest

from pytest_rnn import _config, _report

pytest_plugins = ["pytester"]  # also enabled by `-p pytester` in addopts


@pytest.fixture(autouse=True)
def keep_settings() -> Iterator[None]:
    """In-process sessions write ``_config.settings`` and load a Hypothesis profile.

    Each test starts from the defaults; the outer session's values come back after.
    """
    saved = (_config.settings.rtol, _config.settings.atol, _config.settings.seed)
    profile = hypothesis.settings.get_current_profile_name()
    _config.settings.rtol = _config.settings.atol = None
    _config.settings.seed = _config.DEFAULT_SEED
    try:
        yield
    finally:
        _config.settings.rtol, _config.settings.atol, _config.settings.seed = saved
        hypothesis.settings.load_profile(profile)


def ini(**values: object) -> str:
    return "[pytest]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())


# --- options, ini values and the report header (in-process) ------------------------

SETTINGS_TEST = """
from pytest_rnn import _config
from pytest_rnn._core.compare import Tolerance, resolve_tolerance

def test_settings_seen_by_tests():
    s = _config.settings
    assert (s.rtol, s.atol, s.seed) == {expected!r}
    if s.rtol is not None:
        assert resolve_tolerance(None, None, "float64") == Tolerance(s.rtol, s.atol)
"""


@pytest.mark.parametrize(
    ("args", "ini_text", "expected", "header"),
    [
        ((), None, (None, None, 0), "pytest-rnn: seed=0 (--rnn-seed), tolerances by dtype"),
        (("--rnn-seed", "7"), None, (None, None, 7), "pytest-rnn: seed=7 (--rnn-seed), *"),
        ((), ini(rnn_seed=5), (None, None, 5), "pytest-rnn: seed=5 (--rnn-seed), *"),
        (
            ("--rnn-rtol", "0.1", "--rnn-atol", "0.2"),
            None,
            (0.1, 0.2, 0),
            "pytest-rnn: seed=0 (--rnn-seed), rtol=0.1, atol=0.2",
        ),
        (
            (),
            ini(rnn_rtol=0.1, rnn_atol=0.2),
            (0.1, 0.2, 0),
            "pytest-rnn: seed=0 (--rnn-seed), rtol=0.1, atol=0.2",
        ),
        (
            ("--rnn-seed", "7", "--rnn-rtol", "0.3", "--rnn-atol", "0.4"),
            ini(rnn_seed=5, rnn_rtol=0.1, rnn_atol=0.2),
            (0.3, 0.4, 7),
            "pytest-rnn: seed=7 (--rnn-seed), rtol=0.3, atol=0.4",
        ),
    ],
    ids=["defaults", "seed-option", "seed-ini", "tol-options", "tol-ini", "options-beat-ini"],
)
def test_options_and_ini_reach_header_and_settings(
    pytester: pytest.Pytester,
    args: tuple[str, ...],
    ini_text: str | None,
    expected: tuple[float | None, float | None, int],
    header: str,
) -> None:
    if ini_text is not None:
        pytester.makeini(ini_text)
    pytester.makepyfile(SETTINGS_TEST.format(expected=expected))
    result = pytester.runpytest_inprocess(*args)
    result.stdout.fnmatch_lines([header])
    result.assert_outcomes(passed=1)


def test_session_settings_do_not_outlive_the_session(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_ok():\n    pass")
    result = pytester.runpytest_inprocess("--rnn-rtol", "0.1", "--rnn-atol", "0.2")
    result.assert_outcomes(passed=1)
    s = _config.settings
    assert (s.rtol, s.atol, s.seed) == (None, None, _config.DEFAULT_SEED)


# Values that are wrong: (args, ini text, a fragment of the error).
BAD_VALUES = {
    "only-rtol": (("--rnn-rtol", "0.1"), None, "--rnn-rtol and --rnn-atol"),
    "only-atol": (("--rnn-atol", "0.2"), None, "--rnn-rtol and --rnn-atol"),
    "only-rtol-ini": ((), ini(rnn_rtol=0.1), "--rnn-rtol and --rnn-atol"),
    "nan-ini": ((), ini(rnn_rtol="abc", rnn_atol=0.2), "rnn_rtol) must be a number, got 'abc'"),
    "negative": (("--rnn-rtol=-1", "--rnn-atol", "0"), None, "must be a finite number >= 0"),
    "seed-ini": ((), ini(rnn_seed="x"), "--rnn-seed (ini rnn_seed) must be an integer"),
}


@pytest.mark.parametrize(("args", "ini_text", "fragment"), BAD_VALUES.values(), ids=BAD_VALUES)
def test_bad_values_are_usage_errors_that_stop_the_session(
    pytester: pytest.Pytester, args: tuple[str, ...], ini_text: str | None, fragment: str
) -> None:
    if ini_text is not None:
        pytester.makeini(ini_text)
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError")
    result = pytester.runpytest_inprocess(*args)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fragment in output
    assert "INTERNALERROR" not in output
    assert "test_never_runs" not in output  # stopped before collecting
    result.stderr.fnmatch_lines([f"ERROR: *{fragment}*"])
    # The refused inner session must not switch off this session's assertion records.
    assert _report.recorder.enabled


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--rnn-rtol", "abc", "--rnn-atol", "0.2"), "argument --rnn-rtol: invalid float value"),
        (("--rnn-rtol", "0.1", "--rnn-atol", "x"), "argument --rnn-atol: invalid float value"),
        (("--rnn-seed", "1.5"), "argument --rnn-seed: invalid int value"),
    ],
)
def test_non_numbers_on_the_command_line_are_usage_errors(
    pytester: pytest.Pytester, args: tuple[str, ...], fragment: str
) -> None:
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError")
    result = pytester.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fragment in result.stderr.str()


# --- Hypothesis profile (subprocess: the profile is process-wide) -------------------

SLOW_GIVEN = """
import sys
import time

from hypothesis import Phase, given, settings, strategies as st


@settings(max_examples=3, phases=[Phase.generate], database=None)
@given(st.integers(0, 2))
def test_slow_examples(i):
    time.sleep(0.3)  # over Hypothesis' default 200 ms deadline


def test_plugin_loaded_no_backend():
    assert {"tensorflow", "keras", "jax", "torch"}.isdisjoint(sys.modules)
"""


def test_hypothesis_profile_has_no_deadline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SLOW_GIVEN)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("args", "ini_text"),
    [(("--rnn-no-hypothesis-profile",), None), ((), ini(rnn_hypothesis_profile="false"))],
    ids=["option", "ini"],
)
def test_hypothesis_profile_can_be_switched_off(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    ini_text: str | None,
) -> None:
    # With CI set, Hypothesis itself picks its "ci" profile (no deadline either).
    for name in ("CI", "GITHUB_ACTIONS", "TF_BUILD", "GITLAB_CI", "BUILDKITE", "CIRCLECI"):
        monkeypatch.delenv(name, raising=False)
    if ini_text is not None:
        pytester.makeini(ini_text)
    pytester.makepyfile(SLOW_GIVEN)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["E *.DeadlineExceeded: Test took *", "FAILED *::test_slow_examples - *"]
    )


@pytest.mark.parametrize(
    ("conftest", "args"),
    [
        (
            'settings.register_profile("strict", deadline=100)\nsettings.load_profile("strict")',
            (),
        ),
        ('settings.register_profile("strict", deadline=100)', ("--hypothesis-profile", "strict")),
    ],
    ids=["conftest-load_profile", "hypothesis-profile-option"],
)
def test_users_own_hypothesis_profile_wins(
    pytester: pytest.Pytester, conftest: str, args: tuple[str, ...]
) -> None:
    pytester.makeconftest("from hypothesis import settings\n" + conftest)
    pytester.makepyfile(SLOW_GIVEN)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=1, failed=1)  # the user's 100 ms deadline applies


# --- fixtures and assertions in user test files (subprocess: TensorFlow) -----------

PREAMBLE = """
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import random

import keras
import numpy as np
"""

USER_TESTS = (
    PREAMBLE
    + """
import pytest_rnn


def make_model(broken):
    layers = [keras.Input(shape=(None, 2))]
    if broken:  # reads one future step: cannot stream
        layers.append(keras.layers.Conv1D(2, 3, padding="same", name="conv1d"))
    layers += [keras.layers.LSTM(4, return_sequences=True), keras.layers.Dense(1)]
    return keras.Sequential(layers, name="seq")


X = np.random.default_rng(0).normal(size=(2, 6, 2)).astype("float32")


def test_correct_model_streams():
    pytest_rnn.assert_stateful_equals_batch(make_model(False), X)


def test_broken_model_streams():
    pytest_rnn.assert_stateful_equals_batch(make_model(True), X)
"""
)

# Order matters here: each test relies on the one before it (no xdist for this file).
FIXTURE_TESTS = (
    PREAMBLE
    + """
SEEN = {}


def test_1_set_global_state():
    np.random.seed(123)
    random.seed(123)


def test_2_seed_fixture(rnn_seed):
    assert rnn_seed == 0
    SEEN["draw"] = np.random.rand()
    assert SEEN["draw"] == np.random.RandomState(0).rand()
    dense = keras.layers.Dense(3)
    dense.build((None, 2))
    SEEN["kernel"] = dense.get_weights()[0]
    random.random()


def test_3_seed_fixture_again(rnn_seed):
    assert np.random.rand() == SEEN["draw"]
    dense = keras.layers.Dense(3)
    dense.build((None, 2))
    np.testing.assert_array_equal(dense.get_weights()[0], SEEN["kernel"])


def test_4_global_state_restored():
    assert np.random.rand() == np.random.RandomState(123).rand()
    assert random.random() == random.Random(123).random()


def test_5_names_accumulate_without_clean_session():
    keras.layers.Dense(1)
    assert keras.layers.Dense(1).name != "dense"


def test_6_clean_session(rnn_clean_session):
    assert keras.layers.Dense(1).name == "dense"
    assert keras.layers.Dense(1).name == "dense_1"


def test_7_clean_session_clears_after_the_test():
    assert keras.layers.Dense(1).name == "dense"
"""
)

SEED_7_TEST = (
    PREAMBLE
    + """
def test_seed_reaches_worker(rnn_seed):
    assert rnn_seed == 7
    assert np.random.rand() == np.random.RandomState(7).rand()
"""
)


def check_user_tests(result: pytest.RunResult) -> None:
    """The correct model passes; the broken one fails with the time-aware report."""
    result.stdout.fnmatch_lines(["FAILED test_user.py::test_broken_model_streams - *"])
    result.stdout.fnmatch_lines(
        [
            "E * Streamed output differs from the full-sequence output.",
            "E *model 'seq' (Conv1D*LSTM*Dense*",
            "E *first mismatch: step *, sample *",
            "E *first layer that differs: 'conv1d'*",
        ]
    )
    assert "test_correct_model_streams FAILED" not in result.stdout.str()
    assert "FAILED test_user.py::test_correct_model_streams" not in result.stdout.str()


def test_fixtures_and_user_files_serial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS, test_fixtures=FIXTURE_TESTS)
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines(["pytest-rnn: seed=0 (--rnn-seed), tolerances by dtype"])
    result.assert_outcomes(passed=8, failed=1)
    check_user_tests(result)


def test_user_files_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS, test_seed=SEED_7_TEST)
    result = pytester.runpytest_subprocess("-n", "2", "--rnn-seed", "7")
    result.stdout.fnmatch_lines(["pytest-rnn: seed=7 (--rnn-seed), tolerances by dtype"])
    result.stdout.fnmatch_lines(["created: 2/2 workers"])
    result.assert_outcomes(passed=2, failed=1)
    check_user_tests(result)
