"""Batch sources: where training reads its minibatches from.

A source yields, for one epoch, minibatches ``Batch(X, y, w)`` of raw rows (uint8 pixels stay
uint8; the model applies its stored preprocessing), given the epoch's seed, the global batch size
and this process's rank among ``world`` processes. Every process sees the same sequence of
global batches and takes its own rows of each; ``denom`` is the global batch's size, so that the
processes' shares of a gradient add up to the gradient of the whole batch.

``InMemorySource`` keeps the data in tensors (on the training device) and gathers each batch by
index from a permutation of the rows, as ``DataLoader(shuffle=True)`` would; sparse CSR rows are
gathered the same way (softreg.models.sparse.take_rows) into one CSR tensor per batch. Streaming sources
(``softreg.data.shuffle.StreamSource``) read from disk through a bounded shuffle buffer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol

import torch

from softreg.models.sparse import row_range, take_rows


@dataclass
class Batch:
    """X : (b, *sample_shape) raw rows; y : (b,) class indices; w : (b,) weights or None;
    denom : the global batch size the costs are divided by (b for one process)."""

    X: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor | None
    denom: int


class BatchSource(Protocol):
    """What the training loop needs from its data."""

    n_rows: int  # training rows, all processes together
    n_features: int

    def batches(self, seed: int, batch_size: int, drop_last: bool, shuffle: bool,
                rank: int = 0, world: int = 1, skip: int = 0) -> Iterator[Batch]:
        """The epoch's minibatches, in order, after skipping the first ``skip`` (a resumed epoch)."""
        ...

    def chunks(self, size: int, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """Every row once, in stored order, in chunks of up to ``size`` rows (scoring, full-batch steps)."""
        ...


def epoch_permutation(n: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The row order of one epoch: ``randperm`` from a generator seeded with ``seed``, as a
    ``DataLoader(shuffle=True)`` draws it (see softreg.training.loop.draw_epoch_seed)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order.to(device)


def steps_for(n_rows: int, batch_size: int, drop_last: bool) -> int:
    """Updates in one pass over n_rows rows (batch_size 0 = all rows at once)."""
    size = batch_size or n_rows
    return n_rows // size if drop_last else -(-n_rows // size)


def batch_bounds(n: int, batch_size: int, drop_last: bool) -> list[tuple[int, int]]:
    """(start, stop) of each minibatch over n rows; batch_size 0 means one batch of all rows."""
    size = batch_size or n
    bounds = [(start, min(start + size, n)) for start in range(0, n, size)]
    if drop_last and bounds and bounds[-1][1] - bounds[-1][0] < size:
        bounds.pop()
    return bounds


class InMemorySource:
    """Rows held in tensors; this process keeps only its contiguous share of the rows.

    X : (N, *sample_shape) raw inputs, or a CSR tensor (N, F); y : (N,) int64; w : (N,) float or
    None. With several
    processes, rank r holds rows [N r / world, N (r + 1) / world) and, of each global batch,
    takes the rows that fall in that range.
    """

    def __init__(self, X: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None, *,
                 rank: int = 0, world: int = 1, device: torch.device | str = "cpu", n_rows: int | None = None):
        self.n_rows = int(n_rows if n_rows is not None else y.shape[0])
        self.lo, self.hi = share(self.n_rows, rank, world)
        self.partial = (self.lo, self.hi) != (0, self.n_rows)  # this process holds only some of the rows
        if n_rows is None and self.partial:  # given all rows: keep this process's share only
            X, y = row_range(X, self.lo, self.hi), y[self.lo : self.hi]
            w = None if w is None else w[self.lo : self.hi]
        self.device = torch.device(device)
        self.X = X.to(self.device)
        self.y = y.to(self.device)
        self.w = None if w is None else w.to(self.device)
        self.n_features = int(torch.tensor(X.shape[1:]).prod()) if X.ndim > 1 else 1
        self.sample_shape = tuple(X.shape[1:])

    def _take(self, rows: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        if isinstance(rows, slice):  # views: no copy
            return row_range(self.X, rows.start, rows.stop), self.y[rows], None if self.w is None else self.w[rows]
        return (take_rows(self.X, rows), self.y.index_select(0, rows),
                None if self.w is None else self.w.index_select(0, rows))

    def batches(self, seed, batch_size, drop_last, shuffle, rank=0, world=1, skip=0):
        bounds = batch_bounds(self.n_rows, batch_size, drop_last)
        order = epoch_permutation(self.n_rows, seed, self.device) if shuffle and len(bounds) > 1 else None
        if order is None and shuffle and len(bounds) == 1 and bounds[0][1] < self.n_rows:
            order = epoch_permutation(self.n_rows, seed, self.device)  # one batch of some rows
        for start, stop in bounds[skip:]:
            if order is None:
                lo, hi = max(start, self.lo), min(stop, self.hi)
                rows: torch.Tensor | slice = slice(lo - self.lo, max(lo, hi) - self.lo)
            else:
                global_rows = order[start:stop]
                if self.partial:
                    mine = (global_rows >= self.lo) & (global_rows < self.hi)
                    global_rows = global_rows[mine]
                rows = global_rows - self.lo if self.lo else global_rows
            X, y, w = self._take(rows)
            yield Batch(X, y, w, stop - start)

    def chunks(self, size, rank=0, world=1):
        n = self.hi - self.lo
        for start in range(0, n, size):
            X, y, w = self._take(slice(start, min(start + size, n)))
            yield Batch(X, y, w, 0)


def share(n: int, rank: int, world: int) -> tuple[int, int]:
    """Rows [lo, hi) of n that process ``rank`` of ``world`` holds (contiguous, sizes differ by <= 1)."""
    return n * rank // world, n * (rank + 1) // world
