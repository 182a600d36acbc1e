"""The `softreg` command: each command parses its options, then calls the library."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from softreg.errors import SoftregError, UserInputError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Softmax regression, logistic regression and MLP classifiers: train, evaluate, predict.",
)

DATA_HELP = ("digits (bundled, default), mnist, fashion-mnist, kmnist, toy, toy-binary, xor, "
             "a folder of IDX files, or a .csv / .parquet table")


def _echo(text: str = "") -> None:
    typer.echo(text)


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
    device_used = resolve_device(config.device)
    out = check_writable(out or Path("runs") / f"{Path(data).stem}-{config.model}")
    dataset = load_dataset(data, data_dir=data_dir, label=label, progress=sys.stderr.isatty())
    n_test = len(dataset.test) if dataset.test is not None else 0
    _echo(f"data: {dataset.name} ({dataset.source}): {len(dataset.train)} train, {n_test} test, "
          f"{dataset.n_features} features, {dataset.n_classes} classes")
    config = config.resolved(round(len(dataset.train) * (1 - config.validation_fraction)))
    _echo(f"model: {config.model}  optimizer: {config.optimizer} lr {config.lr}  "
          f"batch {config.batch_size or 'all'}  epochs {config.epochs}  seed {config.seed}  "
          f"device {device_used}  recipe {config.recipe}")
    every = config.log_every or max(1, config.epochs // 10)

    def log(row: dict) -> None:
        if (row["epoch"] - 1) % every == 0 or row["epoch"] == config.epochs:
            _echo(f"Epoch {row['epoch']:>{len(str(config.epochs))}}/{config.epochs}  "
                  f"Cost: {row['avg_cost']:.6f}  Accuracy: {row['accuracy']:.4f}")

    result = run_training(dataset, config, on_epoch=log, progress=sys.stderr.isatty())
    save_result(out, result, dataset, data, label)
    _print_metrics(result.metrics)
    _echo(f"saved run to {out}")


def _print_metrics(metrics: dict) -> None:
    if "best_epoch" in metrics:
        _echo(f"early stopping: kept epoch {metrics['best_epoch']} of {metrics['epochs']}")
    for split in ("train", "val", "test"):
        if f"{split}_loss" in metrics:
            _echo(f"{split:5s} loss {metrics[f'{split}_loss']:.6f}  accuracy {metrics[f'{split}_accuracy']:.4f}")
    if "train_seconds" in metrics:
        _echo(f"training time {metrics['train_seconds']:.3f} s")


def _load_run_data(run, data: Optional[str], data_dir: Optional[str]):
    from softreg.data import load_dataset

    spec = data or run.data["spec"]
    dataset = load_dataset(spec, data_dir=data_dir, label=run.data.get("label"))
    if dataset.n_features != run.model_config.n_features:
        raise UserInputError(
            f"{spec} has {dataset.n_features} features per sample but the model expects "
            f"{run.model_config.n_features}; evaluate on data shaped like the training data."
        )
    return dataset.relabel(run.data["classes"])


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="a run folder written by `softreg train`"),
    data: Optional[str] = typer.Option(None, "--data", help="score on this data instead of the run's own"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder"),
    top_k: int = typer.Option(5, "--top-k", help="k of the top-k accuracy (capped at the number of classes)"),
    device: str = typer.Option("auto", "--device", help="where to score: auto, cpu, cuda or cuda:N"),
    save: bool = typer.Option(True, "--save/--no-save", help="write RUN/evaluation.json"),
) -> None:
    """Score a saved run: accuracy, log loss, top-k, per-class precision / recall / F1, confusion matrix."""
    from softreg.evaluate import check_top_k, evaluate_split, format_metrics, write_json
    from softreg.runs import load_run
    from softreg.train import resolve_device

    check_top_k(top_k)
    run = load_run(run_dir, device=str(resolve_device(device)))
    dataset = _load_run_data(run, data, data_dir)
    classes = run.data["classes"]
    splits = {name: evaluate_split(run.model, split, classes, top_k)
              for name, split in (("train", dataset.train), ("test", dataset.test)) if split is not None}
    if save:
        doc = {"run": str(run_dir), "data": data or run.data["spec"], "classes": classes, "splits": splits}
        written = write_json(Path(run_dir) / "evaluation.json", doc)
    _echo(f"run: {run_dir}  data: {dataset.name}")
    _print_metrics({f"{name}_{key}": result[field] for name, result in splits.items()
                    for key, field in (("loss", "log_loss"), ("accuracy", "accuracy"))})
    main_split = "test" if "test" in splits else "train"
    _echo()
    _echo(format_metrics(splits[main_split], f"{main_split} split: {splits[main_split]['n']} samples"))
    if save:
        _echo(f"\nwrote {written}")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="a run folder written by `softreg train`"),
    image: Optional[Path] = typer.Argument(None, help="an image file (PNG, JPEG) of any size"),
    index: Optional[int] = typer.Option(None, "--index", help="predict test sample N"),
    random_sample: bool = typer.Option(False, "--random", help="predict a random test sample"),
    features: Optional[str] = typer.Option(None, "--features", help="comma-separated feature values (tables)"),
    invert: str = typer.Option("auto", "--invert", help="invert image colours: auto, yes or no"),
    show: Optional[Path] = typer.Option(None, "--show", help="write a picture of the input and prediction"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed for --random"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder"),
) -> None:
    """Predict the class of one image, one test sample, or one row of features."""
    import math
    import random

    import torch

    from softreg.images import read_image
    from softreg.runs import load_run

    chosen = sum([image is not None, index is not None, random_sample, features is not None])
    if chosen != 1:
        raise UserInputError("give exactly one input: an IMAGE path, --index N, --random, or --features.")
    run = load_run(run_dir)
    classes = run.data["classes"]
    image_shape = tuple(run.data["image_shape"]) if run.data.get("image_shape") else None
    true_label = None
    if image is not None:
        if image_shape is None:
            raise UserInputError("this model was trained on a table, not images; use --features or --index.")
        sample = read_image(image, image_shape, run.data["pixel_max"], invert)
        what = str(image)
    elif features is not None:
        try:
            values = [float(v) for v in features.split(",")]
        except ValueError:
            raise UserInputError(f"--features must be numbers separated by commas; got {features!r}.") from None
        if len(values) != run.model_config.n_features:
            raise UserInputError(
                f"--features has {len(values)} values but the model expects {run.model_config.n_features}; "
                "give one value per feature, in training order."
            )
        if not all(math.isfinite(v) for v in values):
            raise UserInputError(f"--features must be finite numbers; got {features!r}. Replace NaN / inf values.")
        sample = torch.tensor([values], dtype=torch.float32)
        what = "features"
    else:
        dataset = _load_run_data(run, None, data_dir)
        split = dataset.test if dataset.test is not None else dataset.train
        split_name = "test" if dataset.test is not None else "train"
        if random_sample:
            index = random.Random(seed).randrange(len(split))
        if not 0 <= index < len(split):
            raise UserInputError(f"--index must be in [0, {len(split) - 1}] for the {split_name} split; got {index}.")
        sample = split.X[index : index + 1]
        true_label = classes[int(split.y[index])]
        what = f"{split_name} sample {index}"
    probs = run.model.predict_proba(sample)[0]
    best = int(probs.argmax())
    _echo(f"{what}: predicted {classes[best]} (probability {probs[best]:.4f})"
          + (f", true {true_label}" if true_label is not None else ""))
    for i in probs.argsort(descending=True)[: min(5, len(classes))].tolist():
        _echo(f"  {classes[i]:>12s}  {probs[i]:.4f}")
    if show is not None:
        from softreg.plots import prediction_figure, save_figure

        shown = sample[0].float()
        save_figure(prediction_figure(shown, probs, classes, image_shape, true_label,
                                      feature_names=run.data.get("feature_names")), show)
        _echo(f"wrote {show}")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="a run folder written by `softreg train`"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for the pictures and index.html (default RUN/report)"),
    data: Optional[str] = typer.Option(None, "--data", help="draw predictions on this data instead of the run's own"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder"),
    top_k: int = typer.Option(5, "--top-k", help="k of the top-k accuracy (capped at the number of classes)"),
    device: str = typer.Option("auto", "--device", help="where to score: auto, cpu, cuda or cuda:N"),
) -> None:
    """Draw a run's pictures (curves, weights, confusion matrix, predictions) into PNG files and one HTML page."""
    from softreg.evaluate import check_top_k
    from softreg.report import prepare_folder, write_report
    from softreg.runs import load_run
    from softreg.train import resolve_device

    check_top_k(top_k)
    run = load_run(run_dir, device=str(resolve_device(device)))
    folder = prepare_folder(out if out is not None else Path(run_dir) / "report")
    dataset = _load_run_data(run, data, data_dir)
    done = write_report(run, dataset, folder, top_k=top_k)
    for picture in done.pictures:
        _echo(f"wrote {done.folder / picture.file}")
    for note in done.notes:
        _echo(f"note: {note}")
    _echo(f"wrote {done.page}")


@app.command()
def datasets(
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder"),
) -> None:
    """List the datasets softreg knows and where each one is."""
    from softreg.data import catalog

    _echo(f"{'digits':15s} 10 classes  bundled with scikit-learn (no download)")
    _echo(f"{'toy':15s}  3 classes  built in: the lessons' 8x4 table")
    _echo(f"{'toy-binary':15s}  2 classes  built in: the lessons' 6x3 pass/fail table")
    _echo(f"{'xor':15s}  2 classes  built in: the four XOR points")
    for row in catalog.dataset_status(data_dir=data_dir):
        where = f"found in {row['path']}" if row["available"] else row["location"]
        _echo(f"{row['name']:15s} {row['classes']:2d} classes  {where}")
    _echo("any folder of IDX files, or a .csv / .parquet table, also works as --data PATH")


def _one_line(text: str) -> str:
    """Messages can embed newlines (library errors, file names); the contract is one line."""
    return " ".join(str(text).split())


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: user mistakes print one line and exit 2; bugs exit 1 with a traceback."""
    try:  # typer >= 0.20 runs on its own copy of click, even when click is installed
        from typer._click import exceptions as click_errors
    except ImportError:
        from click import exceptions as click_errors
    no_args = getattr(click_errors, "NoArgsIsHelpError", ())
    aborts = (typer.Abort, getattr(click_errors, "Abort", typer.Abort))

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="softreg", standalone_mode=False)
    except no_args as exc:  # bare `softreg` or `softreg CMD`
        typer.echo(exc.ctx.get_help() if exc.ctx else "")
        sys.exit(0)
    except click_errors.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        typer.echo(f"softreg: error: {_one_line(exc.format_message())}{hint}", err=True)
        sys.exit(2)
    except click_errors.ClickException as exc:
        typer.echo(f"softreg: error: {_one_line(exc.format_message())}", err=True)
        sys.exit(2)
    except (*aborts, KeyboardInterrupt):
        typer.echo("softreg: interrupted", err=True)
        sys.exit(130)
    except SoftregError as exc:
        typer.echo(f"softreg: error: {_one_line(exc)}", err=True)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)
    # without standalone mode, --help and Ctrl-C come back as an exit code instead of raising
    if code == 130:
        typer.echo("softreg: interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)
