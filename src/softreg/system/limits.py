"""Limits on what users and files may ask for: memory and path names (settings' bounds: softreg.settings).

Each check raises :class:`UserInputError` with one line naming the request, the
limit and what to change, before anything is allocated or opened.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

from softreg.errors import UserInputError
from softreg.settings import spell

NAME_MAX = 255  # bytes in one path component (Linux, macOS, most file systems)
PATH_MAX = 4095  # bytes in a whole path (Linux PATH_MAX minus the terminating NUL)
HARD_MAX_BYTES = 1 << 46  # 64 TiB: more than any machine softreg runs on; refused without asking

def check_path(path: str | os.PathLike, what: str) -> Path:
    """Refuse a path the operating system would reject for its length, before any system call.

    what : how the user gave the path, e.g. ``"--out"`` or ``"the run folder"``.
    """
    text = os.fspath(path)
    raw = os.fsencode(text)
    if b"\x00" in raw:
        raise UserInputError(f"{what} {text!r} contains a NUL character; give a plain path.")
    for part in raw.split(b"/"):
        if len(part) > NAME_MAX:
            shown = os.fsdecode(part[:24]) + "..."
            raise UserInputError(
                f"{what} has a file or folder name of {len(part)} bytes ({shown}); names are limited to "
                f"{NAME_MAX} bytes: use a shorter name."
            )
    if len(raw) > PATH_MAX:
        raise UserInputError(
            f"{what} is {len(raw)} bytes long; paths are limited to {PATH_MAX} bytes: use a shorter path."
        )
    return Path(text)


def read_at_most(f, max_bytes: int) -> bytes | None:
    """The rest of binary file ``f`` when it holds at most ``max_bytes``, else None.

    Reads in chunks, so memory follows what the file holds (``f.read(n)`` would set
    aside ``n`` bytes first, however small the file).
    """
    parts, total = [], 0
    while True:
        part = f.read(min(1 << 20, max_bytes + 1 - total))
        if not part:
            return b"".join(parts)
        parts.append(part)
        total += len(part)
        if total > max_bytes:
            return None


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_room() -> int | None:
    """Memory left under this process's cgroup limit (v2, then v1), or None when unlimited."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read(4096).splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        if parts[0] == "0" and parts[1] == "":  # cgroup v2
            base = "/sys/fs/cgroup" + parts[2]
            limit, used = _read_int(base + "/memory.max"), _read_int(base + "/memory.current")
        elif "memory" in parts[1].split(","):  # cgroup v1
            base = "/sys/fs/cgroup/memory" + parts[2]
            limit = _read_int(base + "/memory.limit_in_bytes")
            used = _read_int(base + "/memory.usage_in_bytes")
        else:
            continue
        if limit is not None and limit < HARD_MAX_BYTES:
            return max(0, limit - (used or 0))
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate, as best the system tells; None when unknown.

    The smallest of: the kernel's MemAvailable, the room under a cgroup memory limit,
    and the room under ``ulimit -v`` (RLIMIT_AS) and RLIMIT_DATA.
    """
    room: list[int] = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    room.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        try:
            room.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    cgroup = _cgroup_room()
    if cgroup is not None:
        room.append(cgroup)
    for limit_name, field in (("RLIMIT_AS", "VmSize"), ("RLIMIT_DATA", "VmData")):
        soft = resource.getrlimit(getattr(resource, limit_name))[0]
        if soft != resource.RLIM_INFINITY:
            used = _status_kb(field) or 0
            room.append(max(0, soft - used))
    return min(room) if room else None


def check_allocation(n_bytes: int | float, what: str, fix: str) -> None:
    """Refuse to allocate ``n_bytes`` for ``what`` when the machine cannot hold them.

    what : the request in the user's terms, e.g. "the MLP's weights (--hidden 100000000)"
    fix : what to change, e.g. "use smaller --hidden sizes"
    """
    available = available_memory() if n_bytes < HARD_MAX_BYTES else 0
    if n_bytes >= HARD_MAX_BYTES or (available is not None and n_bytes > available):
        have = f"about {format_bytes(available)} is available" if available else "no machine has that much"
        raise UserInputError(f"{what} needs {format_bytes(n_bytes)} of memory but {have}; {fix}.")


def check_model_size(n_features: int, hidden: list[int] | None, n_classes: int) -> None:
    """Refuse a network that training could not hold (``--hidden 100000000``, a million classes)."""
    sizes = [n_features, *(hidden or []), n_classes]
    check_allocation(
        model_bytes(n_features, hidden, n_classes),
        f"training a network of layer sizes {'-'.join(map(str, sizes))}",
        f"use smaller {spell('hidden')} sizes, or fewer classes or features",
    )


def model_bytes(n_features: int, hidden: list[int] | None, n_classes: int) -> int:
    """Bytes that training a network of these sizes holds: float32 weights, gradients,
    optimizer state (two slots for Adam) and an averaged copy: five copies of the weights."""
    sizes = [n_features, *(hidden or []), 1 if n_classes == 2 else n_classes]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return 5 * 4 * params
