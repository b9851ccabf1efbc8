"""benchmarks/gpu.py, the GPU check, run at its tiny size on the CPU so that it cannot rot.

One subprocess (25-35 s on a shared 2-core CPU): ``gpu.py --size tiny --backends
tensorflow --json FILE``. One test, so that pytest-xdist never runs it twice.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu.py"
NO_GPU = "no GPU found: figures are CPU figures"


def test_the_gpu_check_runs_tiny_on_tensorflow(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    cmd = [sys.executable, str(SCRIPT), "--size", "tiny", "--backends", "tensorflow"]
    proc = subprocess.run(
        [*cmd, "--json", str(out)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600, check=False,
    )  # fmt: skip
    shown = f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, shown
    assert "ok: no false alarm, every bug caught" in proc.stdout, shown

    data = json.loads(out.read_text())
    assert data["size"] == "tiny" and data["failures"] == []
    run = data["backends"]["tensorflow"]
    assert run["backend"] == "tensorflow"
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
    # The default leg really runs with the guard off: TF32 stays on inside an assertion.
    assert run["legs"]["guard"]["switches_inside_assertion"] == {"tf32": False}
    assert run["legs"]["default"]["switches_inside_assertion"] == {"tf32": True}
    ratio = run["benchmark"]["stateful_assert_over_full_pass"]
    assert isinstance(ratio, float) and 0 < ratio < math.inf
    for leg in ("guard", "default"):
        assert f"tensorflow {leg}" in proc.stdout, shown
