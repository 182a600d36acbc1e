"""How the default linear recipe was chosen: candidate settings over three seeds on one dataset.

    python bench/sweep.py [--data fashion-mnist] [--seeds 0,1,2]

Prints, per candidate, the test accuracy for each seed, their mean, and the median training time.
Accuracies are deterministic for a given seed (training runs on one thread); times depend on load.
"""

from __future__ import annotations

import argparse
import statistics

from softreg.training import make_config
from softreg.data import load_dataset
from softreg.training import train

BASE = dict(optimizer="sgd", momentum=0.9, preprocess="standardize", l2=1e-3)
CANDIDATES = {
    "cosine, no averaging, batch 128": dict(batch_size=128, lr=0.05, schedule="cosine", average=0.0, epochs=8),
    "cosine + averaging 0.5, batch 256": dict(batch_size=256, lr=0.1, schedule="cosine", average=0.5, epochs=8),
    "constant + averaging 0.6, batch 256, 5 epochs": dict(batch_size=256, lr=0.05, schedule="constant", average=0.6, epochs=5),
    "constant + averaging 0.75, batch 256": dict(batch_size=256, lr=0.05, schedule="constant", average=0.75, epochs=8),
    "constant + averaging 0.75, batch 512, 8 epochs": dict(batch_size=512, lr=0.1, schedule="constant", average=0.75, epochs=8),
    "default (constant + averaging 0.75, batch 512, 6 epochs)": dict(),
    "pixels in [0, 1] instead of standardised": dict(preprocess="pixels"),
    "no L2": dict(l2=0.0),
    "no averaging": dict(average=0.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    data = load_dataset(args.data)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"| candidate | test accuracy per seed {seeds} | mean | median train s |")
    print("|---|---|---|---|")
    for name, settings in CANDIDATES.items():
        accuracies, seconds = [], []
        for seed in seeds:
            is_default = not settings or set(settings) <= {"preprocess", "l2", "average"}
            values = settings if is_default else {**BASE, **settings}
            result = train(data, make_config(seed=seed, **values))
            accuracies.append(result.metrics["test_accuracy"])
            seconds.append(result.metrics["train_seconds"])
        print(f"| {name} | {', '.join(f'{a:.4f}' for a in accuracies)} | "
              f"{statistics.mean(accuracies):.4f} | {statistics.median(seconds):.2f} |", flush=True)


if __name__ == "__main__":
    main()
