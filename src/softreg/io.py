"""Writing files safely: a temporary file in the target's folder, fsync, then an atomic rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from softreg.errors import UserInputError


def ensure_folder(folder: str | Path) -> Path:
    """Create ``folder`` (and its parents) if needed; a one-line error when that is impossible."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create {folder} ({exc.strerror or exc}); choose another folder.") from None
    return folder


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], None]) -> Path:
    """Replace ``path`` by ``data`` (bytes, text, or a function writing to a binary file) so
    that readers see the old content or the new one, never a part."""
    path = Path(path)
    if path.is_symlink():
        raise UserInputError(f"{path} is a symbolic link; softreg does not write through links. Remove it.")
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise UserInputError(f"cannot write {path} ({exc.strerror or exc}); free space or choose another folder.") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
    return path


def _file_mode() -> int:
    """The permissions a plain ``open`` would give a new file (mkstemp's are private: 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
