"""`softreg train`: train a classifier and save it as a run folder."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from softreg import settings as S
from softreg.cli.app import app, data_spec, echo, note, option, pick, print_metrics
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
    data: str = typer.Option("digits", "--data", help=S.setting("data").help),
    model: Optional[str] = option("model"),
    hidden: Optional[str] = option("hidden", metavar_text="SIZES"),
    activation: Optional[str] = option("activation"),
    epochs: Optional[int] = option("epochs"),
    batch_size: Optional[int] = option("batch_size"),
    lr: Optional[float] = option("lr"),
    optimizer: Optional[str] = option("optimizer"),
    momentum: Optional[float] = option("momentum"),
    l2: Optional[str] = option("l2", metavar_text="FLOAT|auto"),
    l1: Optional[float] = option("l1"),
    schedule: Optional[str] = option("schedule"),
    average: Optional[float] = option("average"),
    validation_fraction: Optional[float] = option("validation_fraction"),
    early_stopping: Optional[bool] = option("early_stopping"),
    patience: Optional[int] = option("patience"),
    threads: Optional[int] = option("threads"),
    init: Optional[str] = option("init"),
    no_bias: bool = typer.Option(False, "--no-bias", help="drop every bias term"),
    shuffle: Optional[bool] = option("shuffle"),
    drop_last: Optional[bool] = option("drop_last"),
    seed: Optional[int] = option("seed"),
    device: Optional[str] = option("device"),
    recipe: Optional[str] = option("recipe"),
    preprocess: Optional[str] = option("preprocess"),
    log_every: Optional[int] = option("log_every"),
    label: Optional[str] = option("label", metavar_text="COLUMN"),
    test: Optional[str] = option("test", metavar_text="PATH"),
    stream: bool = typer.Option(False, "--stream", help=S.setting("stream").help),
    impute: Optional[str] = option("impute"),
    drop: Optional[str] = option("drop", metavar_text="COLUMNS"),
    columns: Optional[str] = option("columns", metavar_text="COLUMNS"),
    header: Optional[bool] = option("header"),
    sep: Optional[str] = option("sep", metavar_text="CHAR"),
    out: Optional[Path] = typer.Option(None, "--out", help="run folder to write (default runs/DATA-MODEL, never an existing one)"),
    data_dir: Optional[str] = option("data_dir", metavar_text="FOLDER"),
    checkpoint_every: Optional[int] = option("checkpoint_every"),
    checkpoint_seconds: Optional[float] = option("checkpoint_seconds"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the interrupted run in this folder (its --out); no other option needed"),
    nproc: Optional[int] = typer.Option(None, "--nproc", help="train data-parallel in N processes on this machine "
                                        "(torch.distributed; see also torchrun)"),
) -> None:
    """Train a classifier and save it as a run folder."""
    options = dict(locals())
    if nproc is not None:
        from softreg.system.processes import launched
        from softreg.training.distributed import launch

        if not launched():
            raise typer.Exit(launch(nproc, ["train", *_without_nproc(cli_argv())]))
    del options["nproc"]
    from softreg.training.config import Runtime, make_config
    from softreg.data.source import DataSource
    from softreg.jobs.train import default_out, resume_training, run_training

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
    S.check_flags(dict(seed=seed, lr=lr, l2=l2_value, l1=l1, momentum=momentum, epochs=epochs, batch_size=batch_size,
                       threads=threads, patience=patience, log_every=log_every, average=average,
                       validation_fraction=validation_fraction, checkpoint_every=checkpoint_every,
                       checkpoint_seconds=checkpoint_seconds))
    from softreg.data.svmlight.files import is_svmlight

    if preprocess is None and is_svmlight(data):
        preprocess = "auto"  # sparse rows as they are (softreg.training.sparse_defaults)
    config = make_config(
        recipe, data_name=data, model=model, hidden=_parse_hidden(hidden), activation=activation,
        epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, momentum=momentum, l2=l2_value,
        l1=l1, schedule=schedule, average=average, validation_fraction=validation_fraction,
        early_stopping=early_stopping, patience=patience, init=init, bias=False if no_bias else None,
        shuffle=shuffle, drop_last=drop_last, seed=seed, preprocess=preprocess,
    )
    runtime = Runtime(device=device or "auto", threads=threads or 0, log_every=log_every or 0,
                      checkpoint_every=checkpoint_every or 0, checkpoint_seconds=checkpoint_seconds or 0.0)
    source = DataSource(spec=data, test=test, label=label, drop=_names(drop),
                        columns=_names(columns) if columns is not None else None, header=header, sep=sep,
                        impute=impute or "none", stream=stream, data_dir=data_dir)
    if out is None:
        out = default_out(data, config.model.kind)
    given = frozenset(name for name, value in dict(lr=lr, l2=l2_value, batch_size=batch_size).items()
                      if value is not None)
    run_training(source, config, runtime, out, echo=echo, note=note, progress=progress, given=given)
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

    from softreg.system.processes import is_main

    if not is_main():  # rank 0 wrote the run and reports it
        return
    print_metrics(json.loads((out / "metrics.json").read_text()))
    echo(f"saved run to {out}")
