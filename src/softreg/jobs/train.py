"""A training job as the command line runs it: load the data, print the plan, train with logging,
progress and checkpoints, save the run folder; or resume such a job from its checkpoint."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from softreg.errors import UserInputError
from softreg.training.config import Runtime, TrainConfig
from softreg.training.device import resolve_device

Echo = Callable[[str], None]


@dataclass
class DataArgs:
    """Where the data comes from and how to read it (the command line's data options)."""

    spec: str = "digits"  # a dataset name, an IDX folder, a table file or folder
    data_dir: str | None = None  # dataset cache folder
    label: str | None = None  # tables: the label column
    test: str | None = None  # a separate test table / IDX folder
    stream: bool = False  # read the training data from disk in bounded memory
    drop: list[str] = field(default_factory=list)  # tables: columns to leave out
    columns: list[str] | None = None  # tables: the only feature columns to use
    header: bool | None = None  # CSV: True / False, or None to detect
    sep: str | None = None  # CSV: the field separator (default ',' or tab for .tsv)

    def to_dict(self) -> dict:
        return asdict(self)


def default_out(spec: str, model: str, root: Path = Path("runs")) -> Path:
    """runs/NAME-MODEL, or NAME-MODEL-2, -3, ... when that folder already holds something:
    a run is never replaced unless --out names it."""
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


def run_training(args: DataArgs, config: TrainConfig, runtime: Runtime, out: Path, *, echo: Echo,
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
        return _run(args, config, runtime, out, comm, echo=echo, note=note, progress=progress, resume=resume,
                    given=given)
    finally:
        if comm.world > 1:
            comm.close()


def _quiet(text: str = "") -> None:
    """What processes other than rank 0 print: nothing."""


def _run(args, config, runtime, out, comm, *, echo, note, progress, resume, given=None) -> Path:
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
            dataset = load_data(args, config, progress, comm)
            limits.check_model_size(dataset.n_features, config.model.hidden if config.model.kind == "mlp" else None,
                                    dataset.n_classes)
        except UserInputError as exc:  # found by one process: every process must hear of it
            if comm.world == 1:
                raise
            error = str(exc)
        if comm.world > 1:
            comm.check(error)
        return _train_and_save(args, config, runtime, out, comm, dataset, echo=echo, note=note,
                               progress=progress, resume=resume, given=given)


def _train_and_save(args, config, runtime, out, comm, dataset, *, echo, note, progress, resume, given=None) -> Path:
    from softreg.runs.folder import save_result
    from softreg.training.callbacks import Checkpointer, EpochLog, ProgressBar
    from softreg.training.plan import describe, make_plan
    from softreg.training.trainer import preprocess_kind, runtime_for, train

    main = comm.rank == 0
    for line in dataset.notes:
        note(line)
    n_test = len(dataset.test) if dataset.test is not None else 0
    echo(f"data: {dataset.name} ({dataset.source}): {len(dataset.train)} train, {n_test} test, "
         f"{dataset.n_features} features, {dataset.n_classes} classes")
    if given is not None:
        from softreg.training.sparse_defaults import describe_settings, with_sparse_settings

        config, chosen = with_sparse_settings(dataset, config, given, comm)
        if chosen:
            echo(describe_settings(chosen))
    n_fit = len(dataset.train) - (round(len(dataset.train) * config.stop.validation_fraction)
                                  if config.stop.validation_fraction else 0)
    device = comm.device if comm.world > 1 else resolve_device(runtime.device)
    plan = make_plan(config, n_fit, dataset.n_features, runtime_for(dataset, runtime, device), device.type)
    for line in describe(config, plan, preprocess_kind(dataset, config), str(device), comm.world):
        echo(line)
    bar = ProgressBar() if progress else None
    # on a terminal the epoch lines go through the bar (above it, never over it); redirected
    # output gets them on stdout as usual
    say = bar.print if bar is not None and sys.stdout.isatty() else echo
    callbacks = [EpochLog(say, plan.epochs, runtime.log_every)]
    if bar is not None:
        callbacks.append(bar)
    if main and (runtime.checkpoint_every or runtime.checkpoint_seconds):
        info = {"config": config.to_dict(), "data": args.to_dict(), "runtime": asdict(runtime)}
        callbacks.append(Checkpointer(out, info, runtime.checkpoint_every, runtime.checkpoint_seconds))
    try:
        result = train(dataset, config, runtime=runtime, callbacks=callbacks, resume=resume, comm=comm)
    finally:
        if bar is not None:
            bar.close()
    if main:
        save_result(out, result, dataset, args.spec, args.label, args.to_dict())
    return out


def load_data(args: DataArgs, config: TrainConfig, progress: bool = False, comm=None):
    """The dataset the arguments name: in memory, or streamed from disk with --stream (table
    options apply to tables only)."""
    from softreg.data import load_dataset
    from softreg.data.svmlight.files import is_svmlight
    from softreg.data.tables.reader import is_table

    table = is_table(Path(args.spec))
    if args.stream:
        from softreg.data.stream import open_stream

        return open_stream(args, config, progress, comm)
    if not table:
        for option, value in (("--drop", args.drop), ("--columns", args.columns), ("--header/--no-header", args.header),
                              ("--sep", args.sep), ("--impute", config.data.impute != "none" or None)):
            if value:
                raise UserInputError(f"{option} applies to tables (CSV / Parquet); {args.spec} is not one. "
                                     "Leave the option out.")
        if is_svmlight(args.spec):  # its test file is read with it: one feature numbering for both
            return load_dataset(args.spec, label=args.label, test=args.test)
        dataset = load_dataset(args.spec, data_dir=args.data_dir, label=args.label, progress=progress)
        if args.test:
            dataset = with_test_set(dataset, args.test, args.data_dir)
        return dataset
    return load_dataset(args.spec, data_dir=args.data_dir, label=args.label, test=args.test, drop=args.drop,
                        columns=args.columns, header=args.header, sep=args.sep, impute=config.data.impute)


def with_test_set(dataset, test: str, data_dir: str | None):
    """``dataset`` scored on another dataset's test split (or its only split), classes matched by name."""
    from softreg.data import load_dataset

    other = load_dataset(test, data_dir=data_dir)
    split = other.test if other.test is not None else other.train
    if tuple(split.X.shape[1:]) != tuple(dataset.train.X.shape[1:]):
        raise UserInputError(f"--test {test}: samples of shape {tuple(split.X.shape[1:])}, but the training "
                             f"samples are {tuple(dataset.train.X.shape[1:])}; give a test set like the training data.")
    relabelled = other.relabel(dataset.classes) if other.classes != dataset.classes else other
    split = relabelled.test if relabelled.test is not None else relabelled.train
    dataset = dataset.with_train(dataset.train)
    dataset.test = split
    return dataset


def resume_training(run_dir: Path, *, echo: Echo, note: Echo, progress: bool = False) -> Path:
    """Continue the interrupted run in ``run_dir`` from its checkpoint, with its own settings and
    any number of processes (rank 0 reads the checkpoint and hands it to the others)."""
    from softreg.training.distributed import launched, setup
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
        config = TrainConfig.from_dict(run["config"])
        args = DataArgs(**run["data"])
        runtime = Runtime(**run["runtime"])
        state = doc["state"]
    except (KeyError, TypeError) as exc:
        raise UserInputError(f"{run_dir}: the checkpoint does not describe its run ({exc}); "
                             "start the run again without --resume.") from None
    if comm is None or comm.rank == 0:
        echo(f"resuming {run_dir} at epoch {state['epoch'] + 1} (update {state['step']})")
    return run_training(args, config, runtime, run_dir, echo=echo, note=note, progress=progress,
                        resume=(tensors, state), comm=comm)
