"""A training job as the command line runs it: load the data, print the plan, train with logging,
progress and checkpoints, save the run folder; or resume such a job from its checkpoint."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from softreg.errors import UserInputError
from softreg.training.config import Runtime, TrainConfig

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
                 note: Echo, progress: bool = False, resume: tuple[dict, dict] | None = None) -> Path:
    """Train and save a run folder at ``out``; returns it."""
    from softreg.runs import check_writable, save_result
    from softreg.training.callbacks import Checkpointer, EpochLog, ProgressBar
    from softreg.training.device import resolve_device
    from softreg.training.plan import describe, make_plan
    from softreg.training.trainer import preprocess_kind, runtime_for, train

    runtime.validate()
    check_threads(runtime.threads, note)
    device = resolve_device(runtime.device)
    check_writable(out)
    dataset = load_data(args, config, progress)
    for line in dataset.notes:
        note(line)
    n_test = len(dataset.test) if dataset.test is not None else 0
    echo(f"data: {dataset.name} ({dataset.source}): {len(dataset.train)} train, {n_test} test, "
         f"{dataset.n_features} features, {dataset.n_classes} classes")
    n_fit = len(dataset.train) - (round(len(dataset.train) * config.stop.validation_fraction)
                                  if config.stop.validation_fraction else 0)
    plan = make_plan(config, n_fit, dataset.n_features, runtime_for(dataset, runtime, device), device.type)
    for line in describe(config, plan, preprocess_kind(dataset, config), str(device)):
        echo(line)
    bar = ProgressBar() if progress else None
    say = bar.print if bar is not None else echo
    callbacks = [EpochLog(say, plan.epochs, runtime.log_every)]
    if bar is not None:
        callbacks.append(bar)
    if runtime.checkpoint_every or runtime.checkpoint_seconds:
        info = {"config": config.to_dict(), "data": args.to_dict(), "runtime": asdict(runtime)}
        callbacks.append(Checkpointer(out, info, runtime.checkpoint_every, runtime.checkpoint_seconds))
    try:
        result = train(dataset, config, runtime=runtime, callbacks=callbacks, resume=resume)
    finally:
        if bar is not None:
            bar.close()
    save_result(out, result, dataset, args.spec, args.label, args.to_dict())
    return out


def load_data(args: DataArgs, config: TrainConfig, progress: bool = False):
    """The in-memory dataset the arguments name (table options apply to tables only)."""
    from softreg.data import load_dataset
    from softreg.data.svmlight import is_svmlight
    from softreg.data.tables import is_table

    table = is_table(Path(args.spec))
    if args.stream:
        from softreg.data.stream import open_stream

        return open_stream(args, config, progress)
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
    """Continue the interrupted run in ``run_dir`` from its checkpoint, with its own settings."""
    from softreg.training.state import read_checkpoint

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
    echo(f"resuming {run_dir} at epoch {state['epoch'] + 1} (update {state['step']})")
    return run_training(args, config, runtime, run_dir, echo=echo, note=note, progress=progress,
                        resume=(tensors, state))
