"""The typer application shared by every command, and the output helpers they use."""

from __future__ import annotations

from typing import Optional

import typer



app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Softmax regression, logistic regression and MLP classifiers: train, evaluate, predict.",
)

DATA_HELP = ("digits (bundled, default), mnist, fashion-mnist, kmnist, toy, toy-binary, xor, "
             "a folder of IDX files, or a .csv / .parquet table")


def echo(text: str = "") -> None:
    typer.echo(text)


def note(text: str) -> None:
    """A notice on stderr (never mixed into the results on stdout)."""
    typer.echo(text, err=True)


def print_metrics(metrics: dict) -> None:
    if "best_epoch" in metrics:
        echo(f"early stopping: kept epoch {metrics['best_epoch']} of {metrics['epochs']}")
    for split in ("train", "val", "test"):
        if f"{split}_loss" in metrics:
            echo(f"{split:5s} loss {metrics[f'{split}_loss']:.6f}  accuracy {metrics[f'{split}_accuracy']:.4f}")
    if "train_seconds" in metrics:
        echo(f"training time {metrics['train_seconds']:.3f} s")


def load_run_data(run, data: Optional[str], data_dir: Optional[str]):
    from softreg.runs import load_run_dataset

    dataset = load_run_dataset(run, data, data_dir)
    for line in dataset.notes:
        note(line)
    return dataset


def one_line(text: str) -> str:
    """Messages can embed newlines (library errors, file names); the contract is one line."""
    return " ".join(str(text).split())
