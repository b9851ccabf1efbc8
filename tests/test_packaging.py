"""The package as the index and a checkout see it: one version, coverage that measures the plugin.

The coverage test runs ``coverage run -m pytest -n 2`` in a subprocess with the
repository's own ``[tool.coverage.run]`` section (coverage comes with the ``test`` extra).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_rnn
from pytest_rnn import plugin

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def section(name: str) -> str:
    """One table of pyproject.toml, as text (tomllib is Python >= 3.11)."""
    match = re.search(rf"^\[{re.escape(name)}\]\n(.*?)(?=^\[|\Z)", PYPROJECT, re.M | re.S)
    assert match, name
    return match.group(0)


def test_the_version_is_written_once() -> None:
    project = section("project")
    assert re.search(r'^dynamic = \["version"\]', project, re.M)
    assert not re.search(r"^version\s*=", project, re.M)
    assert 'version = { attr = "pytest_rnn.__version__" }' in section("tool.setuptools.dynamic")
    assert re.fullmatch(r"\d+\.\d+\.\d+", pytest_rnn.__version__)
    assert importlib.metadata.version("pytest-rnn") == pytest_rnn.__version__
    assert f"## [{pytest_rnn.__version__}]" in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")


def test_the_license_is_spdx_with_its_file() -> None:
    project = section("project")
    assert 'license = "MIT"' in project
    assert 'license-files = ["LICENSE"]' in project
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    meta = importlib.metadata.metadata("pytest-rnn")
    assert "Typing :: Typed" in meta.get_all("Classifier", [])


COVERED_TEST = """
def test_one():
    pass


def test_two():
    pass
"""


def test_coverage_run_measures_the_plugin_and_xdist_workers(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject=section("tool.coverage.run"))
    pytester.makepyfile(test_covered=COVERED_TEST)
    run = [sys.executable, "-m", "coverage"]
    subprocess.run(
        [*run, "run", "-m", "pytest", "-n", "2", "-p", "no:randomly", "-p", "no:cacheprovider"],
        cwd=pytester.path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    subprocess.run([*run, "combine", "-q"], cwd=pytester.path, check=True, timeout=120)
    subprocess.run(
        [*run, "json", "-q", "-o", "cov.json"], cwd=pytester.path, check=True, timeout=120
    )
    files = json.loads((pytester.path / "cov.json").read_text())["files"]
    # the package, found by import (an editable checkout or site-packages), and nothing else
    assert all("pytest_rnn" in Path(name).parts for name in files), sorted(files)
    (name,) = [name for name in files if name.endswith("pytest_rnn/plugin.py")]
    executed = set(files[name]["executed_lines"])
    lines = Path(plugin.__file__).read_text(encoding="utf-8").splitlines()

    def line_of(text: str) -> int:
        return next(i for i, line in enumerate(lines, 1) if text in line)

    # the module's own lines, run when the entry point loads it (before pytest-cov could start)
    assert line_of("def pytest_addoption(") in executed
    # a hook only xdist workers run: the workers were measured
    assert line_of("records, pictures = _report.recorder.drain()") in executed
