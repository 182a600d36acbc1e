"""Benchmark softreg against the tutorial training loop and scikit-learn on one dataset.

    python bench/run.py [--data fashion-mnist|digits|PATH] [--quick] [--out bench/results]

Each contender (and the matmul bound and the scaling runs) runs in a fresh
subprocess, ``python bench/run.py --contender NAME --json``, so that its peak
memory is its own. Then, for every contender, the command a user would run
(bench/e2e.py) is timed end to end in fresh processes, round-robin over the
contenders so that a change in machine load hits them alike, with its peak
memory; and `softreg --help` and `softreg predict RUN --index 0`. Prints a
report and writes results.json, report.md and time_vs_accuracy.png to --out.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import contenders as C
import e2e
import report
from softreg.training import make_config

# ---- settings: edit here ---------------------------------------------------------------
LBFGS_FLAGS = dict(optimizer="lbfgs", lr=1, batch_size=0, epochs=15, l2=1e-4)
MLP_FLAGS = dict(model="mlp", hidden=[256], activation="relu", optimizer="adam", lr=1e-3,
                 batch_size=128, epochs=15)
TARGET_ACCURACY = {"fashion-mnist": 0.84, "digits": 0.95}  # for time-to-target; others: --target
CHEAP_SECONDS = 10.0  # sklearn-sgd is repeated only when one fit takes less
SOFTREG_CHEAP_SECONDS = 60.0  # likewise for the softreg contenders
MARK = "BENCH-JSON "  # prefix of the line a contender process prints its result on
E2E_REPEATS = 3  # fresh processes per end-to-end command (1 with --quick, or when one takes over a minute)
E2E_ONLY = {"sklearn-logreg-default-1-thread": "sklearn-logreg-default"}  # extra command -> its contender


def config_maker(recipe: str | None = None, **flags) -> Callable:
    """``make(**overrides)`` -> a fresh TrainConfig from the recipe, the flags and the overrides."""
    return lambda **overrides: make_config(recipe, **{**flags, **overrides})


@dataclass
class Task:
    run: Callable  # (data, repeat) -> dict
    repeats: int = 1  # the median of this many runs (1 with --quick)
    cheap_below: float | None = None  # repeat only if the first run took less (seconds)
    in_quick: bool = True  # False: skipped with --quick


SOFTREG = {
    "softreg-lesson": config_maker("lesson"),
    "softreg-default": config_maker(),
    "softreg-lbfgs": config_maker(**LBFGS_FLAGS),
    "softreg-mlp": config_maker(**MLP_FLAGS),
}
CONTENDERS = {
    "lesson-loop": Task(C.lesson_loop),
    "sklearn-logreg-default": Task(C.sklearn_logreg()),
    "sklearn-logreg-1000": Task(C.sklearn_logreg(max_iter=1000), in_quick=False),
    "sklearn-sgd": Task(C.sklearn_sgd(loss="log_loss", random_state=0), repeats=3, cheap_below=CHEAP_SECONDS),
    **{name: Task(C.softreg(make), repeats=3, cheap_below=SOFTREG_CHEAP_SECONDS) for name, make in SOFTREG.items()},
}
MEASUREMENTS = {
    "bound": Task(C.matmul_bound),
    "scaling": Task(C.scaling({n: SOFTREG[n] for n in ("softreg-default", "softreg-lesson")}), repeats=3),
}
TASKS = {**CONTENDERS, **MEASUREMENTS}


def run_child(args) -> None:
    """Run one task in this process and print its result as one JSON line."""
    task = TASKS[args.contender]
    repeats = 1 if args.quick else task.repeats
    result = task.run(C.load(args.data), lambda once: C.repeated(once, repeats, task.cheap_below))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6  # KiB on Linux
    print(MARK + json.dumps(result), flush=True)


def spawn(name: str, args) -> dict:
    """Run one task in a fresh interpreter; its result, or {'error': ...} if it failed."""
    cmd = [sys.executable, __file__, "--contender", name, "--json", "--data", args.data]
    proc = subprocess.run(cmd + (["--quick"] if args.quick else []), capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode or not lines:
        sys.stderr.write(proc.stderr)
        return {"error": proc.stderr[-2000:] or f"exit status {proc.returncode}"}
    return json.loads(lines[-1][len(MARK):])


# ---- the summary ------------------------------------------------------------------------

def first_reach(r: dict, target: float) -> dict | None:
    """Seconds and epoch of the first curve point at or above ``target``; None if never."""
    epochs = r.get("epochs", len(r["curve"]))
    for epoch, (seconds, accuracy) in enumerate(r["curve"], 1):
        if accuracy >= target:  # a point past the last epoch is the returned (averaged) model
            final = len(r["curve"]) == 1 or epoch > epochs
            return dict(seconds=seconds, epoch=f"{min(epoch, epochs)} (final model)" if final else epoch)
    return None


def summarize(res: dict, target: float, e2e_results: dict | None = None, startup: dict | None = None) -> dict:
    ok = {n: r for n, r in res.items() if "error" not in r}
    s: dict = dict(target_accuracy=target, bound_fraction={}, ratios={})
    s["time_to_target"] = {n: first_reach(r, target) for n, r in ok.items() if r.get("curve")}
    bound = ok.get("bound")
    for name in ("softreg-default", "softreg-lesson"):
        if name in ok and bound:
            r = ok[name]
            per_epoch = r["fit_s"] / r["epochs"]
            same = "1" if r["threads"] == 1 else "default"
            s["bound_fraction"][name] = dict(
                per_epoch_s=per_epoch, threads=r["threads"], same_threads_bound_s=bound[same]["seconds"],
                fraction_default_threads=bound["default"]["seconds"] / per_epoch,
                fraction_1_thread=bound["1"]["seconds"] / per_epoch,
                fraction_same_threads=bound[same]["seconds"] / per_epoch)
    baselines = ("sklearn-logreg-default", "sklearn-logreg-1000", "sklearn-sgd", "lesson-loop")
    ends = {n: r for n, r in (e2e_results or {}).items() if "error" not in r}
    s["e2e_ratios"] = {}
    for a in SOFTREG:
        for b in (*baselines, *E2E_ONLY):
            if a in ok and b in ok:
                s["ratios"][f"{a} / {b}"] = ok[a]["fit_s"] / ok[b]["fit_s"]
            if a in ends and b in ends:
                s["e2e_ratios"][f"{a} / {b}"] = ends[a]["seconds"] / ends[b]["seconds"]
    if "lesson-loop" in ok and "softreg-lesson" in ok:
        loop, ours = ok["lesson-loop"], ok["softreg-lesson"]
        diffs = [abs(a - b) for a, b in zip(loop["avg_cost"], ours["avg_cost"])]
        s["lesson_agreement"] = dict(max_abs_cost_diff=max(diffs), per_epoch_abs_diff=diffs, epochs=len(diffs),
                                     lesson_loop_s=loop["fit_s"], softreg_lesson_s=ours["fit_s"],
                                     speedup=loop["fit_s"] / ours["fit_s"])
    s["scaling"] = ok.get("scaling", {}).get("results")
    s["targets"] = targets(ok, s, e2e_results or {}, startup or {})
    return s


def targets(ok: dict, s: dict, ends: dict, startup: dict) -> list[dict]:
    """The PASS / FAIL checklist; passed is None where a needed number is missing, and a timing
    taken while other work kept the CPU busy is marked unreliable."""
    rows = []

    def check(text: str, value, passes: Callable, detail: Callable, timed: tuple = ()) -> None:
        busy = [n for n in timed if (ok.get(n, {}).get("other_cores") or 0) > report.BUSY_CORES]
        rows.append(dict(target=text, passed=None if value is None else bool(passes(value)),
                         detail="not measured" if value is None else detail(value),
                         unreliable=bool(busy and value is not None)))

    d, mlp, la = ok.get("softreg-default", {}), ok.get("softreg-mlp"), s.get("lesson_agreement")
    check("softreg-default test accuracy >= 0.846", d.get("test_acc"), lambda v: v >= 0.846, lambda v: f"{v:.4f}")
    check("softreg-default fit time <= 1/20 of sklearn-logreg-default's",
          s["ratios"].get("softreg-default / sklearn-logreg-default"), lambda v: v <= 1 / 20,
          lambda v: f"ratio {v:.4f} (1/{1 / v:.0f})", ("softreg-default", "sklearn-logreg-default"))
    reach = {"first": s["time_to_target"].get("softreg-default")} if d else None
    check(f"softreg-default reaches test accuracy {s['target_accuracy']} in <= 0.5 s", reach,
          lambda v: v["first"] is not None and v["first"]["seconds"] <= 0.5,
          lambda v: "never" if v["first"] is None else f"{v['first']['seconds']:.3f} s (epoch {v['first']['epoch']})",
          ("softreg-default",))
    check("one epoch of softreg-default <= 2x the matmul bound (same thread count)",
          s["bound_fraction"].get("softreg-default"), lambda v: v["per_epoch_s"] <= 2 * v["same_threads_bound_s"],
          lambda v: f"{v['per_epoch_s'] * 1e3:.2f} ms vs bound {v['same_threads_bound_s'] * 1e3:.2f} ms "
                    f"({v['threads']} thread(s)): {1 / v['fraction_same_threads']:.2f}x", ("softreg-default", "bound"))
    check("lesson recipe per-epoch costs within 0.003 of the lesson loop", la and la["max_abs_cost_diff"],
          lambda v: v <= 0.003, lambda v: f"max diff {v:.2e}")
    check("lesson recipe >= 5x faster than the lesson loop", la and la["speedup"], lambda v: v >= 5,
          lambda v: f"{v:.1f}x", ("softreg-lesson", "lesson-loop"))
    check("softreg-mlp test accuracy >= 0.89 in <= 60 s", mlp, lambda v: v["test_acc"] >= 0.89 and v["fit_s"] <= 60,
          lambda v: f"{v['test_acc']:.4f} in {v['fit_s']:.1f} s", ("softreg-mlp",))
    check("softreg-default peak memory <= 1.5 GB", d.get("peak_rss_mb"), lambda v: v <= 1500, lambda v: f"{v:.0f} MB")
    sc = (s.get("scaling") or {}).get("softreg-default")
    check("4x data <= 4.4x time per epoch (softreg-default)", sc and sc["ratio_to_1x"]["4"], lambda v: v <= 4.4,
          lambda v: f"{v:.2f}x", ("scaling",))
    end = ends.get("softreg-default", {})
    for baseline in ("sklearn-logreg-default", *E2E_ONLY):
        ratio = s["e2e_ratios"].get(f"softreg-default / {baseline}")
        check(f"`softreg train` end to end >= 7x faster than the {baseline} script (same run)", ratio,
              lambda v: v <= 1 / 7, lambda v: f"{1 / v:.1f}x ({end['seconds']:.2f} s against "
                                               f"{end['seconds'] / v:.2f} s)")
    check("`softreg train` end to end: test accuracy >= 0.846", end.get("test_acc"), lambda v: v >= 0.846,
          lambda v: f"{v:.4f}")
    check("`softreg train` end to end: peak RSS <= 600 MB", end.get("peak_rss_mb"), lambda v: v <= 600,
          lambda v: f"{v:.0f} MB")
    for key, label, limit in (("help", "`softreg --help`", 0.5), ("predict", "`softreg predict RUN --index 0`", 2.5)):
        check(f"{label} under {limit} s", startup.get(key, {}).get("seconds"), lambda v, limit=limit: v < limit,
              lambda v: f"{v:.3f} s")
    return rows


# ---- end to end -------------------------------------------------------------------------

def end_to_end(names: list[str], args) -> tuple[dict, dict]:
    """Each contender's user command in fresh processes, round-robin, E2E_REPEATS rounds (commands
    slower than a minute run once); then `softreg --help` and `softreg predict`."""
    cmds = e2e.commands(args.data, dict(lbfgs=LBFGS_FLAGS, mlp=MLP_FLAGS))
    todo = [n for n in cmds if n in names or E2E_ONLY.get(n) in names]
    runs: dict[str, list] = {n: [] for n in todo}
    failed: dict[str, str] = {}
    for round_ in range(1 if args.quick else E2E_REPEATS):
        for name in todo:
            if name in failed or (runs[name] and runs[name][0]["seconds"] > e2e.SLOW_SECONDS):
                continue
            print(f"[end to end {round_ + 1}] {name} ...", end=" ", flush=True)
            try:
                r = e2e.run_once(cmds[name])
            except RuntimeError as exc:
                failed[name] = str(exc)
                print("FAILED", flush=True)
                continue
            runs[name].append(r)
            print(f"{r['seconds']:.2f} s, {r['peak_rss_mb']:.0f} MB, other cores {r['other_cores'] or 0:.2f}",
                  flush=True)
    ends = {n: e2e.summary(cmds[n], rs) for n, rs in runs.items() if rs}
    ends.update({n: {"error": message} for n, message in failed.items()})
    print("[start-up] softreg --help, softreg predict ...", flush=True)
    return ends, e2e.startup(args.data, repeats=3 if args.quick else 7)


# ---- the parent ---------------------------------------------------------------------------

def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="fashion-mnist", help="fashion-mnist, digits, or an IDX folder / table path")
    p.add_argument("--quick", action="store_true", help="1 repeat everywhere; skip sklearn-logreg-1000")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="output folder")
    p.add_argument("--target", type=float, help="test accuracy for time-to-target (default by dataset)")
    p.add_argument("--only", help="comma-separated contenders to run (default: all)")
    p.add_argument("--contender", choices=list(TASKS), help=argparse.SUPPRESS)  # child mode
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of our finished children); None off Linux."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    return busy, children.ru_utime + children.ru_stime


def _other_cores(before, after, wall: float) -> float | None:
    """Mean number of cores busy with work other than the contender while it ran."""
    if before is None or after is None:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / wall)


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())  # 1, 5 and 15 minute averages


def main(argv=None) -> None:
    args = parse(argv)
    if args.contender:
        return run_child(args)
    started, load_before = time.perf_counter(), _load()
    names = [n for n, t in CONTENDERS.items() if t.in_quick or not args.quick]
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in CONTENDERS]
        if unknown:
            raise SystemExit(f"unknown contender(s) {', '.join(unknown)}; choose from {', '.join(CONTENDERS)}")
    target = args.target or TARGET_ACCURACY.get(Path(args.data).name.lower(), 0.84)
    data = C.load(args.data)
    m = report.machine()
    default_config = C.resolved(make_config(), len(data.train), data.n_features).to_dict()
    print(f"{m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB; torch {m['torch']} ({m['torch_threads']} threads)")
    print(f"data {args.data}: {len(data.train)} train / {len(data.test)} test; target accuracy {target}")
    print(f"softreg default recipe: {default_config}")
    results = {}
    tasks = ["bound", *names, "scaling"]
    for i, name in enumerate(tasks, 1):
        print(f"[{i}/{len(tasks)}] {name} ...", end=" ", flush=True)
        tic, busy = time.perf_counter(), _cpu_seconds()
        r = results[name] = spawn(name, args)
        r["other_cores"] = _other_cores(busy, _cpu_seconds(), time.perf_counter() - tic)
        detail = "FAILED" if "error" in r else ", ".join(
            f"{k} {r[k]:.4g}" for k in ("fit_s", "test_acc", "peak_rss_mb", "other_cores") if r.get(k) is not None)
        print(f"{time.perf_counter() - tic:.1f} s ({detail})", flush=True)
    ends, startup = end_to_end(names, args)
    doc = dict(data=args.data, mode="quick" if args.quick else "full", date=time.strftime("%Y-%m-%d %H:%M"),
               command=shlex.join(["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
               machine=m, n_train=len(data.train), n_test=len(data.test), n_features=data.n_features,
               default_config=default_config, settings=dict(lbfgs=LBFGS_FLAGS, mlp=MLP_FLAGS),
               results=results, e2e=ends, startup=startup, summary=summarize(results, target, ends, startup))
    if "config" in results.get("softreg-default", {}):  # what the run used (src/ may change meanwhile)
        doc["default_config"] = results["softreg-default"]["config"]
    doc.update(total_s=time.perf_counter() - started, load_before=load_before, load_after=_load())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(doc, indent=1))
    report.plot(doc, out / "time_vs_accuracy.png")
    md = report.markdown(doc)
    (out / "report.md").write_text(md)
    print("\n" + md)
    print(f"wrote {out / 'results.json'}, {out / 'report.md'}, {out / 'time_vs_accuracy.png'}")


if __name__ == "__main__":
    main()
