"""A second piece of work run beside the caller's: :func:`alongside`.

========================  ======================  ======================  =====================
function                  TensorFlow              JAX                     torch
========================  ======================  ======================  =====================
``alongside``             a thread                a thread                called when asked for
========================  ======================  ======================  =====================
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pytest_rnn._keras.backend import name

__all__ = ["alongside"]

T = TypeVar("T")


@contextlib.contextmanager
def alongside(fn: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """``fn`` run beside the caller's own work: inside, a function that gives its result.

    TensorFlow and JAX run compiled programs without holding Python's lock, so a
    second compiled loop in a thread runs on another core: the cached-decoding
    check's two loops on a 4-layer GPT2 at 128 tokens took 72 + 82 ms one after
    the other on JAX, 75 ms side by side. The precision switches the assertions
    set (:mod:`.switches`) are process-wide on both. torch runs its loops from
    Python, so there ``fn`` is called when its result is asked for. The result
    raises what ``fn`` raised; leaving the block waits for ``fn`` to end, so
    nothing of it runs after the caller has moved on.
    """
    if name() == "torch":
        yield fn
        return
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # handed to the caller, who asked for the result
            box["error"] = error

    thread = threading.Thread(target=work, name="pytest-rnn-alongside", daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    try:
        yield result
    finally:
        thread.join()
