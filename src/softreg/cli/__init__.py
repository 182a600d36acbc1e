"""The `softreg` command: each command parses its options, then calls the library.

Each command lives in a module of its own (:data:`COMMANDS`); importing them registers
them on ``app``. This module is the console script's entry point and stays light at
import time: :func:`main` installs the Ctrl-C and SIGTERM handlers first and only then
imports typer, torch and the commands, so an interrupt at any moment, imports included,
ends with one line and exit status 130 (143 for SIGTERM), never a traceback.
"""

from __future__ import annotations

import errno
import os
import sys

from softreg.system import processes, signals

# modules of softreg.cli that register commands (the typer app is softreg.cli.app.app)
COMMANDS = ("train", "inspect", "predict", "serve", "export", "datasets")
ARGV: list[str] = []  # this invocation's arguments (`softreg train --nproc N` relaunches with them)


def _say(line: str) -> None:
    if not processes.is_main():  # a distributed job: rank 0 speaks for it
        return
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: the status still tells
        pass


def _error(message: object) -> int:
    _say(f"softreg: error: {' '.join(str(message).split())}")
    return 2


def _run(argv: list[str] | None) -> int:
    """Parse and run one command; user mistakes print one line and give 2."""
    import importlib

    for name in COMMANDS:
        importlib.import_module(f"softreg.cli.{name}")
    import typer

    from softreg import settings as S
    from softreg.cli.app import app, one_line
    from softreg.errors import SoftregError

    try:  # typer >= 0.20 runs on its own copy of click, even when click is installed
        from typer._click import exceptions as click_errors
    except ImportError:
        from click import exceptions as click_errors
    no_args = getattr(click_errors, "NoArgsIsHelpError", ())
    exits = (typer.Exit, getattr(click_errors, "Exit", typer.Exit))
    aborts = (typer.Abort, getattr(click_errors, "Abort", typer.Abort))

    global ARGV
    command = typer.main.get_command(app)
    args = ARGV = list(sys.argv[1:] if argv is None else argv)
    try:
        # make_context / invoke rather than command.main: click's main turns Ctrl-C and a broken
        # pipe into its own exits (with an extra line on stderr); here they reach main() intact.
        with command.make_context("softreg", args) as ctx, S.flag_spelling():  # messages name flags
            code = command.invoke(ctx)
        return code if isinstance(code, int) else 0
    except no_args as exc:  # bare `softreg` or `softreg CMD`
        print(exc.ctx.get_help() if exc.ctx else "")
        return 0
    except exits as exc:  # --help
        return exc.exit_code
    except click_errors.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        return _error(f"{one_line(exc.format_message())}{hint}")
    except click_errors.ClickException as exc:
        return _error(one_line(exc.format_message()))
    except aborts:
        raise KeyboardInterrupt from None
    except SoftregError as exc:
        return _error(exc)
    except MemoryError:
        return _error("out of memory: the data or the model does not fit in this machine's memory; "
                      "use a smaller model (--hidden), a smaller batch or less data.")
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return _error(f"a file name is too long ({exc.filename or exc}); names are limited to 255 bytes: "
                          "use a shorter name.")
        raise
    except RuntimeError as exc:  # torch's allocator reports a failed allocation this way
        if processes.launched():  # a distributed job: another process died or stopped answering
            from softreg.training.distributed import peer_failure

            message = peer_failure(exc)
            if message is not None:
                print(f"softreg: error: {message}", file=sys.stderr, flush=True)  # every process says it
                return 1
        if "can't allocate memory" in str(exc) or "not enough memory" in str(exc):
            return _error("out of memory: the data or the model does not fit in this machine's memory; "
                          "use a smaller model (--hidden), a smaller batch or less data.")
        raise


def _silence_stdout() -> None:
    """After a broken pipe, send what is left to /dev/null so the exit flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # a captured stdout (tests) has no file descriptor
        pass


def main(argv: list[str] | None = None) -> None:
    """Entry point: exit 0 on success, 2 for user mistakes (one line), 130 on Ctrl-C, 143 on
    SIGTERM, 0 quietly when the reader of stdout goes away; bugs exit 1 with a traceback."""
    import signal

    previous = signals.install()
    try:
        try:
            code = _run(argv)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            code = 0
    except KeyboardInterrupt:
        code = signals.report(signals.received() or signal.SIGINT)
    except signals.Terminated:
        code = signals.report(signals.received() or signal.SIGTERM)
    except BaseException:
        if signals.received() is None:
            raise
        code = signals.report(signals.received())  # the interrupt broke a library on its way out
    else:
        if signals.received() is not None:  # some library swallowed the interrupt: honour it anyway
            code = signals.report(signals.received())
    finally:
        if argv is None:  # the real process: stay deaf to signals while exiting
            signals.ignore()
        else:  # called from Python (tests): give the caller its handlers back
            signals.restore(previous)
    if argv is None and code in (signals.EXIT_INTERRUPTED, signals.EXIT_TERMINATED):
        # CPython remembers a KeyboardInterrupt that left any exec()'d string (dataclasses and
        # namedtuple build their methods that way, torch's import runs many) and then ends the
        # process by SIGINT, whatever status we exit with: leave directly, output flushed.
        signals.exit_now(code)
    if argv is None and processes.launched():
        # A process of a torch.distributed job: interpreter teardown may abort it (gloo's worker
        # threads can still hold work objects with Python references: "terminate called", SIGABRT,
        # seen in a 2-process DDP run). Its files are complete (every write is
        # atomic) and its output is flushed: leave directly.
        signals.exit_now(code)
    sys.exit(code)
