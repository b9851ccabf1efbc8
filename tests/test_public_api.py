"""The public surface: every exported name imports and is documented; importing stays light."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest

import pytest_rnn

BACKENDS = ("tensorflow", "keras", "jax", "torch")


@pytest.mark.parametrize("name", pytest_rnn.__all__)
def test_exported_name_imports_and_is_documented(name: str) -> None:
    obj = getattr(pytest_rnn, name)
    assert getattr(obj, "__name__", name) == name
    doc = obj.__doc__  # the object's own docstring, not one inherited from a base class
    assert doc is not None, f"pytest_rnn.{name} has no docstring"
    assert doc.strip(), f"pytest_rnn.{name} has an empty docstring"
    # @dataclass fills a missing class docstring with the signature: that is not documentation.
    assert not doc.startswith(f"{name}("), f"pytest_rnn.{name} has only a generated docstring"


def test_all_names_are_unique_and_sorted() -> None:
    assert len(set(pytest_rnn.__all__)) == len(pytest_rnn.__all__)
    assert list(pytest_rnn.__all__) == sorted(pytest_rnn.__all__)


def test_star_import_gives_every_name() -> None:
    namespace: dict[str, object] = {}
    exec("from pytest_rnn import *", namespace)
    assert set(pytest_rnn.__all__) <= set(namespace)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'assert_nothing'"):
        pytest_rnn.assert_nothing  # noqa: B018


def test_package_has_a_docstring_and_version() -> None:
    assert pytest_rnn.__doc__
    assert isinstance(pytest_rnn.__version__, str)


def test_strategies_module_imports() -> None:
    from pytest_rnn import strategies

    assert strategies.__doc__
    for name in strategies.__all__:
        obj = getattr(strategies, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__, f"strategies.{name} has no docstring"


def test_importing_the_package_and_plugin_loads_no_backend() -> None:
    modules = ["pytest_rnn", "pytest_rnn.plugin", "pytest_rnn.strategies"]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps({{m: m in sys.modules for m in {[*modules, *BACKENDS]!r}}}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert all(loaded[name] for name in modules)
    assert [name for name in BACKENDS if loaded[name]] == []


def test_reset_states_callback_is_a_keras_callback() -> None:
    keras = pytest.importorskip("keras")
    callback = pytest_rnn.ResetStatesCallback
    assert isinstance(callback, type)
    assert issubclass(callback, keras.callbacks.Callback)
    assert pytest_rnn.ResetStatesCallback is callback  # built once, so isinstance works
    assert isinstance(callback(), keras.callbacks.Callback)


def test_rnn_assertion_error_is_an_assertion_error() -> None:
    assert issubclass(pytest_rnn.RNNAssertionError, AssertionError)
    with pytest.raises(AssertionError, match="caught as an AssertionError"):
        raise pytest_rnn.RNNAssertionError("caught as an AssertionError")
