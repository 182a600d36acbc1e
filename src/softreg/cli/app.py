"""The typer application shared by every command, and the output helpers they use."""

from __future__ import annotations

import difflib
from typing import Optional, Sequence

import typer

from softreg import settings as S
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


# Options of the command line alone (the training settings' names come from softreg.settings).
CLI_CHOICES: dict[str, tuple[str, ...]] = {"invert": ("auto", "yes", "no")}


def choices(option: str) -> tuple[str, ...]:
    """The names ``--option`` accepts: a training setting's declared choices, or the command line's own."""
    if option in CLI_CHOICES:
        return CLI_CHOICES[option]
    if option == "data":
        from softreg.data.names import DATASET_NAMES

        return DATASET_NAMES
    return S.SETTINGS[option].choices


def metavar(option: str) -> str:
    """How ``--help`` shows the names an option accepts, e.g. ``[sgd|adam|lbfgs]``."""
    return "[" + "|".join(choices(option)) + "]"


def setting_help(name: str) -> str:
    """A setting's help, its default and the recipes that set it otherwise (softreg.settings)."""
    setting = S.SETTINGS[name]
    base = setting.default

    def shown(value) -> str:
        if isinstance(value, (list, tuple)):
            return ",".join(map(str, value)) or "none"
        if value is None:
            return setting.kind.meaning if isinstance(setting.kind, S.Optional) else "auto"
        if isinstance(value, bool):
            return str(value).lower()
        return f"{value:g}" if isinstance(value, float) else str(value)

    others = [f"{recipe}: {shown(values[name])}" for recipe, values in S.RECIPES.items()
              if name in values and values[name] != base]
    return f"{setting.help} (default: {shown(base)}{'; ' + ', '.join(others) if others else ''})"


def option(name: str, *, metavar_text: str | None = None):
    """The typer option of training setting ``name``: its flag, metavar and help from the declaration."""
    setting = S.SETTINGS[name]
    if metavar_text is None and setting.choices:
        metavar_text = metavar(name)
    return typer.Option(None, *setting.option.split(" "), metavar=metavar_text, help=setting_help(name))


def pick(value: Optional[str], option: str, names: Optional[Sequence[str]] = None) -> Optional[str]:
    """``value`` as one of the names ``--option`` accepts, whatever its case; None stays None.

    ``names`` defaults to ``choices(option)``. An unknown name raises UserInputError naming
    the option, the value, the closest known name and the full list.
    """
    if value is None:
        return None
    names = tuple(names if names is not None else choices(option))
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
    from softreg.data.names import DATASET_ALIASES, DATASET_NAMES
    from softreg.system.limits import check_path
    from softreg.system.storage import is_url

    key = value.strip().lower()
    if key in DATASET_NAMES:
        return key
    if key in DATASET_ALIASES:
        return DATASET_ALIASES[key]

    if is_url(value):
        return value
    path = check_path(value, "--data")  # a name over 255 bytes is one line, not an OSError
    if path.exists() or path.suffix or len(path.parts) > 1:
        return value
    close = difflib.get_close_matches(key, DATASET_NAMES + tuple(DATASET_ALIASES), n=1, cutoff=0.5)
    hint = f"Did you mean {DATASET_ALIASES.get(close[0], close[0])!r}? " if close else ""
    raise UserInputError(
        f"--data {value!r} is neither a known dataset ({', '.join(DATASET_NAMES)}) nor an existing "
        f"file or folder. {hint}Give one of those names or the path of a table or IDX folder."
    )


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
    """The data to score a run on (its own, or ``--data``: softreg.data.open_scoring), notes printed."""
    from softreg.data.source import open_scoring

    dataset = open_scoring(run.source(data_dir), run.expected, data=data)
    for line in dataset.notes:
        note(line)
    return dataset


def one_line(text: str) -> str:
    """Messages can embed newlines (library errors, file names); the contract is one line."""
    return " ".join(str(text).split())
