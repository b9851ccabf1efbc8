"""The backend adapter: one place for TensorFlow, JAX and torch, and what it promises.

Runs on whatever ``KERAS_BACKEND`` selects (``-m backends`` on JAX and torch in
CI). The source check keeps the assertion modules free of backend code.
"""

from __future__ import annotations

import ast
import pathlib
import random
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pytest_rnn
from pytest_rnn import _keras as K
from pytest_rnn import strategies as rnn_st
from pytest_rnn._keras import backend as _backend

PACKAGE = pathlib.Path(pytest_rnn.__file__).parent
ASSERTION_MODULES = ("_stateful.py", "_seq2seq.py", "_causal.py", "_fit.py", "strategies")
BACKEND_LIBRARIES = {"tensorflow", "jax", "jaxlib", "torch"}


def _backend_uses(source: str) -> list[str]:
    """Imports of a backend library and calls of ``backend()`` in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] in BACKEND_LIBRARIES]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] in BACKEND_LIBRARIES:
                found.append(node.module)
        elif isinstance(node, ast.Attribute) and node.attr == "backend":
            found.append(f"line {node.lineno}: .backend")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and ast.unparse(node.func) == "sys.modules.get"
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")  # sys.modules.get("torch")
    return found


@pytest.mark.parametrize("module", ASSERTION_MODULES)
def test_assertion_modules_hold_no_backend_code(module: str) -> None:
    path = PACKAGE / module
    files = sorted(path.glob("*.py")) if path.is_dir() else [path]
    assert files
    for file in files:
        assert _backend_uses(file.read_text()) == [], file.name


def test_the_source_check_sees_backend_code() -> None:
    source = (
        "import tensorflow as tf\nfrom jax import numpy\nimport torch.nn\n"
        "if keras.backend.backend() == 'x': pass\nsys.modules.get('torch')\n"
    )
    assert len(_backend_uses(source)) == 6  # keras.backend and .backend() both count
    assert _backend_uses("import numpy\nx = 'tensorflow is slow'\n") == []


@pytest.mark.backends
def test_precision_guard_sets_and_restores_jax_and_torch_flags() -> None:
    jax = pytest.importorskip("jax")
    torch = pytest.importorskip("torch")
    jax.config.update("jax_default_matmul_precision", "bfloat16")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    try:
        with K.precision_guard():
            assert jax.config.jax_default_matmul_precision == "highest"
            assert torch.backends.cuda.matmul.allow_tf32 is False
            assert torch.backends.cudnn.allow_tf32 is False
        assert jax.config.jax_default_matmul_precision == "bfloat16"
        assert torch.backends.cuda.matmul.allow_tf32 is True
        assert torch.backends.cudnn.allow_tf32 is True
        with pytest.raises(RuntimeError), K.precision_guard():
            raise RuntimeError("restored on failure too")
        assert jax.config.jax_default_matmul_precision == "bfloat16"
        assert torch.backends.cuda.matmul.allow_tf32 is True
    finally:
        jax.config.update("jax_default_matmul_precision", None)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = True


@pytest.mark.backends
def test_determinism_guard_turns_it_on_and_restores_it() -> None:
    backend = K.backend_name()
    if backend == "tensorflow":
        from tensorflow.python.framework import config as tf_config

        get = tf_config.is_op_determinism_enabled
    elif backend == "torch":
        import torch

        get = torch.are_deterministic_algorithms_enabled
    else:
        get = None
    before = get() if get else None
    with K.determinism_guard():
        if get:
            assert get() is True
    assert (get() if get else None) == before
    assert backend in K.DETERMINISM


@pytest.mark.backends
def test_seed_guard_restores_the_backend_random_state() -> None:
    torch = pytest.importorskip("torch") if K.backend_name() == "torch" else None
    before = torch.get_rng_state().clone() if torch else None
    with K.seed_guard():
        keras.utils.set_random_seed(5)
    if torch is not None:
        assert torch.equal(torch.get_rng_state(), before)


def _stateful_pair() -> tuple[keras.Model, keras.Model]:
    model = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True), keras.layers.Dense(2)]
    )
    return model, K.stateful_twin(model, batch_size=2)


@pytest.mark.backends
def test_compiled_stateful_calls_carry_the_state_and_write_it_back() -> None:
    model, twin = _stateful_pair()
    x = np.random.default_rng(0).normal(size=(2, 6, 3)).astype("float32")
    full = K.compiled(model, x, fixed_batch=False)(x)
    call = K.compiled(twin, x, fixed_batch=True)
    K.reset_states(twin)
    parts = [call(x[:, t : t + 2]) for t in range(0, 6, 2)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), full, rtol=1e-5, atol=1e-6)
    # The state the compiled calls left is the layer's own: an eager call continues it.
    (state,) = K.get_states(twin)["gru"]
    assert np.abs(state).sum() > 0
    K.reset_states(twin)
    np.testing.assert_allclose(call(x[:, :2]), parts[0], rtol=0, atol=0)


@pytest.mark.backends
def test_compiled_caller_returns_numpy_and_counts_traces_once_per_shape() -> None:
    model, _ = _stateful_pair()
    x = np.zeros((2, 5, 3), "float32")
    call = K.compiled(model, x, fixed_batch=False)
    before = K.TRACES.count
    out = call(x)
    call(x + 1)
    assert isinstance(out, np.ndarray) and out.shape == (2, 5, 2)
    assert K.TRACES.count - before <= 1  # eager backends do not trace at all


@pytest.mark.backends
def test_input_gradients_follow_the_receptive_field() -> None:
    steps = 4
    lstm = keras.Sequential([keras.Input((None, 2)), keras.layers.LSTM(4, return_sequences=True)])
    per_step = keras.Sequential(
        [keras.Input((None, 2)), keras.layers.TimeDistributed(keras.layers.Dense(3))]
    )
    x = np.random.default_rng(1).normal(size=(1, steps, 2)).astype("float32")
    for model, expected in ((lstm, np.tril), (per_step, np.diag)):
        seen = np.zeros((steps, steps), dtype=bool)
        for t in range(steps):

            def weigh(i: int, shape: tuple[int, ...], t: int = t) -> np.ndarray:
                w = np.zeros(shape)
                w[:, t] = 1.0
                return w

            (grad,) = K.input_gradients(model, [x], lambda leaves: leaves[0], weigh)
            seen[t] = np.abs(grad[0]).sum(axis=-1) > 0
        want = expected(np.ones((steps, steps))) if expected is np.tril else np.eye(steps)
        np.testing.assert_array_equal(seen, want.astype(bool))


@pytest.mark.backends
def test_eager_call_gives_numpy_without_autograd() -> None:
    model, _ = _stateful_pair()
    out = K.eager_call(model, np.ones((2, 3, 3), "float32"))
    assert isinstance(out, np.ndarray) and out.shape == (2, 3, 2)


@pytest.mark.backends
def test_float64_copies_compute_in_float64_inside_the_scope() -> None:
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.GRU(3, return_sequences=True)])
    x = np.random.default_rng(2).normal(size=(2, 4, 2))
    assert K.float64_missing() is None  # JAX: x64 mode is switched on for the re-run
    with K.float64_scope():
        copy = K.clone(model, batch_size=None, stateful=False, dtype="float64")
        out = K.eager_call(copy, x)
    assert out.dtype == np.float64


@pytest.mark.backends
def test_graph_loops_exist_on_tensorflow_only() -> None:
    _, twin = _stateful_pair()
    x = np.zeros((2, 4, 3), "float32")
    loop = K.graph_stream(twin, x, [True])
    assert (loop is not None) == (K.backend_name() == "tensorflow")


@pytest.fixture(scope="module")
def lstm() -> keras.Model:
    return keras.Sequential(
        [keras.Input((None, 3)), keras.layers.LSTM(4, return_sequences=True), keras.layers.Dense(1)]
    )


@pytest.mark.backends
@settings(max_examples=4, deadline=None, database=None)
@given(
    data=st.data(),
    shape=rnn_st.sequence_shapes(min_batch=1, max_batch=2, min_steps=2, max_steps=6, features=3),
)
def test_strategies_drive_the_streaming_assertion(
    lstm: keras.Model, data: st.DataObject, shape: Any
) -> None:
    x = data.draw(rnn_st.sequences(shape=shape))
    chunks = data.draw(rnn_st.chunkings(shape[1]))
    py_state = random.getstate()
    pytest_rnn.assert_stateful_equals_batch(lstm, x, chunks=chunks)
    assert random.getstate() == py_state


@pytest.mark.backends
def test_backend_name_is_the_keras_backend() -> None:
    assert _backend.name() == keras.backend.backend()
