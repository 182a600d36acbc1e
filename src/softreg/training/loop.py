"""The training loop, as a few named functions over a TrainState and a batch source.

``run_epoch`` makes one pass of updates; ``train_epoch`` adds the bookkeeping every epoch gets
(divergence check, validation scores, history row, stopping rule, callbacks); ``fit`` repeats it
until the plan's last epoch or the stopping rule. ``fit`` and the estimators' ``partial_fit``
both go through ``train_epoch``: one loop, one stopping rule, one divergence rule.

Gradients pass through ``comm.reduce`` before the update: the one place where processes
combine their shares (a no-op with one process: softreg.system.processes).
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Iterable

import torch

from softreg.data.sources import Batch, BatchSource
from softreg.errors import UserInputError
from softreg.models import Classifier, loss_from_scores, scores_to_labels
from softreg.models.sparse import CHUNK_ROWS
from softreg.system.processes import SINGLE, Comm
from softreg.training.state import TrainState
from softreg.training.updates import LBFGS

DIVERGED = 1e6  # a mean cross-entropy this large means the updates blew up (uniform guessing costs log C)


class Callback:
    """Hooks into the loop; every method is optional."""

    def on_step(self, state: TrainState) -> None:
        """After each update."""

    def on_epoch(self, state: TrainState, row: dict) -> bool | None:
        """After each epoch's bookkeeping; returning True ends training."""

    def on_end(self, state: TrainState) -> None:
        """After the final weights are in place."""


def draw_epoch_seed(generator: torch.Generator) -> int:
    """The epoch's shuffling seed, drawn as ``DataLoader(shuffle=True)`` draws it: one int64
    for the loader's base seed (unused here), then the sampler's seed. A seeded run therefore
    visits the rows in the same order as the lessons' DataLoader loop."""
    torch.empty((), dtype=torch.int64).random_(generator=generator)
    return int(torch.empty((), dtype=torch.int64).random_(generator=generator))


def _forward(state: TrainState):
    return getattr(state, "forward", None)  # a DistributedDataParallel wrapper, when there is one


def _on(device: torch.device, batch: Batch) -> Batch:
    """The batch on the training device (streamed batches arrive on the CPU)."""
    if batch.X.device == device:
        return batch
    return Batch(batch.X.to(device, non_blocking=True), batch.y.to(device, non_blocking=True),
                 None if batch.w is None else batch.w.to(device), batch.denom)


def _reduced_gradients(model: Classifier, batch: Batch, comm: Comm, forward=None):
    batch = _on(next(model.parameters()).device, batch)
    if forward is not None:  # DistributedDataParallel sums the gradients in backward
        cost, correct, grads = model.gradients(batch.X, batch.y, batch.w, batch.denom, forward=forward)
    else:  # alone, a sparse batch's weight gradient may stay a product that the update adds in place
        cost, correct, grads = model.gradients(batch.X, batch.y, batch.w, batch.denom, lazy=comm.local)
    cost, correct = comm.sum_step([] if forward is not None else grads, cost, correct)
    return cost, correct, grads


def full_gradients(model: Classifier, source: BatchSource, comm: Comm):
    """Cost, correct count and gradients over every training row (all processes), in chunks.

    Each process sums its chunks' gradients, then one all-reduce adds the processes' sums (no
    DistributedDataParallel here: processes may hold different numbers of chunks)."""
    total_cost, total_correct, total = None, None, None
    device = next(model.parameters()).device
    for chunk in source.chunks(CHUNK_ROWS, comm.rank, comm.world):
        chunk = _on(device, chunk)
        chunk.denom = source.n_rows
        cost, correct, grads = model.gradients(chunk.X, chunk.y, chunk.w, chunk.denom)
        if total is None:
            total_cost, total_correct, total = cost, correct, [g.clone() for g in grads]
        else:
            total_cost, total_correct = total_cost + cost, total_correct + correct
            for t, g in zip(total, grads):
                t.add_(g)
    if total is None:  # this process holds no rows
        total = [torch.zeros_like(p) for p in model.net.parameters()]
        total_cost = torch.zeros((), dtype=model.dtype)
        total_correct = torch.zeros((), dtype=torch.int64)
    total_cost, total_correct = comm.sum_step(total, total_cost, total_correct)
    return total_cost, total_correct, total


def run_epoch(state: TrainState, source: BatchSource, comm: Comm = SINGLE,
              callbacks: Iterable[Callback] = ()) -> tuple[float, float]:
    """One pass of updates (or the rest of one, after a resume); returns (mean batch cost, accuracy)."""
    plan, o, model = state.plan, state.config.optim, state.model
    device = next(model.parameters()).device
    if state.in_epoch == 0:
        state.epoch_seed = draw_epoch_seed(state.generator) if o.shuffle else 0
        state.epoch_cost = torch.zeros((), dtype=torch.float64, device=device)
        state.epoch_correct = torch.zeros((), dtype=torch.int64, device=device)
        state.epoch_seen = 0
    state.epoch_cost = state.epoch_cost.to(device)
    state.epoch_correct = state.epoch_correct.to(device)
    callbacks = list(callbacks)
    if isinstance(state.updater, LBFGS):
        if state.in_epoch == 0:  # one full-batch step per epoch (unless a resume already did it)
            cost, correct = state.updater.epoch(lambda: full_gradients(model, source, comm))
            state.step += 1
            state.epoch_cost += cost
            state.epoch_correct += correct
            state.epoch_seen, state.in_epoch = source.n_rows, 1
            for callback in callbacks:
                callback.on_step(state)
    else:
        batches = source.batches(state.epoch_seed, plan.batch_size, o.drop_last, o.shuffle,
                                 comm.rank, comm.world, skip=state.in_epoch)
        for batch in batches:
            cost, correct, grads = _reduced_gradients(model, batch, comm, _forward(state))
            state.updater.step(grads, plan.lr_at(state.step))
            state.step += 1
            if state.average is not None:
                state.average.update(state.step)
            state.epoch_cost += cost
            state.epoch_correct += correct
            state.epoch_seen += batch.denom
            state.in_epoch += 1
            for callback in callbacks:
                callback.on_step(state)
    steps = max(state.in_epoch, 1)
    avg_cost = float(state.epoch_cost) / steps  # one synchronisation per epoch, not per batch
    accuracy = float(state.epoch_correct) / max(state.epoch_seen, 1)
    state.in_epoch = 0
    state.epoch += 1
    return avg_cost, accuracy


def train_epoch(state: TrainState, source: BatchSource, *, validation: BatchSource | None = None,
                callbacks: Iterable[Callback] = (), comm: Comm = SINGLE) -> bool:
    """One epoch plus its bookkeeping; True when training should stop."""
    callbacks = list(callbacks)
    state.model.net.train()
    tic = time.perf_counter()
    avg_cost, accuracy = run_epoch(state, source, comm, callbacks)
    state.elapsed += time.perf_counter() - tic
    if not math.isfinite(avg_cost) or avg_cost > DIVERGED:
        raise UserInputError(
            f"training diverged at epoch {state.epoch} (cost {avg_cost:.3g}); lower the learning rate "
            f"(now {state.config.optim.lr:g}) or standardize the features."
        )
    row = dict(epoch=state.epoch, avg_cost=avg_cost, accuracy=accuracy, seconds=state.elapsed)
    if validation is not None:
        scores = evaluate_source(state.model, validation, comm)
        row["val_loss"], row["val_accuracy"] = scores["loss"], scores["accuracy"]
    state.history.append(**row)
    stop = state.stopping.observe(row, state.model)
    for callback in callbacks:
        stop = (callback.on_epoch(state, row) is True) or stop
    return stop


def finish(state: TrainState) -> None:
    """Put the final weights in place: the weight average, or the best epoch's weights."""
    if state.finished:
        return
    if state.average is not None:
        state.average.apply()
    if state.stopping.best_weights is not None:
        state.model.load_state_dict(state.stopping.best_weights)
        state.history.best_epoch = state.stopping.best_epoch
    state.model.eval()
    state.finished = True


def fit(state: TrainState, source: BatchSource, *, validation: BatchSource | None = None,
        callbacks: Iterable[Callback] = (), comm: Comm = SINGLE) -> TrainState:
    """Train until the plan's last epoch or the stopping rule, then finish; returns ``state``."""
    callbacks = list(callbacks)
    device = next(state.model.parameters()).device
    with cpu_threads(state.plan.threads, device):
        while state.epoch < state.plan.epochs:
            if train_epoch(state, source, validation=validation, callbacks=callbacks, comm=comm):
                break
    finish(state)
    for callback in callbacks:
        callback.on_end(state)
    return state


@torch.no_grad()
def evaluate_source(model: Classifier, source: BatchSource, comm: Comm = SINGLE) -> dict:
    """Mean cost (as trained) and accuracy over every row of ``source``, in one chunked pass."""
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64)  # summed cost, correct, rows
    device = next(model.parameters()).device
    for chunk in source.chunks(CHUNK_ROWS, comm.rank, comm.world):
        scores = model(chunk.X.to(device))
        y = chunk.y.to(device)
        sums += torch.stack([loss_from_scores(scores, y, reduction="sum").double().cpu(),
                             (scores_to_labels(scores) == y).sum().double().cpu(),
                             torch.tensor(float(y.shape[0]), dtype=torch.float64)])
    comm.reduce([sums])
    model.train(was_training)
    n = max(float(sums[2]), 1.0)
    return {"loss": float(sums[0]) / n, "accuracy": float(sums[1]) / n, "n": int(sums[2])}


@contextmanager
def cpu_threads(threads: int, device: torch.device):
    """Run with ``threads`` CPU threads (0 = leave torch's setting), restored afterwards."""
    before = torch.get_num_threads()
    change = device.type == "cpu" and threads and threads != before
    if change:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if change:
            torch.set_num_threads(before)
