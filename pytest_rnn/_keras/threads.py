"""A second piece of work run beside the caller's, in a thread: :func:`alongside`."""

from __future__ import annotations

import contextlib
import sys
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
    caller's thread. On torch the two threads share the cores
    (:func:`_cores_shared`).
    """
    if not thread:
        yield fn
        return
    with _cores_shared():
        yield from _beside(fn)


def _beside(fn: Callable[[], T]) -> Iterator[Callable[[], T]]:
    """:func:`alongside`'s thread: started, its result asked for, waited for."""
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


@contextlib.contextmanager
def _cores_shared() -> Iterator[None]:
    """torch: half of its intra-op threads for each of the two threads inside, as many after.

    Each Python thread that runs a torch operation starts a parallel team of
    ``torch.get_num_threads()`` threads of its own (TensorFlow's and JAX's
    threads run one shared pool), so two such threads would ask for twice the
    cores there are: a 4-layer GPT2's cached check at 128 tokens took 608 ms
    side by side on a 2-core CPU with two intra-op threads each, 417 ms with
    one, 637 ms one loop after the other. Set for the block, put back after it.
    """
    torch = sys.modules.get("torch") if name() == "torch" else None
    if torch is None:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // 2))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


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
