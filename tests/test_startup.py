"""Start-up: `import softreg` and `softreg --help` load no heavy library; the public names still resolve."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import softreg

# (typer's own pydantic, about 30 ms, comes with a command's --help: typer needs it to read options)
HEAVY = ("torch", "sklearn", "scipy", "numpy", "matplotlib", "pandas", "rich", "pyarrow", "PIL",
         "safetensors")

# The package's public names and where each is defined (the eager imports it used to make).
PUBLIC = {
    "Dataset": "softreg.data.base", "Split": "softreg.data.base",
    "SoftregError": "softreg.errors", "UserInputError": "softreg.errors",
    "MLP": "softreg.models", "Classifier": "softreg.models",
    "LogisticRegression": "softreg.models", "SoftmaxRegression": "softreg.models",
    "TrainConfig": "softreg.training.config", "make_config": "softreg.training.config",
    "load_dataset": "softreg.data",
    "load_run": "softreg.runs.folder", "save_result": "softreg.runs.folder", "save_run": "softreg.runs.folder",
    "train": "softreg.training",
    "SoftmaxRegressionClassifier": "softreg.estimators.classifiers", "LogisticRegressionClassifier": "softreg.estimators.classifiers",
    "MLPClassifier": "softreg.estimators.classifiers",
}

PROBE = """
import json, sys
{body}
print("LOADED " + json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))), file=sys.stderr)
"""


def loaded_after(body: str) -> list[str]:
    """Heavy top-level modules in sys.modules after running ``body`` in a fresh interpreter."""
    code = PROBE.format(body=body, heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("LOADED ")]
    assert lines, proc.stderr
    return json.loads(lines[-1][len("LOADED "):])


def test_import_softreg_loads_nothing_heavy():
    assert loaded_after("import softreg; softreg.__version__; dir(softreg)") == []


def test_the_probe_sees_a_heavy_import():
    # the control: touching a model class must pull torch in, or the probe above proves nothing
    assert "torch" in loaded_after("import softreg; softreg.SoftmaxRegression")


@pytest.mark.parametrize("args", [
    [], ["--help"], ["--version"], ["train", "--help"], ["evaluate", "--help"], ["report", "--help"],
    ["predict", "--help"], ["datasets", "--help"], ["serve", "--help"], ["export", "--help"],
    ["train", "--no-such-option"],
], ids=lambda a: " ".join(a) or "bare")
def test_help_version_and_usage_errors_load_nothing_heavy(args):
    body = f"""
from softreg._entry import main
try:
    main({args!r})
except SystemExit:
    pass
"""
    assert loaded_after(body) == []


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_names_resolve_to_their_definitions(name):
    module = importlib.import_module(PUBLIC[name])
    assert getattr(softreg, name) is getattr(module, name)
    namespace: dict = {}
    exec(f"from softreg import {name}", namespace)
    assert namespace[name] is getattr(module, name)


def test_all_and_dir_list_exactly_the_public_names():
    assert set(softreg.__all__) == set(PUBLIC) | {"__version__"}
    assert set(softreg.__all__) <= set(dir(softreg))


def test_unknown_names_and_submodules():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        softreg.nope  # noqa: B018
    from softreg.report import plots

    assert plots.__name__ == "softreg.report.plots"
    training = importlib.import_module("softreg.training")
    assert softreg.train is training.train  # the function; its package is softreg.training
