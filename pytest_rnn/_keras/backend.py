"""Backend adapter: compiled calls and numpy conversion, per backend.

Keras 3 fixes its backend at the first ``import keras``; everything pytest-rnn
does differently per backend is here, behind a handful of functions that
:mod:`pytest_rnn._keras` re-exports to the assertion families:

========================  ======================  ======================  =====================
function                  TensorFlow              JAX                     torch
========================  ======================  ======================  =====================
``compile_call``          ``tf.function``, open   ``jax.jit`` over a      eager under
                          time axis (one trace)   stateless call; RNN     ``torch.no_grad()``
                                                  states written back;
                                                  one trace per shape
``eager_call``            eager                   eager                   eager, ``no_grad``
``to_numpy``              ``.numpy()``            ``np.asarray``          ``.detach().cpu()``;
                                                                          bfloat16 via float32
========================  ======================  ======================  =====================

Backend libraries are imported inside functions only (importing pytest_rnn
stays light). The backends' global switches (precision, determinism, seeds)
live in :mod:`pytest_rnn._keras.switches`, float64 in :mod:`pytest_rnn._keras.float64`,
the input gradients in :mod:`pytest_rnn._keras.gradients`, the in-graph loops in
:mod:`pytest_rnn._keras.loops`; every trace of a compiled caller or loop is
counted in :data:`TRACES`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from pytest_rnn._core.tree import map_structure
from pytest_rnn._keras.layers import needs_static_time, state_variables, stateful_layers

__all__ = [
    "TRACES",
    "compile_call",
    "eager_call",
    "is_library_file",
    "name",
    "own_tf_function",
    "state_mapping",
    "stateless_values",
    "stateless_variables",
    "to_numpy",
    "torch_numpy",
]


def own_tf_function(body: Any, **kwargs: Any) -> Any:
    """``tf.function(body, **kwargs)`` for pytest-rnn's own callers and loops, without retrace warnings.

    TensorFlow counts traces per Python function code, so one ``body`` closure
    compiled once per model (as pytest-rnn does, on purpose) reads to it as
    "N out of the last M calls ... triggered tf.function retracing" in the
    user's log. The function is marked as TensorFlow marks its restored
    functions (``_omit_frequent_tracing_warning``): only these functions go
    quiet, TensorFlow's logger and every other function are left as they are.
    """
    import tensorflow as tf

    fn = tf.function(body, **kwargs)
    if hasattr(fn, "_omit_frequent_tracing_warning"):
        fn._omit_frequent_tracing_warning = True
    return fn


class Traces:
    """How many times pytest-rnn's compiled callers and loops were traced (tests and benchmarks read it).

    A counter object rather than an ``int`` so that the adapter's face can
    re-export it and every importer sees the same count. (The cached loops
    count their XLA runs in one too: :data:`.hub_loops.XLA_RUNS`.)
    """

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()  # the cached check traces its two loops in two threads

    def add(self) -> None:
        """Count one (passed to the compiling functions as their ``count`` callback)."""
        with self._lock:
            self.count += 1


#: The one trace counter.
TRACES = Traces()


def name() -> str:
    """The Keras backend in use: ``"tensorflow"``, ``"jax"``, ``"torch"`` (imports Keras)."""
    import keras

    return str(keras.backend.backend())


def to_numpy(value: Any) -> np.ndarray:
    """A backend tensor, Keras variable or array as a numpy array (torch: detached, on CPU)."""
    if isinstance(value, np.ndarray):
        return value
    if type(value).__module__.split(".")[0] not in _TENSOR_MODULES:
        return np.asarray(value)  # numbers, lists: no backend involved
    import keras

    # Each backend's own conversion: Keras's convert_to_numpy (and np.array of a Keras
    # variable) goes through an __array__ without copy=, a DeprecationWarning per call
    # under numpy 2 on TensorFlow and torch.
    if isinstance(value, keras.Variable):
        value = value.value  # the backend's own tensor or variable
    library = type(value).__module__.split(".")[0]
    if library == "torch":
        return torch_numpy(value)
    if library == "tensorflow" and hasattr(value, "numpy"):
        return np.asarray(value.numpy())
    return np.asarray(keras.ops.convert_to_numpy(value))


_TENSOR_MODULES = ("tensorflow", "jax", "jaxlib", "torch", "keras")


def torch_numpy(tensor: Any) -> np.ndarray:
    """A torch tensor as a numpy array: detached, on CPU; bfloat16 as ``ml_dtypes``'s.

    ``Tensor.numpy()`` refuses bfloat16; widening to float32 and back is exact.
    """
    import torch

    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        import ml_dtypes

        return tensor.float().numpy().astype(ml_dtypes.bfloat16)
    return np.asarray(tensor.numpy())


# Folders of code that is not the user's: numpy, pytest-rnn itself, Keras and the backends.
_LIBRARY_DIRS = (
    os.path.dirname(np.__file__) + os.sep,
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,
)


def is_library_file(path: str) -> bool:
    """Whether a source file belongs to numpy, pytest-rnn, Keras or a backend (not to the user)."""
    return path.startswith(_LIBRARY_DIRS) or any(
        f"{os.sep}{lib}{os.sep}" in path for lib in ("keras", *_TENSOR_MODULES)
    )


@contextlib.contextmanager
def _no_grad() -> Iterator[None]:
    torch = sys.modules.get("torch")
    if torch is None or name() != "torch":
        yield
        return
    with torch.no_grad():
        yield


def eager_call(model: Any, x: Any) -> Any:
    """``model(x, training=False)`` run eagerly (torch: without autograd), as numpy."""
    with _no_grad():
        return map_structure(to_numpy, model(x, training=False))


# --------------------------------------------------------------------------- compiled calls


def compile_call(
    ref: weakref.ref[Any], x: Any, batch: int | None, count: Callable[[], None]
) -> Callable[[Any], Any]:
    """A compiled ``model(x, training=False)`` for the model ``ref`` points to; numpy out.

    ``x`` gives the input structure and dtypes; ``batch`` a static batch size
    (or ``None``); ``count`` is called at every trace.
    """
    backend = name()
    if backend == "tensorflow":
        return _tf_call(ref, x, batch, count)
    if backend == "jax":
        return _jax_call(ref, count)

    def call(inputs: Any) -> Any:  # torch: nothing to compile that pays at this size
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        return eager_call(m, inputs)

    return call


def _tf_call(
    ref: weakref.ref[Any], x: Any, batch: int | None, count: Callable[[], None]
) -> Callable[[Any], Any]:
    import tensorflow as tf

    def spec(a: Any) -> Any:
        shape = (batch, None, *np.shape(a)[2:]) if np.ndim(a) >= 2 else (batch,)
        return tf.TensorSpec(shape, dtype=tf.as_dtype(np.asarray(a).dtype))

    static = needs_static_time(ref())  # one trace per sequence length then

    def body(inputs: Any) -> Any:
        count()
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        return m(inputs, training=False)

    if static:
        fn = own_tf_function(body)
    else:
        fn = own_tf_function(body, input_signature=[map_structure(spec, x)], reduce_retracing=True)

    def call(inputs: Any) -> Any:
        out = fn(map_structure(tf.convert_to_tensor, inputs))
        return map_structure(lambda t: np.asarray(t.numpy()), out)

    return call


def stateless_variables(model: Any) -> tuple[list[Any], list[Any]]:
    """Every variable a call reads, and those it may write (non-trainable ones, RNN states).

    Keras does not track stateful RNN states as the model's variables, so
    ``stateless_call`` would bake them into the trace as constants; they are
    added here and written back after each call.
    """
    seen: set[int] = set()
    every: list[Any] = []
    for v in [
        *model.variables,
        *(s for _, lyr in stateful_layers(model) for s in (state_variables(lyr) or [])),
    ]:
        if id(v) not in seen:
            seen.add(id(v))
            every.append(v)
    return every, [v for v in every if not v.trainable]


def stateless_values(model: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """What a stateless call of ``model`` (JAX, torch traces) takes: the trainable values,
    the written ones, and the written variables (to assign the call's new values to)."""
    every, mutable = stateless_variables(model)
    return [v.value for v in every if v.trainable], [v.value for v in mutable], mutable


def state_mapping(model: Any, values: list[Any], written: list[Any]) -> list[tuple[Any, Any]]:
    """``keras.StatelessScope``'s mapping: each of ``model``'s variables to its value in a
    stateless call (``values``: the trainable ones, ``written``: the rest, as
    :func:`stateless_values` gives them)."""
    every, mutable = stateless_variables(model)
    return list(zip([v for v in every if v.trainable], values)) + list(zip(mutable, written))


def _jax_call(ref: weakref.ref[Any], count: Callable[[], None]) -> Callable[[Any], Any]:
    import jax
    import keras

    def pure(values: list[Any], written: list[Any], inputs: Any) -> tuple[Any, list[Any]]:
        count()
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        mutable = stateless_variables(m)[1]
        with keras.StatelessScope(state_mapping=state_mapping(m, values, written)) as scope:
            out = m(inputs, training=False)
            new = [scope.get_current_value(v) for v in mutable]
        return out, new

    fn = jax.jit(pure)

    def call(inputs: Any) -> Any:
        m = ref()
        assert m is not None, "model was garbage-collected while in use"
        values, written, mutable = stateless_values(m)
        out, new = fn(values, written, map_structure(np.asarray, inputs))
        for var, value in zip(mutable, new):
            var.assign(value)
        return map_structure(lambda t: np.asarray(t), out)

    return call
