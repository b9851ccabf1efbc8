"""pytest wiring: options, ini values, report header, fixtures, reporting hooks. No logic here.

Loaded by every pytest run in an environment where pytest-rnn is installed,
so it imports nothing heavy: Keras is imported inside the fixtures that use
it, matplotlib only when a failure picture is drawn.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from pytest_rnn import _config, _report


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rnn", "pytest-rnn: sequence-model assertions")
    group.addoption(
        "--rnn-seed",
        type=int,
        default=None,
        help="seed for the rnn_seed fixture and the assertions' own draws (ini: rnn_seed; default 0)",
    )
    group.addoption(
        "--rnn-rtol",
        type=float,
        default=None,
        help="relative tolerance for every assertion that does not pass its own (ini: rnn_rtol)",
    )
    group.addoption(
        "--rnn-atol",
        type=float,
        default=None,
        help="absolute tolerance, given together with --rnn-rtol (ini: rnn_atol)",
    )
    group.addoption(
        "--rnn-report-dir",
        default=None,
        metavar="DIR",
        help="write a PNG picture of every rnn assertion failure into DIR and name it in the "
        'message; needs matplotlib: pip install "pytest-rnn[plot]" (ini: rnn_report_dir)',
    )
    group.addoption(
        "--rnn-hypothesis-profile",
        action="store_true",
        default=False,
        help="load pytest-rnn's Hypothesis profile for the whole session: no deadline, no "
        "too_slow/data_too_large/large_base_example health checks (ini: rnn_hypothesis_profile)",
    )
    group.addoption(
        "--rnn-no-hypothesis-profile",
        action="store_true",
        default=False,
        help="do not load pytest-rnn's Hypothesis profile (the default; beats the ini value)",
    )
    parser.addini("rnn_seed", "default for --rnn-seed", type=_ini_type("int"), default=None)
    parser.addini("rnn_rtol", "default for --rnn-rtol", type=_ini_type("float"), default=None)
    parser.addini("rnn_atol", "default for --rnn-atol", type=_ini_type("float"), default=None)
    parser.addini(
        "rnn_report_dir", "default for --rnn-report-dir (relative to the ini file)", default=None
    )
    parser.addini(
        "rnn_hypothesis_profile",
        "load pytest-rnn's Hypothesis profile for the session (true/false; default false)",
        type="bool",
        default=False,
    )


#: What ``getini`` gives for an ini value nobody set: pytest < 8 answers ``[]`` for a
#: ``"string"`` option without a default.
_UNSET: tuple[Any, ...] = (None, "", [])


def _ini_type(kind: str) -> Any:
    """The ``addini`` type for a number option on the running pytest.

    pytest >= 9.2: ``int | str`` (``float | str``): TOML numbers pass, and a
    string from an ini file reaches :func:`pytest_rnn._config.configure`,
    whose messages name the option. pytest 8.4-9.1: the ``"int"``/``"float"``
    tag (9.0's native TOML config refuses a number for a ``"string"``
    option). Older pytest has no typed ini values: ``"string"``; its TOML
    ``ini_options`` hands numbers over as strings.
    """
    version = tuple(int(part) for part in pytest.version_tuple[:2])
    if version >= (9, 2):
        return int | str if kind == "int" else float | str
    if version >= (8, 4):
        return kind
    return "string"


def _option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"--rnn-{name}")
    if value is None:
        try:
            value = config.getini(f"rnn_{name}")
        except (TypeError, ValueError) as error:  # pytest 8.4-9.1: "x" for an "int" option
            raise pytest.UsageError(f"--rnn-{name} (ini rnn_{name}): {error}") from None
    return None if value in _UNSET else str(value)


def _report_dir(config: pytest.Config) -> tuple[str | None, str]:
    """The report folder as given, and the folder it is relative to."""
    value = config.getoption("--rnn-report-dir")
    if value not in (None, ""):
        return str(value), str(config.invocation_params.dir)
    value = config.getini("rnn_report_dir")
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    return (str(value) if value not in _UNSET else None), str(base)


_SAVED = pytest.StashKey[_config.Snapshot]()
_RECORDING = pytest.StashKey[tuple[bool, "str | None"]]()
_SEEDED = pytest.StashKey[int]()  # on a test item while its rnn_seed fixture is active


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SAVED] = _config.snapshot()
    # Saved before anything can fail: unconfigure runs even when configure raised
    # (a bad option), and a pytester run in-process must leave the outer run recording.
    config.stash[_RECORDING] = (_report.recorder.enabled, _report.recorder.test_id)
    report_dir, report_base = _report_dir(config)
    try:
        _config.configure(
            seed=_option(config, "seed"),
            rtol=_option(config, "rtol"),
            atol=_option(config, "atol"),
            report_dir=report_dir,
            report_base=report_base,
        )
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    _report.recorder.enabled = True
    if not hasattr(config, "workerinput"):  # xdist workers: the controller sums up
        config.pluginmanager.register(_Summary(), "pytest-rnn-summary")
    wanted = config.getoption("--rnn-hypothesis-profile") or config.getini("rnn_hypothesis_profile")
    if wanted and not config.getoption("--rnn-no-hypothesis-profile"):  # opt-in only
        _config.load_hypothesis_profile()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Model-test Hypothesis settings for undecorated ``@given`` tests in modules that use pytest-rnn."""
    if config.getoption("--rnn-no-hypothesis-profile"):
        return
    seen: set[int] = set()
    for item in items:
        test, module = getattr(item, "obj", None), getattr(item, "module", None)
        if not getattr(test, "is_hypothesis_test", False) or module is None or id(test) in seen:
            continue
        seen.add(id(test))
        if _config.uses_pytest_rnn(vars(module)):
            _config.for_model_tests(test)


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_SAVED, None)
    if saved is not None:
        _config.restore(saved)
    recording = config.stash.get(_RECORDING, None)
    if recording is not None:
        _report.recorder.enabled, _report.recorder.test_id = recording


def pytest_runtest_logstart(nodeid: str) -> None:
    _report.recorder.test_id = nodeid


def pytest_runtest_logfinish() -> None:
    _report.recorder.test_id = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, Any, None]:
    """Attach the phase's assertion records and pictures to its report (xdist ships them)."""
    outcome = yield
    report = outcome.get_result()
    records, pictures = _report.recorder.drain()
    if records:
        report.rnn_records = [list(r) for r in records]
    if pictures:
        report.rnn_pictures = pictures
        if report.failed and item.config.getoption("htmlpath", None):
            _html_pictures(report, pictures)


def _html_pictures(report: pytest.TestReport, pictures: list[str]) -> None:
    """Show the failure pictures in pytest-html's report of the failed test (pytest-html >= 4)."""
    try:
        from pytest_html import extras
    except ImportError:
        return
    shown = list(getattr(report, "extras", []))
    for path in pictures:
        with open(path, "rb") as png:
            content = base64.b64encode(png.read()).decode("ascii")
        shown.append(extras.png(content, name=os.path.basename(path)))
    report.extras = shown  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str:
    return _config.header()


@pytest.fixture
def rnn_seed(request: pytest.FixtureRequest) -> Iterator[int]:
    """The session's seed (``--rnn-seed``), applied to Python, numpy and Keras.

    Calls ``keras.utils.set_random_seed(seed)`` before the test, and again
    right before its body (after pytest-randomly's reseeding); puts the
    global Python and numpy random states, Keras's global seed and the
    backends' seeds back after it.
    """
    seed = _config.settings.seed
    with _config.seeded(seed):
        request.node.stash[_SEEDED] = seed
        try:
            yield seed
        finally:
            del request.node.stash[_SEEDED]


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> None:
    """Re-apply the ``rnn_seed`` fixture's seed right before the test body.

    pytest-randomly reseeds Python and numpy in ``pytest_runtest_call``, after
    the fixtures ran; this hook runs inside it, after every such reseed.
    """
    seed = pyfuncitem.stash.get(_SEEDED, None)
    if seed is not None:
        _config.reseed(seed)


@pytest.fixture
def rnn_clean_session() -> Iterator[None]:
    """A clean Keras session: ``keras.backend.clear_session()`` before and after the test."""
    _config.clear_keras_session()
    yield
    _config.clear_keras_session()


class _Summary:
    """Sums the assertion records of every test report; prints one line at the end.

    Registered by :func:`pytest_configure`. Under xdist the records come to
    the controller as attributes of the workers' reports.
    """

    def __init__(self) -> None:
        self.tally = _report.Tally()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        records = getattr(report, "rnn_records", None)
        if records:
            self.tally.add(records, report.nodeid, len(getattr(report, "rnn_pictures", ())))

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if terminalreporter.verbosity <= -2:  # -qq: pytest's own summary is cut to one line too
            return
        line = self.tally.line()
        if line:
            terminalreporter.write_line(line)
