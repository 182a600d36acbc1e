"""Packaging: one version source, --version, the extras, missing-extra messages, license and typing marker."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import softreg
from softreg import _version

tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CLI_MODULES = ("typer", "rich", "matplotlib", "PIL")


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_one_version_source():
    declared = PYPROJECT["project"]["version"]
    assert importlib.metadata.version("softreg") == declared
    assert softreg.__version__ == declared


def test_version_from_a_source_checkout_without_metadata(monkeypatch, tmp_path):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    _version.version.cache_clear()
    try:
        assert _version.version() == PYPROJECT["project"]["version"]
    finally:
        _version.version.cache_clear()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "9.8.7"\n')
    assert _version._from_pyproject(tmp_path / "pyproject.toml") == "9.8.7"
    assert _version._from_pyproject(tmp_path / "missing.toml") == _version.UNKNOWN
    (tmp_path / "bad.toml").write_text("[project\n")
    assert _version._from_pyproject(tmp_path / "bad.toml") == _version.UNKNOWN


def test_version_option(run_cli):
    code, out, err = run_cli("--version")
    assert (code, out, err) == (0, f"softreg {PYPROJECT['project']['version']}\n", "")


def test_version_option_of_the_installed_command():
    proc = subprocess.run([Path(sys.executable).with_name("softreg"), "--version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == f"softreg {importlib.metadata.version('softreg')}\n"


def test_base_dependencies_leave_the_command_line_to_the_cli_extra():
    def names(requirements):
        return {r.split(">")[0].split("=")[0].split("[")[0].strip().lower() for r in requirements}

    base = names(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert base == {"torch", "numpy", "scipy", "scikit-learn", "safetensors"}
    assert names(extras["cli"]) == {"softreg", "typer", "rich", "matplotlib", "pillow"}
    assert "softreg[tables]" in extras["cli"] and names(extras["tables"]) == {"pyarrow"}
    assert "softreg[all]" in extras["test"]
    assert PYPROJECT["project"]["scripts"]["softreg"] == "softreg._entry:main"
    assert any(r.startswith("setuptools>=77") for r in PYPROJECT["build-system"]["requires"])


def test_license_and_typing_marker_ship():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (Path(softreg.__file__).parent / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["softreg"]


def block(modules) -> str:
    """Code that makes ``import M`` fail for each module, as if it were not installed.

    A finder that refuses them, rather than ``sys.modules[M] = None``: scikit-learn looks
    pandas and pyarrow up in sys.modules and would trip over a None there.
    """
    return f"""
import sys
class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {tuple(modules)!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _NotInstalled())
"""


@pytest.mark.slow
def test_library_and_estimators_work_without_the_cli_extra():
    # (pandas is a test dependency, not an extra; the wheel step of .ci/run checks a real base install)
    proc = python(block(CLI_MODULES + ("pyarrow",)) + """
import numpy as np
from sklearn.datasets import load_digits
import softreg
X, y = load_digits(return_X_y=True)
clf = softreg.SoftmaxRegressionClassifier(max_iter=5).fit(X / 16, y)
assert clf.predict(X[:3] / 16).shape == (3,)
print("ok")
""")
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.parametrize("args", [["train"], ["datasets"], ["--help"]])
def test_without_typer_a_command_names_the_extra(args):
    proc = python(block(["typer"]) + f"from softreg._entry import main\nmain({args!r})")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "softreg: error: typer is not installed (needed for the command line); "
        "install it with: pip install 'softreg[cli]'"]


def test_without_typer_version_still_works():
    proc = python(block(["typer"]) + "from softreg._entry import main\nmain(['--version'])")
    assert (proc.returncode, proc.stdout) == (0, f"softreg {softreg.__version__}\n"), proc.stderr


def test_without_matplotlib_report_names_the_extra(trained_idx_run, tmp_path):
    _, run_dir = trained_idx_run
    proc = python(block(["matplotlib"]) + f"from softreg._entry import main\n"
                  f"main(['report', {str(run_dir)!r}, '--out', {str(tmp_path / 'r')!r}])")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "softreg: error: matplotlib is not installed (needed for plots and reports); "
        "install it with: pip install 'softreg[cli]'"]


def test_an_unrelated_missing_module_is_still_a_bug():
    proc = python("from softreg._entry import main, missing_extra_message\n"
                  "e = ModuleNotFoundError('x', name='not_an_extra')\n"
                  "assert missing_extra_message(e) is None\n"
                  "print(missing_extra_message(ModuleNotFoundError('x', name='PIL.Image')))")
    assert proc.returncode == 0, proc.stderr
    assert "Pillow is not installed" in proc.stdout and "softreg[cli]" in proc.stdout


def test_ci_tests_exactly_the_declared_floors():
    """.ci/run's second test run installs .ci/lowest.txt: each pin there is the floor declared here."""
    project = PYPROJECT["project"]
    declared = {}
    for req in project["dependencies"] + [r for extra in ("cli", "tables", "onnx")
                                          for r in project["optional-dependencies"][extra]]:
        if req.startswith("softreg[") or req.startswith("onnxruntime"):
            # an extra that names another extra; onnxruntime's floor (1.16) needs NumPy >= 1.24.2,
            # so beside NumPy's floor pip picks the onnxruntime that fits (lowest.txt says so)
            continue
        name, _, floor = req.partition(">=")
        declared[name.strip().lower()] = floor.strip()
    pins = {}
    for line in (ROOT / ".ci" / "lowest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    assert set(pins) == set(declared)
    for name, floor in declared.items():
        # a floor may leave off trailing zeros: >=1.6 is tested as 1.6.0
        assert pins[name] == floor or pins[name].startswith(floor + ".") and set(pins[name][len(floor):]) <= {".", "0"}, name
