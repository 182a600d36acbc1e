"""Checks made before a large allocation, so a request too big for this machine is one clear line."""

from __future__ import annotations

import os

from softreg.errors import UserInputError


def available_memory() -> int:
    """Bytes of memory this process could still get: MemAvailable, capped by a cgroup limit."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return 1 << 62
    return available


def human_bytes(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PB"


def check_allocation(n_bytes: int, what: str, fix: str) -> None:
    """Raise UserInputError when ``n_bytes`` exceed the memory available now."""
    available = available_memory()
    if n_bytes > available:
        raise UserInputError(f"{what} needs {human_bytes(n_bytes)} of memory but {human_bytes(available)} is "
                             f"available; {fix}.")
