"""End-to-end time of `softreg train` on the same data as IDX files, a Parquet table and a CSV table.

    python bench/make_tables.py --out /tmp/fm          # train/test .parquet and .csv from Fashion-MNIST
    python bench/tables.py --tables /tmp/fm [--repeats 3]

Each command runs in a fresh process: process start to run folder written, and its peak RSS; the
median of --repeats runs. The tables hold the same 60,000 + 10,000 images as the IDX files, one
uint8 column per pixel (Parquet keeps uint8; CSV is text), and are trained with the same recipe.
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

HERE = Path(__file__).resolve().parent


def timed(cmd: list[str]) -> tuple[float, int, dict]:
    out = Path(tempfile.mkdtemp(prefix="softreg-tables-")) / "run"
    tic = time.perf_counter()
    proc = subprocess.Popen(cmd + ["--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - tic
    if status:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read()}")
    return wall, usage.ru_maxrss // 1024, json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=Path, required=True)
    parser.add_argument("--idx", default="fashion-mnist")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    softreg = str(Path(sys.executable).parent / "softreg")
    commands = {
        "IDX": [softreg, "train", "--data", args.idx],
        "Parquet": [softreg, "train", "--data", str(args.tables / "train.parquet"), "--test",
                    str(args.tables / "test.parquet")],
        "CSV": [softreg, "train", "--data", str(args.tables / "train.csv"), "--test", str(args.tables / "test.csv")],
    }
    load = os.getloadavg()[0]
    rows = {}
    for name, cmd in commands.items():
        runs = [timed(cmd) for _ in range(args.repeats)]
        rows[name] = dict(wall_s=statistics.median(r[0] for r in runs), all_s=[round(r[0], 2) for r in runs],
                          peak_mb=max(r[1] for r in runs), test_acc=runs[0][2]["test_accuracy"],
                          train_s=statistics.median(r[2]["train_seconds"] for r in runs))
        print(name, rows[name])
    base = rows["IDX"]["wall_s"]
    lines = [f"Load average {load:.2f} before, {os.getloadavg()[0]:.2f} after (2 cores); median of "
             f"{args.repeats} runs each.", "", "| data | wall s (median) | runs | ratio to IDX | training loop s | "
             "peak RSS MB | test accuracy |", "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['wall_s']:.2f} | {r['all_s']} | {r['wall_s'] / base:.2f} | {r['train_s']:.2f} | "
                     f"{r['peak_mb']} | {r['test_acc']:.4f} |")
    text = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tables.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
