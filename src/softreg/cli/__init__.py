"""The `softreg` command: each command parses its options, then calls the library.

Each command lives in a module of its own; importing them registers them on ``app``.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer

from softreg.cli import datasets, export, inspect, predict, serve, train  # noqa: F401  (registers the commands)
from softreg.cli.app import app, one_line
from softreg.errors import SoftregError

ARGV: list[str] = []  # this invocation's arguments (`softreg train --nproc N` relaunches with them)


def main(argv: Optional[list[str]] = None) -> None:
    """Entry point: user mistakes print one line and exit 2; bugs exit 1 with a traceback.

    In a distributed job only rank 0 prints an error; every process exits with the same status.
    """
    global ARGV
    ARGV = list(argv if argv is not None else sys.argv[1:])
    speak = os.environ.get("RANK", "0") == "0"

    def error(text: str) -> None:
        if speak:
            typer.echo(text, err=True)

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
        typer.echo(f"softreg: error: {one_line(exc.format_message())}{hint}", err=True)
        sys.exit(2)
    except click_errors.ClickException as exc:
        typer.echo(f"softreg: error: {one_line(exc.format_message())}", err=True)
        sys.exit(2)
    except (*aborts, KeyboardInterrupt):
        error("softreg: interrupted")
        sys.exit(130)
    except SoftregError as exc:
        error(f"softreg: error: {one_line(exc)}")
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:
        if "RANK" not in os.environ:
            raise
        from softreg.training.distributed import peer_failure

        message = peer_failure(exc)
        if message is None:
            raise
        typer.echo(f"softreg: error: {message}", err=True)  # every process: each says it stopped
        sys.exit(1)
    # without standalone mode, --help and Ctrl-C come back as an exit code instead of raising
    if code == 130:
        typer.echo("softreg: interrupted", err=True)
    sys.exit(code if isinstance(code, int) else 0)
