"""benchmarks/gpu.py, the GPU check, run at its tiny size on the CPU so that it cannot rot.

One subprocess on the backend the suite runs on (``KERAS_BACKEND``, TensorFlow by
default; the CI's JAX and torch legs run it too): ``gpu.py --size tiny --backends
BACKEND --json FILE``, 25-35 s on a shared 2-core CPU (torch about 11 s). One
test, so that pytest-xdist never runs it twice. Run on torch, it found two false
alarms on a float64 model that no test of the suite had drawn.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu.py"
NO_GPU = "no GPU found: figures are CPU figures"
# The reduced-precision switches read inside an assertion: (guard leg, default leg).
SWITCHES = {
    "tensorflow": ({"tf32": False}, {"tf32": True}),
    "jax": (
        {"jax_default_matmul_precision": "highest"},
        {"jax_default_matmul_precision": "default"},
    ),
    "torch": (
        {"matmul_tf32": False, "cudnn_tf32": False},
        {"matmul_tf32": True, "cudnn_tf32": True},
    ),
}


@pytest.mark.backends
def test_the_gpu_check_runs_tiny_on_the_backend(tmp_path: Path) -> None:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    out = tmp_path / "gpu.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    cmd = [sys.executable, str(SCRIPT), "--size", "tiny", "--backends", backend]
    proc = subprocess.run(
        [*cmd, "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False,
    )  # fmt: skip
    shown = f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, shown
    assert "ok: no false alarm, every bug caught" in proc.stdout, shown

    data = json.loads(out.read_text())
    assert data["size"] == "tiny" and data["failures"] == []
    run = data["backends"][backend]
    assert run["backend"] == backend
    if not run["gpu"]:
        assert run["device"] == "cpu"
        assert NO_GPU in proc.stdout, shown
    assert set(run["legs"]) == {"guard", "default"}
    for leg, figures in run["legs"].items():
        assert figures["leg"] == leg
        assert figures["models"] >= 2
        # chunks=1 and an uneven schedule per sequence model; causal ones; encoder-decoders
        assert figures["checks"]["stateful"] >= 2, figures["checks"]
        assert figures["checks"]["seq2seq"] >= 1, figures["checks"]
        assert figures["false_alarms"] == 0, figures["alarms"]
        assert figures["figure_errors"] == 0, figures["alarms"]
        assert figures["bugs_total"] > 0
        assert figures["bugs_caught"] == figures["bugs_total"], figures["misses"]
        assert math.isfinite(figures["max_abs_diff"]) and figures["max_abs_diff"] >= 0
        assert 0 <= figures["max_diff_over_tolerance"] < 1
    # The default leg really runs with the guard off: reduced precision stays on inside.
    guard, default = SWITCHES[backend]
    assert run["legs"]["guard"]["switches_inside_assertion"] == guard
    assert run["legs"]["default"]["switches_inside_assertion"] == default
    ratio = run["benchmark"]["stateful_assert_over_full_pass"]
    assert isinstance(ratio, float) and 0 < ratio < math.inf
    for leg in ("guard", "default"):
        assert f"{backend} {leg}" in proc.stdout, shown


def _module(name: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``benchmarks/NAME.py`` as a module, in ``sys.modules`` for the test (its dataclasses look)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    # What the scripts set at import (the backend's default, the repository on sys.path) is undone.
    monkeypatch.setenv("KERAS_BACKEND", os.environ.get("KERAS_BACKEND", "tensorflow"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec.loader.exec_module(module)
    return module


def test_a_benchmark_run_stopped_by_its_budget_keeps_what_it_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """run.py writes each figure as it comes; gpu.py reads them back after a timeout."""
    run, gpu = _module("run", monkeypatch), _module("gpu", monkeypatch)
    path = tmp_path / "figures.json"
    figures = run.Figures(path)
    figures["stateful_assert_over_full_pass"] = 4.2
    figures.update({"causal_assert_over_full_pass": 6.0})
    assert json.loads(path.read_text()) == {
        "stateful_assert_over_full_pass": 4.2, "causal_assert_over_full_pass": 6.0, "partial": True,
    }  # fmt: skip

    def stopped(cmd: list[str], **kwargs: Any) -> None:
        out = run.Figures(Path(cmd[cmd.index("--json") + 1]))
        out["stateful_assert_over_full_pass"] = 4.2
        raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])

    monkeypatch.setattr(gpu.subprocess, "run", stopped)
    assert gpu.bench_subprocess("torch", 30.0) == {
        "stateful_assert_over_full_pass": 4.2, "error": "benchmarks/run.py ran past 30 s",
    }  # fmt: skip
