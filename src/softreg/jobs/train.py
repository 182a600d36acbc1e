"""A training job as the command line runs it: load the data, print the plan, train with logging,
progress and checkpoints, save the run folder; or resume such a job from its checkpoint."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from softreg.data.source import DataSource, open_data
from softreg.errors import UserInputError
from softreg.system.storage import is_url
from softreg.training.config import Runtime, TrainConfig

Echo = Callable[[str], None]


def default_out(spec: str, model: str, root: Path = Path("runs")) -> Path:
    """runs/NAME-MODEL, or NAME-MODEL-2, -3, ... when that folder already holds something:
    a run is never replaced unless --out names it."""
    if is_url(spec):
        name = spec.rstrip("/").rsplit("/", 1)[-1]
    else:
        path = Path(spec)
        name = path.resolve().name if path.exists() else spec
    for suffix in (".gz", ".zst", ".csv", ".tsv", ".parquet", ".svm", ".txt"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "data"
    candidate = root / f"{name}-{model}"
    k = 2
    while candidate.exists():
        candidate = root / f"{name}-{model}-{k}"
        k += 1
    return candidate


def check_threads(threads: int, echo: Echo) -> None:
    cores = os.cpu_count() or 1
    if threads > cores:
        echo(f"note: --threads {threads} is more than the {cores} CPU cores here; training will be "
             "slower, not faster. Leave --threads out to let softreg choose.")


def run_training(source: DataSource, config: TrainConfig, runtime: Runtime, out: Path, *, echo: Echo,
                 note: Echo, progress: bool = False, resume: tuple[dict, dict] | None = None, comm=None,
                 given: frozenset[str] | None = None) -> Path:
    """Train and save a run folder at ``out``; returns it.

    given : the settings the user gave (names as in ``make_config``); those left out may be set
        from the data (sparse rows: softreg.training.sparse_defaults). None: ``config`` is final.

    Under torchrun every process runs this; rank 0 alone prints, checkpoints and writes ``out``.
    """
    from softreg.training.distributed import setup

    runtime.validate()
    if comm is None:
        comm, _ = setup(runtime.device)
    try:
        return _run(source, config, runtime, out, comm, echo=echo, note=note, progress=progress, resume=resume,
                    given=given)
    finally:
        comm.close()


def _quiet(text: str = "") -> None:
    """What processes other than rank 0 print: nothing."""


def _run(source, config, runtime, out, comm, *, echo, note, progress, resume, given=None) -> Path:
    from softreg.system import io, limits, locks
    from softreg.runs.folder import check_writable

    main = comm.rank == 0
    if not main:
        echo = note = _quiet
        progress = False
    with contextlib.ExitStack() as stack:
        error = None
        try:
            if main:
                check_threads(runtime.threads, note)
                check_writable(out)
                # held from here to the save: a second training into the same --out fails at once
                stack.enter_context(locks.lock(out, what=f"--out {out}", fix="choose another --out"))
            dataset = open_data(source, preprocess=config.data.preprocess, progress=progress, comm=comm)
            limits.check_model_size(dataset.n_features, config.model.hidden if config.model.kind == "mlp" else None,
                                    dataset.n_classes)
        except UserInputError as exc:  # found by one process: every process must hear of it
            error = str(exc)
        comm.check(error)
        return _train_and_save(source, config, runtime, out, comm, dataset, echo=echo, note=note,
                               progress=progress, resume=resume, given=given)


def _train_and_save(source, config, runtime, out, comm, dataset, *, echo, note, progress, resume, given=None) -> Path:
    from softreg.runs.folder import save_result
    from softreg.training.callbacks import Checkpointer, EpochLog, ProgressBar
    from softreg.training.fitting import preprocess_kind
    from softreg.training.l2path import describe_choice
    from softreg.training.plan import describe
    from softreg.training.trainer import assemble

    main = comm.rank == 0
    for line in dataset.notes:
        note(line)
    n_test = len(dataset.test) if dataset.test is not None else 0
    echo(f"data: {dataset.name} ({dataset.origin}): {len(dataset.train)} train, {n_test} test, "
         f"{dataset.n_features} features, {dataset.n_classes} classes")
    if given is not None:
        from softreg.training.sparse_defaults import describe_settings, with_sparse_settings

        config, chosen = with_sparse_settings(dataset, config, given, comm)
        if chosen:
            echo(describe_settings(chosen))
    ready = assemble(dataset, config, runtime=runtime, resume=resume, comm=comm)  # --l2 auto's path runs here
    if "l2_auto" in ready.extra_metrics:
        echo(describe_choice(ready.extra_metrics["l2_auto"]))
    plan = ready.fit.plan
    for line in describe(ready.config, plan, preprocess_kind(dataset, ready.config), str(ready.fit.device),
                         comm.world):
        echo(line)
    bar = ProgressBar() if progress else None
    # on a terminal the epoch lines go through the bar (above it, never over it); redirected
    # output gets them on stdout as usual
    say = bar.print if bar is not None and sys.stdout.isatty() else echo
    callbacks = [EpochLog(say, plan.epochs, runtime.log_every)]
    if bar is not None:
        callbacks.append(bar)
    if main and (runtime.checkpoint_every or runtime.checkpoint_seconds):
        info = {"config": ready.config.to_dict(), "data": {**source.to_dict(), "data_dir": source.data_dir},
                "runtime": asdict(runtime)}
        callbacks.append(Checkpointer(out, info, runtime.checkpoint_every, runtime.checkpoint_seconds))
    try:
        result = ready.run(callbacks)
    finally:
        if bar is not None:
            bar.close()
    if main:
        save_result(out, result, dataset, source)
    return out


def resume_training(run_dir: Path, *, echo: Echo, note: Echo, progress: bool = False) -> Path:
    """Continue the interrupted run in ``run_dir`` from its checkpoint, with its own settings and
    any number of processes (rank 0 reads the checkpoint and hands it to the others)."""
    from softreg.system.processes import launched
    from softreg.training.distributed import setup
    from softreg.training.state import read_checkpoint

    comm = None
    if launched():  # join first: rank 0 alone may see the run folder
        comm, _ = setup("auto")
        error, loaded = None, None
        if comm.rank == 0:
            try:
                loaded = read_checkpoint(run_dir)
            except UserInputError as exc:
                error = str(exc)
        comm.check(error)
        tensors, doc = comm.broadcast(loaded)
    else:
        tensors, doc = read_checkpoint(run_dir)
    try:
        run = doc["run"]
        data = dict(run["data"])
        impute = run["config"].get("data", {}).pop("impute", None)  # kept with the training settings before 0.3
        if impute is not None:
            data["impute"] = impute
        config = TrainConfig.from_dict(run["config"])
        source = DataSource(**{**data, "drop": data.get("drop") or ()})
        runtime = Runtime(**run["runtime"])
        state = doc["state"]
    except (KeyError, TypeError) as exc:
        raise UserInputError(f"{run_dir}: the checkpoint does not describe its run ({exc}); "
                             "start the run again without --resume.") from None
    if comm is None or comm.rank == 0:
        echo(f"resuming {run_dir} at epoch {state['epoch'] + 1} (update {state['step']})")
    return run_training(source, config, runtime, run_dir, echo=echo, note=note, progress=progress,
                        resume=(tensors, state), comm=comm)
