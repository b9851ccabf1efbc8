"""The exception every pytest-rnn assertion raises when its property does not hold."""

from __future__ import annotations

__all__ = ["RNNAssertionError"]


class RNNAssertionError(AssertionError):
    """A sequence-model property asserted by pytest-rnn does not hold.

    A subclass of :class:`AssertionError`, so pytest reports it as a test
    failure (not an error) and ``pytest.raises(AssertionError)`` catches it.
    The message is the whole report: what was compared, where it first
    differs, how much differs, and what that usually means.
    """
