"""Benchmarks for pytest-rnn's assertions: cost relative to one compiled forward pass.

Run from the repository root::

    python benchmarks/run.py                 # every installed backend, side by side
    python benchmarks/run.py --json out.json # the table and the figures as JSON
    python benchmarks/run.py --backends jax  # one backend

The Keras backend is fixed when Keras is first imported, so each backend runs
in its own subprocess (``KERAS_BACKEND`` set, ``--single``) and the parent
prints one table with a column per backend. Within a backend every figure is
measured in one process, side by side, after a warm-up, as the median of
``--repeats`` runs; the Hypothesis run and the import time are measured in
fresh subprocesses so that "cold" is real. See benchmarks/README.md for what
each key means and the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGETS: dict[str, tuple[str, float]] = {
    "stateful_assert_over_full_pass": ("<=", 10),
    "naive_loop_over_stateful_assert": (">=", 30),
    "hypothesis_50_examples_s": ("<=", 60),
    "causal_assert_over_full_pass": ("<=", 20),
    "seq2seq_assert_over_train_pass": ("<=", 5),
    # two trainings plus a save and load: about 2x is the floor
    "resume_assert_over_uninterrupted_fit": ("<=", 2.5),
    "windows_dataset_assert_s": ("<=", 2),
    "hypothesis_shrink_s": ("<=", 20),
    "plugin_import_ms": ("<=", 100),
    "failing_check_over_passing_check": ("<=", 3),
    "cached_tiny_over_full_pass": ("<=", 10),
    "cached_gpt2_128_over_full_pass": ("<=", 15),
    "cached_llama_128_over_full_pass": ("<=", 15),
}

# Where one backend's target is stricter: TensorFlow's stream is one in-graph loop, and
# the floor of reference + stream + independence pass is about 3 full passes.
BACKEND_TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    "tensorflow": {"stateful_assert_over_full_pass": ("<=", 5)},
}


def target(key: str, backend: str | None = None) -> tuple[str, float]:
    """The target of ``key`` on ``backend`` (``None``: the one most backends have)."""
    return BACKEND_TARGETS.get(backend or "", {}).get(key, TARGETS[key])


def side_by_side(a: Callable[[], Any], b: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median wall seconds of ``a()`` and ``b()``, timed alternately so load drift hits both.

    ``b`` (the cheap baseline) runs 5 times per round and counts its median.
    """
    a()
    b()
    ta: list[float] = []
    tb: list[float] = []
    for _ in range(repeats):
        ta.append(once(a))
        tb.extend(once(b) for _ in range(5))
    return statistics.median(ta), statistics.median(tb)


def once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- models


def seed_everything(seed: int = 0) -> None:
    import random

    import keras
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def last_step_model(units: int = 32, features: int = 3) -> Any:
    """Sequential LSTM(units) -> Dense(1), return_sequences=False (seed 003's shape)."""
    import keras

    return keras.Sequential(
        [keras.Input((None, features)), keras.layers.LSTM(units), keras.layers.Dense(1)]
    )


def sequence_model(units: int = 32, features: int = 3) -> Any:
    import keras

    return keras.Sequential(
        [
            keras.Input((None, features)),
            keras.layers.LSTM(units, return_sequences=True),
            keras.layers.Dense(1),
        ]
    )


def seq2seq_models(latent: int = 32, tx: int = 20, ty: int = 10) -> tuple[Any, Any]:
    """Seed 000's train and unrolled inference models (shared layers, 1 feature)."""
    import keras
    from keras import layers

    encoder_lstm = layers.LSTM(latent, return_state=True, name="encoder_lstm")
    decoder_lstm = layers.LSTM(
        latent, return_sequences=True, return_state=True, name="decoder_lstm"
    )
    decoder_dense = layers.Dense(1, activation="linear", name="decoder_dense")
    decoder_reshape = layers.Reshape((1,), name="decoder_reshape")

    encoder_inputs = keras.Input((tx, 1), name="encoder_input")
    _, h, c = encoder_lstm(encoder_inputs)
    decoder_inputs = keras.Input((ty, 1), name="decoder_input")
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=[h, c])
    decoder_outputs = decoder_dense(decoder_outputs)
    train_model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)

    enc_in = keras.Input((tx, 1), name="encoder_input_inf")
    _, h, c = encoder_lstm(enc_in)
    decoder_input = keras.Input((1, 1), name="decoder_input_inf")
    current = decoder_input
    outputs = []
    for _ in range(ty):
        out, h, c = decoder_lstm(current, initial_state=[h, c])
        out = decoder_dense(out)
        current = out
        outputs.append(decoder_reshape(out))
    inference_model = keras.Model([enc_in, decoder_input], outputs)
    return train_model, inference_model


def full_pass(model: Any, x: Any) -> Callable[[], Any]:
    """One compiled ``model(x, training=False)`` (the caller the assertions use)."""
    from pytest_rnn import _keras as K

    call = K.compiled(model, x, fixed_batch=False)
    return lambda: call(x)


# --------------------------------------------------------------------------- measurements


def bench_stateful(repeats: int, naive_steps: int) -> dict[str, Any]:
    import numpy as np

    from pytest_rnn import _keras as K
    from pytest_rnn._stateful import assert_stateful_equals_batch

    seed_everything()
    model = last_step_model()
    x = np.random.default_rng(0).uniform(-1, 1, (4, 100, 3)).astype("float32")
    t_assert, t_full = side_by_side(
        lambda: assert_stateful_equals_batch(model, x, chunks=1), full_pass(model, x), repeats
    )

    # Seed 003's loop: a stateful batch-1 copy, predict() per step, reset per sample.
    stream = K.stateful_twin(model, batch_size=1)

    def naive(samples: int, steps: int) -> None:
        for i in range(samples):
            K.reset_states(stream)
            for t in range(steps):
                stream.predict(x[i : i + 1, t : t + 1], verbose=0)

    naive(1, 3)  # warm: predict() builds its function on the first call
    t_naive_part = once(lambda: naive(1, naive_steps))
    t_naive = t_naive_part * (4 * 100) / naive_steps
    return {
        "assert_s": t_assert,
        "full_pass_s": t_full,
        "naive_s": t_naive,
        "naive_measured": f"1 sample x {naive_steps} steps, scaled to 4 x 100",
        "stateful_assert_over_full_pass": t_assert / t_full,
        "naive_loop_over_stateful_assert": t_naive / t_assert,
    }


def bench_failing(repeats: int) -> dict[str, float]:
    """A failing stateful check (its whole report) against a passing one of the same size.

    Conv1D(8, 3, padding='same') -> LSTM(32) -> Dense(1) fails streamed one step
    at a time (the convolution reads a step ahead); LSTM(32) -> Dense(1) passes.
    Batch 4, 1,000 steps, chunks=1, both warm.
    """
    import keras
    import numpy as np

    from pytest_rnn import RNNAssertionError
    from pytest_rnn._stateful import assert_stateful_equals_batch

    seed_everything()
    failing = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Conv1D(8, 3, padding="same"),
            keras.layers.LSTM(32),
            keras.layers.Dense(1),
        ]
    )
    passing = last_step_model()
    x = np.random.default_rng(5).normal(size=(4, 1000, 3)).astype("float32")

    def fail() -> None:
        try:
            assert_stateful_equals_batch(failing, x, chunks=1)
        except RNNAssertionError:
            return
        raise RuntimeError("the failing check passed")

    t_fail, t_pass = side_by_side(
        fail, lambda: assert_stateful_equals_batch(passing, x, chunks=1), repeats
    )
    return {
        "failing_check_s": t_fail,
        "passing_check_s": t_pass,
        "failing_check_over_passing_check": t_fail / t_pass,
    }


def bench_cached(repeats: int) -> dict[str, float] | None:
    """``assert_cached_decoding_matches_full(chunks=1)`` on KerasHub LMs / one compiled full pass.

    GPT2-tiny (2 layers, hidden 32, vocabulary 50), batch 3, 16 tokens, with the
    generation loop (the default) and without it; a 4-layer hidden-128 GPT2 and
    Llama at 128 tokens, batch 3, with it, and their forced generation loop alone
    (the check's floor). ``None`` without KerasHub.
    """
    try:
        import keras_hub
    except ImportError:
        return None
    import numpy as np

    from pytest_rnn import _keras as K
    from pytest_rnn._cached import assert_cached_decoding_matches_full

    models = keras_hub.models
    seed_everything()

    def gpt2(layers: int, hidden: int, steps: int) -> Any:
        backbone = models.GPT2Backbone(
            vocabulary_size=50, num_layers=layers, num_heads=2, hidden_dim=hidden,
            intermediate_dim=2 * hidden, max_sequence_length=max(32, steps),
        )  # fmt: skip
        return models.GPT2CausalLM(backbone=backbone, preprocessor=None)

    def llama(layers: int, hidden: int, steps: int) -> Any:
        backbone = models.LlamaBackbone(
            vocabulary_size=50, num_layers=layers, num_query_heads=2, num_key_value_heads=1,
            hidden_dim=hidden, intermediate_dim=2 * hidden,
        )  # fmt: skip
        return models.LlamaCausalLM(backbone=backbone, preprocessor=None)

    figures: dict[str, float] = {}
    cases = [
        ("cached_tiny_over_full_pass", gpt2, 2, 32, 16, True),
        ("cached_tiny_loop_only_over_full_pass", gpt2, 2, 32, 16, False),
        ("cached_gpt2_128_over_full_pass", gpt2, 4, 128, 128, True),
        ("cached_llama_128_over_full_pass", llama, 4, 128, 128, True),
    ]
    built: dict[tuple[Any, int, int, int], Any] = {}
    for key, make, layers, hidden, steps, generate in cases:
        lm = built.setdefault((make, layers, hidden, steps), make(layers, hidden, steps))
        tokens = np.random.default_rng(0).integers(1, 50, size=(3, steps)).astype("int32")
        inputs = {"token_ids": tokens, "padding_mask": np.ones_like(tokens, bool)}
        full = K.compiled(lm, inputs, fixed_batch=False)
        t_check, t_full = side_by_side(
            lambda lm=lm, tokens=tokens, generate=generate: assert_cached_decoding_matches_full(
                lm, tokens, chunks=1, generate=generate
            ),
            lambda full=full, inputs=inputs: full(inputs),
            max(3, repeats // 3),
        )
        figures[key] = t_check / t_full
        figures[key.replace("_over_full_pass", "_ms")] = t_check * 1000
        if steps == 128:  # the check's floor: the model's own loop, forced, alone
            t_loop, t_full = side_by_side(
                generation_loop(lm, tokens), lambda full=full, inputs=inputs: full(inputs),
                max(3, repeats // 3),
            )  # fmt: skip
            figures[key.replace("_over_full_pass", "_generation_over_full_pass")] = t_loop / t_full
    return figures


def generation_loop(lm: Any, tokens: Any) -> Callable[[], Any]:
    """The forced generation loop the cached check runs on ``lm`` (one token a chunk), alone."""
    import numpy as np

    from pytest_rnn import _keras as K
    from pytest_rnn._cached.args import check_model
    from pytest_rnn._cached.run import generation, token_batch
    from pytest_rnn._core.stream import ChunkSchedule

    model = check_model(lm)
    batch = token_batch(tokens, np.ones_like(tokens, bool))
    schedule = ChunkSchedule.parse(1, tokens.shape[1])

    def loop() -> None:
        with K.untouched():
            generation(model, batch, schedule)

    return loop


def bench_scaling(repeats: int) -> list[dict[str, Any]]:
    """Warm and first-call cost of the stateful assertion (chunks=1) by steps and batch."""
    import numpy as np

    from pytest_rnn._stateful import assert_stateful_equals_batch

    rows = []
    for batch, steps in [(4, 25), (4, 100), (4, 400), (1, 100), (16, 100)]:
        seed_everything()
        model = last_step_model()  # fresh: the first call pays for clones and traces
        x = np.random.default_rng(1).uniform(-1, 1, (batch, steps, 3)).astype("float32")

        def check(m: Any = model, x: Any = x) -> None:
            assert_stateful_equals_batch(m, x, chunks=1)

        first = once(check)
        warm, full = side_by_side(check, full_pass(model, x), repeats)
        rows.append(
            {"batch": batch, "steps": steps, "first_s": first, "warm_s": warm, "full_pass_s": full}
        )
    return rows


def causal_case() -> tuple[Any, Any]:
    """The causal keys' model and input: ``LSTM(32) -> Dense(1)``, batch 8, 64 steps."""
    import numpy as np

    seed_everything()
    x = np.random.default_rng(2).uniform(-1, 1, (8, 64, 3)).astype("float32")
    return sequence_model(), x


def bench_causal(repeats: int) -> float | None:
    from pytest_rnn._causal import assert_model_causal

    model, x = causal_case()
    try:
        t_assert, t_full = side_by_side(
            lambda: assert_model_causal(model, x), full_pass(model, x), repeats
        )
    except Exception as error:
        print(f"causal: not available ({type(error).__name__}: {error})")
        return None
    return t_assert / t_full


def bench_causal_floor(repeats: int) -> float | None:
    """bench_causal's perturbation batch in one compiled call / one compiled full pass.

    The check's floor: one copy of ``x`` per replaced suffix plus the
    unperturbed one, ``(steps - 1) * trials + 1`` copies (64 here) stacked as
    the check stacks them, through the same compiled caller.
    """
    import numpy as np

    from pytest_rnn import _keras as K

    model, x = causal_case()
    stacked = np.concatenate([x] * x.shape[1])
    try:
        call = K.compiled(model, stacked, fixed_batch=False)
        t_stacked, t_full = side_by_side(lambda: call(stacked), full_pass(model, x), repeats)
    except Exception as error:
        print(f"causal floor: not available ({type(error).__name__}: {error})")
        return None
    return t_stacked / t_full


def bench_seq2seq(repeats: int) -> float | None:
    import numpy as np

    from pytest_rnn._seq2seq import assert_inference_matches_training

    seed_everything()
    train_model, inference_model = seq2seq_models()
    rng = np.random.default_rng(3)
    enc = rng.uniform(-1, 1, (16, 20, 1)).astype("float32")
    dec = rng.uniform(-1, 1, (16, 10, 1)).astype("float32")
    try:
        t_assert, t_full = side_by_side(
            lambda: assert_inference_matches_training(
                train_model, inference_model, enc, start=-1.0
            ),
            full_pass(train_model, [enc, dec]),
            repeats,
        )
    except Exception as error:
        print(f"seq2seq: not available ({type(error).__name__}: {error})")
        return None
    return t_assert / t_full


def bench_windows(repeats: int) -> dict[str, float] | None:
    """``assert_windows_causal`` on keras-io's ``timeseries_dataset_from_array`` windowing."""
    import numpy as np

    try:
        import keras

        from pytest_rnn._causal import assert_windows_causal

        def make_windows(series: Any) -> Any:
            return keras.utils.timeseries_dataset_from_array(
                series[:-10], series[10:], sequence_length=10, batch_size=64, shuffle=False
            )

        s = np.sin(np.arange(80.0) * 0.3).astype("float32")[:, None]
        t_assert, t_call = side_by_side(
            lambda: assert_windows_causal(make_windows, s),
            lambda: [b for b in make_windows(s)],
            repeats,
        )
    except Exception as error:
        print(f"windows: not available ({type(error).__name__}: {error})")
        return None
    return {
        "windows_dataset_assert_s": t_assert,
        "windows_dataset_assert_over_call": t_assert / t_call,
    }


def bench_resume(repeats: int) -> float | None:
    """``assert_resume_equivalent`` over the uninterrupted build-and-fit it repeats."""
    import keras
    import numpy as np

    from pytest_rnn._fit import assert_resume_equivalent

    rng = np.random.default_rng(4)
    x = rng.uniform(-1, 1, (256, 20, 3)).astype("float32")
    y = x.sum(axis=1)[:, :1]
    fit = {"batch_size": 32, "shuffle": False, "verbose": 0}

    def make_model() -> Any:
        model = keras.Sequential(
            [keras.Input((20, 3)), keras.layers.LSTM(16), keras.layers.Dense(1)]
        )
        model.compile(optimizer="adam", loss="mse")
        return model

    def uninterrupted() -> None:
        keras.utils.set_random_seed(0)
        make_model().fit(x, y, epochs=4, **fit)

    def check() -> None:
        assert_resume_equivalent(make_model, x, y, epochs=4, resume_at=2, fit_kwargs=fit)

    try:
        check()
        uninterrupted()
        ta, tb = [], []
        for _ in range(repeats):  # alternately: load drift hits both
            ta.append(once(check))
            tb.append(once(uninterrupted))
    except Exception as error:
        print(f"resume: not available ({type(error).__name__}: {error})")
        return None
    return statistics.median(ta) / statistics.median(tb)


HYPOTHESIS_CHILD = r"""
import os, sys, time
start = time.perf_counter()
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, sys.argv[1])
import keras
from hypothesis import HealthCheck, given, settings, strategies as st
from pytest_rnn import _keras as K
from pytest_rnn import strategies as rs
from pytest_rnn._stateful import assert_stateful_equals_batch

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [keras.Input((None, 3)), keras.layers.LSTM(16), keras.layers.Dense(1)]
)
examples = []

@settings(max_examples=50, deadline=None, database=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_streams(data):
    x = data.draw(rs.sequences(shape=rs.sequence_shapes(max_batch=8, max_steps=64, features=3)))
    chunks = data.draw(rs.chunkings(x.shape[1]))
    examples.append((x.shape[0], x.shape[1], len(chunks)))
    assert_stateful_equals_batch(model, x, chunks=chunks)

test_streams()
elapsed = time.perf_counter() - start
import json
print("RESULT " + json.dumps({
    "seconds": elapsed,
    "examples": len(examples),
    "batches": len({b for b, _, _ in examples}),
    "traces": K.TRACES.count,
}))
"""


SHRINK_CHILD = r"""
import os, sys, time
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, sys.argv[1])
import keras, json
from hypothesis import given, settings, strategies as st
from pytest_rnn import strategies as rs
from pytest_rnn._stateful import assert_stateful_equals_batch

keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((None, 3)), keras.layers.Conv1D(4, 3, padding="same"),
                          keras.layers.LSTM(4, return_sequences=True)])
calls = []

@settings(max_examples=50, deadline=None, database=None, derandomize=True)
@given(data=st.data(), shape=rs.sequence_shapes(max_steps=24))
def test_streaming(data, shape):
    x = data.draw(rs.sequences(shape=shape))
    chunks = data.draw(rs.chunkings(shape[1]))
    start = time.perf_counter()
    try:
        assert_stateful_equals_batch(model, x, chunks=chunks)
    except AssertionError:
        calls.append((start, list(shape), list(chunks)))
        raise

try:
    test_streaming()
except AssertionError:
    pass
end = time.perf_counter()
print("RESULT " + json.dumps({"shrink_s": end - calls[0][0], "failures": len(calls),
                              "shape": calls[-1][1], "chunks": calls[-1][2]}))
"""


FIRST_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[1] + "/benchmarks")
import keras, numpy as np
import run
from pytest_rnn._causal import assert_model_causal
from pytest_rnn._stateful import assert_stateful_equals_batch

def first(check):
    start = time.perf_counter()
    check()
    return time.perf_counter() - start

# A suite's first test pays the imports and the backend's start-up once; the
# keys are what each later test pays for a model of its own.
run.seed_everything()
warm = keras.Sequential([keras.Input((None, 2)), keras.layers.GRU(4), keras.layers.Dense(1)])
assert_stateful_equals_batch(warm, np.zeros((2, 5, 2), "float32"), chunks=1)
rng = np.random.default_rng(0)
out = {}
x, model = rng.uniform(-1, 1, (4, 100, 3)).astype("float32"), run.last_step_model()
out["first_stateful_s"] = first(lambda: assert_stateful_equals_batch(model, x, chunks=1))
x, model = rng.uniform(-1, 1, (8, 64, 3)).astype("float32"), run.sequence_model()
out["first_causal_s"] = first(lambda: assert_model_causal(model, x))
try:
    import keras_hub
except ImportError:
    keras_hub = None
if keras_hub is not None:
    from pytest_rnn._cached import assert_cached_decoding_matches_full
    backbone = keras_hub.models.GPT2Backbone(vocabulary_size=50, num_layers=2, num_heads=2,
        hidden_dim=32, intermediate_dim=64, max_sequence_length=32)
    lm = keras_hub.models.GPT2CausalLM(backbone=backbone, preprocessor=None)
    tokens = rng.integers(1, 50, size=(3, 16)).astype("int32")
    out["first_cached_tiny_s"] = first(lambda: assert_cached_decoding_matches_full(lm, tokens))
print("RESULT " + json.dumps(out))
"""


def bench_first_calls() -> dict[str, float]:
    """First calls on new models in a fresh interpreter, after one warm-up check.

    What each test of a suite pays when it builds a model of its own and
    checks it once: the copies, traces and compiles for that model, not the
    imports (paid by the warm-up on another model).
    """
    proc = subprocess.run(
        [sys.executable, "-c", FIRST_CHILD, str(ROOT)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise RuntimeError("the first-call benchmark failed")
    return dict(json.loads(lines[-1][len("RESULT ") :]))


def bench_shrink() -> dict[str, Any]:
    """Seconds from the first failure of the README's @given pattern to its shrunk report."""
    proc = subprocess.run(
        [sys.executable, "-c", SHRINK_CHILD, str(ROOT)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise RuntimeError("the shrink benchmark failed")
    return dict(json.loads(lines[-1][len("RESULT ") :]))


def bench_hypothesis() -> dict[str, Any]:
    """The @given run in a fresh interpreter: imports, model, tracing and 50 examples."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", HYPOTHESIS_CHILD, str(ROOT)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
        raise RuntimeError("the Hypothesis benchmark failed")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall_s"] = wall  # interpreter start included
    return result


def bench_import(runs: int = 7) -> float:
    """Median ms for ``import pytest_rnn, pytest_rnn.plugin`` after ``import pytest``."""
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); import pytest; "
        "t = time.perf_counter(); import pytest_rnn, pytest_rnn.plugin; "
        "print((time.perf_counter() - t) * 1000); "
        "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules, 'heavy import'"
    )
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", code, str(ROOT)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


# --------------------------------------------------------------------------- report


def verdict(key: str, value: float | None, backend: str | None = None) -> str:
    if value is None:
        return "n/a"
    op, goal = target(key, backend)
    ok = value <= goal if op == "<=" else value >= goal
    return f"{'ok' if ok else 'MISS'} (target {op} {goal})"


def target_text(key: str) -> str:
    """The target column: the common target, then any backend's own."""
    op, goal = TARGETS[key]
    own = [
        f"{b} {o} {g}" for b, t in BACKEND_TARGETS.items() for k, (o, g) in t.items() if k == key
    ]
    return f"{op} {goal}" + (f" ({', '.join(own)})" if own else "")


BACKENDS = ("tensorflow", "jax", "torch")


def installed_backends() -> list[str]:
    """The Keras backends whose library is installed (TensorFlow first)."""
    import importlib.util

    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def run_backends(backends: list[str], passthrough: list[str]) -> dict[str, dict[str, Any]]:
    """Run this script once per backend in a subprocess; its figures by backend."""
    import tempfile

    results: dict[str, dict[str, Any]] = {}
    for backend in backends:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "figures.json"
            env = {**os.environ, "KERAS_BACKEND": backend}
            cmd = [sys.executable, __file__, "--single", "--json", str(out), *passthrough]
            print(f"== {backend}", flush=True)
            proc = subprocess.run(cmd, env=env, cwd=ROOT, check=False)
            if proc.returncode != 0 or not out.exists():
                print(f"{backend}: failed (exit {proc.returncode})")
                continue
            results[backend] = json.loads(out.read_text())
    return results


def print_side_by_side(results: dict[str, dict[str, Any]]) -> None:
    """One row per key, one column per backend, the target's verdict per cell."""
    names = list(results)
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    print()
    print(f"{'key':38} " + " ".join(f"{n:>16}" for n in names) + "  target")
    for key in keys:
        cells = []
        for n in names:
            value = results[n].get(key)
            if not isinstance(value, (int, float)) or value is None:
                cells.append(f"{'n/a':>16}")
                continue
            mark = ""
            if key in TARGETS:
                mark = " ok" if verdict(key, value, n).startswith("ok") else " MISS"
            cells.append(f"{value:11.2f}{mark:>5}")
        goal = target_text(key) if key in TARGETS else ""
        print(f"{key:38} " + " ".join(cells) + f"  {goal}")


class Figures(dict[str, Any]):
    """The figures of one backend, written to ``path`` as each comes (``"partial": true``).

    A run stopped before its end (``benchmarks/gpu.py`` gives each backend a time
    budget) still leaves what it measured; the last write, in :func:`main`, has
    every figure and no ``"partial"``.
    """

    def __init__(self, path: Path | None) -> None:
        super().__init__()
        self.path = path

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        self._write()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._write()

    def _write(self) -> None:
        if self.path is not None:  # whole or not at all: the run may be stopped mid-write
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps({**self, "partial": True}, indent=2) + "\n")
            os.replace(tmp, self.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="FILE", help="write the figures to FILE as JSON")
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated Keras backends to compare (default: every installed one)",
    )
    parser.add_argument(
        "--single", action="store_true", help="measure only the backend KERAS_BACKEND names"
    )
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per figure (median)")
    parser.add_argument(
        "--naive-steps",
        type=int,
        default=50,
        help="steps of the predict() loop actually timed (one sample), scaled to 4 x 100",
    )
    parser.add_argument("--skip-hypothesis", action="store_true", help="skip the @given run")
    parser.add_argument("--skip-scaling", action="store_true", help="skip the scaling table")
    parser.add_argument(
        "--skip-cached", action="store_true", help="skip the KerasHub cached-decoding figures"
    )
    parser.add_argument(
        "--skip-first-calls", action="store_true", help="skip the first calls on new models"
    )
    args = parser.parse_args(argv)
    if not args.single:
        backends = args.backends.split(",") if args.backends else installed_backends()
        passthrough = [f"--repeats={args.repeats}", f"--naive-steps={args.naive_steps}"]
        passthrough += ["--skip-hypothesis"] * args.skip_hypothesis
        passthrough += ["--skip-scaling"] * args.skip_scaling
        passthrough += ["--skip-cached"] * args.skip_cached
        passthrough += ["--skip-first-calls"] * args.skip_first_calls
        results = run_backends(backends, passthrough)
        print_side_by_side(results)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
            print(f"\nwrote {args.json}")
        return 0 if len(results) == len(backends) else 1

    figures: dict[str, Any] = Figures(Path(args.json) if args.json else None)
    figures["plugin_import_ms"] = bench_import()

    import keras

    from pytest_rnn import _keras as K

    with K.precision_guard():
        pass  # import tensorflow's config once, outside every timing
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, {os.cpu_count()} CPUs")

    stateful = bench_stateful(args.repeats, args.naive_steps)
    figures["stateful_assert_over_full_pass"] = stateful["stateful_assert_over_full_pass"]
    figures["naive_loop_over_stateful_assert"] = stateful["naive_loop_over_stateful_assert"]
    failing = bench_failing(args.repeats)
    figures["failing_check_over_passing_check"] = failing["failing_check_over_passing_check"]
    figures["causal_assert_over_full_pass"] = bench_causal(args.repeats)
    figures["causal_stacked_call_over_full_pass"] = bench_causal_floor(args.repeats)
    figures["seq2seq_assert_over_train_pass"] = bench_seq2seq(args.repeats)
    figures["resume_assert_over_uninterrupted_fit"] = bench_resume(args.repeats)
    figures.update(bench_windows(args.repeats) or {"windows_dataset_assert_s": None})
    if not args.skip_cached:
        figures.update(bench_cached(args.repeats) or {"cached_tiny_over_full_pass": None})
    if not args.skip_hypothesis:
        hyp = bench_hypothesis()
        figures["hypothesis_50_examples_s"] = hyp["wall_s"]
        figures["hypothesis_traces"] = hyp["traces"]
        shrink = bench_shrink()
        figures["hypothesis_shrink_s"] = shrink["shrink_s"]
        print(
            f"shrink: {shrink['failures']} failing calls, shrunk to shape {shrink['shape']}, "
            f"chunks {shrink['chunks']}"
        )
    if not args.skip_first_calls:
        figures.update(bench_first_calls())
    rows = [] if args.skip_scaling else bench_scaling(args.repeats)

    print()
    print(f"{'key':38} {'value':>10}  verdict")
    for key, value in figures.items():
        shown = "null" if value is None else f"{value:10.2f}"
        judged = verdict(key, value, os.environ["KERAS_BACKEND"]) if key in TARGETS else ""
        print(f"{key:38} {shown:>10}  {judged}")
    print()
    print(
        f"stateful assert (4 x 100, chunks=1): {stateful['assert_s'] * 1000:.1f} ms warm; "
        f"full pass {stateful['full_pass_s'] * 1000:.2f} ms; predict() loop "
        f"{stateful['naive_s']:.2f} s ({stateful['naive_measured']})"
    )
    print(
        f"failing stateful check (Conv1D 'same' -> LSTM(32), 4 x 1000, chunks=1): "
        f"{failing['failing_check_s']:.2f} s warm; the passing one (LSTM(32)) "
        f"{failing['passing_check_s']:.2f} s"
    )
    if not args.skip_hypothesis:
        print(
            f"hypothesis: {hyp['examples']} examples, {hyp['batches']} distinct batch sizes, "
            f"{hyp['traces']} traces, {hyp['seconds']:.1f} s after interpreter start "
            f"({hyp['wall_s']:.1f} s wall)"
        )
    if rows:
        print()
        print("stateful assertion, LSTM(32) -> Dense(1), chunks=1 (one step per chunk)")
        print(
            f"{'batch':>5} {'steps':>5} {'first call':>11} {'warm':>9} {'full pass':>10} {'ratio':>6}"
        )
        for r in rows:
            print(
                f"{r['batch']:5d} {r['steps']:5d} {r['first_s'] * 1000:9.0f}ms "
                f"{r['warm_s'] * 1000:7.1f}ms {r['full_pass_s'] * 1000:8.2f}ms "
                f"{r['warm_s'] / r['full_pass_s']:6.1f}"
            )
    if args.json:
        out = dict(figures)
        out["stateful_assert_ms"] = stateful["assert_s"] * 1000
        out["full_pass_ms"] = stateful["full_pass_s"] * 1000
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
