"""README examples run as written and print what the README says they print."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_the_estimator_example_runs_on_its_own():
    (block,) = [b for b in python_blocks() if "load_digits" in b]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    stated = float(re.search(r"# test accuracy (\d\.\d+)", block).group(1))
    printed = float(re.search(r"test accuracy (\d\.\d+)", out.getvalue()).group(1))
    assert printed == pytest.approx(stated, abs=0.01)  # a new default solver may move it a little


def test_the_data_source_example_runs_and_records_its_source(tmp_path, monkeypatch):
    (block,) = [b for b in python_blocks() if "DataSource(" in b]
    rows = ["name,weight,cylinders,mpg_class"] + [
        f"car {i},{'' if i % 9 == 0 else 1500 + 40 * i},{4 + 2 * (i % 3)},{'low' if i % 3 == 2 else 'high'}"
        for i in range(60)]
    (tmp_path / "cars.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    from softreg.runs import load_run

    run = load_run(tmp_path / "runs" / "cars")
    assert run.source().drop == ("name",) and run.source().impute == "mean" and run.source().label == "mpg_class"


def test_the_one_hot_lesson_prints_the_distances_it_promises():
    row = next(line for line in README.splitlines() if line.startswith("| L1 one-hot"))
    command = re.search(r'`python -c "(.*?)"`', row).group(1)
    proc = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    numbers = [int(v) for v in re.findall(r"\d+", proc.stdout)]
    assert numbers[:9] == [1, 0, 0, 0, 0, 1, 0, 1, 0]
    assert numbers[9:] == [0, 2, 2, 2, 0, 2, 2, 2, 0]
