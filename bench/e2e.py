"""End to end: the wall time and peak memory of the command a user would run, each a fresh process.

For every contender of run.py, the command that does what the contender does, from process start
to exit: `softreg train` with the contender's settings (the dataset's memory-mapped copy already in
the cache), the scikit-learn script and the lessons' DataLoader script in bench/scripts/ (which read
the IDX files themselves, as a user's script would). Timed as medians of fresh processes, with the
peak resident memory of each process (``wait4``) and how busy the other cores were meanwhile.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = HERE / "scripts"
SOFTREG = str(Path(sys.executable).with_name("softreg"))
SLOW_SECONDS = 60.0  # a command that took longer is not repeated


def cli_flags(flags: dict) -> list[str]:
    """``dict(batch_size=0, hidden=[256])`` -> ``['--batch-size', '0', '--hidden', '256']``."""
    out = []
    for key, value in flags.items():
        value = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else value
        out += ["--" + key.replace("_", "-"), str(value)]
    return out


def data_files(data: str) -> str:
    """What the plain scripts read: the IDX folder of a named dataset (or the folder given), or ``digits``."""
    if data == "digits":
        return "digits"
    from softreg.data.idx.catalog import idx_location

    folder, _, _ = idx_location(data, download=False)
    return str(folder)


def commands(data: str, settings: dict) -> dict[str, list[str]]:
    """Contender name -> the command a user would run; ``{out}`` in it is replaced by a fresh folder."""
    py, files = sys.executable, data_files(data)
    sklearn = [py, str(SCRIPTS / "sklearn_script.py"), files]
    softreg = [SOFTREG, "train", "--data", data, "--out", "{out}"]
    return {
        "lesson-loop": [py, str(SCRIPTS / "lesson_script.py"), files],
        "sklearn-logreg-default": sklearn,
        "sklearn-logreg-default-1-thread": ["env", "OMP_NUM_THREADS=1", *sklearn],
        "sklearn-logreg-1000": [*sklearn, "--model", "logreg-1000"],
        "sklearn-sgd": [*sklearn, "--model", "sgd"],
        "softreg-lesson": [*softreg, "--recipe", "lesson"],
        "softreg-default": softreg,
        "softreg-lbfgs": [*softreg, *cli_flags(settings["lbfgs"])],
        "softreg-mlp": [*softreg, *cli_flags(settings["mlp"])],
    }


def _cpu_seconds() -> float | None:
    """Busy CPU seconds of the whole machine so far (all but idle and iowait); None off Linux."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def run_once(cmd: list[str], env: dict | None = None) -> dict:
    """One fresh process (``{out}`` in ``cmd`` becomes a temporary run folder, removed after): wall
    seconds, its peak RSS, other cores busy meanwhile, the test accuracy it reports, its metrics.json."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = [str(out) if part == "{out}" else part for part in cmd]
        busy = _cpu_seconds()
        tic = time.perf_counter()
        with open(Path(tmp) / "stdout", "w+b") as stdout, open(Path(tmp) / "stderr", "w+b") as stderr:
            proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, env=env)
            _, status, usage = os.wait4(proc.pid, 0)  # the process's own resource use, peak RSS included
            wall = time.perf_counter() - tic
            after = _cpu_seconds()
            code = os.waitstatus_to_exitcode(status)
            stdout.seek(0)
            stderr.seek(0)
            text, errors = stdout.read().decode(), stderr.read().decode()
        if code:
            raise RuntimeError(f"{shlex.join(argv)} failed ({code}): {errors[-2000:]}")
        metrics = json.loads((out / "metrics.json").read_text()) if (out / "metrics.json").is_file() else None
        if metrics is not None:
            test_acc = metrics.get("test_accuracy")
        else:
            lines = [line for line in text.splitlines() if line.startswith("{")]
            test_acc = json.loads(lines[-1]).get("test_acc") if lines else None
    own = usage.ru_utime + usage.ru_stime
    other = None if busy is None or after is None else max(0.0, (after - busy - own) / wall)
    return dict(seconds=wall, peak_rss_mb=usage.ru_maxrss * 1024 / 1e6, other_cores=other, test_acc=test_acc,
                metrics=metrics)


def save_markdown(out: Path, name: str, text: str) -> None:
    """Write ``text`` to ``out/name`` (creating ``out``) and print it."""
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(text + "\n")
    print(text)


def shown(cmd: list[str]) -> str:
    """The command as a user would type it: `softreg`, `python`, bench/scripts/..., OUT for the run folder."""
    names = {SOFTREG: "softreg", sys.executable: "python", "{out}": "OUT"}
    parts = [names.get(part, part.replace(str(SCRIPTS), "bench/scripts")) for part in cmd]
    return " ".join(parts)


def summary(cmd: list[str], runs: list[dict]) -> dict:
    """Medians over fresh runs of one command."""
    return dict(command=shown(cmd),
                seconds=statistics.median(r["seconds"] for r in runs), all=[r["seconds"] for r in runs],
                peak_rss_mb=statistics.median(r["peak_rss_mb"] for r in runs),
                other_cores=statistics.median(r["other_cores"] or 0.0 for r in runs),
                test_acc=runs[-1]["test_acc"], repeats=len(runs))


def measure(cmd: list[str], repeats: int) -> dict:
    """``summary`` of ``repeats`` fresh runs of ``cmd`` (one if the first takes over SLOW_SECONDS)."""
    runs = []
    for _ in range(repeats):
        runs.append(run_once(cmd))
        if runs[-1]["seconds"] > SLOW_SECONDS:
            break
    return summary(cmd, runs)


def startup(data: str, repeats: int = 7) -> dict:
    """`softreg --help` and `softreg predict RUN --index 0` (a run of the default recipe on ``data``,
    the dataset's copy in the cache): medians of fresh processes."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        subprocess.run([SOFTREG, "train", "--data", data, "--out", str(run)], check=True, capture_output=True)
        out = {"help": measure([SOFTREG, "--help"], repeats),
               "predict": measure([SOFTREG, "predict", str(run), "--index", "0"], repeats)}
    out["predict"]["command"] = f"softreg predict RUN --index 0 (RUN: softreg train --data {data})"
    return out
