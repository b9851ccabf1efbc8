"""A second piece of work run beside the caller's, in a thread: :func:`alongside`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pytest_rnn._keras.backend import name

__all__ = ["alongside", "thread_for_compiled_calls"]

T = TypeVar("T")


@contextlib.contextmanager
def alongside(fn: Callable[[], T], *, thread: bool = True) -> Iterator[Callable[[], T]]:
    """``fn`` run beside the caller's own work: inside, a function that gives its result.

    Compiled programs run without holding Python's lock (TensorFlow's graphs,
    JAX's jitted calls, torch's TorchScript replays), so a second compiled loop
    in a thread runs on another core: the cached-decoding check's two loops on
    a 4-layer GPT2 at 128 tokens took 72 + 82 ms one after the other on JAX, 75
    ms side by side. The precision switches the assertions set
    (:mod:`.switches`) are process-wide on every backend; what is
    thread-local (torch's grad mode, JAX's jit switch) ``fn`` enters itself.
    The result raises what ``fn`` raised; leaving the block waits for ``fn`` to
    end, so nothing of it runs after the caller has moved on. With
    ``thread=False``, ``fn`` is called when its result is asked for, in the
    caller's thread.
    """
    if not thread:
        yield fn
        return
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = fn()
        except BaseException as error:  # handed to the caller, who asked for the result
            box["error"] = error

    worker = threading.Thread(target=work, name="pytest-rnn-alongside", daemon=True)
    worker.start()

    def result() -> T:
        worker.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    try:
        yield result
    finally:
        worker.join()


def thread_for_compiled_calls() -> bool:
    """Whether a :func:`~pytest_rnn._keras.calls.compiled` call is worth a thread beside the caller's work.

    TensorFlow: its graphs run without Python's lock; the stateful check's
    reference beside its stream took 12.7 ms against 15.3 ms one after the
    other (LSTM(32), batch 4, 100 one-step chunks). JAX: its jitted calls too,
    but that reference is a call of 0.4 ms, no more than the thread costs
    (3.0 ms against 2.7 ms). torch: the call is Keras's eager Python, which a
    second thread only slows.
    """
    return name() == "tensorflow"
