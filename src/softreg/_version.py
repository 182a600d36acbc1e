"""The package version: pyproject.toml is its one source, read through the installed metadata."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

UNKNOWN = "0+unknown"


@lru_cache(maxsize=1)
def version() -> str:
    """The installed distribution's version; from pyproject.toml in a source checkout not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("softreg")
    except PackageNotFoundError:
        return _from_pyproject(Path(__file__).resolve().parents[2] / "pyproject.toml")


def _from_pyproject(path: Path) -> str:
    """``project.version`` of a pyproject.toml, or UNKNOWN when it cannot be read."""
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        return UNKNOWN
    try:
        with open(path, "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, ValueError):
        return UNKNOWN
