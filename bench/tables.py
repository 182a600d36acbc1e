"""End-to-end time of `softreg train` on the same data as IDX files, a Parquet table and a CSV table.

    python bench/make_tables.py --out /tmp/fm          # train/test .parquet and .csv from Fashion-MNIST
    python bench/tables.py --tables /tmp/fm [--repeats 3]

Each command runs in a fresh process: process start to run folder written, and its peak RSS; the
median of --repeats runs. The tables hold the same 60,000 + 10,000 images as the IDX files, one
uint8 column per pixel (Parquet keeps uint8; CSV is text), and are trained with the same recipe.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import e2e  # noqa: E402


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
        runs = [e2e.run_once(cmd + ["--out", "{out}"]) for _ in range(args.repeats)]
        rows[name] = dict(wall_s=statistics.median(r["seconds"] for r in runs),
                          all_s=[round(r["seconds"], 2) for r in runs], peak_mb=round(max(r["peak_rss_mb"] for r in runs)),
                          test_acc=runs[0]["test_acc"], train_s=statistics.median(r["metrics"]["train_seconds"] for r in runs))
        print(name, rows[name])
    base = rows["IDX"]["wall_s"]
    lines = [f"Load average {load:.2f} before, {os.getloadavg()[0]:.2f} after (2 cores); median of "
             f"{args.repeats} runs each.", "", "| data | wall s (median) | runs | ratio to IDX | training loop s | "
             "peak RSS MB | test accuracy |", "|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['wall_s']:.2f} | {r['all_s']} | {r['wall_s'] / base:.2f} | {r['train_s']:.2f} | "
                     f"{r['peak_mb']} | {r['test_acc']:.4f} |")
    e2e.save_markdown(args.out, "tables.md", "\n".join(lines))


if __name__ == "__main__":
    main()
