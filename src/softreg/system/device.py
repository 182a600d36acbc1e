"""Choosing the device a run trains and scores on."""

from __future__ import annotations

import torch

from softreg.errors import UserInputError
from softreg.settings import spell


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA when available, else CPU; a named device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserInputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserInputError(
                f"device {name!r} is not available: this PyTorch sees no CUDA GPU; use {spell('device', 'cpu')} or auto."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserInputError(
                f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA GPU(s) found; use cuda:0."
            )
        return device
    raise UserInputError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N.")
