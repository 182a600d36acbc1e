"""Where `softreg train` spends a user's time: each stage of the command, in fresh processes.

    .venv/bin/python bench/stages.py [--data fashion-mnist] [--repeat 7] [-- extra train options]

Runs `softreg train --data NAME` in a child process that times, from its own start: importing
the command line, importing torch, parsing the options, loading the data, fitting the
preprocessing and building the model, the `--l2 auto` path (when asked), the training loop, the
final scoring of every split, writing the run folder, and the interpreter's exit (the parent's
wall clock minus the child's last mark). Prints the median of each stage as a Markdown table,
with the machine load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import atexit, importlib, json, sys, time
T0 = time.perf_counter()
marks, inside_path = {}, []

def timed(module, name, label):
    m = importlib.import_module(module)
    f = getattr(m, name)
    def wrapper(*a, **k):
        path = label == "--l2 auto path"
        if inside_path and not path:  # the path's own fits count as the path
            return f(*a, **k)
        inside_path.extend([1] if path else [])
        tic = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            marks[label] = marks.get(label, 0.0) + time.perf_counter() - tic
            inside_path.clear() if path else None
    setattr(m, name, wrapper)

from softreg._entry import main  # the console script's entry point
import softreg.cli
marks["import the command line"] = time.perf_counter() - T0
tic = time.perf_counter(); import torch; marks["import torch"] = time.perf_counter() - tic
tic = time.perf_counter()
import softreg.jobs.train, softreg.training.trainer, softreg.training.l2path, softreg.runs.folder
marks["import softreg's training modules"] = time.perf_counter() - tic
timed("softreg.jobs.train", "load_data", "load the data")
timed("softreg.training.fitting", "new_state", "fit the preprocessing, build the model")
timed("softreg.training.trainer", "resolve_l2", "--l2 auto path")
timed("softreg.training.trainer", "fit", "training loop")
timed("softreg.training.trainer", "final_metrics", "final scoring (train and test)")
timed("softreg.runs.folder", "save_result", "write the run folder")
timed("softreg.jobs.train", "run_training", "run_training (all of the above from loading)")

def report():
    marks["until exit"] = time.perf_counter() - T0
    print("STAGES " + json.dumps({**marks, "t0_wall": time.time() - marks["until exit"],
                                  "end_wall": time.time()}), file=sys.stderr, flush=True)
atexit.register(report)
sys.argv = ["softreg", "train", *sys.argv[1:]]
main()
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("extra", nargs="*", help="more `softreg train` options (after --)")
    args = p.parse_args()
    load_before, runs = os.getloadavg(), []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            cmd = [sys.executable, "-c", CHILD, "--data", args.data, "--out", str(Path(tmp) / f"r{i}"), *args.extra]
            start = time.time()
            tic = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - tic
            if proc.returncode:
                raise SystemExit(proc.stderr)
            marks = json.loads(next(line for line in proc.stderr.splitlines() if line.startswith("STAGES "))[7:])
            marks["interpreter start (before the first mark)"] = marks.pop("t0_wall") - start
            marks["interpreter exit (after the last mark)"] = start + wall - marks.pop("end_wall")
            imports = sum(v for k, v in marks.items() if k.startswith("import"))
            marks["the rest: option parsing, plan, printing"] = (
                marks["until exit"] - imports - marks["run_training (all of the above from loading)"])
            marks["wall clock, process start to exit"] = wall
            runs.append(marks)
    print(f"`softreg train --data {args.data} {' '.join(args.extra)}`, median of {args.repeat} fresh processes; "
          f"load average {' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} after\n")
    print("| stage | seconds (median) | min | max |\n|---|---:|---:|---:|")
    for key in runs[0]:
        values = [r.get(key, 0.0) for r in runs]
        print(f"| {key} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")


if __name__ == "__main__":
    main()
