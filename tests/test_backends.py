"""The backend adapter: one place for TensorFlow, JAX and torch, and what it promises.

Runs on whatever ``KERAS_BACKEND`` selects (``-m backends`` on JAX and torch in
CI). The source check keeps the assertion modules free of backend code.
"""

from __future__ import annotations

import ast
import pathlib
import random
import re
import sys
import warnings
from typing import Any

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from models import STREAM_FRONTS

import pytest_rnn
from pytest_rnn import _keras as K
from pytest_rnn import strategies as rnn_st
from pytest_rnn._core.compare import Tolerance, resolve_tolerance
from pytest_rnn._keras import backend as _backend

PACKAGE = pathlib.Path(pytest_rnn.__file__).parent
FAMILIES = ("_stateful", "_seq2seq", "_causal", "_fit", "_incremental", "_cached")
BACKEND_LIBRARIES = {"tensorflow", "jax", "jaxlib", "torch"}
STDLIB = set(sys.stdlib_module_names)


def _files(name: str) -> list[pathlib.Path]:
    """The source files of package member ``name`` (a module or a folder of modules)."""
    folder = PACKAGE / name
    files = sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{name}.py"]
    assert files and all(f.exists() for f in files), name
    return files


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> list[str]:
    """Every module ``path`` imports, relative imports resolved, type-checking-only ones left out."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # imports only type checkers see are no arrows
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            found += [base] + [f"{base}.{a.name}" for a in node.names]
    return found


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


def _family_breaches(path: pathlib.Path, family: str) -> list[str]:
    """What a family file may not do: Keras, a backend, keras.src, another family, adapter internals."""
    source = path.read_text()
    bad = _backend_uses(source)
    for name in _imports(path):
        root = name.split(".")[0]
        if root == "keras":
            bad.append(f"imports {name}")
        elif name.startswith("pytest_rnn._keras.") and name.split(".")[2] in _KERAS_MODULES:
            bad.append(f"imports the adapter's module {name}, not its face")
        elif root == "pytest_rnn" and any(
            name == f"pytest_rnn.{other}" or name.startswith(f"pytest_rnn.{other}.")
            for other in FAMILIES
            if other != family
        ):
            bad.append(f"imports another family: {name}")
    if "keras_module(" in source:
        bad.append("calls keras_module()")
    return bad


_KERAS_MODULES = {p.stem for p in (PACKAGE / "_keras").glob("*.py")} - {"__init__"}


@pytest.mark.parametrize("family", [*FAMILIES, "strategies"])
def test_assertion_modules_hold_no_backend_code(family: str) -> None:
    for file in _files(family):
        assert _backend_uses(file.read_text()) == [], file.name


@pytest.mark.parametrize("family", FAMILIES)
def test_families_use_only_the_adapter_face_and_no_other_family(family: str) -> None:
    for file in _files(family):
        assert _family_breaches(file, family) == [], file.name


def test_core_imports_only_stdlib_numpy_and_config() -> None:
    allowed_roots = STDLIB | {"numpy", "__future__"}
    for file in _files("_core"):
        bad = [
            name
            for name in _imports(file)
            if name.split(".")[0] not in allowed_roots
            and name != "pytest_rnn"  # the package itself: `from pytest_rnn import _config`
            and not name.startswith(("pytest_rnn._core", "pytest_rnn._config"))
        ]
        assert bad == [], file.name


def test_adapter_ground_floor_imports_nothing_of_the_adapter() -> None:
    names = _imports(PACKAGE / "_keras" / "layers.py")
    assert [n for n in names if n.startswith("pytest_rnn._keras")] == []


def test_report_imports_no_family() -> None:
    for file in _files("_report"):
        names = _imports(file)
        assert [n for n in names if n.split(".")[:2][-1] in FAMILIES] == [], file.name


# The families' calls of resolve_tolerance that judge values Keras did not compute:
# (file, function) -> what they compare. A Keras output's default goes through
# K.output_tolerance (float64 is computed as float32 off TensorFlow).
_DATA_TOLERANCES = {
    ("_causal/args.py", "tolerance"): "the user's inputs and labels",
    ("_stateful/restored.py", "_close"): "states saved and loaded, not computed",
    ("_cached/verdicts.py", "float32_lines"): "a float32 re-run: float32 by construction",
    ("_fit/check.py", "assert_training_reproducible"): "the loss picture's float32 band",
    ("_incremental/check.py", "_check"): "the user's functions, any framework",
}


def _tolerance_calls() -> set[tuple[str, str]]:
    """(file, enclosing function) of every ``resolve_tolerance`` call in the families."""
    found = set()
    for family in FAMILIES:
        for file in _files(family):
            tree = ast.parse(file.read_text())
            for fn in ast.walk(tree):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(
                        "resolve_tolerance"
                    ):
                        found.add((f"{family}/{file.name}", fn.name))
    return found


def test_keras_outputs_take_their_default_tolerance_from_one_rule() -> None:
    assert _tolerance_calls() <= set(_DATA_TOLERANCES)


def test_the_source_check_sees_backend_code() -> None:
    source = (
        "import tensorflow as tf\nfrom jax import numpy\nimport torch.nn\n"
        "if keras.backend.backend() == 'x': pass\nsys.modules.get('torch')\n"
    )
    assert len(_backend_uses(source)) == 6  # keras.backend and .backend() both count
    assert _backend_uses("import numpy\nx = 'tensorflow is slow'\n") == []


def test_the_layout_checks_see_each_breach(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "pytest_rnn" / "_stateful"
    folder.mkdir(parents=True)
    file = folder / "run.py"
    file.write_text(
        "import keras\nfrom keras.src.backend import x\nfrom pytest_rnn._keras.twins import clone\n"
        "from pytest_rnn import _causal\nfrom .._fit import check\nK.keras_module()\n"
        "from pytest_rnn import _keras as K\nfrom . import check\n"
    )
    global PACKAGE
    saved, PACKAGE = PACKAGE, tmp_path / "pytest_rnn"
    try:
        bad = _family_breaches(file, "_stateful")
    finally:
        PACKAGE = saved
    assert bad == [
        "imports keras",
        "imports keras.src.backend",
        "imports keras.src.backend.x",
        "imports the adapter's module pytest_rnn._keras.twins, not its face",
        "imports the adapter's module pytest_rnn._keras.twins.clone, not its face",
        "imports another family: pytest_rnn._causal",
        "imports another family: pytest_rnn._fit",
        "imports another family: pytest_rnn._fit.check",
        "calls keras_module()",
    ]


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
def test_alongside_runs_beside_the_caller_under_its_precision_and_is_waited_for() -> None:
    import threading
    import time

    def work() -> tuple[str, Any]:
        jax, tf, torch = (sys.modules.get(m) for m in ("jax", "tensorflow", "torch"))
        return threading.current_thread().name, (
            jax and jax.config.jax_default_matmul_precision,
            tf and tf.config.experimental.tensor_float_32_execution_enabled(),
            torch and torch.backends.cuda.matmul.allow_tf32,
            torch and torch.get_num_threads(),
        )

    torch = sys.modules.get("torch")
    cores = torch and torch.get_num_threads()
    with K.precision_guard(), K.alongside(work) as result:
        thread, precision = result()
    assert thread == "pytest-rnn-alongside"
    jax = sys.modules.get("jax")
    assert precision[0] == (jax and "highest")  # the switches are process-wide
    assert precision[1] in (None, False)
    assert precision[2] in (None, False)
    # torch: each of the two threads gets half of its intra-op threads, all of them after
    assert precision[3] == (max(1, cores // 2) if keras.backend.backend() == "torch" else cores)
    assert (torch and torch.get_num_threads()) == cores
    with K.alongside(work, thread=False) as asked:  # called when asked for, in this thread
        assert asked()[0] == threading.current_thread().name
    with K.alongside(lambda: 1 / 0) as failed, pytest.raises(ZeroDivisionError):
        failed()
    done = threading.Event()

    def slow() -> None:
        time.sleep(0.2)
        done.set()

    with pytest.raises(RuntimeError, match="the caller fails first"), K.alongside(slow):
        raise RuntimeError("the caller fails first")
    assert done.is_set()  # waited for: nothing of it runs after the block
    assert not any(t.name == "pytest-rnn-alongside" for t in threading.enumerate())


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
        [keras.Input((None, 3)), keras.layers.GRU(4, return_sequences=True, name="gru"), keras.layers.Dense(2)]
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
def test_keras_means_of_float64_are_float64_inside_the_scope() -> None:
    """Keras 3.15 promotes float64 to float32 in ops.mean/ops.var off TensorFlow; not in the scope."""
    from keras.src.backend.common import dtypes

    x = np.random.default_rng(0).normal(size=(4, 40, 8)) * 10
    before = dict(dtypes.BIT64_TO_BIT32_DTYPE)
    with K.float64_scope():
        t = keras.ops.convert_to_tensor(x, "float64")
        mean = keras.ops.convert_to_numpy(keras.ops.mean(t, axis=1))
        var = keras.ops.convert_to_numpy(keras.ops.var(t, axis=1))
    assert mean.dtype == var.dtype == np.float64
    np.testing.assert_allclose(mean, x.mean(axis=1), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(var, x.var(axis=1), rtol=1e-13, atol=1e-13)
    assert before == dtypes.BIT64_TO_BIT32_DTYPE  # put back


@pytest.mark.backends
def test_a_whole_stream_runs_in_one_compiled_loop_on_tensorflow_and_jax() -> None:
    """TensorFlow: any schedule; JAX: equal chunks and a shorter tail (uneven ones: ``None``)."""
    model, twin = _stateful_pair()
    x = np.random.default_rng(0).normal(size=(2, 7, 3)).astype("float32")
    full = K.compiled(model, x, fixed_batch=False)(x)
    loop = K.graph_stream(twin, x, [True])
    if K.backend_name() == "torch":
        assert loop is None
        return
    assert loop is not None
    for ends in ([2, 4, 6, 7], [1, 2, 3, 4, 5, 6, 7], [7]):
        starts = [0, *ends[:-1]]
        K.reset_states(twin)
        K.set_states(twin, {"gru": [np.ones((2, 4), "float32")]})  # the loop starts from zeros
        out = loop(x, np.array(starts, np.int32), np.array(ends, np.int32))
        assert out is not None, ends
        np.testing.assert_allclose(out[0], full, rtol=1e-5, atol=1e-6)
        # The twin holds the last states, as after a chunk-by-chunk run.
        assert not np.allclose(K.get_states(twin)["gru"][0], 1.0)
    uneven = loop(x, np.array([0, 3, 4], np.int32), np.array([3, 4, 7], np.int32))
    if K.backend_name() == "jax":
        assert uneven is None
    else:
        assert uneven is not None
        np.testing.assert_allclose(uneven[0], full, rtol=1e-5, atol=1e-6)


@pytest.mark.tensorflow_only("the unrolled one-step loop is TensorFlow's")
@pytest.mark.parametrize("front", list(STREAM_FRONTS.values()), ids=list(STREAM_FRONTS))
def test_one_step_chunks_stream_through_unrolled_layers_bit_for_bit(front: Any) -> None:
    from pytest_rnn._keras import loops

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((None, 3)), *front(), keras.layers.Dense(2)])
    twin = K.stateful_twin(model, batch_size=2)
    x = np.random.default_rng(0).normal(size=(2, 9, 3)).astype("float32")
    x[1, 6:] = 0.0  # padding, for the masked model
    flags = [len(model.outputs[0].shape) == 3]
    rolled = K.graph_stream(twin, x, flags)
    unrolled = K.graph_stream(twin, x, flags, unroll=True)
    assert rolled is not None and unrolled is not None
    one = np.arange(9, dtype=np.int32)
    traces = K.TRACES.count
    seen: list[Any] = []
    real = loops._unrolled

    def spy(m: Any) -> Any:
        seen.append(m)
        return real(m)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loops, "_unrolled", spy)
        fast = unrolled(x, one, one + 1)
    assert K.TRACES.count == traces + 1 and seen == [twin]
    np.testing.assert_array_equal(fast[0], rolled(x, one, one + 1)[0])
    # The layers are unrolled only while the loop is traced.
    assert not any(layer.unroll for _, layer in K.stateful_layers(twin))
    # One trace for every sequence length; other schedules run the rolled loop.
    shorter = x[:, :4]
    np.testing.assert_array_equal(
        unrolled(shorter, one[:4], one[:4] + 1)[0], rolled(shorter, one[:4], one[:4] + 1)[0]
    )
    pairs = np.array([0, 2, 4, 6, 8], np.int32), np.array([2, 4, 6, 8, 9], np.int32)
    np.testing.assert_array_equal(unrolled(x, *pairs)[0], rolled(x, *pairs)[0])
    # Warm, neither loop traces again, so nothing is unrolled again.
    traces = K.TRACES.count
    seen.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loops, "_unrolled", spy)
        unrolled(x, one, one + 1)
        unrolled(x, *pairs)
    assert K.TRACES.count == traces and seen == []


class _RefusesToUnroll(keras.layers.GRU):
    """A custom RNN layer that cannot run unrolled."""

    def call(
        self, sequences: Any, initial_state: Any = None, mask: Any = None, training: bool = False
    ) -> Any:
        if self.unroll:
            raise NotImplementedError("this layer has no unrolled form")
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)


@pytest.mark.tensorflow_only("the unrolled one-step loop is TensorFlow's")
def test_a_layer_that_cannot_unroll_streams_through_the_rolled_loop() -> None:
    model = keras.Sequential(
        [keras.Input((None, 3)), _RefusesToUnroll(4, return_sequences=True), keras.layers.Dense(2)]
    )
    twin = K.stateful_twin(model, batch_size=2)
    x = np.random.default_rng(2).normal(size=(2, 6, 3)).astype("float32")
    loop = K.graph_stream(twin, x, [True], unroll=True)
    assert loop is not None
    one = np.arange(6, dtype=np.int32)
    for _ in range(2):  # the failed unrolled trace is not tried again
        out = loop(x, one, one + 1)
        np.testing.assert_allclose(out[0], K.compiled(model, x, fixed_batch=False)(x), atol=1e-6)
    assert not twin.layers[0].unroll


@pytest.mark.tensorflow_only("the unrolled one-step loop is TensorFlow's")
@pytest.mark.parametrize("yours", [False, True], ids=["pytest-rnn's twin", "your stateful_model"])
def test_only_pytest_rnns_own_twins_are_unrolled(
    monkeypatch: pytest.MonkeyPatch, yours: bool
) -> None:
    from pytest_rnn._keras import loops

    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [keras.Input((None, 3)), keras.layers.LSTM(4, name="lstm"), keras.layers.Dense(1)]
    )
    copy = keras.Sequential(
        [
            keras.Input(batch_shape=(2, None, 3)),
            keras.layers.LSTM(4, stateful=True, name="lstm"),
            keras.layers.Dense(1),
        ]
    )
    copy.set_weights(model.get_weights())
    unrolled: list[Any] = []
    real = loops._unrolled

    def spy(m: Any) -> Any:
        unrolled.extend(layer for _, layer in K.stateful_layers(m))
        return real(m)

    monkeypatch.setattr(loops, "_unrolled", spy)
    x = np.random.default_rng(1).normal(size=(2, 12, 3)).astype("float32")
    pytest_rnn.assert_stateful_equals_batch(model, x, stateful_model=copy if yours else None)
    if yours:
        assert unrolled == []
    else:
        assert unrolled and all(layer.stateful and not layer.unroll for layer in unrolled)
    assert not copy.layers[0].unroll


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
@pytest.mark.backends
def test_to_numpy_reads_variables_and_tensors_without_warnings() -> None:
    variable = keras.Variable(np.arange(6.0).reshape(2, 3), dtype="float32")
    tensor = keras.ops.convert_to_tensor(np.ones((2, 2), "float32"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras warns on numpy's __array__(copy=) path
        got = [K.to_numpy(variable), K.to_numpy(tensor)]
    np.testing.assert_array_equal(got[0], np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(got[1], np.ones((2, 2)))
    assert all(isinstance(a, np.ndarray) for a in got)


def test_backend_name_is_the_keras_backend() -> None:
    assert _backend.name() == keras.backend.backend()


# The model the GPU check drew when it raised two false alarms on torch: float64
# weights, an orthogonal recurrent kernel, matmuls Keras computes in float32.
_FLOAT64_SPEC = rnn_st.SequenceModel(
    (
        rnn_st.LayerSpec.of("Embedding", 7, 4, mask_zero=False),
        rnn_st.LayerSpec.of("SimpleRNN", 7, return_sequences=True),
        rnn_st.LayerSpec.of("LayerNormalization"),
        rnn_st.LayerSpec.of("SimpleRNN", 5, return_sequences=True),
    ),
    features=None,
    dtype="float64",
    seed=3881,
)


@pytest.mark.backends
def test_float64_is_computed_in_the_dtype_keras_promotes_it_to() -> None:
    """Keras 3.15 computes float64 matmuls in float32 off TensorFlow (keras-team/keras#23704)."""
    a = keras.ops.convert_to_tensor(np.ones((2, 2)), "float64")
    promoted = keras.backend.standardize_dtype(keras.ops.matmul(a, a).dtype)
    assert promoted == ("float64" if K.backend_name() == "tensorflow" else "float32")
    assert K.computed_dtype("float64") == K.computed_dtype(np.dtype("float64")) == promoted
    assert K.computed_dtype(a.dtype) == promoted  # a backend's own dtype object
    with K.float64_scope():  # the float64 re-run computes in float64
        assert K.computed_dtype("float64") == "float64"
    for kept in ("float32", "float16", "bfloat16", "int32"):
        assert K.computed_dtype(kept) == kept
    # The assertions' default tolerance for a float64 output is the promoted dtype's.
    assert K.output_tolerance(None, None, "float64") == resolve_tolerance(None, None, promoted)
    assert K.output_tolerance(None, None, "float16") == resolve_tolerance(None, None, "float16")
    assert K.output_tolerance(1e-3, 0.0, "float64") == Tolerance(1e-3, 0.0)


@pytest.mark.backends
def test_a_stateful_copy_streams_its_model_bit_for_bit() -> None:
    """On torch a copy keeps its initializers: a variable keeps the layout they gave it."""
    model = _FLOAT64_SPEC.build()
    x = np.random.default_rng(1).integers(0, 7, (2, 12)).astype("int32")
    twin = K.clone(model, batch_size=2, stateful=True)
    streamed = np.concatenate([K.eager_call(twin, x[:, t : t + 1]) for t in range(12)], axis=1)
    np.testing.assert_array_equal(streamed, K.eager_call(model, x))


@pytest.mark.backends
def test_a_float64_model_passes_where_keras_rounds_it_as_float32() -> None:
    model = _FLOAT64_SPEC.build()
    x = np.random.default_rng(1).integers(0, 7, (2, 12)).astype("int32")
    pytest_rnn.assert_stateful_equals_batch(model, x, chunks=1)
    pytest_rnn.assert_stateful_equals_batch(model, x, chunks=[5, 1, 5, 1])
    pytest_rnn.assert_model_causal(model, x)


@pytest.mark.backends
def test_a_float64_model_that_reads_the_future_is_still_caught() -> None:
    conv = rnn_st.LayerSpec.of("Conv1D", 4, 3, padding="same")
    model = _FLOAT64_SPEC.inserted(1, conv).build()
    x = np.random.default_rng(1).integers(0, 7, (2, 12)).astype("int32")
    with pytest.raises(pytest_rnn.RNNAssertionError, match="Streamed output differs") as info:
        pytest_rnn.assert_stateful_equals_batch(model, x, chunks=1)
    assert re.search(r"first layer that differs: 'conv1d\w*' \(Conv1D", str(info.value))
    with pytest.raises(pytest_rnn.RNNAssertionError, match="it reads the future"):
        pytest_rnn.assert_model_causal(model, x)
