"""Checks of the user's functions an assertion takes: model factories, hooks, functions of the inputs.

Each raises a TypeError naming the argument; a Keras model passed where a
function is wanted is told apart, with what to pass instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pytest_rnn._keras.layers import is_model

__all__ = ["check_factory", "check_function", "check_hook"]


def check_factory(fn: Any, arg: str, what: str) -> None:
    """``fn`` is a function that builds (and trains) a model; else a TypeError naming ``arg``."""
    if is_model(fn):
        raise TypeError(
            f"{arg} must be a function that {what}, got the model {fn.name!r} itself: a model "
            f"trained once cannot be trained again from the same start. Pass the function "
            f"that builds it, e.g. {arg}=lambda: build_model()"
        )
    if not callable(fn):
        raise TypeError(f"{arg} must be a function that {what}, got {type(fn).__name__}")


def check_hook(fn: Any, arg: str, signature: str, default: Callable[..., Any]) -> Any:
    """The user's function ``fn`` (a checkpoint's save or load), or ``default`` for ``None``.

    Raises:
        TypeError: ``fn`` is not callable, or is a Keras model.
    """
    if fn is None:
        return default
    if callable(fn) and not is_model(fn):
        return fn
    kind = "a Keras model" if is_model(fn) else type(fn).__name__
    raise TypeError(f"{arg} must be a function {signature}, got {kind}")


def check_function(fn: Any, arg: str, what: str, signature: str) -> None:
    """``fn`` is the user's function of the inputs (not a model, not values); else a TypeError."""
    if callable(fn) and not is_model(fn):
        return
    if is_model(fn):
        raise TypeError(f"{arg} must be your {what} function {signature}, got a Keras model")
    kind = type(fn).__name__
    raise TypeError(
        f"{arg} must be the function that computes the {what} ({signature}), got {kind}. "
        f"Dependence is measured by changing the inputs and calling {arg} again, "
        f"so the values alone cannot show which steps they came from."
    )
