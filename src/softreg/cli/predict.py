"""`softreg predict`: the class of one image, one test sample or one row of features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from softreg.cli.app import app, echo, metavar, pick
from softreg.errors import UserInputError


def _parse_features(text: str) -> list[float]:
    import math

    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserInputError(f"--features must be numbers separated by commas; got {text!r}.") from None
    if not all(math.isfinite(v) for v in values):
        raise UserInputError(f"--features must be finite numbers; got {text!r}. Replace NaN / inf values.")
    return values


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="a run folder written by `softreg train`"),
    image: Optional[str] = typer.Argument(None, help="an image file (PNG, JPEG, GIF, BMP, WebP) of any size, or "
                                          "a table (CSV / Parquet, a path or URL) to predict every row of, with --out"),
    index: Optional[int] = typer.Option(None, "--index", help="predict test sample N"),
    random_sample: bool = typer.Option(False, "--random", help="predict a random test sample"),
    features: Optional[str] = typer.Option(None, "--features", help="comma-separated feature values (tables); "
                                           "index:value pairs such as '3:0.5 17:2' (svmlight models)"),
    invert: str = typer.Option("auto", "--invert", metavar=metavar("invert"), help="invert image colours (default: auto)"),
    fit: str = typer.Option("auto", "--fit", help="auto, dataset (crop the ink, scale and centre it as the "
                            "training images are) or resize (squeeze the whole picture); auto takes a "
                            "picture already at the model's size as it is"),
    show: Optional[Path] = typer.Option(None, "--show", help="write a picture of what the model saw and its answer"),
    seed: Optional[int] = typer.Option(None, "--seed", help="seed for --random"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder"),
    out: Optional[Path] = typer.Option(None, "--out", help="with a TABLE: write every row's prediction to this "
                                       ".csv or .parquet file"),
    keep: Optional[str] = typer.Option(None, "--keep", help="with a TABLE: columns to copy into --out, comma-separated"),
) -> None:
    """Predict the class of one image, one test sample, or one row of features; or of every row of a table."""
    from softreg.data.tables.reader import table_format
    from softreg.inference.predictor import Predictor

    from softreg.data.svmlight.files import is_svmlight
    from softreg.system.storage import is_url

    if image is not None and (table_format(image) is not None or is_svmlight(image) or is_url(image)
                              or Path(image).is_dir() or out is not None):
        _predict_table(run_dir, image, out, keep)
        return
    image = Path(image) if image is not None else None

    chosen = sum([image is not None, index is not None, random_sample, features is not None])
    if chosen != 1:
        raise UserInputError("give exactly one input: an IMAGE path, --index N, --random, or --features.")
    invert = pick(invert, "invert")
    predictor = Predictor.from_run(run_dir, data_dir=data_dir)
    true_label = None
    check = True  # a sample of the run's own test split needs no check against the training images
    if image is not None:
        prepared = predictor.prepare_image(image, invert=invert, fit=fit)
        X, notes, what = prepared.pixels.reshape(1, -1), [prepared.warnings], str(image)
    elif features is not None:
        if predictor.sparse:  # index:value pairs, counted as in the training file
            row = features
        else:
            row = [v.strip() for v in features.split(",")] if predictor.schema is not None else _parse_features(features)
        X, notes, what = predictor.encode_rows([row], names=["--features"]), None, "features"
    else:
        if random_sample:
            index = predictor.random_test_index(seed)
        x, true_label, what = predictor.test_sample(index, what="--index")
        X, notes, check = x.reshape(1, -1), None, False
    result = predictor.predictions(X, notes, check=check)[0]
    probs = result.probabilities
    echo(f"{what}: predicted {result.label} (probability {probs[result.index]:.4f})"
         + (f", true {true_label}" if true_label is not None else ""))
    for i in sorted(range(len(probs)), key=lambda i: -probs[i])[: min(5, len(probs))]:
        echo(f"  {predictor.classes[i]:>12s}  {probs[i]:.4f}")
    for note in result.warnings:
        typer.echo(f"softreg: warning: {what}: {note}", err=True)
    if show is not None:
        import torch

        from softreg.report.plots import prediction_figure, save_figure

        sample = X.to_dense()[0] if X.layout == torch.sparse_csr else X[0]
        save_figure(prediction_figure(sample, torch.tensor(probs), predictor.classes, predictor.image_shape,
                                      true_label, feature_names=predictor.feature_names,
                                      pixel_max=predictor.pixel_max), show)
        echo(f"wrote {show}")


def _predict_table(run_dir: Path, table: str, out: Optional[Path], keep: Optional[str]) -> None:
    from softreg.data.svmlight.files import is_svmlight
    from softreg.runs.folder import load_run
    from softreg.inference.batch import predict_table

    if is_svmlight(table):
        from softreg.inference.predictor import predict_svmlight_file
        from softreg.system.storage import is_url

        if is_url(table):
            raise UserInputError(f"{table}: svmlight files are read from local disk; copy it down first.")

        if out is None or keep:
            raise UserInputError(f"{table}: predicting an svmlight file writes a .csv file; give --out "
                                 "predictions.csv (and no --keep: the file has no columns to copy).")
        run = load_run(run_dir)
        if run.model_config.index_base is None:
            raise UserInputError(f"{table} is an svmlight file but this model was trained on dense data; "
                                 "give a table, an image or --features.")
        written, rows = predict_svmlight_file(run, table, out)
        echo(f"wrote {rows} predictions to {written}")
        return
    if out is None:
        raise UserInputError(f"{table}: predicting a whole table writes a file; add --out predictions.csv "
                             "(or .parquet).")
    columns = [c.strip() for c in keep.split(",") if c.strip()] if keep else None
    written, rows = predict_table(load_run(run_dir), table, out, columns)
    echo(f"wrote {rows} predictions to {written}")
