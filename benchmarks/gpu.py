"""The GPU check: reliability sweep, injected bugs and benchmark ratios on every backend.

One prepared script for a machine with an accelerator. Run from the repository root::

    python benchmarks/gpu.py --install      # once: the JAX and torch CUDA wheels, then the check
    python benchmarks/gpu.py                # full size, every installed backend, < 8 minutes
    python benchmarks/gpu.py --size tiny --backends torch --json out.json   # CI, on a CPU, per backend

Options: ``--size tiny|full``, ``--backends tensorflow,jax,torch`` (default:
every installed one), ``--install``, ``--json FILE``, ``--minutes M`` (the
wall-clock budget; full: 7.5), ``--models N`` and ``--steps N`` (override
the size), ``--sequential`` (one backend at a time), ``--strict``,
``--skip-bench``.

Each backend runs in its own subprocess (the backend is fixed at the first
Keras import; the backends run side by side), twice, once per *leg*:

- ``guard``: as the assertions run, their precision guard on (TF32 off, JAX
  matmul precision "highest", torch TF32 off while an assertion computes).
- ``default``: the backend's reduced-precision GPU numerics. pytest-rnn has no
  public switch for its guard, so this leg replaces
  ``pytest_rnn._keras.guards.precision_guard`` (the name ``K.untouched``, every
  assertion's guard, calls) with a no-op and turns reduced precision on
  explicitly: TensorFlow TF32 on (its default), JAX
  ``jax_default_matmul_precision="default"``, torch ``allow_tf32`` on for
  matmul and cuDNN (torch's own default keeps matmul TF32 off). The JSON
  records the switches as read inside an assertion, so the patch is seen to
  hold.

Each leg runs (1) the reliability sweep: random correct models from
``sequence_models()`` (400 steps at full size) through
``assert_stateful_equals_batch`` with chunks of 1 and an uneven schedule,
``assert_model_causal`` and ``assert_labels_causal`` (aligned labels, first 64
steps) where the model returns sequences, and encoder-decoders from
``seq2seq_models()`` (400 encoder steps) through
``assert_inference_matches_training`` (free-running or teacher-forced
replay); a last-step model that masks runs at 24 steps (``PREFIX_STEPS``).
For every correct model the script computes the largest difference itself,
also when the assertion passes: the stateful twin streamed chunk by chunk
against the batch model at every valid step (or chunk end), the free-running
decode against the training model fed the same outputs; and that difference
over the default tolerance the assertions use for the output dtype (a float64
output's is float32's on JAX and torch, where Keras computes float64 matmuls
in float32: ``K.output_tolerance``). An assertion failing (or
crashing) on a correct model is a false alarm. (2) The injected bugs of
``tests/test_mutations.py`` (Conv1D ``padding='same'``, Bidirectional,
``go_backwards``, weights not copied, ...), each caught only with the message
that names it; a bug whose model Keras itself cannot run on the backend is
listed as not injected, with the reason. Then, one backend at a time, (3) the
benchmark ratios of ``benchmarks/run.py`` (full size: ``run.py --single
--skip-hypothesis --skip-scaling --repeats 1``; tiny: its stateful, causal and
seq2seq ratios in-process, one repeat).

At full size a leg stops drawing new models when its share of ``--minutes``
is spent (at least one of each kind always runs); the table says how many
were checked of how many planned. Exit code 1 on a false alarm in the
``guard`` leg (``--strict``: in either), on a missed bug, or when a backend did
not run; false alarms in the ``default`` leg are what the guard prevents, and
are reported. Without a GPU it still runs, and says "no GPU found: figures are
CPU figures". ``--install`` pip-installs only ``jax[cuda12]`` at the installed
JAX version and the CUDA build of the installed torch version from the
PyTorch index (with the NVIDIA libraries they depend on); TensorFlow uses
those NVIDIA libraries if it can, or reports CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BACKENDS = ("tensorflow", "jax", "torch")
LEGS = ("guard", "default")
NO_GPU = "no GPU found: figures are CPU figures"
# The CUDA builds tried for torch, newest first; the first the index has for the version wins.
TORCH_CUDA_TAGS = ("cu130", "cu129", "cu128", "cu126", "cu124", "cu121")
# The ratios of benchmarks/run.py shown first (its other keys follow).
RATIOS = (
    "stateful_assert_over_full_pass",
    "naive_loop_over_stateful_assert",
    "causal_assert_over_full_pass",
    "seq2seq_assert_over_train_pass",
    "resume_assert_over_uninterrupted_fit",
    "windows_dataset_assert_s",
)
# Chunk lengths of an uneven schedule: few distinct ones, as JAX compiles once per shape.
UNEVEN = (1, 2, 5)
# A last-step model with no every-step copy (one that masks) is checked against the
# model run on every chunk-end prefix: one compile per length on JAX, quadratic on
# torch (400 steps in chunks of 1: 276 s and 54 s on a 2-core CPU). Those run shorter.
PREFIX_STEPS = 24
# assert_labels_causal(model=...) measures the model's receptive field step by step:
# 7.6 s a call at 400 steps on a 2-core CPU (assert_model_causal: 1.2 s). It reads the
# first LABEL_STEPS steps.
LABEL_STEPS = 64
# Full size: seconds kept per backend for benchmarks/run.py, and for the children to finish.
# On an H200 (2026-12-04) run.py at --repeats 3 did not finish in 81 s on JAX nor on torch:
# one repeat, and a larger share.
BENCH_S = 110.0
BENCH_REPEATS = "1"
WRAP_UP_S = 20.0


@dataclass(frozen=True)
class Size:
    models: int  # correct sequence models in the sweep
    steps: int  # their steps (and the encoder steps of the seq2seq sweep)
    seq2seq: int  # correct encoder-decoders in the sweep
    max_decoder_steps: int
    bug_models: int  # drawn models every sequence bug is injected into
    bug_seq2seq: int  # drawn encoder-decoders every seq2seq bug is wired into
    bugs: tuple[str, ...] = ()  # the bugs of tests/test_mutations.py injected; (): all
    minutes: float | None = None  # the wall-clock budget of the whole run


SIZES = {
    # Two sequence models (the derandomized draw of one gave no causality check) and a bug
    # of each kind: a bug costs a failing assertion and its diagnosis (about 1 s); the full
    # size injects them all.
    "tiny": Size(
        models=2, steps=12, seq2seq=1, max_decoder_steps=4, bug_models=1, bug_seq2seq=1,
        bugs=("Conv1D padding='same' inserted", "encoder states not passed"),
    ),
    "full": Size(
        models=20, steps=400, seq2seq=8, max_decoder_steps=16, bug_models=4, bug_seq2seq=4,
        minutes=7.5,
    ),
}  # fmt: skip


def load(name: str, path: Path) -> ModuleType:
    """The module at ``path`` (tests/ and benchmarks/ are no packages)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- the child: numerics


def device() -> tuple[bool, str]:
    """Whether the Keras backend computes on a GPU, and the device's name."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return True, str(details.get("device_name", gpus[0].name))
    elif backend == "jax":
        import jax

        first = jax.devices()[0]
        if first.platform == "gpu":
            return True, str(first.device_kind)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return True, torch.cuda.get_device_name(0)
    return False, "cpu"


def switches() -> dict[str, Any]:
    """The Keras backend's reduced-precision switches, as they read now."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return {"tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled())}
    if backend == "jax":
        import jax

        config: Any = jax.config
        return {"jax_default_matmul_precision": config.jax_default_matmul_precision}
    import torch

    backends: Any = torch.backends
    return {
        "matmul_tf32": bool(backends.cuda.matmul.allow_tf32),
        "cudnn_tf32": bool(backends.cudnn.allow_tf32),
    }


@contextlib.contextmanager
def numerics(leg: str) -> Iterator[None]:
    """The leg's numerics: the assertions' own guard, or the backend's reduced precision."""
    if leg == "guard":
        yield
        return
    import keras

    from pytest_rnn import _keras as K
    from pytest_rnn._keras import guards
    from pytest_rnn._keras import switches as sw

    with contextlib.ExitStack() as undo:
        # No public switch turns the guard off: replace it where it is looked up.
        # K.untouched (every assertion's guard) calls guards.precision_guard by
        # name; the other two are the same function under its other names.
        modules: tuple[Any, ...] = (guards, sw, K)
        for module in modules:
            undo.callback(setattr, module, "precision_guard", module.precision_guard)
            module.precision_guard = contextlib.nullcontext
        # Reduced precision on, explicitly (no effect on a CPU): the Keras backend's only.
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            exp = tf.config.experimental
            undo.callback(
                exp.enable_tensor_float_32_execution, exp.tensor_float_32_execution_enabled()
            )
            exp.enable_tensor_float_32_execution(True)
        elif backend == "jax":
            import jax

            config: Any = jax.config
            was = config.jax_default_matmul_precision
            undo.callback(config.update, "jax_default_matmul_precision", was)
            config.update("jax_default_matmul_precision", "default")
        else:
            import torch

            backends: Any = torch.backends
            for flags in (backends.cuda.matmul, backends.cudnn):
                undo.callback(setattr, flags, "allow_tf32", flags.allow_tf32)
                flags.allow_tf32 = True
        yield


# --------------------------------------------------------------------------- the child: figures


class Worst:
    """The largest difference seen on correct models, absolute and over the tolerance."""

    def __init__(self) -> None:
        self.abs = 0.0
        self.ratio = 0.0
        self.where = ""

    def add(self, actual: Any, expected: Any, valid: Any, where: str) -> None:
        """Compare ``actual`` with ``expected`` where ``valid`` (``(batch, steps)``, or None)."""
        import numpy as np

        from pytest_rnn import _keras as K

        e = np.asarray(expected)
        tol = K.output_tolerance(None, None, e.dtype)  # the assertions' rule
        a, e = np.asarray(actual, np.float64), e.astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(a - e)
            ratio = diff / (tol.atol + tol.rtol * np.abs(e))
        if valid is not None:
            keep = np.broadcast_to(np.asarray(valid)[(...,) + (None,) * (a.ndim - 2)], a.shape)
            diff, ratio = diff[keep], ratio[keep]
        if diff.size == 0:
            return
        worst_abs, worst_ratio = float(diff.max()), float(ratio.max())
        if not math.isfinite(worst_abs):  # NaN or inf where the other run is finite
            worst_abs = worst_ratio = math.inf
        self.abs = max(self.abs, worst_abs)
        if worst_ratio > self.ratio:
            self.ratio, self.where = worst_ratio, where


def numpy_of(out: Any) -> Any:
    """One output (or a one-element list of it) as a numpy array."""
    import keras
    import numpy as np

    if isinstance(out, (list, tuple)):
        (out,) = out
    return np.asarray(keras.ops.convert_to_numpy(out))


def uneven(steps: int, seed: int) -> list[int]:
    """An uneven schedule of chunk lengths from :data:`UNEVEN` summing to ``steps``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    chunks: list[int] = []
    left = steps
    while left:
        chunk = int(rng.choice([n for n in UNEVEN if n <= left]))
        chunks.append(chunk)
        left -= chunk
    if len(set(chunks)) == 1 and steps > 2:
        chunks = [1, 2, *[1] * (steps - 3)]
    return chunks


def valid_steps(spec: Any, x: Any) -> Any:
    """``(batch, steps)`` bool: the steps a masking model keeps, or None."""
    import numpy as np

    if not spec.masked:
        return None
    return x != 0 if spec.tokens else np.any(x != 0, axis=-1)


def every_step_spec(spec: Any) -> Any:
    """``spec`` with its last recurrent layer returning sequences (the heads act per step)."""
    last = max(i for i, layer in enumerate(spec.layers) if layer.recurrent)
    return spec.replace(last, spec.layers[last].replace(return_sequences=True))


def stream_figure(model: Any, spec: Any, x: Any, schedules: list[Any], worst: Worst) -> None:
    """The stateful twin streamed chunk by chunk against the batch model, per schedule.

    The twin is the one the assertion streams (``K.cached_clone``, the same copy
    ``pytest_rnn.stateful_twin`` makes), so its compiled calls are shared; the loop
    and the comparison are this script's. A last-step output at chunk end ``t``
    is compared with the every-step model's output at step ``t - 1``.
    """
    import numpy as np

    import pytest_rnn
    from pytest_rnn import _keras as K

    batch, steps = x.shape[:2]
    twin = K.cached_clone(model, "stateful", batch)
    reference = model if spec.return_sequences else every_step_spec(spec).build()
    valid = valid_steps(spec, x)
    with K.untouched(twin):  # the leg's precision, as the assertion computes
        full = numpy_of(K.compiled(reference, x, fixed_batch=False)(x))
        for chunks in schedules:
            lengths = [1] * steps if chunks == 1 else chunks
            ends = np.cumsum(lengths)
            pytest_rnn.reset_states(twin)
            pieces = []
            for start, end in zip([0, *ends[:-1]], ends):
                part = x[:, start:end]
                pieces.append(numpy_of(K.compiled(twin, part, fixed_batch=True)(part)))
            if spec.return_sequences:
                streamed, expected, kept = np.concatenate(pieces, axis=1), full, valid
            else:
                streamed, expected = np.stack(pieces, axis=1), full[:, ends - 1]
                kept = None if valid is None else valid[:, ends - 1]
            name = "chunks=1" if chunks == 1 else "uneven chunks"
            worst.add(streamed, expected, kept, f"{spec!r}, x {x.shape}, {name}")


def decode_figure(spec: Any, net: Any, enc: Any, worst: Worst) -> None:
    """The free-running decode of the inference pair against the training model fed its outputs."""
    import numpy as np

    from pytest_rnn import _keras as K

    batch = enc.shape[0]
    dtype = "float64" if spec.dtype == "float64" else "float32"
    with K.untouched():
        states = net.encoder_model(enc, training=False)
        states = [
            numpy_of([s]) for s in (states if isinstance(states, (list, tuple)) else [states])
        ]
        if spec.tokens:
            y_prev: Any = np.full((batch, 1), spec.start, "int32")
        else:
            y_prev = np.full((batch, 1, spec.features), spec.start, dtype)
        fed, outputs = [y_prev], []
        for _ in range(spec.decoder_steps):
            y, *new = net.decoder_step_model([y_prev, *states], training=False)
            y, states = numpy_of([y]), [numpy_of([s]) for s in new]
            outputs.append(y)
            y_prev = y.argmax(axis=-1).astype("int32") if spec.tokens else y.astype(dtype)
            fed.append(y_prev)
        decoded = np.concatenate(outputs, axis=1)
        trained = numpy_of(net.train([enc, np.concatenate(fed[:-1], axis=1)], training=False))
    worst.add(decoded, trained, None, f"{spec!r}, encoder x {enc.shape}")


# --------------------------------------------------------------------------- the child: the legs


@dataclass
class Leg:
    """One leg's figures on one backend (the JSON's ``legs.<leg>``)."""

    leg: str
    switches_inside_assertion: dict[str, Any]
    planned: dict[str, int]
    models: int = 0  # correct models checked, sequence and seq2seq
    prefix_models: int = 0  # last-step masking models, run at PREFIX_STEPS steps
    cut_by_deadline: bool = False
    checks: dict[str, int] = field(default_factory=dict)
    check_s: dict[str, float] = field(default_factory=dict)
    max_abs_diff: float = 0.0
    max_diff_over_tolerance: float = 0.0
    worst_model: str = ""
    false_alarms: int = 0
    figure_errors: int = 0  # this script's figure failed (the message is among the alarms)
    alarms: list[str] = field(default_factory=list)
    bug_models: int = 0
    bugs_caught: int = 0
    bugs_total: int = 0
    misses: list[str] = field(default_factory=list)
    bugs_skipped: dict[str, str] = field(default_factory=dict)  # bug -> why Keras cannot
    tally: dict[str, list[int]] = field(default_factory=dict)
    sweep_s: float = 0.0
    bugs_s: float = 0.0

    def check(self, name: str, call: Callable[[], None], what: str) -> None:
        """One assertion on a correct model: failing or crashing is a false alarm."""
        start = time.perf_counter()
        try:
            call()
        except Exception as error:
            self.false_alarms += 1
            self.alarms.append(f"{name} on {what}: {type(error).__name__}: {error}"[:3000])
        self.checks[name] = self.checks.get(name, 0) + 1
        self.check_s[name] = self.check_s.get(name, 0.0) + time.perf_counter() - start

    def figure(self, call: Callable[[], None], what: str) -> None:
        """This script's own difference figure for one model: an error is the script's."""
        start = time.perf_counter()
        try:
            call()
        except Exception as error:
            self.figure_errors += 1
            self.alarms.append(f"figure on {what}: {type(error).__name__}: {error}"[:3000])
        self.check_s["figure"] = self.check_s.get("figure", 0.0) + time.perf_counter() - start


def draw(strategy: Any, count: int, **extra: Any) -> list[tuple[Any, ...]]:
    """``count`` derandomized draws of ``(spec, batch, seed, *extra)``: the same every run."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    drawn: list[tuple[Any, ...]] = []

    @settings(
        max_examples=count, derandomize=True, database=None, deadline=None,
        phases=[Phase.generate], suppress_health_check=list(HealthCheck),
    )  # fmt: skip
    @given(spec=strategy, batch=st.integers(2, 4), seed=st.integers(0, 2**16), **extra)
    def collect(spec: Any, batch: int, seed: int, **more: Any) -> None:
        if len(drawn) < count:
            drawn.append((spec, batch, seed, *more.values()))

    collect()
    return drawn


def interleave(*groups: list[Any]) -> list[tuple[int, Any]]:
    """``(group, item)`` pairs, the groups mixed evenly: a cut keeps some of each."""
    tagged = [
        ((i + 0.5) / len(g), n, item) for n, g in enumerate(groups) for i, item in enumerate(g)
    ]
    return [(n, item) for _, n, item in sorted(tagged, key=lambda t: (t[0], t[1]))]


def chosen(bugs: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """The bugs named (every one where none is named, or none of the names is there)."""
    picked = {name: bug for name, bug in bugs.items() if name in names}
    return picked or dict(bugs)


def run_leg(leg: str, size: Size, deadline: float | None, tests: dict[str, ModuleType]) -> Leg:
    """The sweep and the injected bugs, under the numerics already set for ``leg``."""
    from hypothesis import strategies as st

    from pytest_rnn import _keras as K
    from pytest_rnn.strategies import seq2seq_models, sequence_models

    started = time.time()
    sweep_deadline = None if deadline is None else started + 0.6 * (deadline - started)
    sequences = draw(sequence_models(), size.models)
    seq2seqs = draw(
        seq2seq_models(max_decoder_steps=size.max_decoder_steps), size.seq2seq,
        teacher=st.booleans(),
    )  # fmt: skip
    with K.untouched():
        inside = switches()
    planned = {"sequence models": len(sequences), "encoder-decoders": len(seq2seqs)}
    result = Leg(leg, inside, planned)
    worst = Worst()
    done = [0, 0]
    for kind, drawn in interleave(sequences, seq2seqs):
        if done[kind] and sweep_deadline is not None and time.time() > sweep_deadline:
            result.cut_by_deadline = True
            continue
        if kind == 0:
            sequence_model(result, worst, size, drawn, tests)
        else:
            encoder_decoder(result, worst, size, drawn, tests)
        done[kind] += 1
        result.models += 1
    result.sweep_s = time.time() - started
    result.max_abs_diff, result.max_diff_over_tolerance = worst.abs, worst.ratio
    result.worst_model = worst.where

    start = time.time()
    bug_models = draw(sequence_models(max_layers=2), size.bug_models, steps=st.integers(3, 8))
    bug_seq2seqs = draw(
        seq2seq_models(min_decoder_steps=2), size.bug_seq2seq, steps=st.integers(2, 6)
    )
    planned["bug models"] = len(bug_models)
    planned["bug encoder-decoders"] = len(bug_seq2seqs)
    mutations = tests["mutations"]
    injected = chosen(mutations.SEQUENCE_BUGS, size.bugs)
    result.bugs_skipped = {bug: why for bug, why in keras_limits().items() if bug in injected}
    tally = mutations.Tally()
    done = [0, 0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not support masking")
        for kind, drawn in interleave(bug_models, bug_seq2seqs):
            if done[kind] and deadline is not None and time.time() > deadline:
                result.cut_by_deadline = True
                continue
            inject = inject_sequence_bugs if kind == 0 else wire_seq2seq_bugs
            result.misses += inject(tally, size, drawn, mutations)
            done[kind] += 1
            result.bug_models += 1
    result.bugs_s = time.time() - start
    result.bugs_caught = sum(tally.caught.values())
    result.bugs_total = sum(tally.injected.values())
    result.tally = {bug: [tally.caught[bug], n] for bug, n in sorted(tally.injected.items())}
    return result


def sequence_model(
    result: Leg, worst: Worst, size: Size, drawn: tuple[Any, ...], tests: dict[str, ModuleType]
) -> None:
    """One correct sequence model through every assertion that applies, and its figure."""
    import pytest_rnn
    from pytest_rnn import _keras as K

    spec, batch, seed = drawn
    model = spec.build()
    steps = size.steps
    if not spec.return_sequences and K.every_step_copy(model) is None:
        steps = min(steps, PREFIX_STEPS)
        result.prefix_models += 1
    x = tests["mutations"].informative_inputs(spec, batch, steps, seed)
    schedules: list[Any] = [1, uneven(steps, seed)]
    what = f"{spec!r}, x {x.shape}"
    result.figure(lambda: stream_figure(model, spec, x, schedules, worst), what)
    for chunks in schedules:
        result.check(
            "stateful",
            functools.partial(pytest_rnn.assert_stateful_equals_batch, model, x, chunks=chunks),
            f"{what}, chunks {str(chunks)[:80]}",
        )
    reliability = tests["reliability"]
    if spec.return_sequences and reliability._varied(x):
        result.check("causal", lambda: pytest_rnn.assert_model_causal(model, x), what)
        head = x[:, :LABEL_STEPS]
        if reliability._varied(head):
            result.check(
                "labels",
                lambda: pytest_rnn.assert_labels_causal(
                    reliability.aligned_labels, head, model=model
                ),
                f"{spec!r}, x {head.shape}",
            )


def encoder_decoder(
    result: Leg, worst: Worst, size: Size, drawn: tuple[Any, ...], tests: dict[str, ModuleType]
) -> None:
    """One correct encoder-decoder through the seq2seq assertion, and its figure."""
    import numpy as np

    import pytest_rnn

    spec, batch, seed, teacher = drawn
    enc = tests["mutations"].encoder_inputs(spec, batch, size.steps, seed)
    net = spec.build()
    what = f"{spec!r}, encoder x {enc.shape}"
    result.figure(lambda: decode_figure(spec, net, enc, worst), what)
    dec = None
    if teacher:  # a teacher-forced replay of random decoder inputs, the start at step 0
        g = np.random.default_rng(seed + 1)
        if spec.tokens:
            dec = g.integers(1, spec.vocab_size, (batch, spec.decoder_steps)).astype("int32")
        else:
            dec = g.uniform(-1, 1, (batch, spec.decoder_steps, spec.features)).astype(enc.dtype)
        dec[:, 0] = spec.start
    result.check(
        "seq2seq",
        lambda: pytest_rnn.assert_inference_matches_training(
            net.train, net.pair, enc, decoder_inputs=dec, **spec.inference_kwargs
        ),
        f"{what}{', teacher-forced' if teacher else ''}",
    )


@functools.cache
def keras_limits() -> dict[str, str]:
    """Injected bugs whose model Keras itself cannot run on this backend: bug -> why.

    Each limit is probed, so a Keras that lifts it gets the bug injected again.
    """
    import keras
    import numpy as np

    limits = {}
    if keras.backend.backend() == "torch":
        norm = keras.layers.LayerNormalization(axis=1, center=False, scale=False)
        try:
            norm(np.ones((2, 3, 1), "float32"))
        except Exception as error:
            limits["LayerNormalization over time inserted"] = (
                f"Keras {keras.__version__} on torch cannot call LayerNormalization(axis=1) "
                f"at all (torch's layer_norm normalises the last axes only): "
                f"{type(error).__name__}"
            )
    return limits


def inject_sequence_bugs(
    tally: Any, size: Size, drawn: tuple[Any, ...], mutations: ModuleType
) -> list[str]:
    """Every chosen sequence bug injected into one drawn model; the misses."""
    spec, batch, seed, steps = drawn
    x = mutations.informative_inputs(spec, batch, steps, seed)
    misses = []
    limits = keras_limits()
    for bug, inject in chosen(mutations.SEQUENCE_BUGS, size.bugs).items():
        if bug in limits:
            continue
        for assertion, fragment, call in inject(spec, x):
            miss = tally.run(f"{bug} ({assertion})", call, fragment)
            if miss:
                misses.append(f"{spec!r}, x {x.shape}: {miss}"[:3000])
    return misses


def wire_seq2seq_bugs(
    tally: Any, size: Size, drawn: tuple[Any, ...], mutations: ModuleType
) -> list[str]:
    """Every chosen seq2seq bug wired into one drawn encoder-decoder; the misses."""
    import pytest_rnn

    spec, batch, seed, steps = drawn
    enc = mutations.encoder_inputs(spec, batch, steps, seed)
    net = spec.build()
    misses = []
    for bug, (wire, fragment, fewest) in chosen(mutations.SEQ2SEQ_BUGS, size.bugs).items():
        if spec.decoder_steps < fewest:
            continue
        call = functools.partial(
            pytest_rnn.assert_inference_matches_training,
            net.train, wire(net), enc, **spec.inference_kwargs,
        )  # fmt: skip
        miss = tally.run(bug, call, fragment)
        if miss:
            misses.append(f"{spec!r}, encoder x {enc.shape}: {miss}"[:3000])
    return misses


def bench_here() -> dict[str, Any]:
    """benchmarks/run.py's stateful, causal and seq2seq ratios in this process, one repeat."""
    run = load("pytest_rnn_benchmarks_run", ROOT / "benchmarks" / "run.py")
    stateful = run.bench_stateful(1, 3)
    return {
        "stateful_assert_over_full_pass": stateful["stateful_assert_over_full_pass"],
        "naive_loop_over_stateful_assert": stateful["naive_loop_over_stateful_assert"],
        "causal_assert_over_full_pass": run.bench_causal(1),
        "seq2seq_assert_over_train_pass": run.bench_seq2seq(1),
        "stateful_assert_ms": stateful["assert_s"] * 1000,
        "full_pass_ms": stateful["full_pass_s"] * 1000,
        "how": "in-process, repeats 1, naive steps 3",
    }


def child(size: Size, out: Path, deadline: float | None, bench: bool) -> int:
    """One backend (``KERAS_BACKEND``): both legs, optionally the in-process ratios; JSON to ``out``."""
    started = time.perf_counter()
    # JAX without x64 computes the float64 models in float32 (as the test suite does).
    warnings.filterwarnings("ignore", "Explicitly requested dtype float64")
    import keras

    tests = {
        "mutations": load("pytest_rnn_test_mutations", ROOT / "tests" / "test_mutations.py"),
        "reliability": load("pytest_rnn_test_reliability", ROOT / "tests" / "test_reliability.py"),
    }
    backend = keras.backend.backend()
    gpu, name = device()
    print(f"{backend}: {'GPU ' + name if gpu else NO_GPU}; switches {switches()}", flush=True)
    legs = {}
    for n, leg in enumerate(LEGS):
        share = None if deadline is None else time.time() + (deadline - time.time()) / (2 - n)
        with numerics(leg):
            legs[leg] = r = run_leg(leg, size, share, tests)
        print(
            f"{backend} {leg}: {r.models} models, max |diff| {r.max_abs_diff:.3g} "
            f"({r.max_diff_over_tolerance:.3g} of the tolerance), false alarms "
            f"{r.false_alarms}, bugs caught {r.bugs_caught}/{r.bugs_total} "
            f"(sweep {r.sweep_s:.0f} s, bugs {r.bugs_s:.0f} s"
            f"{', cut by the time budget' if r.cut_by_deadline else ''})",
            flush=True,
        )
    start = time.perf_counter()
    figures = bench_here() if bench else {}
    result = {
        "backend": backend,
        "keras": keras.__version__,
        "gpu": gpu,
        "device": name,
        "switches_outside": switches(),
        "legs": {leg: asdict(r) for leg, r in legs.items()},
        "benchmark": figures,
        "benchmark_s": time.perf_counter() - start,
        "seconds": time.perf_counter() - started,
    }
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


# --------------------------------------------------------------------------- the parent


def installed_backends() -> list[str]:
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def install(backends: list[str]) -> None:
    """pip-install the JAX and torch CUDA wheels (at the installed versions), nothing else."""
    pip = [sys.executable, "-m", "pip", "install"]
    if "jax" in backends and not any(
        importlib.util.find_spec(p) for p in ("jax_cuda12_plugin", "jax_cuda13_plugin")
    ):
        version = importlib.metadata.version("jax")
        print(f"installing jax[cuda12]=={version}", flush=True)
        subprocess.run([*pip, f"jax[cuda12]=={version}"], check=True)
    if "torch" in backends:
        version = importlib.metadata.version("torch")
        base, _, local = version.partition("+")
        if local.startswith("cu") or (not local and sys.platform == "linux"):
            print(f"torch {version} is a CUDA build already", flush=True)
            return
        for tag in TORCH_CUDA_TAGS:
            url = f"https://download.pytorch.org/whl/{tag}"
            print(f"installing torch=={base}+{tag} from {url}", flush=True)
            if subprocess.run([*pip, f"torch=={base}+{tag}", "--index-url", url]).returncode == 0:
                return
        raise SystemExit(f"no CUDA build of torch {base} found on the PyTorch index")


def child_env(backend: str) -> dict[str, str]:
    return {
        **os.environ,
        "KERAS_BACKEND": backend,
        "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",  # TensorFlow otherwise takes the whole GPU
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",  # and JAX 75 % of it
    }


def run_children(
    backends: list[str], passed: list[str], deadline: float | None, sequential: bool
) -> dict[str, dict[str, Any]]:
    """One child per backend, side by side (or one at a time); their JSON by backend."""
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        outs = {b: Path(tmp) / f"{b}.json" for b in backends}

        def start(backend: str, until: float | None) -> subprocess.Popen[bytes]:
            cmd = [sys.executable, __file__, "--single", "--json", str(outs[backend]), *passed]
            cmd += [] if until is None else [f"--deadline={until}"]
            return subprocess.Popen(cmd, env=child_env(backend), cwd=ROOT)

        procs = {}
        for n, backend in enumerate(backends):
            if sequential:
                left = len(backends) - n
                until = None if deadline is None else time.time() + (deadline - time.time()) / left
                procs[backend] = start(backend, until)
                procs[backend].wait()
            else:
                procs[backend] = start(backend, deadline)
        for backend, proc in procs.items():
            code = proc.wait()
            if code != 0 or not outs[backend].exists():
                print(f"{backend}: failed (exit {code})", flush=True)
                results[backend] = {"error": f"exit {code}"}
            else:
                results[backend] = json.loads(outs[backend].read_text())
    return results


def bench_subprocess(backend: str, timeout: float) -> dict[str, Any]:
    """``benchmarks/run.py --single --skip-hypothesis --skip-scaling --repeats 1``'s JSON."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--single"]
        cmd += ["--skip-hypothesis", "--skip-scaling", "--repeats", BENCH_REPEATS, "--json", str(out)]
        print(f"{backend}: {' '.join(cmd[1:])}", flush=True)
        try:
            proc = subprocess.run(cmd, env=child_env(backend), cwd=ROOT, timeout=timeout)
        except subprocess.TimeoutExpired:  # run.py writes each figure as it comes
            partial = dict(json.loads(out.read_text())) if out.exists() else {}
            partial.pop("partial", None)
            return {**partial, "error": f"benchmarks/run.py ran past {timeout:.0f} s"}
        if proc.returncode != 0 or not out.exists():
            return {"error": f"benchmarks/run.py failed (exit {proc.returncode})"}
        figures = dict(json.loads(out.read_text()))
        figures["how"] = " ".join(["benchmarks/run.py", *cmd[2:-2]])
        return figures


def report(results: dict[str, dict[str, Any]]) -> None:
    """The table per backend and leg, the ratios, and what each leg saw."""
    print()
    head = f"{'backend':10} {'leg':7} {'device':16} {'models':>9} {'checks':>6}"
    print(f"{head} {'max |diff|':>10} {'/ tol':>8} {'alarms':>6} {'bugs':>9}")
    for backend, r in results.items():
        if "legs" not in r:
            print(f"{backend:10} {r.get('error', 'failed')}")
            continue
        for leg, f in r["legs"].items():
            planned = f["planned"]["sequence models"] + f["planned"]["encoder-decoders"]
            models = f"{f['models']}/{planned}"
            bugs = f"{f['bugs_caught']}/{f['bugs_total']}"
            print(
                f"{backend:10} {leg:7} {r['device'][:16]:16} {models:>9} "
                f"{sum(f['checks'].values()):6d} "
                f"{f['max_abs_diff']:10.3g} {f['max_diff_over_tolerance']:8.3g} "
                f"{f['false_alarms']:6d} {bugs:>9}"
            )
    ran = {b: r for b, r in results.items() if "legs" in r}
    print()
    print(f"{'benchmark':38} " + " ".join(f"{b:>11}" for b in ran))
    figures = [r["benchmark"] for r in ran.values()]
    keys = dict.fromkeys(k for f in figures for k, v in f.items() if isinstance(v, (int, float)))
    for key in sorted(keys, key=lambda k: (k not in RATIOS, RATIOS.index(k) if k in RATIOS else 0)):
        cells = []
        for r in ran.values():
            value = r["benchmark"].get(key)
            cells.append(f"{value:11.2f}" if isinstance(value, (int, float)) else f"{'n/a':>11}")
        print(f"{key:38} " + " ".join(cells))
    for backend, r in ran.items():
        print()
        print(f"{backend}: {'GPU ' + r['device'] if r['gpu'] else NO_GPU}")
        if "error" in r["benchmark"]:
            print(f"  benchmark: {r['benchmark']['error']}")
        for leg, f in r["legs"].items():
            seconds = ", ".join(f"{k} {v:.0f} s" for k, v in f["check_s"].items())
            print(f"  {leg}: switches inside an assertion {f['switches_inside_assertion']}")
            print(f"  {leg}: checks {f['checks']}; {seconds}")
            if f["worst_model"]:
                print(f"  {leg}: largest difference on {f['worst_model']}")
            for bug, why in f["bugs_skipped"].items():
                print(f"  {leg}: not injected: {bug}: {why}")
            for line in f["alarms"][:5] + f["misses"][:5]:
                print(f"  {leg}: {line.splitlines()[0][:300]}")


def failures(results: dict[str, dict[str, Any]], strict: bool) -> list[str]:
    bad = []
    for backend, r in results.items():
        if "legs" not in r:
            bad.append(f"{backend}: did not run")
            continue
        for leg, f in r["legs"].items():
            if f["false_alarms"] and (leg == "guard" or strict):
                bad.append(f"{backend} {leg}: {f['false_alarms']} false alarm(s)")
            if f["figure_errors"]:
                bad.append(f"{backend} {leg}: {f['figure_errors']} figure(s) failed")
            if f["bugs_caught"] != f["bugs_total"] or not f["bugs_total"]:
                bad.append(f"{backend} {leg}: bugs caught {f['bugs_caught']}/{f['bugs_total']}")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full", help="default: full")
    parser.add_argument(
        "--backends", help="comma-separated Keras backends (default: every installed one)"
    )
    parser.add_argument(
        "--install", action="store_true", help="pip-install the JAX and torch CUDA wheels first"
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    parser.add_argument(
        "--minutes", type=float, help="wall-clock budget (default: full 7.5, tiny none; 0: none)"
    )
    parser.add_argument("--models", type=int, help="correct sequence models (overrides --size)")
    parser.add_argument("--steps", type=int, help="their steps (overrides --size)")
    parser.add_argument("--sequential", action="store_true", help="one backend at a time")
    parser.add_argument(
        "--strict", action="store_true", help="false alarms in the default leg fail too"
    )
    parser.add_argument("--skip-bench", action="store_true", help="no benchmark ratios")
    parser.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    minutes = size.minutes if args.minutes is None else args.minutes or None
    size = replace(
        size, models=args.models or size.models, steps=args.steps or size.steps, minutes=minutes
    )
    in_process = args.size == "tiny" and not args.skip_bench
    if args.single:
        if not args.json:
            parser.error("--single needs --json")
        return child(size, Path(args.json), args.deadline, bench=in_process)

    backends = args.backends.split(",") if args.backends else installed_backends()
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backend(s): {', '.join(unknown)}")
    if args.install:
        install(backends)
    started = time.time()
    end = None if minutes is None else started + minutes * 60
    benches = not args.skip_bench and not in_process
    deadline = None
    if end is not None:
        deadline = end - WRAP_UP_S - (BENCH_S * len(backends) if benches else 0.0)
    passed = [f"--size={args.size}", f"--models={size.models}", f"--steps={size.steps}"]
    passed += ["--skip-bench"] * args.skip_bench
    models = f"{size.models} sequence models + {size.seq2seq} encoder-decoders x {size.steps} steps"
    print(f"gpu check, size {args.size}: {models}, {', '.join(backends)}", end="")
    print("" if deadline is None else f"; sweeps stop at +{deadline - started:.0f} s", flush=True)
    results = run_children(backends, passed, deadline, args.sequential)
    if benches:  # one at a time, after the sweeps: nothing else runs beside the timings
        for n, backend in enumerate(b for b in backends if "legs" in results[b]):
            left = None if end is None else (end - time.time()) / (len(backends) - n)
            timeout = 600.0 if left is None else max(30.0, left)
            start = time.time()
            results[backend]["benchmark"] = bench_subprocess(backend, timeout)
            results[backend]["benchmark_s"] = time.time() - start
    report(results)
    bad = failures(results, args.strict)
    seconds = time.time() - started
    print()
    print(f"size {args.size} ({models}, {', '.join(backends)}): {seconds:.0f} s")
    print("FAILED: " + "; ".join(bad) if bad else "ok: no false alarm, every bug caught")
    if args.json:
        summary = {
            "size": args.size,
            **asdict(size),
            "seconds": seconds,
            "gpu": any(r.get("gpu") for r in results.values()),
            "failures": bad,
            "backends": results,
        }
        Path(args.json).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"wrote {args.json}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
