"""Streaming benchmark: one pass over a large table on disk, three learners, the same run.

    python bench/make_tables.py --out /tmp/fm --copies 40      # 2.4 million rows in shards
    python bench/stream.py --train /tmp/fm/big --test /tmp/fm/test.parquet [--only softreg,sklearn,vw]

Contenders, each in a fresh process (its peak memory is its own, interpreter included):
  softreg   `softreg train --data TRAIN --test TEST --stream --epochs 1` (the command a user runs)
  sklearn   SGDClassifier(loss="log_loss").partial_fit over the table's record batches (pixels / 255),
            one pass, read with pyarrow in the files' order
  vw        Vowpal Wabbit (pyvw) `--oaa K --loss_function logistic`, one pass over the same rows
            written once in VW's text format (the conversion is timed apart: VW reads only its format)
Reports, per contender: wall time of the whole process, the learning time where it can be separated,
peak RSS, and test accuracy; and the machine's load. Results go to --out (default bench/results/).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BATCH_ROWS = 8192


def table_batches(path: Path):
    """(X uint8 (n, F), labels (n,)) record batches of every shard, in file order."""
    import pyarrow.parquet as pq

    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    for f in files:
        pf = pq.ParquetFile(f)
        names = pf.schema_arrow.names
        features = [n for n in names if n != "label"]
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            X = np.column_stack([batch.column(n).to_numpy() for n in features])
            yield X, batch.column("label").to_numpy()


def run_sklearn(train: Path, test: Path) -> dict:
    from sklearn.linear_model import SGDClassifier

    clf = SGDClassifier(loss="log_loss", random_state=0)
    classes = np.arange(10)
    tic = time.perf_counter()
    for X, y in table_batches(train):
        clf.partial_fit(X / 255.0, y, classes=classes)
    fit_s = time.perf_counter() - tic
    Xt, yt = map(np.concatenate, zip(*table_batches(test)))
    return {"fit_s": fit_s, "test_acc": float((clf.predict(Xt / 255.0) == yt).mean())}


def vw_lines(path: Path):
    names = np.array([f" p{j}:" for j in range(784)], dtype=object)
    for X, y in table_batches(path):
        for row, label in zip(X, y):
            nz = np.nonzero(row)[0]
            yield f"{int(label) + 1} |" + "".join(names[nz] + row[nz].astype(str).astype(object)) + "\n"


def vw_file(path: Path, cache: Path) -> tuple[Path, float]:
    """The table in VW's text format (labels 1..K), written once and reused."""
    target = cache / (path.name + ".vw")
    if target.exists():
        return target, 0.0
    tic = time.perf_counter()
    with open(str(target) + ".tmp", "w") as f:
        f.writelines(vw_lines(path))
    os.replace(str(target) + ".tmp", target)
    return target, time.perf_counter() - tic


def run_vw(train: Path, test: Path, cache: Path) -> dict:
    from vowpalwabbit import pyvw

    data, convert_s = vw_file(train, cache)
    tic = time.perf_counter()
    vw = pyvw.Workspace(f"--oaa 10 --loss_function logistic -d {data} --quiet")
    vw.run_parser()
    fit_s = time.perf_counter() - tic
    correct = total = 0
    for line in vw_lines(test):
        label, features = line.split(" |", 1)
        correct += int(vw.predict("|" + features)) == int(label)
        total += 1
    vw.finish()
    return {"fit_s": fit_s, "convert_s": convert_s, "test_acc": correct / total}


def run_softreg(train: Path, test: Path) -> dict:
    out = Path(tempfile.mkdtemp(prefix="softreg-stream-")) / "run"
    done = subprocess.run([str(Path(sys.executable).parent / "softreg"), "train", "--data", str(train), "--test",
                           str(test), "--stream", "--epochs", "1", "--out", str(out)], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(done.stderr)
    metrics = json.loads((out / "metrics.json").read_text())
    return {"fit_s": metrics["train_seconds"], "test_acc": metrics["test_accuracy"]}


def spawn(name: str, args) -> dict:
    """Run one contender in a child process; add its wall time and peak RSS."""
    cmd = [sys.executable, __file__, "--contender", name, "--train", str(args.train), "--test", str(args.test),
           "--cache", str(args.cache)]
    tic = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - tic
    text = proc.stdout.read()
    if status:
        return {"error": f"exit {status}", "wall_s": wall}
    result = json.loads(text.strip().splitlines()[-1])
    peak = usage.ru_maxrss  # the child and, for softreg, its own child (the CLI): the larger one
    result.update(wall_s=wall, peak_mb=round(max(peak, result.get("child_peak_kb", 0)) / 1024))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--only", default="softreg,sklearn,vw")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--contender")
    args = parser.parse_args()
    if args.contender:
        import resource

        result = {"softreg": lambda: run_softreg(args.train, args.test),
                  "sklearn": lambda: run_sklearn(args.train, args.test),
                  "vw": lambda: run_vw(args.train, args.test, args.cache)}[args.contender]()
        result["child_peak_kb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(json.dumps(result))
        return
    load = os.getloadavg()
    rows = {}
    for name in args.only.split(","):
        print(f"{name} ...", end=" ", flush=True)
        rows[name] = spawn(name, args)
        print(rows[name])
    args.out.mkdir(parents=True, exist_ok=True)
    report = [f"Train {args.train}, test {args.test}; load average before {load[0]:.2f}, after "
              f"{os.getloadavg()[0]:.2f} (2 cores).", "",
              "| contender | wall s | learning s | peak RSS MB | test accuracy |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        if "error" in r:
            report.append(f"| {name} | failed: {r['error']} | | | |")
            continue
        extra = f" (+{r['convert_s']:.0f} s writing VW's text format once)" if r.get("convert_s") else ""
        report.append(f"| {name} | {r['wall_s']:.1f}{extra} | {r['fit_s']:.1f} | {r['peak_mb']} | {r['test_acc']:.4f} |")
    text = "\n".join(report)
    (args.out / "stream.md").write_text(text + "\n")
    (args.out / "stream.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(text)


if __name__ == "__main__":
    main()
