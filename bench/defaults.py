"""The default linear model and `--l2 auto` against the L2-regularised optimum, on five datasets.

    python bench/defaults.py [--datasets digits,wine,breast-cancer,fashion-mnist,synthetic]
                             [--work /tmp/softreg-defaults] [--repeats 3] [--out bench/results/defaults.json]

For each dataset (the bundled digits, Fashion-MNIST, scikit-learn's wine and breast cancer tables
written as CSV files, and a `make_classification` table of 200,000 training rows, 100 features and
20 classes written as Parquet), each command in a fresh process:

- `softreg train --data D` (the default, L2 1e-3) and `softreg train --data D --l2 auto`: test
  accuracy, the chosen penalty, the path's and the refit's seconds, end-to-end wall time, peak RSS;
- scikit-learn's `LogisticRegressionCV` with the same grid (C = 1 / (l2 * n_fit)) and the same split
  (`cv=[(fit rows, validation rows)]`, the rows `--l2 auto` used), scored by log loss, on the
  features standardised as softreg standardises them: the chosen penalty, test accuracy, fit time;
- the reference: scikit-learn's `LogisticRegression` (L-BFGS, tol 1e-6, up to 5000 iterations, so
  converged) refitted on every training row at each grid penalty, warm-started from the strongest;
  the best test accuracy over the grid is the optimum. The grid is walked until three penalties in a
  row after the best are worse and every penalty chosen above has been fitted; the reference is also
  fitted at the exact penalties softreg and LogisticRegressionCV chose.

scikit-learn runs on one thread (threadpoolctl), as softreg's minibatch training does: on this shared
2-core machine two threads were slower under load. Writes the raw numbers as JSON and prints Markdown.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import e2e  # noqa: E402

DATASETS = ("digits", "wine", "breast-cancer", "fashion-mnist", "synthetic")
SYNTHETIC = dict(n_samples=250_000, n_features=100, n_informative=30, n_redundant=10, n_classes=20,
                 n_clusters_per_class=1, random_state=0)
N_SYNTHETIC_TRAIN = 200_000
REFERENCE = dict(tol=1e-6, max_iter=5000)
PATIENCE = 3  # reference: worse penalties in a row after the best before the walk stops


# ---- data ---------------------------------------------------------------------------------

def write_csv(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow([f"f{i}" for i in range(X.shape[1])] + ["label"])
        for row, label in zip(X, y):
            out.writerow([repr(float(v)) for v in row] + [int(label)])


def materialise(name: str, work: Path) -> tuple[str, str | None]:
    """(--data, --test) for softreg; writes the tables into ``work`` once."""
    if name in ("digits", "fashion-mnist"):
        return name, None
    train, test = work / f"{name}-train", work / f"{name}-test"
    if name == "synthetic":
        train, test = train.with_suffix(".parquet"), test.with_suffix(".parquet")
        if not test.is_file():
            import pyarrow as pa
            import pyarrow.parquet as pq
            from sklearn.datasets import make_classification

            X, y = make_classification(**SYNTHETIC)
            for path, rows in ((train, slice(0, N_SYNTHETIC_TRAIN)), (test, slice(N_SYNTHETIC_TRAIN, None))):
                columns = {f"f{i}": X[rows, i].astype(np.float32) for i in range(X.shape[1])}
                pq.write_table(pa.table({**columns, "label": y[rows].astype(np.int64)}), path)
        return str(train), str(test)
    train, test = train.with_suffix(".csv"), test.with_suffix(".csv")
    if not test.is_file():
        from sklearn.datasets import load_breast_cancer, load_wine
        from sklearn.model_selection import train_test_split

        bunch = {"wine": load_wine, "breast-cancer": load_breast_cancer}[name]()
        tr, te = train_test_split(np.arange(len(bunch.target)), test_size=0.2, random_state=0,
                                  stratify=bunch.target)
        write_csv(train, bunch.data[tr], bunch.target[tr])
        write_csv(test, bunch.data[te], bunch.target[te])
    return str(train), str(test)


def arrays(spec: str, test: str | None):
    """What softreg trains on, as float64 arrays standardised as softreg does: (X, y, X_test, y_test)."""
    from softreg.models.preprocess import Preprocess
    from softreg.data import DataSource, open_data

    data = open_data(DataSource(spec=spec, test=test))
    keep = data.schema.unscaled() if data.schema is not None else None
    pre = Preprocess.fit("standardize", data.train.X, data.pixel_max, keep).double()

    def flat(split):
        with torch.no_grad():
            return pre(split.X.reshape(len(split), -1).double()).numpy(), split.y.numpy()

    return (*flat(data.train), *flat(data.test)), data


# ---- scikit-learn ---------------------------------------------------------------------------

def logistic_cv(X, y, Xt, yt, grid, split) -> dict:
    from sklearn.linear_model import LogisticRegressionCV

    fit_rows, val_rows = split
    n_fit = len(fit_rows)
    model = LogisticRegressionCV(Cs=[1 / (l2 * n_fit) for l2 in grid], cv=[(fit_rows, val_rows)],
                                 scoring="neg_log_loss")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tic = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - tic
    C = float(model.C_[0])
    test_acc = float(np.mean(model.predict(Xt) == yt))  # score() would use the log-loss scoring
    return dict(seconds=seconds, C=C, path_l2=1 / (C * n_fit), l2=1 / (C * len(y)), test_acc=test_acc,
                converged=not any("converge" in str(w.message) for w in caught))


def reference(X, y, Xt, yt, grid, must: list[float]) -> dict:
    """Converged L-BFGS on every training row at the grid penalties (strongest first, warm-started),
    down to the weakest penalty in ``must`` and past the best: {l2: {test_acc, n_iter, seconds}}."""
    from sklearn.linear_model import LogisticRegression

    n = len(y)
    out: dict[float, dict] = {}
    model = LogisticRegression(warm_start=True, **REFERENCE)

    def fit(l2: float) -> None:
        model.C = 1 / (l2 * n)
        tic = time.perf_counter()
        model.fit(X, y)
        out[l2] = dict(test_acc=float(model.score(Xt, yt)), n_iter=int(np.max(model.n_iter_)),
                       seconds=time.perf_counter() - tic)
        print(f"    reference l2 {l2:.3g}: test {out[l2]['test_acc']:.4f} ({out[l2]['n_iter']} iterations, "
              f"{out[l2]['seconds']:.1f} s)", file=sys.stderr, flush=True)

    weakest_needed = min(must)
    best, stale = -1.0, 0
    for l2 in sorted(grid, reverse=True):
        fit(l2)
        if out[l2]["test_acc"] > best:
            best, stale = out[l2]["test_acc"], 0
        else:
            stale += 1
        if stale >= PATIENCE and l2 < weakest_needed:
            break
    return out


# ---- softreg ---------------------------------------------------------------------------------

def softreg_run(spec: str, test: str | None, extra: list[str], repeats: int) -> dict:
    cmd = [e2e.SOFTREG, "train", "--data", spec, *(["--test", test] if test else []), "--out", "{out}", *extra]
    runs = [e2e.run_once(cmd) for _ in range(repeats)]
    runs.sort(key=lambda r: r["seconds"])
    median = runs[len(runs) // 2]
    m = median["metrics"]
    auto = m.get("l2_auto")
    return dict(command=e2e.shlex.join(cmd).replace("{out}", "OUT"), e2e_s=median["seconds"],
                e2e_all=[r["seconds"] for r in runs], peak_rss_mb=median["peak_rss_mb"],
                other_cores=median["other_cores"], test_acc=m["test_accuracy"], train_s=m["train_seconds"],
                path_s=auto["seconds"] if auto else 0.0, l2=m.get("l2"), path_l2=auto["path_l2"] if auto else None,
                points=auto["points"] if auto else None, n_fit=auto["n_fit"] if auto else None,
                chosen_by=auto.get("chosen_by") if auto else None, accuracy_z=auto.get("accuracy_z") if auto else None)


def bench_dataset(name: str, work: Path, repeats: int, cache: dict) -> dict:
    from softreg.training.l2path import DEFAULT_GRID, VALIDATION_FRACTION, held_out_rows

    spec, test = materialise(name, work)
    print(f"== {name}: softreg", file=sys.stderr, flush=True)
    default = softreg_run(spec, test, [], repeats)
    auto = softreg_run(spec, test, ["--l2", "auto"], repeats)
    (X, y, Xt, yt), data = arrays(spec, test)
    from softreg.training import make_config

    split = [t.numpy() for t in held_out_rows(data.train.y, VALIDATION_FRACTION, make_config().seed)]
    assert len(split[0]) == auto["n_fit"], "the split differs from the one --l2 auto used"
    print(f"== {name}: LogisticRegressionCV", file=sys.stderr, flush=True)
    cv = logistic_cv(X, y, Xt, yt, DEFAULT_GRID, split)
    print(f"== {name}: reference", file=sys.stderr, flush=True)
    must = [auto["l2"], cv["l2"], 1e-3]
    key = f"{name}:{json.dumps(REFERENCE, sort_keys=True)}"
    ref = {float(k): v for k, v in cache.get(key, {}).items()}
    if not ref or min(ref) > min(must):
        ref.update(reference(X, y, Xt, yt, DEFAULT_GRID, must))
    ref.update(_extra(X, y, Xt, yt, [l2 for l2 in must if l2 not in ref]))  # the exact penalties chosen
    cache[key] = {repr(k): v for k, v in ref.items()}
    grid_refs = {l2: r for l2, r in ref.items() if any(abs(l2 - g) < 1e-15 for g in DEFAULT_GRID)}
    best_l2 = max(grid_refs, key=lambda l2: (grid_refs[l2]["test_acc"], l2))
    return dict(dataset=name, data=spec, test=test, n_train=len(y), n_test=len(yt), n_features=X.shape[1],
                n_classes=int(y.max()) + 1, default=default, auto=auto, cv=cv, reference=ref,
                best_l2=best_l2, optimum=grid_refs[best_l2]["test_acc"])


def _extra(X, y, Xt, yt, penalties: list[float]) -> dict:
    """Converged L-BFGS at each of ``penalties``, from zero weights."""
    from sklearn.linear_model import LogisticRegression

    out = {}
    for l2 in penalties:
        tic = time.perf_counter()
        model = LogisticRegression(C=1 / (l2 * len(y)), **REFERENCE).fit(X, y)
        out[l2] = dict(test_acc=float(model.score(Xt, yt)), n_iter=int(np.max(model.n_iter_)),
                       seconds=time.perf_counter() - tic)
    return out


# ---- report ----------------------------------------------------------------------------------

def _ratio(x: float) -> str:
    return f"{x:.0f}x" if x >= 10 else f"{x:.2g}x"


def markdown(doc: dict) -> str:
    rows = doc["results"]
    lines = ["| dataset | train x features, classes | optimum (converged L-BFGS, best grid L2) | default: test acc (L2 1e-3) "
             "| `--l2 auto`: test acc (L2 chosen) | L-BFGS at auto's L2 | LogisticRegressionCV: test acc (L2 chosen) "
             "| auto - optimum | default - optimum |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref, a, d, cv = r["reference"], r["auto"], r["default"], r["cv"]
        lines.append(
            f"| {r['dataset']} | {r['n_train']} x {r['n_features']}, {r['n_classes']} | {r['optimum']:.4f} "
            f"(L2 {r['best_l2']:.3g}) | {d['test_acc']:.4f} | {a['test_acc']:.4f} ({a['l2']:.3g}{_by(a)}) "
            f"| {ref[a['l2']]['test_acc']:.4f} | {cv['test_acc']:.4f} ({cv['l2']:.3g}) "
            f"| {a['test_acc'] - r['optimum']:+.4f} | {d['test_acc'] - r['optimum']:+.4f} |")
    lines += ["", "| dataset | default: train s / end to end s | `--l2 auto`: path s + refit s / end to end s "
              "| auto / default (training) | auto / default (end to end) | LogisticRegressionCV fit s "
              "| LogisticRegressionCV / auto (training) | peak RSS default / auto MB | other cores |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        a, d, cv = r["auto"], r["default"], r["cv"]
        auto_fit = a["path_s"] + a["train_s"]
        lines.append(
            f"| {r['dataset']} | {d['train_s']:.2f} / {d['e2e_s']:.2f} | {a['path_s']:.2f} + {a['train_s']:.2f} / "
            f"{a['e2e_s']:.2f} | {auto_fit / d['train_s']:.1f}x | {a['e2e_s'] / d['e2e_s']:.2f}x | {cv['seconds']:.3g}"
            f"{'' if cv['converged'] else ' (not converged)'} | {_ratio(cv['seconds'] / auto_fit)} "
            f"| {d['peak_rss_mb']:.0f} / {a['peak_rss_mb']:.0f} | {max(d['other_cores'], a['other_cores']):.2f} |")
    return "\n".join(lines) + "\n"


def _by(auto: dict) -> str:
    """How --l2 auto chose: nothing when by log loss, else the accuracy rule's z."""
    return f", by accuracy, z {auto['accuracy_z']:.1f}" if auto.get("chosen_by") == "accuracy" else ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--work", default="/tmp/softreg-defaults", help="where the tables are written")
    p.add_argument("--repeats", type=int, default=3, help="fresh softreg processes per command (median)")
    p.add_argument("--out", default=str(HERE / "results" / "defaults.json"))
    args = p.parse_args()
    from threadpoolctl import threadpool_limits

    work, out = Path(args.work), Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    cache_path = out.with_name("defaults-reference-cache.json")
    cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    load_before, started = os.getloadavg(), time.perf_counter()
    results = []
    with threadpool_limits(1):
        for name in args.datasets.split(","):
            results.append(bench_dataset(name, work, args.repeats, cache))
            cache_path.write_text(json.dumps(cache, indent=1))
    doc = dict(command="python bench/defaults.py " + " ".join(sys.argv[1:]), date=time.strftime("%Y-%m-%d %H:%M"),
               load_before=load_before, load_after=os.getloadavg(), total_s=time.perf_counter() - started,
               results=results)
    out.write_text(json.dumps(doc, indent=1, default=str))
    print(f"load average {' '.join(f'{x:.2f}' for x in load_before)} before, "
          f"{' '.join(f'{x:.2f}' for x in doc['load_after'])} after; {doc['total_s'] / 60:.0f} min\n")
    print(markdown(doc))


if __name__ == "__main__":
    main()
