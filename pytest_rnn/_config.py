"""Session-wide settings: the plugin writes them from options and ini, assertions read them.

Kept free of heavy imports: the plugin imports this module at start-up.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from pytest_rnn._random import kept

__all__ = ["Settings", "configure", "header", "seeded", "settings"]

DEFAULT_SEED = 0
HYPOTHESIS_PROFILE = "pytest-rnn"
# The health checks slow model examples trip, as ``hypothesis.HealthCheck`` attribute
# names: the one list behind this profile and ``pytest_rnn.strategies.rnn_settings``.
SUPPRESSED_HEALTH_CHECKS = ("too_slow", "data_too_large", "large_base_example")


@dataclass
class Settings:
    """Values a pytest run sets once (``--rnn-rtol``, ``--rnn-atol``, ``--rnn-seed``, ...).

    ``rtol``/``atol`` of ``None`` mean "the default for the compared dtype";
    an assertion's own ``rtol=``/``atol=`` arguments always win.
    ``report_dir`` (``--rnn-report-dir``): the absolute folder failure
    pictures are written to, ``None`` for no pictures.
    """

    rtol: float | None = None
    atol: float | None = None
    seed: int = DEFAULT_SEED
    report_dir: str | None = None


settings = Settings()


def _tolerance(name: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--rnn-{name} (ini rnn_{name}) must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"--rnn-{name} (ini rnn_{name}) must be a finite number >= 0, got {text!r}"
        )
    return value


def _report_dir(text: str | None, base: str) -> str | None:
    if text is None:
        return None
    path = os.path.abspath(os.path.join(base, os.path.expanduser(text)))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(
            f"--rnn-report-dir (ini rnn_report_dir) must be a folder, but {path} is a file"
        )
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"--rnn-report-dir (ini rnn_report_dir): cannot create folder {path}: {error.strerror}"
        ) from None
    if not os.access(path, os.W_OK):
        raise ValueError(f"--rnn-report-dir (ini rnn_report_dir): folder {path} is not writable")
    return path


def configure(
    *,
    seed: str | None,
    rtol: str | None,
    atol: str | None,
    report_dir: str | None = None,
    report_base: str = ".",
) -> None:
    """Validate option/ini values and store them in :data:`settings`.

    ``report_dir`` is taken relative to ``report_base`` (the invocation folder
    for the option, the ini file's folder for the ini value) and created.

    Raises:
        ValueError: a value does not parse, only one of rtol/atol is set, or
            the report folder is a file or cannot be created.
    """
    r, a = _tolerance("rtol", rtol), _tolerance("atol", atol)
    if (r is None) != (a is None):
        raise ValueError(
            "--rnn-rtol and --rnn-atol (ini rnn_rtol/rnn_atol) go together: set both or neither"
        )
    try:
        s = DEFAULT_SEED if seed is None else int(seed)
    except ValueError:
        raise ValueError(f"--rnn-seed (ini rnn_seed) must be an integer, got {seed!r}") from None
    d = _report_dir(report_dir, report_base)
    settings.rtol, settings.atol, settings.seed, settings.report_dir = r, a, s, d


@dataclass(frozen=True)
class Snapshot:
    """Session settings and the Hypothesis profile, to put back when a session ends."""

    settings: Settings
    hypothesis_profile: str | None


def snapshot() -> Snapshot:
    """The current settings (and Hypothesis profile name, if Hypothesis is loaded)."""
    profile = None
    hypothesis = sys.modules.get("hypothesis")
    if hypothesis is not None:
        profile = hypothesis.settings.get_current_profile_name()
    return Snapshot(
        Settings(settings.rtol, settings.atol, settings.seed, settings.report_dir), profile
    )


def restore(saved: Snapshot) -> None:
    """Put back what :func:`snapshot` saw: a session's options do not outlive it."""
    settings.rtol, settings.atol, settings.seed, settings.report_dir = (
        saved.settings.rtol,
        saved.settings.atol,
        saved.settings.seed,
        saved.settings.report_dir,
    )
    hypothesis = sys.modules.get("hypothesis")
    if hypothesis is not None and saved.hypothesis_profile is not None:
        hypothesis.settings.load_profile(saved.hypothesis_profile)


def header() -> str:
    """The line pytest prints in its report header."""
    tol = (
        f"rtol={settings.rtol:g}, atol={settings.atol:g}"
        if settings.rtol is not None and settings.atol is not None
        else "tolerances by dtype"
    )
    pictures = f", failure pictures in {settings.report_dir}" if settings.report_dir else ""
    return f"pytest-rnn: seed={settings.seed} (--rnn-seed), {tol}{pictures}"


def load_hypothesis_profile() -> None:
    """Load a Hypothesis profile fit for model tests: no deadline, no ``too_slow`` check.

    The first call of an assertion traces TensorFlow functions (seconds), later
    calls take milliseconds: Hypothesis would report that as a deadline
    failure or a flaky timing. A profile the user loads later (conftest,
    ``--hypothesis-profile``) wins.
    """
    from hypothesis import HealthCheck
    from hypothesis import settings as hyp_settings

    if hyp_settings.get_current_profile_name() != "default":
        return  # the user chose a profile (--hypothesis-profile or conftest): it wins
    hyp_settings.register_profile(
        HYPOTHESIS_PROFILE,
        deadline=None,
        suppress_health_check=[getattr(HealthCheck, name) for name in SUPPRESSED_HEALTH_CHECKS],
    )
    hyp_settings.load_profile(HYPOTHESIS_PROFILE)


def uses_pytest_rnn(namespace: dict[str, object]) -> bool:
    """Whether a test module's globals hold anything of pytest-rnn (the package, a strategy, an assertion)."""
    for value in namespace.values():
        name = getattr(value, "__name__", None) if isinstance(value, type(sys)) else None
        origin = name or getattr(value, "__module__", None) or ""
        if isinstance(origin, str) and origin.split(".")[0] == "pytest_rnn":
            return True
    return False


def for_model_tests(test: object) -> None:
    """Give an undecorated ``@given`` test of a pytest-rnn module the model-test settings.

    No deadline and the three health checks of :data:`SUPPRESSED_HEALTH_CHECKS`
    suppressed, on top of the profile in force (the first call of an assertion
    traces for seconds, later ones take milliseconds: Hypothesis would call that
    a deadline failure or flaky timing). A test with its own ``@settings`` keeps
    them as they are; other tests of the session are never touched.
    """
    from hypothesis import HealthCheck
    from hypothesis import settings as hyp_settings

    if getattr(test, "_hypothesis_internal_settings_applied", False):
        return  # the user's own @settings win
    checks = {getattr(HealthCheck, name) for name in SUPPRESSED_HEALTH_CHECKS}
    base = hyp_settings.default
    assert base is not None  # a profile is always loaded once Hypothesis is imported
    hyp_settings(
        base,
        deadline=None,
        suppress_health_check=sorted({*base.suppress_health_check, *checks}, key=str),
    )(test)


def reseed(seed: int) -> None:
    """Seed Python, numpy and Keras (if installed) with ``seed``, with no undo.

    :func:`seeded` keeps the undo; the plugin calls this again right before a
    seeded test's body, after plugins that reseed per test (pytest-randomly).
    """
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    try:
        import keras
    except ImportError:  # numpy and Python are seeded all the same
        return
    keras.utils.set_random_seed(seed)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python, numpy and Keras with ``seed``; put every global it set back after.

    Python's and numpy's states, Keras's global seed and seed generator, and
    the backends' global seeds (TensorFlow's, torch's) are as they were on exit.
    """
    with contextlib.ExitStack() as undo:  # unwinds in reverse order, on failure too
        undo.enter_context(kept())
        try:
            import keras  # noqa: F401  (imports the backend, whose seeds the guard saves)
        except ImportError:
            pass
        else:
            from pytest_rnn._keras.guards import keras_seeds_kept

            undo.enter_context(keras_seeds_kept())
        reseed(seed)
        yield


def clear_keras_session() -> None:
    """``keras.backend.clear_session()``; imports Keras."""
    import keras

    keras.backend.clear_session()
