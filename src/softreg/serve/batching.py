"""Micro-batching: requests for one model that arrive together are scored in one call.

One worker task per model takes every request queued while the previous batch was being
scored (and, with ``max_wait`` > 0, waits that long for more), concatenates their rows and
notes, scores them in a worker thread (``Predictor.score``), and hands each request its slice
(``Scores.split``). A lone request waits for nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import torch

from softreg.models.sparse import cat_rows


class MicroBatcher:
    """Score (N_i, F) row blocks of concurrent requests as one (sum N_i, F) batch.

    score : the function that scores a batch: (X (N, F), notes: N lists) -> a result with
        ``split(sizes)`` (``Predictor.score`` -> ``Scores``); runs in a worker thread.
    max_rows : a batch stops growing past this many rows.
    max_wait : seconds to wait for more requests once one is in hand (0: take what is queued).
    on_batch : called with the rows of each batch (for the metrics).
    """

    def __init__(self, score: Callable[[torch.Tensor, list], Any], max_rows: int = 2048,
                 max_wait: float = 0.0, on_batch: Callable[[int], None] | None = None):
        self.score = score
        self.max_rows = max_rows
        self.max_wait = max_wait
        self.on_batch = on_batch
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    async def submit(self, X: torch.Tensor, notes: list[list[str]] | None = None):
        """The scores of X (N, F) (with each row's ``notes``), computed together with whatever else is waiting."""
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((X, notes or [[] for _ in range(X.shape[0])], future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
            self._worker = self._queue = None

    async def _collect(self) -> list:
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        rows = batch[0][0].shape[0]
        deadline = loop.time() + self.max_wait
        while rows < self.max_rows:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except asyncio.TimeoutError:
                    break
            batch.append(item)
            rows += item[0].shape[0]
        return batch

    async def _run(self) -> None:
        from starlette.concurrency import run_in_threadpool

        while True:
            batch = await self._collect()
            live = [item for item in batch if not item[2].done()]  # a client may have gone
            if not live:
                continue
            sizes = [X.shape[0] for X, _, _ in live]
            try:
                scores = await run_in_threadpool(self.score, cat_rows([X for X, _, _ in live]),
                                                 [n for _, notes, _ in live for n in notes])
            except Exception as exc:  # noqa: BLE001  handed to every waiting request
                for _, _, future in live:
                    if not future.done():
                        future.set_exception(exc)
                continue
            if self.on_batch is not None:
                self.on_batch(sum(sizes))
            for part, (_, _, future) in zip(scores.split(sizes), live):
                if not future.done():
                    future.set_result(part)
