"""The typer application shared by every command, and the output helpers they use."""

from __future__ import annotations

import difflib
from typing import Optional, Sequence

import typer

from softreg.errors import UserInputError



app = typer.Typer(
    add_completion=True,  # --install-completion / --show-completion; costs no start-up time (measured)
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Softmax regression, logistic regression and MLP classifiers: train, evaluate, predict.",
)


def _print_version(value: bool) -> None:
    if value:
        from softreg._version import version

        typer.echo(f"softreg {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="print softreg's version and exit"),
) -> None:
    pass


# The names each option accepts, written out here so that `--help` needs no torch; a test holds
# them equal to the library's own lists (softreg.config, softreg.models, softreg.data).
CHOICES: dict[str, tuple[str, ...]] = {
    "model": ("softmax", "logistic", "mlp"),
    "optimizer": ("sgd", "adam", "lbfgs"),
    "activation": ("sigmoid", "tanh", "relu"),
    "schedule": ("constant", "cosine"),
    "init": ("default", "zeros"),
    "preprocess": ("auto", "none", "pixels", "standardize", "scale"),
    "recipe": ("default", "default-mlp", "lesson", "lesson-table"),
    "invert": ("auto", "yes", "no"),
    "impute": ("none", "mean", "median", "zero"),
    "data": ("digits", "mnist", "fashion-mnist", "kmnist", "toy", "toy-binary", "xor"),
}
# other spellings of dataset names (softreg.data.idx.catalog.DatasetInfo.aliases)
DATA_ALIASES: dict[str, str] = {
    "fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "fmnist": "fashion-mnist",
    "k-mnist": "kmnist", "kuzushiji-mnist": "kmnist",
}


def metavar(option: str) -> str:
    """How ``--help`` shows the names an option accepts, e.g. ``[sgd|adam|lbfgs]``."""
    return "[" + "|".join(CHOICES[option]) + "]"


def pick(value: Optional[str], option: str, choices: Optional[Sequence[str]] = None) -> Optional[str]:
    """``value`` as one of the names ``--option`` accepts, whatever its case; None stays None.

    ``choices`` defaults to ``CHOICES[option]``. An unknown name raises UserInputError naming
    the option, the value, the closest known name and the full list.
    """
    if value is None:
        return None
    names = tuple(choices if choices is not None else CHOICES[option])
    key = value.strip().lower()
    for name in names:
        if name.lower() == key:
            return name
    close = difflib.get_close_matches(key, [n.lower() for n in names], n=1, cutoff=0.5)
    hint = f"Did you mean {names[[n.lower() for n in names].index(close[0])]!r}? " if close else ""
    raise UserInputError(f"--{option} must be one of {', '.join(names)}; got {value!r}. {hint}"
                         f"Example: --{option} {names[0]}.")


def data_spec(value: str) -> str:
    """``--data``: a dataset name in any case (or another spelling) becomes its name; a path stays as given.

    A bare word that is neither a known name nor an existing file or folder raises
    UserInputError with the closest known name.
    """
    key = value.strip().lower()
    if key in CHOICES["data"]:
        return key
    if key in DATA_ALIASES:
        return DATA_ALIASES[key]
    from softreg.system.limits import check_path

    path = check_path(value, "--data")  # a name over 255 bytes is one line, not an OSError
    if path.exists() or path.suffix or len(path.parts) > 1:
        return value
    close = difflib.get_close_matches(key, CHOICES["data"] + tuple(DATA_ALIASES), n=1, cutoff=0.5)
    hint = f"Did you mean {DATA_ALIASES.get(close[0], close[0])!r}? " if close else ""
    raise UserInputError(
        f"--data {value!r} is neither a known dataset ({', '.join(CHOICES['data'])}) nor an existing "
        f"file or folder. {hint}Give one of those names or the path of a table or IDX folder."
    )

DATA_HELP = ("digits (bundled, default), mnist, fashion-mnist, kmnist, toy, toy-binary, xor, "
             "a folder of IDX files, a .csv / .parquet table, or an svmlight file (.svm)")


def echo(text: str = "") -> None:
    """A line on stdout; when the reader has gone (``softreg predict ... | head -1``), exit 0 quietly."""
    try:
        typer.echo(text)
    except BrokenPipeError:
        import os
        import sys

        # click would turn the error into exit status 1, and the flush at exit would fail again
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (captured)
            pass
        raise SystemExit(0) from None


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
    from softreg.runs.folder import load_run_dataset

    if data is not None and run.model_config.index_base is not None:  # an svmlight file, numbered as in training
        from softreg.data.svmlight.files import load_scoring_svmlight

        dataset = load_scoring_svmlight(data, run)
    else:
        dataset = load_run_dataset(run, data, data_dir)
    for line in dataset.notes:
        note(line)
    return dataset


def one_line(text: str) -> str:
    """Messages can embed newlines (library errors, file names); the contract is one line."""
    return " ".join(str(text).split())
