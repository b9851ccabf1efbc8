"""float64 on each backend: whether it computes, the dtype Keras computes it in, and the
default tolerance that follows.

Keras 3.15's type promotion maps float64 to float32 on every backend but
TensorFlow (keras-team/keras#23704): off TensorFlow a float64 model's matmuls
compute in float32. :func:`computed_dtype` says which dtype Keras computed an
output in and :func:`output_tolerance` reads every assertion's default
tolerance from it; :func:`float64_scope` makes float64 compute as float64 for
the failure triage's re-run (:func:`float64_missing`: where it cannot).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from pytest_rnn._core.compare import Tolerance, resolve_tolerance
from pytest_rnn._keras.backend import name

__all__ = ["computed_dtype", "float64_missing", "float64_scope", "output_tolerance"]


def float64_missing() -> str | None:
    """Why the backend cannot compute in float64 inside :func:`float64_scope`, or ``None``."""
    jax = sys.modules.get("jax")
    if (
        name() == "jax"
        and jax is not None
        and not hasattr(jax, "enable_x64")
        and not jax.config.jax_enable_x64
    ):
        return "JAX computes float64 as float32 unless jax_enable_x64 is set"
    return None


def computed_dtype(dtype: Any) -> Any:
    """The dtype Keras computes an output of ``dtype`` in: its default tolerance is that dtype's.

    Keras 3.15's type promotion maps float64 to float32 on every backend but
    TensorFlow (``keras.backend.result_type("float64", "float64")``; see
    :func:`float64_scope`), so on torch a float64 model's matmuls compute in
    float32 and its outputs are float64 again (keras-team/keras#23704): two
    correct runs of one such model differ by float32 rounding, 3e-7 where
    float64's tolerance is 1e-7. Every other dtype, and float64 where Keras
    keeps it (TensorFlow, inside :func:`float64_scope`), is returned as given.
    """
    import keras

    if keras.backend.standardize_dtype(dtype) != "float64":
        return dtype
    return str(keras.backend.result_type("float64", "float64"))


def output_tolerance(rtol: float | None, atol: float | None, dtype: Any) -> Tolerance:
    """The tolerance for outputs Keras computed as ``dtype``: :func:`resolve_tolerance`
    on :func:`computed_dtype`, so a default follows the dtype Keras computed in.

    Every assertion takes the default tolerance of a Keras-computed output (a
    model's outputs, logits, losses, trained variables) from here. Data the user
    gave, and values only saved and loaded, keep their own dtype's
    (``resolve_tolerance``).
    """
    return resolve_tolerance(rtol, atol, computed_dtype(dtype))


@contextlib.contextmanager
def float64_scope() -> Iterator[None]:
    """float64 computed as float64 inside (JAX: x64 mode for the block, as it was after).

    Keras 3.15's type promotion maps float64 to float32 on every backend but
    TensorFlow (``BIT64_TO_BIT32_DTYPE``, after JAX's x64-off default), so on
    JAX and torch ``ops.mean``, ``ops.var`` and the quantiles of a float64
    tensor compute in float32: a float64 re-run would carry float32 rounding.
    Inside the block that entry maps float64 to itself; it is put back after.

    TensorFlow's C++ graph optimizer logs ``Not handling type DT_DOUBLE`` to the
    process's stderr for every float64 graph it meets; :func:`_native_noise_dropped`
    keeps those lines out of the user's output.
    """
    jax = sys.modules.get("jax")
    with _native_noise_dropped(), _float64_promoted():
        if name() == "jax" and jax is not None and hasattr(jax, "enable_x64"):
            with jax.enable_x64(True):
                yield
        else:
            yield


@contextlib.contextmanager
def _float64_promoted() -> Iterator[None]:
    """Keras's type promotion keeps float64 inside (see :func:`float64_scope`)."""
    try:
        from keras.src.backend.common import dtypes
    except ImportError:  # a Keras without this module: nothing to undo
        yield
        return
    table = getattr(dtypes, "BIT64_TO_BIT32_DTYPE", None)
    if not isinstance(table, dict) or table.get("float64", "float64") == "float64":
        yield
        return
    was = table["float64"]
    table["float64"] = "float64"
    try:
        yield
    finally:
        table["float64"] = was


#: TensorFlow C++ log lines a float64 re-run causes, dropped from stderr (nothing else is).
_NATIVE_NOISE = re.compile(rb"^[IWE]\d{4} [^\n]*util\.cc:\d+\] Not handling type DT_DOUBLE\n", re.M)


@contextlib.contextmanager
def _native_noise_dropped() -> Iterator[None]:
    """Route file descriptor 2 through a temporary file; write back all but :data:`_NATIVE_NOISE`.

    C++ logging writes to the descriptor, not to ``sys.stderr``, so only a
    descriptor-level detour reaches it. Anything else written meanwhile (Python's
    stderr included) is written back unchanged and in order when the block ends.
    """
    if "tensorflow" not in sys.modules:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as detour:
        os.dup2(detour.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            detour.seek(0)
            kept = _NATIVE_NOISE.sub(b"", detour.read())
            if kept:
                os.write(2, kept)
