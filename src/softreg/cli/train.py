"""`softreg train`: train a classifier and save it as a run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from softreg.cli.app import DATA_HELP, app, data_spec, echo, metavar, note, pick, print_metrics
from softreg.errors import UserInputError


def _parse_hidden(text: Optional[str]) -> Optional[list[int]]:
    if text is None:
        return None
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or any(s < 1 for s in sizes):
        raise UserInputError(
            f"--hidden must be positive integers separated by commas; got {text!r}. Example: --hidden 100,100."
        )
    return sizes


@app.command()
def train(
    data: str = typer.Option("digits", "--data", help=DATA_HELP),
    model: Optional[str] = typer.Option(None, "--model", metavar=metavar("model"), help="the classifier (default: softmax)"),
    hidden: Optional[str] = typer.Option(None, "--hidden", help="MLP hidden layer sizes, e.g. 100,100"),
    activation: Optional[str] = typer.Option(None, "--activation", metavar=metavar("activation"), help="MLP activation (default: relu)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="passes over the training set"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="samples per update; 0 = whole set"),
    lr: Optional[float] = typer.Option(None, "--lr", help="learning rate"),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", metavar=metavar("optimizer"), help="update rule (default: sgd; adam for --model mlp)"),
    momentum: Optional[float] = typer.Option(None, "--momentum", help="SGD momentum in [0, 1)"),
    l2: Optional[str] = typer.Option(None, "--l2", metavar="FLOAT|auto", help="L2 penalty on the weights; auto: "
                                     "the best of a regularisation path on a validation split (default: 0.001; 0 for the lesson recipes)"),
    l1: Optional[float] = typer.Option(None, "--l1", help="L1 penalty on the weights (sparse models)"),
    schedule: Optional[str] = typer.Option(None, "--schedule", metavar=metavar("schedule"), help="learning rate over the run (default: constant; cosine for --model mlp)"),
    average: Optional[float] = typer.Option(
        None, "--average", help="average the weights over this final share of the updates (0 = off)"),
    validation_fraction: Optional[float] = typer.Option(
        None, "--validation-fraction", help="share of the training set held out for validation"),
    early_stopping: Optional[bool] = typer.Option(
        None, "--early-stopping/--no-early-stopping", help="stop when the validation cost stops improving"),
    patience: Optional[int] = typer.Option(None, "--patience", help="epochs without improvement before stopping"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads; 0 = chosen automatically"),
    init: Optional[str] = typer.Option(None, "--init", metavar=metavar("init"), help="initial weights (default: default, PyTorch's)"),
    no_bias: bool = typer.Option(False, "--no-bias", help="drop every bias term"),
    shuffle: Optional[bool] = typer.Option(None, "--shuffle/--no-shuffle", help="reshuffle every epoch"),
    drop_last: Optional[bool] = typer.Option(None, "--drop-last/--keep-last", help="skip the last, smaller batch"),
    seed: Optional[int] = typer.Option(None, "--seed", help="random seed (Python, NumPy, torch)"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N"),
    recipe: Optional[str] = typer.Option(None, "--recipe", metavar=metavar("recipe"), help="named defaults (default: default; default-mlp for --model mlp; lesson-table for toy, toy-binary, xor)"),
    preprocess: Optional[str] = typer.Option(None, "--preprocess", metavar=metavar("preprocess"), help="feature scaling (default: standardize; pixels with --recipe lesson; none for svmlight files; scale: each column divided by its spread, not centred)"),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="print the cost every N epochs"),
    label: Optional[str] = typer.Option(None, "--label", help="label column of a table (default: label, target, class, y, else the last)"),
    test: Optional[str] = typer.Option(None, "--test", help="a separate test set: a table, a folder of shards or of IDX files"),
    stream: bool = typer.Option(False, "--stream", help="read the training data from disk in bounded memory"),
    impute: Optional[str] = typer.Option(None, "--impute", metavar=metavar("impute"), help="missing table values (default: none, an error)"),
    drop: Optional[str] = typer.Option(None, "--drop", help="table columns to leave out, comma-separated"),
    columns: Optional[str] = typer.Option(None, "--columns", help="the only table columns to use as features, comma-separated"),
    header: Optional[bool] = typer.Option(None, "--header/--no-header", help="CSV: the first row is (not) a header; default: detected"),
    sep: Optional[str] = typer.Option(None, "--sep", help="CSV field separator (default ',' or a tab for .tsv)"),
    out: Optional[Path] = typer.Option(None, "--out", help="run folder to write (default runs/DATA-MODEL, never an existing one)"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder (default $SOFTREG_DATA)"),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="save a resumable checkpoint every N epochs"),
    checkpoint_seconds: Optional[float] = typer.Option(None, "--checkpoint-seconds", help="also save one every S seconds within long epochs"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the interrupted run in this folder (its --out); no other option needed"),
    nproc: Optional[int] = typer.Option(None, "--nproc", help="train data-parallel in N processes on this machine "
                                        "(torch.distributed; see also torchrun)"),
) -> None:
    """Train a classifier and save it as a run folder."""
    options = dict(locals())
    if nproc is not None:
        from softreg.training.distributed import launch, launched

        if not launched():
            raise typer.Exit(launch(nproc, ["train", *_without_nproc(cli_argv())]))
    del options["nproc"]
    from softreg.system import limits
    from softreg.training.config import Runtime, make_config
    from softreg.jobs.train import DataArgs, default_out, resume_training, run_training

    progress = sys.stderr.isatty()
    if resume is not None:
        defaults = {"data": "digits", "no_bias": False, "stream": False, "resume": resume}
        given = [name for name, value in options.items() if value != defaults.get(name)]
        if given:
            raise UserInputError("--resume continues a run with its own settings; give no other option "
                                 f"(got --{given[0].replace('_', '-')}).")
        out = resume_training(resume, echo=echo, note=note, progress=progress)
        _finish(out)
        return
    data = data_spec(data)
    model, activation, optimizer, schedule = (pick(model, "model"), pick(activation, "activation"),
                                              pick(optimizer, "optimizer"), pick(schedule, "schedule"))
    init, recipe, preprocess = pick(init, "init"), pick(recipe, "recipe"), pick(preprocess, "preprocess")
    impute = pick(impute, "impute")
    mlp = (model or ("mlp" if recipe == "default-mlp" else None)) == "mlp"
    if not mlp and (hidden is not None or activation is not None):
        raise UserInputError(f"--{'hidden' if hidden is not None else 'activation'} shapes an MLP's hidden layers; "
                             "add --model mlp (or leave the option out).")
    # numeric options first, named as typed (the config checks the same bounds for library users)
    l2_value = _parse_l2(l2)
    limits.check_settings(dict(seed=seed, lr=lr, l2=None if l2_value == "auto" else l2_value, l1=l1, momentum=momentum, epochs=epochs,
                               batch_size=batch_size, threads=threads, patience=patience, log_every=log_every))
    from softreg.data.svmlight.files import is_svmlight

    if preprocess is None and is_svmlight(data):
        preprocess = "auto"  # sparse rows as they are (softreg.training.sparse_defaults)
    config = make_config(
        recipe, data_name=data, model=model, hidden=_parse_hidden(hidden), activation=activation,
        epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum, l2=l2_value,
        l1=l1, schedule=schedule, average=average, validation_fraction=validation_fraction,
        early_stopping=early_stopping, patience=patience, init=init, bias=False if no_bias else None,
        shuffle=shuffle, drop_last=drop_last, seed=seed, preprocess=preprocess, impute=impute,
    )
    runtime = Runtime(device=device or "auto", threads=threads or 0, log_every=log_every or 0,
                      checkpoint_every=checkpoint_every or 0, checkpoint_seconds=checkpoint_seconds or 0.0)
    args = DataArgs(spec=data, data_dir=data_dir, label=label, test=test, stream=stream,
                    drop=_names(drop), columns=_names(columns) if columns is not None else None,
                    header=header, sep=sep)
    if out is None:
        out = default_out(data, config.model.kind)
    given = frozenset(name for name, value in dict(lr=lr, l2=l2_value, batch_size=batch_size).items()
                      if value is not None)
    run_training(args, config, runtime, out, echo=echo, note=note, progress=progress, given=given)
    _finish(out)


def _without_nproc(argv: list[str]) -> list[str]:
    """The train command's own arguments, minus --nproc N (the launched processes run one each)."""
    args = list(argv)
    if args and args[0] == "train":
        args = args[1:]
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def cli_argv() -> list[str]:
    from softreg import cli

    return list(cli.ARGV)


def _parse_l2(text: Optional[str]) -> float | str | None:
    if text is None or text.strip().lower() == "auto":
        return None if text is None else "auto"
    try:
        return float(text)
    except ValueError:
        raise UserInputError(f"--l2 must be a number >= 0 or auto; got {text!r}. Example: --l2 0.001 or --l2 auto.") from None


def _names(text: Optional[str]) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()] if text else []


def _finish(out: Path) -> None:
    import json

    from softreg.training.distributed import is_main

    if not is_main():  # rank 0 wrote the run and reports it
        return
    metrics = json.loads((out / "metrics.json").read_text())
    if "l2_auto" in metrics:
        from softreg.training.l2path import describe_choice

        echo(describe_choice(metrics["l2_auto"]))
    print_metrics(metrics)
    echo(f"saved run to {out}")
