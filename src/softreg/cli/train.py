"""`softreg train`: train a classifier and save it as a run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from softreg.cli.app import DATA_HELP, app, echo, print_metrics
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
    model: Optional[str] = typer.Option(None, "--model", help="softmax (default), logistic or mlp"),
    hidden: Optional[str] = typer.Option(None, "--hidden", help="MLP hidden layer sizes, e.g. 100,100"),
    activation: Optional[str] = typer.Option(None, "--activation", help="MLP activation: sigmoid, tanh or relu"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="passes over the training set"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="samples per update; 0 = whole set"),
    lr: Optional[float] = typer.Option(None, "--lr", help="learning rate"),
    optimizer: Optional[str] = typer.Option(None, "--optimizer", help="sgd, adam or lbfgs"),
    momentum: Optional[float] = typer.Option(None, "--momentum", help="SGD momentum in [0, 1)"),
    l2: Optional[float] = typer.Option(None, "--l2", help="L2 penalty on the weights"),
    l1: Optional[float] = typer.Option(None, "--l1", help="L1 penalty on the weights (sparse models)"),
    schedule: Optional[str] = typer.Option(None, "--schedule", help="learning rate: constant or cosine"),
    average: Optional[float] = typer.Option(
        None, "--average", help="average the weights over this final share of the updates (0 = off)"),
    validation_fraction: Optional[float] = typer.Option(
        None, "--validation-fraction", help="share of the training set held out for validation"),
    early_stopping: Optional[bool] = typer.Option(
        None, "--early-stopping/--no-early-stopping", help="stop when the validation cost stops improving"),
    patience: Optional[int] = typer.Option(None, "--patience", help="epochs without improvement before stopping"),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads; 0 = chosen automatically"),
    init: Optional[str] = typer.Option(None, "--init", help="weight init: default or zeros"),
    no_bias: bool = typer.Option(False, "--no-bias", help="drop every bias term"),
    shuffle: Optional[bool] = typer.Option(None, "--shuffle/--no-shuffle", help="reshuffle every epoch"),
    drop_last: Optional[bool] = typer.Option(None, "--drop-last/--keep-last", help="skip the last, smaller batch"),
    seed: Optional[int] = typer.Option(None, "--seed", help="random seed (Python, NumPy, torch)"),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N"),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="named defaults: default, lesson, lesson-table"),
    preprocess: Optional[str] = typer.Option(None, "--preprocess", help="auto, none, pixels or standardize"),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="print the cost every N epochs"),
    label: Optional[str] = typer.Option(None, "--label", help="label column of a CSV / Parquet table"),
    out: Optional[Path] = typer.Option(None, "--out", help="run folder to write (default runs/DATA-MODEL)"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder (default $SOFTREG_DATA)"),
) -> None:
    """Train a classifier and save it as a run folder."""
    from softreg import io, limits
    from softreg.config import make_config
    from softreg.data import load_dataset
    from softreg.runs import check_writable, save_result
    from softreg.train import resolve_device
    from softreg.train import train as run_training

    config = make_config(
        recipe, data_name=data, model=model, hidden=_parse_hidden(hidden), activation=activation,
        epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum, l2=l2,
        l1=l1, schedule=schedule, average=average, validation_fraction=validation_fraction,
        early_stopping=early_stopping, patience=patience, threads=threads,
        init=init, bias=False if no_bias else None, shuffle=shuffle, drop_last=drop_last, seed=seed,
        device=device, preprocess=preprocess, log_every=log_every,
    )
    # the bounds beyond the config's own rules: 32-bit seeds, rates torch can hold, sane counts
    limits.check_settings(dict(seed=seed, lr=lr, l2=l2, l1=l1, momentum=momentum, epochs=epochs,
                               batch_size=batch_size, threads=threads, patience=patience, log_every=log_every))
    device_used = resolve_device(config.device)
    out = check_writable(out or Path("runs") / f"{Path(data).stem}-{config.model}")
    # held from here to the save: a second training into the same --out fails at once
    with io.lock(out, what=f"--out {out}", fix="choose another --out"):
        dataset = load_dataset(data, data_dir=data_dir, label=label, progress=sys.stderr.isatty())
        n_test = len(dataset.test) if dataset.test is not None else 0
        echo(f"data: {dataset.name} ({dataset.source}): {len(dataset.train)} train, {n_test} test, "
             f"{dataset.n_features} features, {dataset.n_classes} classes")
        limits.check_model_size(dataset.n_features, config.hidden if config.model == "mlp" else None,
                                dataset.n_classes)
        config = config.resolved(round(len(dataset.train) * (1 - config.validation_fraction)))
        echo(f"model: {config.model}  optimizer: {config.optimizer} lr {config.lr}  "
             f"batch {config.batch_size or 'all'}  epochs {config.epochs}  seed {config.seed}  "
             f"device {device_used}  recipe {config.recipe}")
        every = config.log_every or max(1, config.epochs // 10)

        def log(row: dict) -> None:
            if (row["epoch"] - 1) % every == 0 or row["epoch"] == config.epochs:
                echo(f"Epoch {row['epoch']:>{len(str(config.epochs))}}/{config.epochs}  "
                     f"Cost: {row['avg_cost']:.6f}  Accuracy: {row['accuracy']:.4f}")

        result = run_training(dataset, config, on_epoch=log, progress=sys.stderr.isatty())
        save_result(out, result, dataset, data, label)
    print_metrics(result.metrics)
    echo(f"saved run to {out}")
