"""``rnn_settings``: the Hypothesis settings object for tests that build or run a model.

Its suppressed health checks are the list in :mod:`pytest_rnn._config`, the
same one the plugin's Hypothesis profile suppresses.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from pytest_rnn._config import SUPPRESSED_HEALTH_CHECKS

rnn_settings: settings = settings(
    deadline=None,
    max_examples=25,
    suppress_health_check=[getattr(HealthCheck, name) for name in SUPPRESSED_HEALTH_CHECKS],
)
"""Hypothesis settings for ``@given`` tests that build or run a Keras model.

A model's first call traces a TensorFlow function, which can take seconds.
Later calls take milliseconds. Hypothesis's default 200 ms deadline would
report that first call as a failure, or as a flaky test once the trace is
cached. So this object sets ``deadline=None`` and suppresses the health checks
that slow examples trip (``too_slow``, ``data_too_large`` and
``large_base_example``). ``max_examples=25`` keeps one test to a few seconds.

Settings objects are decorators, so you can apply this one to a test. For a
whole session, ``--rnn-hypothesis-profile`` (ini ``rnn_hypothesis_profile =
true``) loads a profile with the same deadline and health checks. Any setting not listed
here comes from the Hypothesis profile active when this module was first
imported. To change more, derive from it: ``settings(rnn_settings, max_examples=100)``.

Example:
    ::

        @rnn_settings
        @given(x=sequences())
        def test_masking(x):
            ...
"""
