"""`softreg predict`: the class of one image, one test sample or one row of features."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from softreg.cli.app import app, echo, load_run_data
from softreg.errors import UserInputError


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
        dataset = load_run_data(run, None, data_dir)
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
    echo(f"{what}: predicted {classes[best]} (probability {probs[best]:.4f})"
          + (f", true {true_label}" if true_label is not None else ""))
    for i in probs.argsort(descending=True)[: min(5, len(classes))].tolist():
        echo(f"  {classes[i]:>12s}  {probs[i]:.4f}")
    if show is not None:
        from softreg.plots import prediction_figure, save_figure

        shown = sample[0].float()
        save_figure(prediction_figure(shown, probs, classes, image_shape, true_label,
                                      feature_names=run.data.get("feature_names")), show)
        echo(f"wrote {show}")
