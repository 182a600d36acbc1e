"""The benchmark's outputs: machine description, markdown report and time-vs-accuracy plot."""

from __future__ import annotations

import os
import platform

BUSY_CORES = 0.25  # other processes' mean core use above which a timing is flagged


def machine() -> dict:
    """CPU model, cores, RAM and library versions of this machine."""
    import numpy
    import sklearn
    import torch

    def proc(path: str, key: str) -> str | None:
        try:
            with open(path) as f:
                return next((line.split(":", 1)[1].strip() for line in f if line.startswith(key)), None)
        except OSError:
            return None

    mem_kb = proc("/proc/meminfo", "MemTotal")
    return dict(
        cpu=proc("/proc/cpuinfo", "model name") or platform.processor() or "unknown CPU",
        cores=os.cpu_count(),
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        ram_gib=round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        os=platform.platform(), python=platform.python_version(), torch=torch.__version__,
        torch_threads=torch.get_num_threads(), sklearn=sklearn.__version__, numpy=numpy.__version__,
    )


def _f(x, digits: int = 4) -> str:
    if x is None:
        return "—"
    return f"{x:.{digits}g}" if isinstance(x, float) else str(x)


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_f(c) for c in row) + " |" for row in rows)]


def _note(r: dict) -> str:
    if "error" in r:
        return "FAILED: " + r["error"].strip().splitlines()[-1][:120]
    if "n_iter" in r:
        return f"{r['n_iter']} iterations" + ("" if r.get("converged", True) else " (not converged)")
    if "threads" in r:
        first = f"; first train() call {r['first_call_s']:.2f} s" if "first_call_s" in r else ""
        retrace = "" if r.get("curve_cost_diff", 0) < 1e-6 else f"; curve run cost differs by {r['curve_cost_diff']:.2g}"
        return f"{r.get('epochs')} epochs, {r['threads']} thread(s){first}{retrace}"
    return ""


def markdown(doc: dict) -> str:
    m, s, res = doc["machine"], doc["summary"], doc["results"]
    target = s["target_accuracy"]
    out = [f"# softreg benchmark: {doc['data']}", "",
           "## Machine", "",
           f"- CPU: {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), {m['ram_gib']} GiB RAM",
           f"- {m['os']}, Python {m['python']}; load average {doc['load_before']} before the run, "
           f"{doc['load_after']} after (the machine may be shared)",
           f"- torch {m['torch']} ({m['torch_threads']} threads by default), scikit-learn {m['sklearn']}, "
           f"numpy {m['numpy']}",
           f"- Command: `{doc['command']}` ({doc['mode']} mode, {doc['total_s']:.0f} s in all, {doc['date']})",
           f"- Data: {doc['n_train']} training / {doc['n_test']} test samples, {doc['n_features']} features, "
           "scaled to [0, 1] (pixels / pixel_max; scikit-learn float64, torch float32); softreg contenders get "
           "the raw images and apply their config's `preprocess` (see each config in results.json)",
           f"- softreg default recipe: `{doc['default_config']}`", ""]

    ends = doc.get("e2e") or {}
    out += ["## Results", "",
            "fit s: training loop alone (softreg: `metrics['train_seconds']`; scikit-learn: `fit()`); "
            "train() s: the whole `train()` call. End to end s: the command a user runs (see below), from "
            "process start to exit, median of fresh processes. Train loss: mean cross-entropy of the final "
            "model on the whole training set. Peak RSS: the contender's own process, interpreter included "
            "(fit: the benchmark's child process; end to end: the command's). Other cores: the mean number "
            "of cores busy with other processes while the contender's fits ran.", ""]
    out += _table(["contender", "fit s (median)", "train() s", "end to end s", "test acc", "train loss",
                   "peak RSS MB (fit)", "peak RSS MB (end to end)", "repeats", "other cores", "notes"],
                  [[n, r.get("fit_s"), r.get("call_s"), ends.get(n, {}).get("seconds"), r.get("test_acc"),
                    r.get("train_loss"), r.get("peak_rss_mb"), ends.get(n, {}).get("peak_rss_mb"), r.get("repeats"),
                    "—" if r.get("other_cores") is None else f"{r['other_cores']:.2f}", _note(r)]
                   for n, r in res.items()
                   if n not in ("bound", "scaling")])

    busy = [n for n, r in res.items() if (r.get("other_cores") or 0) > BUSY_CORES]
    if busy:
        out += ["", f"**Warning:** other work kept more than {BUSY_CORES} of a core busy during {', '.join(busy)}; "
                "those timings are unreliable (multi-threaded torch suffers most): rerun on an idle machine."]

    bound = res.get("bound", {})
    if "shape" in bound:
        n, f, c = bound["shape"]
        out += ["", "## Matmul bound", "",
                f"One epoch of the matmuls alone, `X @ W.T` ({n}x{f} @ {f}x{c}) and `G.T @ X` "
                f"({c}x{n} @ {n}x{f}), float32, median of {len(bound['1']['all'])}: "
                f"{bound['default']['seconds'] * 1e3:.2f} ms with {bound['default']['threads']} threads, "
                f"{bound['1']['seconds'] * 1e3:.2f} ms with 1 thread. Fraction achieved = bound / per-epoch time.", ""]
        out += _table(["contender", "per-epoch s", "threads used", "fraction (default-threads bound)",
                       "fraction (1-thread bound)", "fraction (same threads)"],
                      [[k, v["per_epoch_s"], v["threads"], v["fraction_default_threads"], v["fraction_1_thread"],
                        v["fraction_same_threads"]] for k, v in s["bound_fraction"].items()])

    if ends:
        out += ["", "## End to end", "",
                "The command a user would run, from process start to exit: `softreg train` with the "
                "contender's settings (the dataset's memory-mapped copy already in the cache); for "
                "scikit-learn and the lesson loop, the scripts in bench/scripts/, which read the IDX files "
                "with gzip and NumPy, fit, and score the test split. Run round-robin over the contenders; "
                "median of the runs; other cores: median over the runs of the cores other processes kept busy.",
                ""]
        out += _table(["command", "end to end s", "runs s", "peak RSS MB", "test acc", "other cores"],
                      [[f"`{r['command']}`" if "error" not in r else n, r.get("seconds"),
                        ", ".join(f"{x:.2f}" for x in r.get("all", [])), r.get("peak_rss_mb"), r.get("test_acc"),
                        None if r.get("other_cores") is None else f"{r['other_cores']:.2f}"]
                       for n, r in ends.items()])
    startup = doc.get("startup") or {}
    if startup:
        out += ["", "Start-up, medians of fresh processes: " + "; ".join(
            f"`{r['command']}` {r['seconds']:.3f} s (runs {', '.join(f'{x:.2f}' for x in r['all'])})"
            for r in startup.values()) + "."]

    if s["ratios"] or s.get("e2e_ratios"):
        out += ["", "## Ratios: fit time and end to end", "",
                "softreg time / baseline time (below 1: softreg is faster), for the training loop alone (fit) "
                "and for the whole command (end to end), from the same run.", ""]
        keys = list(dict.fromkeys([*s["ratios"], *s.get("e2e_ratios", {})]))
        fit, end = s["ratios"], s.get("e2e_ratios", {})
        out += _table(["ratio", "fit", "fit speed-up", "end to end", "end-to-end speed-up"],
                      [[k, fit.get(k), f"{1 / fit[k]:.1f}x" if k in fit else "—", end.get(k),
                        f"{1 / end[k]:.1f}x" if k in end else "—"] for k in keys])

    out += ["", f"## Time to test accuracy {target}", "",
            "Training seconds (the loop alone) until the test accuracy first reaches the target. softreg: "
            "an on_epoch callback scores the current weights after each epoch; for recipes with weight "
            "averaging (softreg-default) each point is instead a complete run with a budget of 1, 2, ... "
            "epochs, since the averaged model is what a run returns; lesson-loop: per epoch; sklearn-sgd: one partial_fit per "
            "epoch; sklearn-logreg: the final fit only.", ""]
    out += _table(["contender", "seconds", "epoch", "final test acc"],
                  [[n, t["seconds"] if t else "never", t["epoch"] if t else "—", res[n]["curve"][-1][1]]
                   for n, t in s["time_to_target"].items()])

    if s.get("scaling"):
        scales = list(next(iter(s["scaling"].values()))["per_epoch_s"])
        out += ["", "## Scaling with training-set size", "",
                f"Seconds per epoch ({res['scaling']['epochs']} epochs each) and ratio to 1x; "
                "4x is the training set repeated four times; the batch size is the full set's at every size.", ""]
        out += _table(["config", "batch", *[f"{k}x s" for k in scales], *[f"{k}x / 1x" for k in scales]],
                      [[n, v["batch_size"], *v["per_epoch_s"].values(), *v["ratio_to_1x"].values()]
                       for n, v in s["scaling"].items()])

    la = s.get("lesson_agreement")
    if la:
        out += ["", "## Lesson recipe vs the lesson loop", "",
                f"- max |avg_cost difference| over {la['epochs']} epochs: {la['max_abs_cost_diff']:.2e}",
                f"- speed: lesson-loop {la['lesson_loop_s']:.3g} s / softreg-lesson {la['softreg_lesson_s']:.3g} s"
                f" = {la['speedup']:.1f}x"]

    out += ["", "## Targets", ""]
    for t in s["targets"]:
        mark = {True: "PASS", False: "FAIL", None: "n/a"}[t["passed"]]
        caveat = " (unreliable: other work shared the CPU)" if t.get("unreliable") else ""
        out.append(f"- [{'x' if t['passed'] else ' '}] **{mark}** {t['target']}: {t['detail']}{caveat}")
    return "\n".join(out) + "\n"


def plot(doc: dict, path) -> None:
    """Test accuracy against training seconds (log scale), one line per contender."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for name, r in doc["results"].items():
        if r.get("curve"):
            xs, ys = zip(*r["curve"])
            ax.plot(xs, ys, marker="o", markersize=3 if len(xs) > 1 else 7, label=name)
    target = doc["summary"]["target_accuracy"]
    ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target}")
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (log scale)")
    ax.set_ylabel("test accuracy")
    m = doc["machine"]
    ax.set_title(f"{doc['data']}: test accuracy vs training time\n{m['cpu']}, {m['cores']} cores, "
                 f"torch {m['torch']}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
