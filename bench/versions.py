"""The same training commands on two source trees of softreg, in one run: is this one slower?

    git worktree add /tmp/before d89a8e5        # or any earlier commit
    python bench/versions.py --baseline /tmp/before/src [--repeats 3]

Each command runs in a fresh process with PYTHONPATH pointing at one tree (the same interpreter and
packages), alternating between the trees so that load changes hit both. Reported: the training
loop's seconds (metrics.json's train_seconds), the whole command's wall time, peak RSS and test
accuracy; medians.
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
COMMANDS = {
    "default linear": ["--data", "fashion-mnist"],
    "lesson recipe": ["--data", "fashion-mnist", "--recipe", "lesson"],
    "MLP, 2 epochs": ["--data", "fashion-mnist", "--model", "mlp", "--epochs", "2"],
    "L-BFGS, 10 epochs": ["--data", "fashion-mnist", "--optimizer", "lbfgs", "--lr", "1", "--batch-size", "0",
                          "--epochs", "10"],
}


def once(src: Path, args: list[str]) -> dict:
    r = e2e.run_once([sys.executable, "-m", "softreg", "train", *args, "--out", "{out}"],
                     env={**os.environ, "PYTHONPATH": str(src)})
    m = r["metrics"]
    return {"train_s": m["train_seconds"], "wall_s": r["seconds"], "peak_mb": r["peak_rss_mb"],
            "test_acc": m["test_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the src/ folder of the earlier tree")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    trees = {"before": args.baseline.resolve(), "now": (HERE.parent / "src").resolve()}
    load = os.getloadavg()[0]
    rows = []
    for name, cmd in COMMANDS.items():
        runs: dict[str, list[dict]] = {t: [] for t in trees}
        for _ in range(args.repeats):
            for tree, src in trees.items():  # alternate: a load spike hits both
                runs[tree].append(once(src, cmd))
        med = {t: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for t, rs in runs.items()}
        rows.append((name, med))
        print(name, med, flush=True)
    lines = [f"Baseline {trees['before']}; load average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the "
             f"end (2 cores); medians of {args.repeats}.", "",
             "| command | training s before | now | ratio | wall s before | now | peak MB before | now | "
             "test acc before | now |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, med in rows:
        b, n = med["before"], med["now"]
        lines.append(f"| {name} | {b['train_s']:.3f} | {n['train_s']:.3f} | {n['train_s'] / b['train_s']:.2f} | "
                     f"{b['wall_s']:.2f} | {n['wall_s']:.2f} | {b['peak_mb']:.0f} | {n['peak_mb']:.0f} | "
                     f"{b['test_acc']:.4f} | {n['test_acc']:.4f} |")
    e2e.save_markdown(args.out, "versions.md", "\n".join(lines))


if __name__ == "__main__":
    main()
