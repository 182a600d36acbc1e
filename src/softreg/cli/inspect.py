"""`softreg evaluate` and `softreg report`: score a saved run and draw its pictures."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from softreg.cli.app import app, data_spec, echo, load_run_data, print_metrics


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="a run folder written by `softreg train`"),
    data: Optional[str] = typer.Option(None, "--data", metavar="[NAME|PATH]",
                                       help="score on this data instead of the run's own"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder"),
    top_k: int = typer.Option(5, "--top-k", help="k of the top-k accuracy (capped at the number of classes)"),
    device: str = typer.Option("auto", "--device", metavar="[auto|cpu|cuda|cuda:N]",
                              help="where to score"),
    save: bool = typer.Option(True, "--save/--no-save", help="write RUN/evaluation.json"),
) -> None:
    """Score a saved run: accuracy, log loss, top-k, per-class precision / recall / F1, confusion matrix."""
    from softreg.report.metrics import check_top_k, evaluate_split, format_metrics
    from softreg.system.io import write_json
    from softreg.runs.folder import load_run
    from softreg.system.device import resolve_device

    check_top_k(top_k)
    data = data_spec(data) if data is not None else None
    run = load_run(run_dir, device=str(resolve_device(device)))
    dataset = load_run_data(run, data, data_dir)
    classes = run.data["classes"]
    splits = {name: evaluate_split(run.model, split, classes, top_k)
              for name, split in (("train", dataset.train), ("test", dataset.test)) if split is not None and len(split)}
    if save:
        doc = {"run": str(run_dir), "data": data or run.data["source"]["spec"], "classes": classes, "splits": splits}
        written = write_json(Path(run_dir) / "evaluation.json", doc)
    echo(f"run: {run_dir}  data: {dataset.name}")
    print_metrics({f"{name}_{key}": result[field] for name, result in splits.items()
                    for key, field in (("loss", "log_loss"), ("accuracy", "accuracy"))})
    main_split = "test" if "test" in splits else "train"
    echo()
    echo(format_metrics(splits[main_split], f"{main_split} split: {splits[main_split]['n']} samples"))
    if save:
        echo(f"\nwrote {written}")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="a run folder written by `softreg train`"),
    out: Optional[Path] = typer.Option(None, "--out", help="folder for the pictures and index.html (default RUN/report)"),
    data: Optional[str] = typer.Option(None, "--data", metavar="[NAME|PATH]",
                                       help="draw predictions on this data instead of the run's own"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="dataset cache folder"),
    top_k: int = typer.Option(5, "--top-k", help="k of the top-k accuracy (capped at the number of classes)"),
    device: str = typer.Option("auto", "--device", metavar="[auto|cpu|cuda|cuda:N]",
                              help="where to score"),
) -> None:
    """Draw a run's pictures (curves, weights, confusion matrix, predictions) into PNG files and one HTML page."""
    from softreg.report.metrics import check_top_k
    from softreg.report.html import prepare_folder, write_report
    from softreg.runs.folder import load_run
    from softreg.system.device import resolve_device

    check_top_k(top_k)
    data = data_spec(data) if data is not None else None
    run = load_run(run_dir, device=str(resolve_device(device)))
    folder = prepare_folder(out if out is not None else Path(run_dir) / "report")
    dataset = load_run_data(run, data, data_dir)
    done = write_report(run, dataset, folder, top_k=top_k)
    for picture in done.pictures:
        echo(f"wrote {done.folder / picture.file}")
    for note in done.notes:
        echo(f"note: {note}")
    echo(f"wrote {done.page}")
