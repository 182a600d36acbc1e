"""Streaming sources' building blocks: a bounded shuffle buffer, exact-size rebatching, and
``StreamSource``, the batch source that reads pieces of a dataset from disk in bounded memory.
Rows may be dense tensors or sparse CSR tensors (svmlight files); each helper takes either."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, Iterator

import torch

from softreg.data.sources import Batch, steps_for
from softreg.models.sparse import cat_rows, row_range, take_rows

Block = tuple[torch.Tensor, torch.Tensor]  # (rows (n, *sample_shape) or CSR (n, F), labels (n,))
BUFFER_BYTES = 64 << 20  # the shuffle buffer's size: rows = this / bytes per row (at least 32 batches)


class ShuffleBuffer:
    """Rows pass through a buffer of ``capacity`` rows. When it is full it is shuffled and its
    first half leaves; the second half stays and mixes with the rows that come next, so a row
    can leave several windows after it came in. The rest leaves, shuffled, at the end."""

    def __init__(self, capacity: int, generator: torch.Generator):
        self.capacity = max(2, capacity)
        self.generator = generator
        self.X: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.size = 0

    def feed(self, X: torch.Tensor, y: torch.Tensor) -> Iterator[Block]:
        if self.X is None:
            self.X = torch.empty((self.capacity, *X.shape[1:]), dtype=X.dtype)
            self.y = torch.empty(self.capacity, dtype=y.dtype)
        start = 0
        while start < X.shape[0]:
            take = min(self.capacity - self.size, X.shape[0] - start)
            self.X[self.size : self.size + take] = X[start : start + take]
            self.y[self.size : self.size + take] = y[start : start + take]
            self.size += take
            start += take
            if self.size == self.capacity:
                yield self._release(self.capacity // 2)

    def drain(self) -> Iterator[Block]:
        if self.size:
            yield self._release(self.size)

    def _release(self, n: int) -> Block:
        """n random rows leave; the last rows of the buffer move into their places."""
        size = self.size
        leaving = torch.randperm(size, generator=self.generator)[:n]
        out = (self.X[leaving], self.y[leaving])  # n rows copied out, in a random order
        kept = size - n
        gone = torch.zeros(size, dtype=torch.bool)
        gone[leaving] = True
        holes = torch.nonzero(gone[:kept]).squeeze(1)  # free slots among the first `kept`
        movers = torch.nonzero(~gone[kept:]).squeeze(1) + kept  # kept rows beyond them
        if holes.numel():
            self.X[holes] = self.X[movers]
            self.y[holes] = self.y[movers]
        self.size = kept
        return out


class SparseShuffleBuffer:
    """ShuffleBuffer's rule for CSR rows, whose sizes vary: blocks are kept as they come; once
    ``capacity`` rows are held, half of them, drawn at random, leave, and the rest are kept."""

    def __init__(self, capacity: int, generator: torch.Generator):
        self.capacity = max(2, capacity)
        self.generator = generator
        self.blocks: list[Block] = []
        self.size = 0

    def feed(self, X: torch.Tensor, y: torch.Tensor) -> Iterator[Block]:
        self.blocks.append((X, y))
        self.size += X.shape[0]
        while self.size >= self.capacity:
            yield self._release(self.capacity // 2)

    def drain(self) -> Iterator[Block]:
        if self.size:
            yield self._release(self.size)

    def _release(self, n: int) -> Block:
        X = cat_rows([b[0] for b in self.blocks])
        y = torch.cat([b[1] for b in self.blocks])
        order = torch.randperm(X.shape[0], generator=self.generator)
        leaving, kept = order[:n], torch.sort(order[n:]).values
        self.blocks = [(take_rows(X, kept), y[kept])] if kept.numel() else []
        self.size = int(kept.numel())
        return take_rows(X, leaving), y[leaving]


def rebatch(blocks: Iterable[Block], size: int) -> Iterator[Block]:
    """Blocks of any sizes -> blocks of exactly ``size`` rows (the last one may be shorter)."""
    pending_X: list[torch.Tensor] = []
    pending_y: list[torch.Tensor] = []
    held = 0
    for X, y in blocks:
        start = 0
        while start < X.shape[0]:
            take = min(size - held, X.shape[0] - start)
            pending_X.append(row_range(X, start, start + take))
            pending_y.append(y[start : start + take])
            held += take
            start += take
            if held == size:
                yield cat_rows(pending_X), cat_rows(pending_y)
                pending_X, pending_y, held = [], [], 0
    if held:
        yield cat_rows(pending_X), cat_rows(pending_y)


def local_batch(batch_size: int, rank: int, world: int) -> int:
    """Rows of each global batch that process ``rank`` takes (sizes differ by at most one)."""
    return batch_size // world + (1 if rank < batch_size % world else 0)


class StreamSource:
    """A dataset read from disk, piece by piece (files, row groups, row ranges).

    pieces : the units read at once, in stored order; ``read(piece)`` yields (rows, labels) blocks.
    Each epoch visits the pieces in an order drawn from the epoch's seed, through a shuffle buffer
    of about BUFFER_BYTES; with several processes each takes every world-th piece of that order and
    its part of every global batch, and all take the same number of steps (a process that runs
    out of rows starts its pieces again, so the last batches of such an epoch repeat some rows).
    """

    def __init__(self, pieces: list, read: Callable[[object], Iterator[Block]], n_rows: int, n_features: int,
                 row_bytes: int, ordered: bool = False, sparse: bool = False):
        self.pieces = pieces
        self.read = read
        self.n_rows = n_rows
        self.n_features = n_features
        self.row_bytes = max(1, row_bytes)
        self.ordered = ordered  # pieces can only be read in stored order (gzip files): the buffer alone shuffles
        self.sparse = sparse  # blocks are CSR rows (svmlight files)

    def __len__(self) -> int:
        return self.n_rows

    def _blocks(self, pieces: list) -> Iterator[Block]:
        def read_all():
            for piece in pieces:
                yield from self.read(piece)

        return prefetch(read_all())

    def batches(self, seed, batch_size, drop_last, shuffle, rank=0, world=1, skip=0):
        generator = torch.Generator().manual_seed(seed)
        batch_size = batch_size or self.n_rows
        order = list(range(len(self.pieces)))
        if shuffle and not self.ordered:
            order = torch.randperm(len(self.pieces), generator=generator).tolist()
        mine = [self.pieces[i] for i in order][rank::world]
        # a process that reads only some of the pieces takes as many steps as the others: when its rows
        # run out it starts its pieces again, and every batch counts as the global batch's share
        partial = len(mine) < len(self.pieces)
        size = local_batch(batch_size, rank, world)
        steps = steps_for(self.n_rows, batch_size, drop_last)
        capacity = max(32 * size, BUFFER_BYTES // self.row_bytes)

        def stream() -> Iterator[Block]:
            if partial:
                blocks = (block for _ in iter(int, 1) for block in self._blocks(mine))
            else:
                blocks = self._blocks(mine)
            if shuffle:
                kind = SparseShuffleBuffer if self.sparse else ShuffleBuffer
                buffer = kind(min(capacity, max(2, self.n_rows // world + 1)), generator)
                blocks = _buffered(blocks, buffer)
            yield from rebatch(blocks, size)

        if not mine:
            return
        produced = stream()
        for step in range(steps):
            X, y = next(produced, (None, None))
            if X is None or (not partial and drop_last and X.shape[0] < size):
                return
            if step >= skip:
                yield Batch(X, y, None, batch_size if partial else X.shape[0])

    def chunks(self, size, rank=0, world=1):
        for X, y in rebatch(self._blocks(self.pieces[rank::world]), size):
            yield Batch(X, y, None, 0)


def _buffered(blocks: Iterable[Block], buffer: ShuffleBuffer) -> Iterator[Block]:
    for X, y in blocks:
        yield from buffer.feed(X, y)
    yield from buffer.drain()


PREFETCH = 4  # blocks read ahead while the caller trains on the previous ones


def prefetch(blocks: Iterator[Block], depth: int = PREFETCH) -> Iterator[Block]:
    """Read ``blocks`` in a background thread, up to ``depth`` ahead, in the same order. Reading
    (Arrow decoding, decompression) and training release the GIL, so the two overlap."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work():
        try:
            for block in blocks:
                while not stop.is_set():
                    try:
                        q.put(block, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    thread = threading.Thread(target=work, name="softreg-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            thread.join(timeout=0.05)
