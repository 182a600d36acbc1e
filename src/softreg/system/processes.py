"""Which process this is, and the seam through which processes combine their work.

``Comm`` names every collective training and data reading use: summing tensors, summing a batch's
cost and correct count, gathering and broadcasting small objects, sharing an error, merging
preprocessing statistics, wrapping a network for DistributedDataParallel. ``SINGLE`` is one
process, where each is a no-op (or the identity), so callers never ask how many processes there
are; softreg.training.distributed implements the same over torch.distributed.

The launcher's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``) is
read here and nowhere else. Nothing here imports torch.
"""

from __future__ import annotations

import os
from typing import Any, Protocol


def launched() -> bool:
    """Whether this process is one of several of a job (started by torchrun or torch's launcher API)."""
    return world_size() > 1


def rank() -> int:
    """This process's rank in a launched job (0 when alone)."""
    return _int("RANK", 0)


def world_size() -> int:
    return _int("WORLD_SIZE", 1)


def local_rank() -> int:
    return _int("LOCAL_RANK", 0)


def local_world_size() -> int:
    return _int("LOCAL_WORLD_SIZE", world_size())


def is_main() -> bool:
    """Rank 0, or the only process: the one that prints, writes the run folder and checkpoints."""
    return rank() == 0


def _int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


class Comm(Protocol):
    """How the processes of one job combine their shares (``SINGLE``: one process)."""

    rank: int
    world: int
    local: bool  # True: nothing crosses processes (a sparse gradient may stay an unformed product)

    def device_for(self, name: str):
        """The torch device this process computes on, for a requested device name."""
        ...

    def reduce(self, tensors: list) -> None:
        """Sum each tensor over the processes, in place."""
        ...

    def sum_step(self, grads: list, cost, correct) -> tuple:
        """Sum one step's gradients (in place) and its cost and correct count over the processes;
        returns (cost, correct)."""
        ...

    def gather(self, obj: Any) -> list:
        """Every process's ``obj`` (small, picklable), in rank order."""
        ...

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj``, on every process."""
        ...

    def check(self, error: str | None) -> None:
        """Raise, on every process, the first error any process found (a UserInputError)."""
        ...

    def merge_moments(self, moments):
        """Every process's preprocessing statistics (softreg.models.preprocess.Moments), merged."""
        ...

    def wrap(self, net):
        """A network's forward that sums its gradients over the processes (DistributedDataParallel),
        or None when there is nothing to sum."""
        ...

    def metrics(self) -> dict:
        """What a run's metrics.json records about the processes (``world_size`` when distributed)."""
        ...

    def close(self) -> None:
        ...


class _Single:
    """One process: every collective is the identity."""

    rank, world, local = 0, 1, True

    def device_for(self, name: str):
        from softreg.system.device import resolve_device

        return resolve_device(name)

    def reduce(self, tensors):
        return None

    def sum_step(self, grads, cost, correct):
        return cost, correct

    def gather(self, obj):
        return [obj]

    def broadcast(self, obj):
        return obj

    def check(self, error):
        if error:
            from softreg.errors import UserInputError

            raise UserInputError(error)

    def merge_moments(self, moments):
        return moments

    def wrap(self, net):
        return None

    def metrics(self) -> dict:
        return {}

    def close(self) -> None:
        return None


SINGLE = _Single()
