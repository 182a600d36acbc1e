"""Start-up and loading: what a user waits for before softreg does any work, each in a fresh process.

    .venv/bin/python bench/startup.py [--repeat 7] [--data fashion-mnist] [--baseline OLD/src]

Times (medians of --repeat fresh processes): `softreg --help`, `softreg train --help`,
`softreg --version`, `import softreg`, the eager import of the public API that `import softreg`
used to do, `softreg train --data NAME` end to end with its peak RSS, `softreg predict RUN
--index 0` with the dataset's cached copy built and without;
the load of a named dataset (first load, which builds the memory-mapped copy; later loads;
the direct parse of its IDX files without the copy) with peak RSS; and what TorchDynamo's import
costs on a first `torch.optim` optimizer. Prints a Markdown table and the machine load.
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

PY = sys.executable
SOFTREG = str(Path(PY).with_name("softreg"))

LOAD = """
import json, resource, sys, time
import torch
from softreg.data.idx import catalog
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if sys.argv[1] == "direct":  # the IDX files parsed as before the cache: no copy written or read
    info = catalog.DATASETS[sys.argv[2]]
    folder = catalog._find_local(info, None)
    ds = catalog._load_folder(folder, info.name, list(info.classes), str(folder), cache=None)
else:
    ds = catalog.load_idx_dataset(sys.argv[2], download=False)
dt = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": dt, "peak_mb": rss / 1024, "torch_mb": rss0 / 1024}))
"""

DYNAMO = """
import json, sys, time
import torch
w = torch.zeros(784, 10, requires_grad=True)
what = sys.argv[1]
t = time.perf_counter()
if what == "import":
    import torch._dynamo
elif what == "sgd":
    torch.optim.SGD([w], lr=0.1, momentum=0.9)
elif what == "adam":
    torch.optim.Adam([w], lr=1e-3)
elif what == "lbfgs":
    torch.optim.LBFGS([w])
elif what == "functional-sgd":  # torch.optim.sgd.sgd: the update alone, no Optimizer object
    from torch.optim.sgd import sgd
    w.grad = torch.ones_like(w)
    with torch.no_grad():
        sgd([w], [w.grad], [None], weight_decay=0.0, momentum=0.9, lr=0.1, dampening=0.0,
            nesterov=False, maximize=False)
elif what == "by-hand":  # momentum SGD written out: what a trainer can do without torch.optim
    w.grad = torch.ones_like(w)
    with torch.no_grad():
        buf = w.grad.clone()
        w.add_(buf, alpha=-0.1)
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "dynamo": "torch._dynamo" in sys.modules}))
"""


def wall(cmd: list[str], env: dict | None = None, setup=None) -> float:
    """Seconds from start to exit of one process; raises when it fails."""
    return run_child(cmd, env, setup)[0]


def run_child(cmd: list[str], env: dict | None = None, setup=None) -> tuple[float, float]:
    """(seconds from start to exit, peak RSS in MB) of one process; raises when it fails."""
    if setup is not None:
        setup()
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    dt = time.perf_counter() - t
    err = proc.stderr.read().decode() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return dt, usage.ru_maxrss / 1024


def child(code: str, *args: str, env: dict | None = None) -> dict:
    proc = subprocess.run([PY, "-c", code, *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def med(values: list[float]) -> float:
    return statistics.median(values)


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--baseline", metavar="SRC",
                        help="the src/ folder of an earlier checkout: time its --help, import and predict too")
    parser.add_argument("--only-dynamo", action="store_true", help="only the TorchDynamo rows")
    args = parser.parse_args()
    n = args.repeat
    rows: list[tuple[str, str, str]] = []
    print(f"load average at start: {load_avg()} ({os.cpu_count()} cores)", file=sys.stderr)

    if not args.only_dynamo:
        startup_rows(args, rows)
    dynamo_rows(n, rows)
    print(f"load average at end: {load_avg()}", file=sys.stderr)
    print(f"| what (median of {n} fresh processes) | time | notes |")
    print("|---|---:|---|")
    for label, value, note in rows:
        print(f"| {label} | {value} | {note} |")


def startup_rows(args, rows: list) -> None:
    n = args.repeat
    for label, cmd in [
        ("`softreg --help`", [SOFTREG, "--help"]),
        ("`softreg train --help`", [SOFTREG, "train", "--help"]),
        ("`softreg --version`", [SOFTREG, "--version"]),
        ("`python -c 'import softreg'`", [PY, "-c", "import softreg"]),
        ("eager import of the public API (what `import softreg` did before)",
         [PY, "-c", "import softreg.estimators.classifiers, softreg.runs.folder, softreg.data"]),
    ]:
        times = [wall(cmd) for _ in range(n)]
        rows.append((label, f"{med(times):.3f} s", f"min {min(times):.3f}, max {max(times):.3f}"))
        print(rows[-1], file=sys.stderr)

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        env = {**os.environ, "SOFTREG_DATA": str(cache)}

        def empty_cache() -> None:
            import shutil

            shutil.rmtree(cache / "arrays", ignore_errors=True)

        first = []
        for _ in range(n):
            empty_cache()
            first.append(child(LOAD, "cached", args.data, env=env))
        later = [child(LOAD, "cached", args.data, env=env) for _ in range(n)]
        direct = [child(LOAD, "direct", args.data, env=env) for _ in range(n)]
        for label, runs in [(f"load {args.data}: first (parse IDX, write the copy)", first),
                            (f"load {args.data}: later (map the copy)", later),
                            (f"load {args.data}: direct parse, no copy (as before)", direct)]:
            rows.append((label, f"{med([r['seconds'] for r in runs]) * 1000:.1f} ms",
                         f"peak RSS {med([r['peak_mb'] for r in runs]):.0f} MB "
                         f"(torch imported: {med([r['torch_mb'] for r in runs]):.0f} MB)"))
            print(rows[-1], file=sys.stderr)

        run_dir = Path(tmp) / "run"
        train = [run_child([SOFTREG, "train", "--data", args.data, "--out", str(Path(tmp) / f"t{i}")], env=env)
                 for i in range(n)]
        rows.append((f"`softreg train --data {args.data}` end to end (copy in the cache)",
                     f"{med([t for t, _ in train]):.3f} s", f"peak RSS {med([m for _, m in train]):.0f} MB"))
        print(rows[-1], file=sys.stderr)
        wall([SOFTREG, "train", "--data", args.data, "--out", str(run_dir)], env=env)
        predict = [SOFTREG, "predict", str(run_dir), "--index", "0"]
        warm = [wall(predict, env=env) for _ in range(n)]
        cold = [wall(predict, env=env, setup=empty_cache) for _ in range(n)]
        rows.append((f"`softreg predict RUN --index 0` ({args.data}, copy in the cache)",
                     f"{med(warm):.3f} s", f"min {min(warm):.3f}, max {max(warm):.3f}"))
        rows.append((f"`softreg predict RUN --index 0` ({args.data}, copy built first)",
                     f"{med(cold):.3f} s", f"min {min(cold):.3f}, max {max(cold):.3f}"))
        print(rows[-2:], file=sys.stderr)
        if args.baseline:
            before = {**env, "PYTHONPATH": str(Path(args.baseline).resolve())}
            train = [run_child([PY, "-m", "softreg", "train", "--data", args.data,
                                "--out", str(Path(tmp) / f"b{i}")], env=before) for i in range(n)]
            rows.append((f"baseline: `python -m softreg train --data {args.data}` end to end",
                         f"{med([t for t, _ in train]):.3f} s", f"peak RSS {med([m for _, m in train]):.0f} MB"))
            print(rows[-1], file=sys.stderr)
            for label, cmd in [("baseline: `python -m softreg --help`", [PY, "-m", "softreg", "--help"]),
                               ("baseline: `python -c 'import softreg'`", [PY, "-c", "import softreg"]),
                               (f"baseline: `python -m softreg predict RUN --index 0` ({args.data})",
                                [PY, "-m", "softreg", "predict", str(run_dir), "--index", "0"])]:
                times = [wall(cmd, env=before) for _ in range(n)]
                rows.append((label, f"{med(times):.3f} s", f"min {min(times):.3f}, max {max(times):.3f}"))
                print(rows[-1], file=sys.stderr)



def dynamo_rows(n: int, rows: list) -> None:
    for what in ("import", "sgd", "sgd-disabled", "adam", "lbfgs", "functional-sgd", "by-hand"):
        env = {**os.environ, "TORCHDYNAMO_DISABLE": "1"} if what == "sgd-disabled" else None
        runs = [child(DYNAMO, what.removesuffix("-disabled"), env=env) for _ in range(n)]
        label = {"import": "`import torch._dynamo` after `import torch`",
                 "sgd": "first `torch.optim.SGD(...)` (constructor)",
                 "sgd-disabled": "the same with `TORCHDYNAMO_DISABLE=1`",
                 "adam": "first `torch.optim.Adam(...)` (constructor)",
                 "lbfgs": "first `torch.optim.LBFGS(...)` (constructor)",
                 "functional-sgd": "first `torch.optim.sgd.sgd(...)` update, no Optimizer",
                 "by-hand": "momentum SGD update written with tensor ops"}[what]
        rows.append((label, f"{med([r['seconds'] for r in runs]):.3f} s",
                     "imports TorchDynamo" if all(r["dynamo"] for r in runs) else "no TorchDynamo"))
        print(rows[-1], file=sys.stderr)


if __name__ == "__main__":
    main()
