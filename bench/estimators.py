"""The scikit-learn estimators against scikit-learn's own, in one run.

    python bench/estimators.py [--repeats 3] [--out bench/results]

1. Fashion-MNIST, pixels standardised (StandardScaler, fitted on the training split):
   ``SoftmaxRegressionClassifier()`` and ``LogisticRegression()`` (lbfgs, its defaults), fit time
   (median of --repeats for softreg, one fit for LogisticRegression) and test accuracy.
2. ``cross_validate`` of ``SoftmaxRegressionClassifier()`` on the bundled digits (5 folds) with
   ``n_jobs=1`` and ``n_jobs=2``, wall time, median of --repeats.

The load average is printed before and after each part. Writes estimators.md in --out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def fashion_mnist():
    import softreg

    data = softreg.load_dataset("fashion-mnist")
    from sklearn.preprocessing import StandardScaler

    X, Xt = data.train.X.reshape(len(data.train), -1).numpy(), data.test.X.reshape(len(data.test), -1).numpy()
    scaler = StandardScaler().fit(X.astype(np.float64))
    return (scaler.transform(X.astype(np.float64)), data.train.y.numpy(),
            scaler.transform(Xt.astype(np.float64)), data.test.y.numpy())


def timed_fit(make, X, y, Xt, yt) -> tuple[float, float]:
    model = make()
    tic = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    seconds = time.perf_counter() - tic
    return seconds, float(model.score(Xt, yt))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_validate

    from softreg import SoftmaxRegressionClassifier

    lines = [f"Command: `python bench/estimators.py --repeats {args.repeats}`", ""]
    X, y, Xt, yt = fashion_mnist()
    before = load()
    ours = [timed_fit(lambda: SoftmaxRegressionClassifier(random_state=0), X, y, Xt, yt) for _ in range(args.repeats)]
    theirs = timed_fit(LogisticRegression, X, y, Xt, yt)
    ours_s = statistics.median(s for s, _ in ours)
    lines += ["Fashion-MNIST, standardised pixels (60,000 x 784 training rows, 10,000 test rows); "
              f"load average {before} before, {load()} after.", "",
              "| estimator | fit s | test accuracy |", "|---|---:|---:|",
              f"| `SoftmaxRegressionClassifier()` | {ours_s:.2f} (runs {', '.join(f'{s:.2f}' for s, _ in ours)}) "
              f"| {ours[0][1]:.4f} |",
              f"| `LogisticRegression()` | {theirs[0]:.2f} | {theirs[1]:.4f} |", "",
              f"LogisticRegression / SoftmaxRegressionClassifier fit time: {theirs[0] / ours_s:.1f}x.", ""]

    Xd, yd = load_digits(return_X_y=True)
    before = load()
    walls = {}
    for jobs in (1, 2):
        runs = []
        for _ in range(args.repeats):
            tic = time.perf_counter()
            cross_validate(SoftmaxRegressionClassifier(random_state=0), Xd, yd, cv=5, n_jobs=jobs)
            runs.append(time.perf_counter() - tic)
        walls[jobs] = runs
    lines += [f"`cross_validate(SoftmaxRegressionClassifier(), digits, cv=5)`; load average {before} before, "
              f"{load()} after.", "", "| n_jobs | wall s (median) | runs |", "|---:|---:|---|"]
    for jobs, runs in walls.items():
        lines.append(f"| {jobs} | {statistics.median(runs):.2f} | {', '.join(f'{r:.2f}' for r in runs)} |")
    text = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "estimators.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
