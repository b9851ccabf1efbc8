"""The backends' global switches: matmul precision, deterministic ops, global seeds.

Each guard sets or keeps a switch for the length of a block and puts the
caller's setting back after, on failure too. A guard touches only the backend
libraries already imported (importing pytest_rnn stays light).

========================  ======================  ======================  =====================
guard                     TensorFlow              JAX                     torch
========================  ======================  ======================  =====================
``precision_guard``       TF32 off                matmul "highest"        TF32 off (matmul,
                                                                          cuDNN)
``determinism_guard``     op determinism          nothing to do on CPU    deterministic
                                                  (see ``DETERMINISM``)   algorithms (warn only)
``seed_guard``            global and op seeds     (no global RNG)         CPU/CUDA RNG states
========================  ======================  ======================  =====================
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from pytest_rnn._keras.backend import name

__all__ = ["DETERMINISM", "determinism_guard", "precision_guard", "seed_guard"]

#: What each backend promises for two seeded training runs on one machine.
DETERMINISM = {
    "tensorflow": "op determinism on (tf.config.experimental.enable_op_determinism)",
    "jax": (
        "deterministic on CPU; on GPU XLA may reorder reductions unless JAX was started "
        "with XLA_FLAGS=--xla_gpu_deterministic_ops=true (pytest-rnn cannot set it later)"
    ),
    "torch": (
        "torch.use_deterministic_algorithms(True, warn_only=True): an op without a "
        "deterministic kernel (some CUDA ones) warns and may still differ between runs"
    ),
}


@contextlib.contextmanager
def precision_guard() -> Iterator[None]:
    """Full float32 matmul precision while checking; the previous settings restored after.

    TensorFlow: TF32 off. JAX: default matmul precision "highest". torch: TF32
    off for matmul and cuDNN. Only backends already imported are touched.
    """
    with contextlib.ExitStack() as undo:  # restores in reverse order, on failure too
        tf = sys.modules.get("tensorflow")
        if tf is not None:
            exp = tf.config.experimental
            undo.callback(
                exp.enable_tensor_float_32_execution, exp.tensor_float_32_execution_enabled()
            )
            exp.enable_tensor_float_32_execution(False)
        jax = sys.modules.get("jax")
        if jax is not None:
            undo.callback(
                jax.config.update,
                "jax_default_matmul_precision",
                jax.config.jax_default_matmul_precision,
            )
            jax.config.update("jax_default_matmul_precision", "highest")
        torch = sys.modules.get("torch")
        if torch is not None:
            undo.callback(
                setattr,
                torch.backends.cuda.matmul,
                "allow_tf32",
                torch.backends.cuda.matmul.allow_tf32,
            )
            undo.callback(
                setattr, torch.backends.cudnn, "allow_tf32", torch.backends.cudnn.allow_tf32
            )
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        yield


@contextlib.contextmanager
def determinism_guard() -> Iterator[None]:
    """Deterministic ops where the backend offers a switch; the caller's setting restored.

    See :data:`DETERMINISM` for what each backend promises.
    """
    backend = name()
    if backend == "tensorflow":
        from tensorflow.python.framework import config as tf_config

        was = tf_config.is_op_determinism_enabled()
        tf_config.enable_op_determinism()
        try:
            yield
        finally:
            if not was:
                tf_config.disable_op_determinism()
    elif backend == "torch":
        import torch

        was, warn = (
            torch.are_deterministic_algorithms_enabled(),
            torch.is_deterministic_algorithms_warn_only_enabled(),
        )
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(was, warn_only=warn)
    else:  # JAX: deterministic on CPU; the GPU flag must be set before JAX starts
        yield


@contextlib.contextmanager
def seed_guard() -> Iterator[None]:
    """Put the backends' global seeds back on exit (``keras.utils.set_random_seed`` moves them).

    TensorFlow: the global seed and the op-seed stream. torch: the CPU (and
    CUDA) generator states. JAX has no global random state.
    """
    with contextlib.ExitStack() as undo:
        if sys.modules.get("tensorflow") is not None:
            from tensorflow.python.eager import context as tf_context

            ctx = tf_context.context()
            saved = {n: getattr(ctx, n) for n in ("_seed", "_rng") if hasattr(ctx, n)}

            def _tf_back() -> None:
                for n in ("_seed", "_rng"):
                    if n in saved:
                        setattr(ctx, n, saved[n])
                    elif hasattr(ctx, n):
                        delattr(ctx, n)

            undo.callback(_tf_back)
        torch = sys.modules.get("torch")
        if torch is not None:
            undo.callback(torch.set_rng_state, torch.get_rng_state())
            if torch.cuda.is_available():
                undo.callback(torch.cuda.set_rng_state_all, torch.cuda.get_rng_state_all())
        yield
