"""End-to-end tests of the pytest plugin: real pytest sessions run with ``pytester``.

Sessions run in-process (fast: a subprocess pays about 8 CPU-seconds to import
TensorFlow, which this process has imported already) unless they need a fresh
Hypothesis profile; those are few, and each generated file holds several cases.
The xdist session is in tests/test_report.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

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


# --- the public exception name in tracebacks (in-process) ---------------------------

RAISES_TEST = """
import pickle

import pytest_rnn


def test_fails():
    error = pytest_rnn.RNNAssertionError("streamed output differs")
    assert repr(error) == "RNNAssertionError('streamed output differs')"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is pytest_rnn.RNNAssertionError and copy.args == error.args
    raise error
"""


@pytest.mark.parametrize("tb", ["auto", "short", "line", "native"])
def test_tracebacks_name_the_public_exception(pytester: pytest.Pytester, tb: str) -> None:
    pytester.makepyfile(test_raises=RAISES_TEST)
    result = pytester.runpytest_inprocess(f"--tb={tb}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest_rnn.RNNAssertionError: streamed output differs"])
    assert "_errors" not in result.stdout.str()


# --- typed ini values: TOML numbers (pytest >= 9 native TOML), ini strings ---------

NATIVE_TOML = pytest.mark.skipif(
    pytest.version_tuple[:2] < (9, 0), reason="native TOML configuration needs pytest >= 9"
)
TOML_NUMBERS = "rnn_seed = 3\nrnn_rtol = 1e-4\nrnn_atol = 1e-6\n"


@NATIVE_TOML
@pytest.mark.parametrize(
    ("file", "table", "values", "expected"),
    [
        ("pytest.toml", "[pytest]", TOML_NUMBERS, (1e-4, 1e-6, 3)),
        ("pyproject.toml", "[tool.pytest]", TOML_NUMBERS, (1e-4, 1e-6, 3)),
        ("pytest.toml", "[pytest]", 'rnn_seed = 4\nrnn_rtol = 1\nrnn_atol = "0.5"\n', (1, 0.5, 4)),
        ("pytest.toml", "[pytest]", 'rnn_seed = "6"\n', (None, None, 6)),
    ],
    ids=["pytest.toml", "pyproject-tool.pytest", "int-for-float-and-string", "string-seed"],
)
def test_toml_numbers_and_strings_reach_settings(
    pytester: pytest.Pytester, file: str, table: str, values: str, expected: tuple[Any, ...]
) -> None:
    (pytester.path / file).write_text(f"{table}\n{values}")
    pytester.makepyfile(SETTINGS_TEST.format(expected=expected))
    result = pytester.runpytest_inprocess()
    result.stdout.fnmatch_lines([f"pytest-rnn: seed={expected[2]} (--rnn-seed), *"])
    result.assert_outcomes(passed=1)


@NATIVE_TOML
@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ("rnn_seed = 1.5\n", "config option 'rnn_seed' expects one of int | str"),
        ('rnn_seed = "x"\n', "--rnn-seed (ini rnn_seed) must be an integer, got 'x'"),
        ("rnn_rtol = -1.0\nrnn_atol = 0\n", "rnn_rtol) must be a finite number >= 0, got '-1.0'"),
    ],
    ids=["float-seed", "word-seed", "negative-rtol"],
)
def test_bad_toml_values_are_usage_errors(
    pytester: pytest.Pytester, values: str, fragment: str
) -> None:
    (pytester.path / "pytest.toml").write_text(f"[pytest]\n{values}")
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError")
    result = pytester.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: *{fragment}*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.mark.parametrize(
    ("version", "expected"),
    [((7, 0, 0), "string"), ((8, 3, 5), "string"), ((8, 4, 0), "int"), ((9, 1, 2), "int")],
)
def test_ini_type_follows_the_running_pytest(
    monkeypatch: pytest.MonkeyPatch, version: tuple[int, ...], expected: str
) -> None:
    from pytest_rnn import plugin

    monkeypatch.setattr(pytest, "version_tuple", version)
    assert plugin._ini_type("int") == expected
    assert plugin._ini_type("float") == expected.replace("int", "float")


def test_ini_type_is_a_union_with_str_on_pytest_9_2() -> None:
    from pytest_rnn import plugin

    if pytest.version_tuple[:2] < (9, 2):  # the lowest-versions leg of .ci/run
        assert plugin._ini_type("int") in ("int", "string")
        return
    assert plugin._ini_type("int") == (int | str)
    assert plugin._ini_type("float") == (float | str)


@NATIVE_TOML
@pytest.mark.parametrize(
    ("version", "ini_file", "text", "outcome"),
    [
        # pytest 9.0-9.1: the "int"/"float" tags take TOML numbers and ini strings...
        ((9, 1, 0), "pytest.toml", "[pytest]\n" + TOML_NUMBERS, "passed"),
        ((9, 1, 0), "pytest.ini", "[pytest]\n" + TOML_NUMBERS, "passed"),
        # ...and a bad ini string is a usage error (no internal error).
        ((9, 1, 0), "pytest.ini", "[pytest]\nrnn_seed = x\n", "*invalid literal for int()*'x'"),
        # Registered as a plain string (pytest < 8.4), a TOML number is refused:
        # what the typed registration avoids.
        ((8, 3, 5), "pytest.toml", "[pytest]\n" + TOML_NUMBERS, "*expects a string, got int*"),
        ((8, 3, 5), "pytest.ini", "[pytest]\n" + TOML_NUMBERS, "passed"),
    ],
    ids=["tags-toml", "tags-ini", "tags-bad-ini", "string-toml-refused", "string-ini"],
)
def test_each_registration_on_this_pytest(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    version: tuple[int, ...],
    ini_file: str,
    text: str,
    outcome: str,
) -> None:
    monkeypatch.setattr(pytest, "version_tuple", version)
    (pytester.path / ini_file).write_text(text)
    pytester.makepyfile(SETTINGS_TEST.format(expected=(1e-4, 1e-6, 3)))
    result = pytester.runpytest_inprocess()
    if outcome == "passed":
        result.assert_outcomes(passed=1)
    else:
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"ERROR: {outcome}"])


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


# Prints the settings every @given test of the session starts from.
PROFILE_SEEN = """
from hypothesis import settings


def test_profile_seen():
    print(f"PROFILE deadline={settings.default.deadline}", end=" ")
    print(f"suppressed={sorted(c.name for c in settings.default.suppress_health_check)}")
"""

CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "TF_BUILD", "GITLAB_CI", "BUILDKITE", "CIRCLECI")


def _slow_given_session(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    ini_text: str | None,
) -> pytest.RunResult:
    """A session of SLOW_GIVEN and PROFILE_SEEN, outside CI (where Hypothesis picks its "ci" profile)."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    if ini_text is not None:
        pytester.makeini(ini_text)
    pytester.makepyfile(test_slow=SLOW_GIVEN, test_profile=PROFILE_SEEN)
    return pytester.runpytest_subprocess("-s", *args)


@pytest.mark.parametrize(
    ("args", "ini_text"),
    [(("--rnn-hypothesis-profile",), None), ((), ini(rnn_hypothesis_profile="true"))],
    ids=["option", "ini"],
)
def test_hypothesis_profile_when_asked_for_has_no_deadline(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    ini_text: str | None,
) -> None:
    result = _slow_given_session(pytester, monkeypatch, args, ini_text)
    result.assert_outcomes(passed=3)
    seen = "PROFILE deadline=None suppressed=['data_too_large', 'large_base_example', 'too_slow']"
    assert seen in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "ini_text"),
    [
        ((), None),
        (("--rnn-no-hypothesis-profile",), None),
        ((), ini(rnn_hypothesis_profile="false")),
        (("--rnn-no-hypothesis-profile",), ini(rnn_hypothesis_profile="true")),
        (("--rnn-hypothesis-profile", "--rnn-no-hypothesis-profile"), None),
    ],
    ids=["default", "option", "ini", "option-beats-ini", "no-beats-yes"],
)
def test_unrelated_given_tests_keep_hypothesis_defaults(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    ini_text: str | None,
) -> None:
    result = _slow_given_session(pytester, monkeypatch, args, ini_text)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["E *.DeadlineExceeded: Test took *", "FAILED *::test_slow_examples - *"]
    )
    assert "PROFILE deadline=0:00:00.200000 suppressed=[]" in result.stdout.str()


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
    result = pytester.runpytest_subprocess("--rnn-hypothesis-profile", *args)
    result.assert_outcomes(passed=1, failed=1)  # the user's 100 ms deadline applies


# --- fixtures and assertions in user test files ------------------------------------

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

def check_user_tests(result: pytest.RunResult) -> None:
    """The correct model passes; the broken one fails with the time-aware report."""
    result.stdout.fnmatch_lines(["FAILED test_user.py::test_broken_model_streams - *"])
    result.stdout.fnmatch_lines(
        [
            "E * pytest_rnn.RNNAssertionError: Streamed output differs from the full-sequence output.",
            "E *model 'seq' (Conv1D*LSTM*Dense*",
            "E *first mismatch: step *, sample *",
            "E *first layer that differs: 'conv1d'*",
        ]
    )
    assert "_errors" not in result.stdout.str()
    assert "test_correct_model_streams FAILED" not in result.stdout.str()
    assert "FAILED test_user.py::test_correct_model_streams" not in result.stdout.str()


@pytest.fixture
def keras_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras imported in this process, and os.environ put back after, for an in-process session.

    pytester puts sys.modules back as it was when its fixture was set up: Keras
    imported before that stays (a second TensorFlow import in one process aborts
    it). PREAMBLE writes os.environ; conftest.py sets both variables, so recording
    their values is enough.
    """
    import keras  # noqa: F401

    for name in ("KERAS_BACKEND", "TF_CPP_MIN_LOG_LEVEL"):
        monkeypatch.setenv(name, os.environ[name])


@pytest.mark.usefixtures("keras_here")  # before pytester's fixture: see keras_here
def test_fixtures_and_user_files_serial(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS, test_fixtures=FIXTURE_TESTS)
    result = pytester.runpytest_inprocess("-p", "no:randomly")  # the file's order matters
    result.stdout.fnmatch_lines(["pytest-rnn: seed=0 (--rnn-seed), tolerances by dtype"])
    result.assert_outcomes(passed=8, failed=1)
    check_user_tests(result)


# Under xdist: tests/test_report.py's session runs a user file on two workers, with
# --rnn-seed reaching them, the streaming failure's message, pictures and the summary
# (one session: each xdist worker pays about 8 CPU-seconds to import TensorFlow).


# --- the rnn_seed fixture under pytest-randomly, and the globals it puts back -------

RANDOMLY_TESTS = (
    PREAMBLE
    + """
from pytest_rnn._core.validate import check_seed


def test_fixture_seed_holds_in_the_body(rnn_seed):
    assert random.random() == random.Random(rnn_seed).random()
    assert np.random.rand() == np.random.RandomState(rnn_seed).rand()
    print(f"DRAWS seed={rnn_seed} keras={float(keras.random.uniform(())):.8f}", end=" ")
    print(f"assertions={check_seed(None)}")


def test_assertions_draw_with_the_session_seed():
    print(f"ASSERTIONS {check_seed(None)}")
"""
)


def _draws(result: pytest.RunResult) -> tuple[str, str]:
    out = result.stdout.str()
    draws = [line for line in out.splitlines() if "DRAWS " in line]
    assertions = [line for line in out.splitlines() if "ASSERTIONS " in line]
    assert len(draws) == len(assertions) == 1, out
    return draws[0].split("DRAWS ")[1], assertions[0].split("ASSERTIONS ")[1]


@pytest.mark.usefixtures("keras_here")
def test_rnn_seed_survives_pytest_randomly(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_randomly")  # in the `test` extra
    pytester.makepyfile(test_randomly=RANDOMLY_TESTS)
    runs = {}
    for seed, randomly_seed in [("0", "1"), ("0", "2"), ("5", "1")]:
        result = pytester.runpytest_inprocess(
            "-p", "randomly", f"--randomly-seed={randomly_seed}", "--rnn-seed", seed, "-s"
        )
        result.stdout.fnmatch_lines([f"Using --randomly-seed={randomly_seed}"])
        result.assert_outcomes(passed=2)
        runs[seed, randomly_seed] = _draws(result)
    assert runs["0", "1"] == runs["0", "2"]  # randomly's seed does not move the draws
    assert runs["0", "1"] != runs["5", "1"]  # the rnn seed does
    assert runs["0", "1"][1] == "0"
    assert runs["5", "1"][1] == "5"
    assert runs["5", "1"][0].startswith("seed=5 ") and runs["5", "1"][0].endswith(" assertions=5")


@pytest.mark.tensorflow_only("reads TensorFlow's global seed")
def test_rnn_seed_puts_back_the_keras_and_backend_seeds() -> None:
    import random

    import keras
    import numpy as np
    import tensorflow as tf

    from pytest_rnn._keras.guards import keras_globals_kept, untouched

    def draws() -> tuple[float, float, float, float]:
        return (
            float(tf.random.uniform(())),
            float(keras.random.uniform(())),
            random.random(),
            float(np.random.rand()),
        )

    from keras.src.backend.common import global_state

    def reseed() -> None:
        keras.utils.set_random_seed(123)
        # Keras < 3.9's set_random_seed keeps its global SeedGenerator: start a new one.
        global_state.set_global_attribute("global_seed_generator", None)

    with untouched(seeds=True), keras_globals_kept():  # this test's own undo
        reseed()
        expected = draws()
        reseed()
        with _config.seeded(11):
            assert draws() != expected
        assert draws() == expected


SLOW_MODEL_GIVEN = """
import time

from hypothesis import Phase, given, settings, strategies as st
from pytest_rnn.strategies import chunkings


@given(st.integers(0, 2))
def test_slow_without_settings(i):
    time.sleep(0.3)  # an assertion's first call: traces for longer than the deadline


@settings(deadline=100, max_examples=3, phases=[Phase.generate], database=None)
@given(st.integers(0, 2))
def test_slow_with_its_own_deadline(i):
    time.sleep(0.3)
"""


def test_given_tests_of_pytest_rnn_modules_get_no_deadline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_model=SLOW_MODEL_GIVEN, test_slow=SLOW_GIVEN, test_profile=PROFILE_SEEN)
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    # test_model: the undecorated test passes, the one with its own deadline keeps it;
    # test_slow (no pytest-rnn in it) keeps Hypothesis's 200 ms deadline; the profile is untouched.
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["FAILED *test_model.py::test_slow_with_its_own_deadline - *"])
    result.stdout.fnmatch_lines(["FAILED *test_slow.py::test_slow_examples - *"])
    assert "test_slow_without_settings FAILED" not in result.stdout.str()
    off = pytester.runpytest_subprocess("-p", "no:randomly", "--rnn-no-hypothesis-profile")
    off.assert_outcomes(passed=2, failed=3)


MANY_MODELS_TEST = """
import numpy as np, keras, pytest, pytest_rnn, tensorflow as tf
from keras import layers

@pytest.mark.parametrize("i", range(7))
def test_model(i):
    model = keras.Sequential([keras.Input((None, 3)), layers.GRU(2 + i % 5, return_sequences=True)])
    x = np.random.default_rng(i).normal(size=(2 + i % 3, 8 + i, 3)).astype("float32")
    pytest_rnn.assert_stateful_equals_batch(model, x, chunks=[3, 5 + i])
    pytest_rnn.assert_model_causal(model, x)

def test_users_own_retracing_is_still_reported():
    for n in range(8):  # a new Python function object each time: TensorFlow warns about it
        tf.function(lambda t: t * 2)(tf.constant([1.0] * (n + 1)))
"""


@pytest.mark.usefixtures("keras_here")
def test_checking_many_models_logs_no_retracing_of_our_own_functions(
    pytester: pytest.Pytester,
) -> None:
    # TensorFlow counts traces per Python function (it warns at 5 traces in 10 calls):
    # one traced body per model read to it as "5 out of the last 9 calls to <function
    # graph_stream.<locals>.body> triggered tf.function retracing", pointing users at
    # pytest-rnn internals.
    pytester.makepyfile(test_many=MANY_MODELS_TEST)
    live_log = ("-o", "log_cli=true", "--log-cli-level=WARNING")  # every log record shown
    result = pytester.runpytest_inprocess("-s", "-p", "no:randomly", "-p", "no:xdist", *live_log)
    result.assert_outcomes(passed=8)
    out = result.stdout.str() + result.stderr.str()
    assert "graph_stream" not in out and "_tf_call" not in out
    assert "triggered tf.function retracing" in out  # the user's own lambda: still said
