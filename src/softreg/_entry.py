"""The `softreg` command's entry point: a missing optional dependency is one line naming the pip command.

``pip install softreg`` gives the library and the scikit-learn estimators; the command line,
its plots and pictures come with ``pip install 'softreg[cli]'``. This module imports nothing
heavy, so ``softreg --version`` works with either.
"""

from __future__ import annotations

import sys
from typing import Optional

# top-level module -> (what needs it, the extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "typer": ("the command line", "cli"),
    "click": ("the command line", "cli"),
    "rich": ("progress bars", "cli"),
    "matplotlib": ("plots and reports", "cli"),
    "PIL": ("reading and drawing images", "cli"),
    "pyarrow": ("tables (CSV, Parquet)", "tables"),
    "fastapi": ("softreg serve", "serve"),
    "uvicorn": ("softreg serve", "serve"),
    "onnx": ("ONNX export", "onnx"),
    "onnxruntime": ("checking the ONNX export", "onnx"),
}


def missing_extra_message(exc: ModuleNotFoundError) -> Optional[str]:
    """One line naming what is missing and the pip command that installs it; None for other modules."""
    top = (exc.name or "").split(".")[0]
    if top not in EXTRAS:
        return None
    needs, extra = EXTRAS[top]
    package = "Pillow" if top == "PIL" else top
    return (f"softreg: error: {package} is not installed (needed for {needs}); "
            f"install it with: pip install 'softreg[{extra}]'")


def main(argv: Optional[list[str]] = None) -> None:
    """Run the command line; without its optional dependencies, say which extra to install (exit 2)."""
    try:
        _main(argv)
    except KeyboardInterrupt:  # Ctrl-C before the command line's own handler is in place (its imports)
        print("softreg: interrupted", file=sys.stderr)
        sys.exit(130)


def _main(argv: Optional[list[str]]) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:  # the one thing that works without the [cli] extra
        from softreg._version import version

        print(f"softreg {version()}")
        sys.exit(0)
    try:
        from softreg.cli import main as cli_main
    except ModuleNotFoundError as exc:
        _exit_if_extra(exc)
        raise
    try:
        cli_main(argv)
    except ModuleNotFoundError as exc:  # a command's own lazy import (plots, images, progress)
        _exit_if_extra(exc)
        raise
    finally:
        # The interpreter's last garbage collection walks every object torch's modules created:
        # 0.3 to 0.5 s of exit after a command that imported torch. Frozen objects are skipped;
        # nothing is left to collect that matters once the command has returned.
        import gc

        gc.freeze()


def _exit_if_extra(exc: ModuleNotFoundError) -> None:
    message = missing_extra_message(exc)
    if message is not None:
        print(message, file=sys.stderr)
        sys.exit(2)
