"""End to end on the real Fashion-MNIST (Debian's dataset-fashion-mnist package), as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FASHION = Path("/usr/share/datasets/fashion-mnist")
REQUIRED = os.environ.get("SOFTREG_REQUIRE_FASHION_MNIST") == "1"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not FASHION.is_dir() and not REQUIRED,
    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)",
)]


def softreg(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "softreg", *args], capture_output=True, text=True,
                          timeout=600)


def test_lesson_recipe_on_fashion_mnist(tmp_path):
    assert FASHION.is_dir(), "CI must install dataset-fashion-mnist"
    out = tmp_path / "run"
    done = softreg("train", "--data", "fashion-mnist", "--recipe", "lesson", "--out", str(out))
    assert done.returncode == 0, done.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.84
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,avg_cost") and len(history) == 16
    # the first epoch's mean cost (lesson settings, seed 777) is stable across runs
    first = float(history[1].split(",")[1])
    assert 0.6 < first < 0.75

    evaluated = softreg("evaluate", str(out))
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"accuracy {metrics['test_accuracy']:.4f}" in evaluated.stdout

    # a PNG drawn from a test image is classified as the tensor itself is
    from softreg.data import load_dataset
    from softreg.inference.images import write_image
    from softreg.runs.folder import load_run

    data = load_dataset(str(FASHION))
    run = load_run(out)
    for index in (0, 1, 2):
        png = write_image(tmp_path / f"test{index}.png", data.test.X[index], 255.0)
        expected = run.model.predict(data.test.X[index : index + 1])[0].item()
        shown = tmp_path / f"shown{index}.png"
        done = softreg("predict", str(out), str(png), "--invert", "no", "--show", str(shown))
        assert done.returncode == 0, done.stderr
        assert f"predicted {run.data['classes'][expected]} " in done.stdout
        assert shown.stat().st_size > 1000
