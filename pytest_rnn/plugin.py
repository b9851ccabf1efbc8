"""pytest wiring: options, ini values, report header and fixtures. No logic here.

Loaded by every pytest run in an environment where pytest-rnn is installed,
so it imports nothing heavy: Keras is imported inside the fixtures that use it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_rnn import _config


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
        "--rnn-no-hypothesis-profile",
        action="store_true",
        default=False,
        help="do not load pytest-rnn's Hypothesis profile (no deadline, no too_slow health check)",
    )
    parser.addini("rnn_seed", "default for --rnn-seed", default=None)
    parser.addini("rnn_rtol", "default for --rnn-rtol", default=None)
    parser.addini("rnn_atol", "default for --rnn-atol", default=None)
    parser.addini(
        "rnn_hypothesis_profile",
        "load pytest-rnn's Hypothesis profile (true/false)",
        type="bool",
        default=True,
    )


def _option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"--rnn-{name}")
    if value is None:
        value = config.getini(f"rnn_{name}")
    return None if value in (None, "") else str(value)


_SAVED = pytest.StashKey[_config.Snapshot]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    config.stash[_SAVED] = _config.snapshot()
    try:
        _config.configure(
            seed=_option(config, "seed"),
            rtol=_option(config, "rtol"),
            atol=_option(config, "atol"),
        )
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None
    if config.getini("rnn_hypothesis_profile") and not config.getoption(
        "--rnn-no-hypothesis-profile"
    ):
        _config.load_hypothesis_profile()


def pytest_unconfigure(config: pytest.Config) -> None:
    saved = config.stash.get(_SAVED, None)
    if saved is not None:
        _config.restore(saved)


def pytest_report_header(config: pytest.Config) -> str:
    return _config.header()


@pytest.fixture
def rnn_seed() -> Iterator[int]:
    """The session's seed (``--rnn-seed``), applied to Python, numpy and Keras.

    Calls ``keras.utils.set_random_seed(seed)`` before the test and puts the
    global Python and numpy random states back after it.
    """
    with _config.seeded(_config.settings.seed):
        yield _config.settings.seed


@pytest.fixture
def rnn_clean_session() -> Iterator[None]:
    """A clean Keras session: ``keras.backend.clear_session()`` before and after the test."""
    _config.clear_keras_session()
    yield
    _config.clear_keras_session()
